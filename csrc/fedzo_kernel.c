/* fedzo kernel: see fedzo_kernel.h for the contract.
 *
 * Plain C99 (128-bit multiply used only where the compiler offers it, with a
 * portable fallback), fixed-width integer types, no allocation, no mutable
 * state. The hot loops work on one 64-bit word of sign bits at a time. The
 * portable loops are written so that the compiler can vectorise them without
 * intrinsics; perturb and update also have explicit SIMD loops (SSE2, AVX2
 * chosen at run time, NEON) with saturating adds, bit-identical to them.
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <math.h>

#include "fedzo_kernel.h"

/* ---- Philox4x64-10 (Salmon et al. 2011), as numpy.random.Philox ---- */

#define PHILOX_M0 UINT64_C(0xD2E7470EE14C6C93)
#define PHILOX_M1 UINT64_C(0xCA5A826395121157)
#define PHILOX_W0 UINT64_C(0x9E3779B97F4A7C15)
#define PHILOX_W1 UINT64_C(0xBB67AE8584CAA73B)

/* FZ_WIDE_MULTIPLY: 1 where the compiler has a 128-bit integer type (the fast
 * 64x64 -> 128 product), 0 for the portable schoolbook product. Building with
 * -DFZ_NO_INT128 forces the portable one, so a test can check both give the
 * same bits on one machine. */
#if defined(__SIZEOF_INT128__) && !defined(FZ_NO_INT128)
#define FZ_WIDE_MULTIPLY 1
#else
#define FZ_WIDE_MULTIPLY 0
#endif

static inline uint64_t mulhilo64(uint64_t a, uint64_t b, uint64_t *hi)
{
#if FZ_WIDE_MULTIPLY
    __extension__ typedef unsigned __int128 u128;
    u128 p = (u128)a * b;
    *hi = (uint64_t)(p >> 64);
    return (uint64_t)p;
#else
    /* Schoolbook 32x32 products for compilers without a 128-bit type. */
    uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32;
    uint64_t b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
    uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi;
    uint64_t hl = a_hi * b_lo, hh = a_hi * b_hi;
    uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFu) + (hl & 0xFFFFFFFFu);
    *hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    return (mid << 32) | (ll & 0xFFFFFFFFu);
#endif
}

/* Encrypt counter [c0, c1, 0, 0] under key (k0, k1); 10 rounds. */
static inline void philox4x64_10(uint64_t c0, uint64_t c1, uint64_t k0,
                                 uint64_t k1, uint64_t out[4])
{
    uint64_t x0 = c0, x1 = c1, x2 = 0, x3 = 0;
    for (int r = 0; r < 10; r++) {
        uint64_t hi0, hi1;
        uint64_t lo0 = mulhilo64(PHILOX_M0, x0, &hi0);
        uint64_t lo1 = mulhilo64(PHILOX_M1, x2, &hi1);
        uint64_t y0 = hi1 ^ x1 ^ k0;
        uint64_t y2 = hi0 ^ x3 ^ k1;
        x0 = y0;
        x1 = lo1;
        x2 = y2;
        x3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = x0;
    out[1] = x1;
    out[2] = x2;
    out[3] = x3;
}

/* Sequential reader of stream words with a one-block cache. */
typedef struct {
    uint64_t seed, stream, round;
    uint64_t block; /* index of the cached block, UINT64_MAX when empty */
    uint64_t words[4];
} word_reader;

static inline void reader_init(word_reader *r, uint64_t seed, uint64_t stream,
                               uint64_t round)
{
    r->seed = seed;
    r->stream = stream;
    r->round = round;
    r->block = UINT64_MAX;
}

static inline uint64_t reader_word(word_reader *r, uint64_t w)
{
    uint64_t block = w >> 2;
    if (block != r->block) {
        /* numpy's Philox increments the counter before encrypting. */
        philox4x64_10(block + 1, r->round, r->seed, r->stream, r->words);
        r->block = block;
    }
    return r->words[w & 3];
}

void fz_stream_words(uint64_t seed, uint64_t stream, uint64_t round,
                     uint64_t first_word, uint64_t n_words, uint64_t *out)
{
    word_reader r;
    reader_init(&r, seed, stream, round);
    for (uint64_t i = 0; i < n_words; i++)
        out[i] = reader_word(&r, first_word + i);
}

/* ---- saturating SIMD adds over whole words ----
 *
 * Perturb and update add s_j * d to every entry, s_j = +1 where sign bit j is
 * set and -1 where it is clear, saturating at the type's limits. Here that is
 * done with the hardware's saturating adds (SSE2/AVX2 `adds_epi16`, NEON
 * `vqadd`) on whole 64-entry words, for 0 <= d <= TMAX (the caller folds a
 * negative step into flipped sign bits, as the portable loop does):
 *
 *   mask  = lane's sign bit set ? all ones : 0   (broadcast, AND, compare)
 *   step  = mask ? +d : -d
 *   new   = saturating_add(old, step)
 *
 * An entry saturated exactly when the saturating sum differs from the
 * wrapping one (with |step| <= TMAX a wrapped sum lies on the other side of
 * zero from the limit, so the two can never coincide), so one more add and one
 * compare give a per-lane count, kept in a vector register and summed across
 * lanes once per COUNT_BLOCK_WORDS words (16-bit lanes would overflow beyond
 * that) instead of once per 16 entries. Integer adds saturate the same way in
 * every instruction set, so every path is bit-identical to the portable C
 * and to NumPy (tests/edge/kernel check this on every path this CPU has).
 *
 * int32 stores: NEON has `vqaddq_s32`; SSE2 and AVX2 have no saturating
 * 32-bit add, so it is built from the wrapping add: overflow happened where
 * old and step have the same sign and the sum the other (sign bit of
 * (old ^ sum) & (step ^ sum)), and the limit is INT32_MAX ^ (step >> 31).
 *
 * AVX2 is compiled with a function attribute and chosen at run time
 * (__builtin_cpu_supports), so one binary runs on any x86-64; SSE2 is part of
 * x86-64 itself; NEON is used when the compiler targets it (__ARM_NEON:
 * always on aarch64, on armv7 with -mfpu=neon). */

#define COUNT_BLOCK_WORDS 2048u /* <= 16384 counts per 16-bit lane */

#if defined(__SSE2__) && defined(__GNUC__)
#define FZ_HAVE_SSE2 1
#include <emmintrin.h>
#if (defined(__x86_64__) || defined(__i386__)) && !defined(FEDZO_NO_AVX2)
#define FZ_HAVE_AVX2 1
#include <immintrin.h>
#define FZ_AVX2 __attribute__((target("avx2")))
#endif
#endif

#if defined(__ARM_NEON)
#define FZ_HAVE_NEON 1
#include <arm_neon.h>
#endif

/* Each loop is compiled twice, with and without the store of the old values
 * (perturb's saved copy, update's none), so the store is not tested per vector. */
#if defined(__GNUC__)
#define FZ_ALWAYS_INLINE __attribute__((always_inline))
#else
#define FZ_ALWAYS_INLINE
#endif
#define FZ_NO_ATTR
#define FZ_SAVE_OR_NOT(ATTR, NAME, T)                                            \
    ATTR static uint64_t NAME(T *t, uint64_t n_words, word_reader *r,            \
                              uint64_t w, T d, uint64_t flip, T *sv)             \
    {                                                                            \
        return sv != NULL ? NAME##_body(t, n_words, r, w, d, flip, sv, 1)        \
                          : NAME##_body(t, n_words, r, w, d, flip, sv, 0);       \
    }

static inline uint64_t block_end(uint64_t i, uint64_t n_words)
{
    return n_words - i < COUNT_BLOCK_WORDS ? n_words : i + COUNT_BLOCK_WORDS;
}

#if defined(FZ_HAVE_SSE2)
static inline uint64_t hsum_epi32_sse2(__m128i v)
{
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return (uint64_t)(uint32_t)_mm_cvtsi128_si32(v);
}

/* int16: 8 lanes a vector, 8 vectors a word. `keep` counts the entries that
 * did not saturate. */
static inline FZ_ALWAYS_INLINE uint64_t words_i16_sse2_body(
    int16_t *t, uint64_t n_words, word_reader *r,
    uint64_t w, int16_t d, uint64_t flip, int16_t *sv, const int save)
{
    const __m128i lo = _mm_setr_epi16(0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80);
    const __m128i hi = _mm_slli_epi16(lo, 8);
    const __m128i dneg = _mm_set1_epi16((int16_t)-d);
    const __m128i dswap = _mm_xor_si128(_mm_set1_epi16(d), dneg); /* +d ^ -d */
    uint64_t sat = 0;
    for (uint64_t i = 0; i < n_words;) {
        const uint64_t end = block_end(i, n_words);
        __m128i keep = _mm_setzero_si128();
        sat += 64 * (end - i);
        for (; i < end; i++) {
            const uint64_t bits = reader_word(r, w + i) ^ flip;
            for (int c = 0; c < 4; c++) {
                const __m128i b = _mm_set1_epi16((int16_t)(uint16_t)(bits >> (16 * c)));
                for (int h = 0; h < 2; h++) {
                    const __m128i lane = h ? hi : lo;
                    const __m128i m = _mm_cmpeq_epi16(_mm_and_si128(b, lane), lane);
                    const __m128i step = _mm_xor_si128(dneg, _mm_and_si128(m, dswap));
                    __m128i *p = (__m128i *)(t + 64 * i + 16 * c + 8 * h);
                    const __m128i x = _mm_loadu_si128(p);
                    if (save)
                        _mm_storeu_si128((__m128i *)(sv + 64 * i + 16 * c + 8 * h), x);
                    const __m128i y = _mm_adds_epi16(x, step);
                    keep = _mm_sub_epi16(keep, _mm_cmpeq_epi16(y, _mm_add_epi16(x, step)));
                    _mm_storeu_si128(p, y);
                }
            }
        }
        sat -= hsum_epi32_sse2(_mm_madd_epi16(keep, _mm_set1_epi16(1)));
    }
    return sat;
}
FZ_SAVE_OR_NOT(FZ_NO_ATTR, words_i16_sse2, int16_t)

/* int32: 4 lanes a vector, 16 vectors a word; `count` counts saturations. */
static inline FZ_ALWAYS_INLINE uint64_t words_i32_sse2_body(
    int32_t *t, uint64_t n_words, word_reader *r,
    uint64_t w, int32_t d, uint64_t flip, int32_t *sv, const int save)
{
    const __m128i lane0 = _mm_setr_epi32(0x1, 0x2, 0x4, 0x8);
    const __m128i dneg = _mm_set1_epi32(-d);
    const __m128i dswap = _mm_xor_si128(_mm_set1_epi32(d), dneg);
    const __m128i tmax = _mm_set1_epi32(INT32_MAX);
    uint64_t sat = 0;
    for (uint64_t i = 0; i < n_words;) {
        const uint64_t end = block_end(i, n_words);
        __m128i count = _mm_setzero_si128();
        for (; i < end; i++) {
            const uint64_t bits = reader_word(r, w + i) ^ flip;
            for (int c = 0; c < 16; c++) {
                const __m128i b = _mm_set1_epi32((int32_t)((bits >> (4 * c)) & 0xF));
                const __m128i m = _mm_cmpeq_epi32(_mm_and_si128(b, lane0), lane0);
                const __m128i step = _mm_xor_si128(dneg, _mm_and_si128(m, dswap));
                __m128i *p = (__m128i *)(t + 64 * i + 4 * c);
                const __m128i x = _mm_loadu_si128(p);
                if (save)
                    _mm_storeu_si128((__m128i *)(sv + 64 * i + 4 * c), x);
                const __m128i s = _mm_add_epi32(x, step);
                const __m128i ov = _mm_srai_epi32(
                    _mm_and_si128(_mm_xor_si128(x, s), _mm_xor_si128(step, s)), 31);
                const __m128i limit = _mm_xor_si128(_mm_srai_epi32(step, 31), tmax);
                count = _mm_sub_epi32(count, ov);
                _mm_storeu_si128(p, _mm_xor_si128(s, _mm_and_si128(_mm_xor_si128(s, limit), ov)));
            }
        }
        sat += hsum_epi32_sse2(count);
    }
    return sat;
}
FZ_SAVE_OR_NOT(FZ_NO_ATTR, words_i32_sse2, int32_t)
#endif /* FZ_HAVE_SSE2 */

#if defined(FZ_HAVE_AVX2)
FZ_AVX2 static inline uint64_t hsum_epi32_avx2(__m256i v)
{
    return hsum_epi32_sse2(_mm_add_epi32(_mm256_castsi256_si128(v),
                                         _mm256_extracti128_si256(v, 1)));
}

/* int16: 16 lanes a vector, one vector per 16 sign bits. */
FZ_AVX2 static inline FZ_ALWAYS_INLINE uint64_t words_i16_avx2_body(
    int16_t *t, uint64_t n_words, word_reader *r,
    uint64_t w, int16_t d, uint64_t flip, int16_t *sv, const int save)
{
    const __m256i lane = _mm256_setr_epi16(
        0x0001, 0x0002, 0x0004, 0x0008, 0x0010, 0x0020, 0x0040, 0x0080, 0x0100, 0x0200,
        0x0400, 0x0800, 0x1000, 0x2000, 0x4000, (int16_t)0x8000);
    const __m256i dneg = _mm256_set1_epi16((int16_t)-d);
    const __m256i dswap = _mm256_xor_si256(_mm256_set1_epi16(d), dneg);
    uint64_t sat = 0;
    for (uint64_t i = 0; i < n_words;) {
        const uint64_t end = block_end(i, n_words);
        __m256i keep = _mm256_setzero_si256();
        sat += 64 * (end - i);
        for (; i < end; i++) {
            const uint64_t bits = reader_word(r, w + i) ^ flip;
            for (int c = 0; c < 4; c++) {
                const __m256i b = _mm256_set1_epi16((int16_t)(uint16_t)(bits >> (16 * c)));
                const __m256i m = _mm256_cmpeq_epi16(_mm256_and_si256(b, lane), lane);
                const __m256i step = _mm256_xor_si256(dneg, _mm256_and_si256(m, dswap));
                __m256i *p = (__m256i *)(t + 64 * i + 16 * c);
                const __m256i x = _mm256_loadu_si256(p);
                if (save)
                    _mm256_storeu_si256((__m256i *)(sv + 64 * i + 16 * c), x);
                const __m256i y = _mm256_adds_epi16(x, step);
                keep = _mm256_sub_epi16(keep, _mm256_cmpeq_epi16(y, _mm256_add_epi16(x, step)));
                _mm256_storeu_si256(p, y);
            }
        }
        sat -= hsum_epi32_avx2(_mm256_madd_epi16(keep, _mm256_set1_epi16(1)));
    }
    return sat;
}
FZ_SAVE_OR_NOT(FZ_AVX2, words_i16_avx2, int16_t)

/* int32: 8 lanes a vector, 8 vectors a word (the SSE2 overflow test, wider). */
FZ_AVX2 static inline FZ_ALWAYS_INLINE uint64_t words_i32_avx2_body(
    int32_t *t, uint64_t n_words, word_reader *r,
    uint64_t w, int32_t d, uint64_t flip, int32_t *sv, const int save)
{
    const __m256i lane0 = _mm256_setr_epi32(0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80);
    const __m256i dneg = _mm256_set1_epi32(-d);
    const __m256i dswap = _mm256_xor_si256(_mm256_set1_epi32(d), dneg);
    const __m256i tmax = _mm256_set1_epi32(INT32_MAX);
    uint64_t sat = 0;
    for (uint64_t i = 0; i < n_words;) {
        const uint64_t end = block_end(i, n_words);
        __m256i count = _mm256_setzero_si256();
        for (; i < end; i++) {
            const uint64_t bits = reader_word(r, w + i) ^ flip;
            for (int c = 0; c < 8; c++) {
                const __m256i b = _mm256_set1_epi32((int32_t)((bits >> (8 * c)) & 0xFF));
                const __m256i m = _mm256_cmpeq_epi32(_mm256_and_si256(b, lane0), lane0);
                const __m256i step = _mm256_xor_si256(dneg, _mm256_and_si256(m, dswap));
                __m256i *p = (__m256i *)(t + 64 * i + 8 * c);
                const __m256i x = _mm256_loadu_si256(p);
                if (save)
                    _mm256_storeu_si256((__m256i *)(sv + 64 * i + 8 * c), x);
                const __m256i s = _mm256_add_epi32(x, step);
                const __m256i ov = _mm256_srai_epi32(
                    _mm256_and_si256(_mm256_xor_si256(x, s), _mm256_xor_si256(step, s)), 31);
                const __m256i limit = _mm256_xor_si256(_mm256_srai_epi32(step, 31), tmax);
                count = _mm256_sub_epi32(count, ov);
                _mm256_storeu_si256(p, _mm256_blendv_epi8(s, limit, ov));
            }
        }
        sat += hsum_epi32_avx2(count);
    }
    return sat;
}
FZ_SAVE_OR_NOT(FZ_AVX2, words_i32_avx2, int32_t)
#endif /* FZ_HAVE_AVX2 */

#if defined(FZ_HAVE_NEON)
static inline uint64_t hsum_u32_neon(uint32x4_t v)
{
    const uint64x2_t p = vpaddlq_u32(v);
    return vgetq_lane_u64(p, 0) + vgetq_lane_u64(p, 1);
}

/* int16: 8 lanes a vector; vtst turns a sign bit into a lane mask. */
static inline FZ_ALWAYS_INLINE uint64_t words_i16_neon_body(
    int16_t *t, uint64_t n_words, word_reader *r,
    uint64_t w, int16_t d, uint64_t flip, int16_t *sv, const int save)
{
    static const uint16_t LANES[16] = {0x0001, 0x0002, 0x0004, 0x0008, 0x0010, 0x0020,
                                       0x0040, 0x0080, 0x0100, 0x0200, 0x0400, 0x0800,
                                       0x1000, 0x2000, 0x4000, 0x8000};
    const uint16x8_t lo = vld1q_u16(LANES), hi = vld1q_u16(LANES + 8);
    const int16x8_t dpos = vdupq_n_s16(d), dneg = vdupq_n_s16((int16_t)-d);
    uint64_t sat = 0;
    for (uint64_t i = 0; i < n_words;) {
        const uint64_t end = block_end(i, n_words);
        uint16x8_t keep = vdupq_n_u16(0);
        sat += 64 * (end - i);
        for (; i < end; i++) {
            const uint64_t bits = reader_word(r, w + i) ^ flip;
            for (int c = 0; c < 8; c++) {
                const uint16x8_t b = vdupq_n_u16((uint16_t)(bits >> (16 * (c >> 1))));
                const uint16x8_t m = vtstq_u16(b, (c & 1) ? hi : lo);
                const int16x8_t step = vbslq_s16(m, dpos, dneg);
                int16_t *p = t + 64 * i + 8 * c;
                const int16x8_t x = vld1q_s16(p);
                if (save)
                    vst1q_s16(sv + 64 * i + 8 * c, x);
                const int16x8_t y = vqaddq_s16(x, step);
                keep = vsubq_u16(keep, vceqq_s16(y, vaddq_s16(x, step)));
                vst1q_s16(p, y);
            }
        }
        sat -= hsum_u32_neon(vpaddlq_u16(keep));
    }
    return sat;
}
FZ_SAVE_OR_NOT(FZ_NO_ATTR, words_i16_neon, int16_t)

/* int32: 4 lanes a vector, with NEON's saturating 32-bit add. */
static inline FZ_ALWAYS_INLINE uint64_t words_i32_neon_body(
    int32_t *t, uint64_t n_words, word_reader *r,
    uint64_t w, int32_t d, uint64_t flip, int32_t *sv, const int save)
{
    static const uint32_t LANES[4] = {0x1, 0x2, 0x4, 0x8};
    const uint32x4_t lane0 = vld1q_u32(LANES);
    const int32x4_t dpos = vdupq_n_s32(d), dneg = vdupq_n_s32(-d);
    uint64_t sat = 0;
    for (uint64_t i = 0; i < n_words;) {
        const uint64_t end = block_end(i, n_words);
        uint32x4_t keep = vdupq_n_u32(0);
        sat += 64 * (end - i);
        for (; i < end; i++) {
            const uint64_t bits = reader_word(r, w + i) ^ flip;
            for (int c = 0; c < 16; c++) {
                const uint32x4_t b = vdupq_n_u32((uint32_t)(bits >> (4 * c)) & 0xFu);
                const uint32x4_t m = vtstq_u32(b, lane0);
                const int32x4_t step = vbslq_s32(m, dpos, dneg);
                int32_t *p = t + 64 * i + 4 * c;
                const int32x4_t x = vld1q_s32(p);
                if (save)
                    vst1q_s32(sv + 64 * i + 4 * c, x);
                const int32x4_t y = vqaddq_s32(x, step);
                keep = vsubq_u32(keep, vceqq_s32(y, vaddq_s32(x, step)));
                vst1q_s32(p, y);
            }
        }
        sat -= hsum_u32_neon(keep);
    }
    return sat;
}
FZ_SAVE_OR_NOT(FZ_NO_ATTR, words_i32_neon, int32_t)
#endif /* FZ_HAVE_NEON */

int fz_isa_available(int isa)
{
    switch (isa) {
    case FZ_ISA_PORTABLE:
        return 1;
#if defined(FZ_HAVE_SSE2)
    case FZ_ISA_SSE2:
        return 1;
#endif
#if defined(FZ_HAVE_AVX2)
    case FZ_ISA_AVX2:
        return __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
#if defined(FZ_HAVE_NEON)
    case FZ_ISA_NEON:
        return 1;
#endif
    default:
        return 0;
    }
}

int fz_isa_best(void)
{
    if (fz_isa_available(FZ_ISA_AVX2))
        return FZ_ISA_AVX2;
    if (fz_isa_available(FZ_ISA_SSE2))
        return FZ_ISA_SSE2;
    if (fz_isa_available(FZ_ISA_NEON))
        return FZ_ISA_NEON;
    return FZ_ISA_PORTABLE;
}

/* The SIMD loop of `isa` for whole words with 0 <= d <= TMAX; returns 0 and
 * sets *done = 0 when `isa` has none here (the caller runs the portable loop). */
#define FZ_DEFINE_SIMD_WORDS(SUF, T)                                             \
    static uint64_t simd_words_##SUF(int isa, T *t, uint64_t n_words,            \
                                     word_reader *r, uint64_t w, T d,            \
                                     uint64_t flip, T *sv, int *done)            \
    {                                                                            \
        (void)t, (void)n_words, (void)r, (void)w, (void)d, (void)flip, (void)sv; \
        *done = 1;                                                               \
        switch (isa) {                                                           \
        FZ_CASE_AVX2(SUF)                                                        \
        FZ_CASE_SSE2(SUF)                                                        \
        FZ_CASE_NEON(SUF)                                                        \
        default:                                                                 \
            break;                                                               \
        }                                                                        \
        *done = 0;                                                               \
        return 0;                                                                \
    }

#if defined(FZ_HAVE_AVX2)
#define FZ_CASE_AVX2(SUF) \
    case FZ_ISA_AVX2: return words_##SUF##_avx2(t, n_words, r, w, d, flip, sv);
#else
#define FZ_CASE_AVX2(SUF)
#endif
#if defined(FZ_HAVE_SSE2)
#define FZ_CASE_SSE2(SUF) \
    case FZ_ISA_SSE2: return words_##SUF##_sse2(t, n_words, r, w, d, flip, sv);
#else
#define FZ_CASE_SSE2(SUF)
#endif
#if defined(FZ_HAVE_NEON)
#define FZ_CASE_NEON(SUF) \
    case FZ_ISA_NEON: return words_##SUF##_neon(t, n_words, r, w, d, flip, sv);
#else
#define FZ_CASE_NEON(SUF)
#endif

FZ_DEFINE_SIMD_WORDS(i16, int16_t)
FZ_DEFINE_SIMD_WORDS(i32, int32_t)

/* ---- signed add over packed bits, one definition per storage type ----
 *
 * apply_word_* is the general path: any count <= 64, any delta, saturating in
 * int64 (any int32 delta is safe). apply64_* is the fast path for a whole word with
 * 0 <= d <= TMAX: it stays in the storage type's lanes, with the saturation
 * limits precomputed and each sign bit turned into a lane mask by AND and
 * compare (no per-lane shifts), which compilers vectorise with SSE2/NEON.
 */
static const uint16_t LANE_BIT[16] = {
    0x0001, 0x0002, 0x0004, 0x0008, 0x0010, 0x0020, 0x0040, 0x0080,
    0x0100, 0x0200, 0x0400, 0x0800, 0x1000, 0x2000, 0x4000, 0x8000};

/* Also compile an AVX2 clone of the whole-word loops, chosen at load time.
 * target_clones needs the toolchain's and the C library's ifunc support
 * (glibc has it, musl does not), which compiler macros cannot tell, so the
 * build defines FEDZO_HAVE_TARGET_CLONES only after it has compiled and linked
 * a test program that uses the attribute (csrc/build_kernel.py). The clones
 * run the same integer code, so results are bit-identical either way. */
#if defined(FEDZO_HAVE_TARGET_CLONES)
#define FZ_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FZ_CLONES
#endif

#define FZ_DEFINE_SIGNED_ADD(SUF, T, WIDE, TMIN, TMAX)                          \
    static inline uint64_t apply_word_##SUF(T *t, uint64_t bits, int count,     \
                                            WIDE delta)                         \
    {                                                                           \
        uint64_t sat = 0;                                                       \
        for (int i = 0; i < count; i++) {                                       \
            WIDE neg = (WIDE)((bits >> i) & 1u) - 1; /* 0 or -1 */              \
            WIDE v = (WIDE)t[i] + ((delta ^ neg) - neg);                        \
            sat += (uint64_t)(v > (WIDE)(TMAX)) + (uint64_t)(v < (WIDE)(TMIN)); \
            v = v > (WIDE)(TMAX) ? (WIDE)(TMAX) : v;                            \
            v = v < (WIDE)(TMIN) ? (WIDE)(TMIN) : v;                            \
            t[i] = (T)v;                                                        \
        }                                                                       \
        return sat;                                                             \
    }                                                                           \
                                                                                \
    /* t[i] += bit ? d : -d for 64 entries; needs 0 <= d <= TMAX. When SAVE,  \
     * the old values go to sv[i] in the same pass (perturb's exact restore). */ \
    static inline uint64_t apply64_##SUF(T *restrict t, uint64_t bits, T d,     \
                                         T *restrict sv, const int SAVE)        \
    {                                                                           \
        const T hi = (T)((TMAX) - d), lo = (T)((TMIN) + d);                     \
        uint64_t sat = 0;                                                       \
        for (int c = 0; c < 4; c++) {                                           \
            const uint16_t chunk = (uint16_t)(bits >> (16 * c));                \
            T *tc = t + 16 * c;                                                 \
            T *svc = sv + 16 * c;                                               \
            T s = 0;                                                            \
            for (int i = 0; i < 16; i++) {                                      \
                const T x = tc[i];                                              \
                if (SAVE)                                                       \
                    svc[i] = x;                                                 \
                const T plus = (T) - (T)((chunk & LANE_BIT[i]) != 0);           \
                const T up = x > hi ? (T)(TMAX) : (T)(x + d);                   \
                const T down = x < lo ? (T)(TMIN) : (T)(x - d);                 \
                const T sat_up = (T) - (T)(x > hi), sat_down = (T) - (T)(x < lo); \
                tc[i] = (T)((up & plus) | (down & ~plus));                      \
                s = (T)(s - ((sat_up & plus) | (sat_down & ~plus)));            \
            }                                                                   \
            sat += (uint64_t)s;                                                 \
        }                                                                       \
        return sat;                                                             \
    }                                                                           \
                                                                                \
    /* All whole words of a slice; w is the first word's index. sv, if not    \
     * NULL, receives the old values. */                                        \
    FZ_CLONES static uint64_t apply_words_##SUF(T *t, uint64_t n_words,        \
                                                word_reader *r, uint64_t w,     \
                                                int32_t delta, T *sv, int isa)  \
    {                                                                           \
        uint64_t sat = 0;                                                       \
        if (delta >= -(int32_t)(TMAX) && delta <= (int32_t)(TMAX)) {           \
            /* A negative delta is a positive one with every sign flipped. */  \
            const uint64_t flip = delta < 0 ? ~UINT64_C(0) : 0;                 \
            const T d = (T)(delta < 0 ? -delta : delta);                        \
            int done = 0;                                                       \
            if (isa != FZ_ISA_PORTABLE) {                                       \
                sat = simd_words_##SUF(isa, t, n_words, r, w, d, flip, sv,      \
                                       &done);                                  \
                if (done)                                                       \
                    return sat;                                                 \
            }                                                                   \
            if (sv != NULL) {                                                   \
                for (uint64_t i = 0; i < n_words; i++)                          \
                    sat += apply64_##SUF(t + 64 * i, reader_word(r, w + i) ^ flip, \
                                         d, sv + 64 * i, 1);                    \
            } else {                                                            \
                for (uint64_t i = 0; i < n_words; i++)                          \
                    sat += apply64_##SUF(t + 64 * i, reader_word(r, w + i) ^ flip, \
                                         d, t, 0);                              \
            }                                                                   \
        } else {                                                                \
            if (sv != NULL)                                                     \
                memcpy(sv, t, (size_t)(64 * n_words) * sizeof(T));             \
            for (uint64_t i = 0; i < n_words; i++)                              \
                sat += apply_word_##SUF(t + 64 * i, reader_word(r, w + i), 64,  \
                                        (WIDE)delta);                           \
        }                                                                       \
        return sat;                                                             \
    }                                                                           \
                                                                                \
    static uint64_t signed_add_##SUF(T *theta, uint64_t n, uint64_t seed,      \
                                     uint64_t stream, uint64_t round,          \
                                     uint64_t bit_offset, int32_t delta,       \
                                     T *saved, int isa)                        \
    {                                                                           \
        word_reader r;                                                          \
        uint64_t sat = 0, j = 0;                                                \
        reader_init(&r, seed, stream, round);                                   \
        /* Leading part word: the slice may start mid-word. */                  \
        unsigned shift = (unsigned)(bit_offset & 63u);                          \
        uint64_t w = bit_offset >> 6;                                           \
        if (shift != 0 && n > 0) {                                              \
            uint64_t take = 64u - shift;                                        \
            if (take > n)                                                       \
                take = n;                                                       \
            if (saved != NULL)                                                  \
                memcpy(saved, theta, (size_t)take * sizeof(T));                 \
            sat += apply_word_##SUF(theta, reader_word(&r, w) >> shift,        \
                                    (int)take, (WIDE)delta);                    \
            j = take;                                                           \
            w++;                                                                \
        }                                                                       \
        if (n - j >= 64) {                                                      \
            uint64_t whole = (n - j) / 64;                                      \
            sat += apply_words_##SUF(theta + j, whole, &r, w, delta,            \
                                     saved == NULL ? NULL : saved + j,          \
                                     fz_isa_available(isa) ? isa                \
                                                           : FZ_ISA_PORTABLE);  \
            j += 64 * whole;                                                    \
            w += whole;                                                         \
        }                                                                       \
        if (j < n && saved != NULL)                                             \
            memcpy(saved + j, theta + j, (size_t)(n - j) * sizeof(T));          \
        if (j < n)                                                              \
            sat += apply_word_##SUF(theta + j, reader_word(&r, w),              \
                                    (int)(n - j), (WIDE)delta);                 \
        return sat;                                                             \
    }                                                                           \
                                                                                \
    uint64_t fz_signed_add_##SUF(T *theta, uint64_t n, uint64_t seed,          \
                                 uint64_t stream, uint64_t round,              \
                                 uint64_t bit_offset, int32_t delta, T *saved, \
                                 int isa)                                      \
    {                                                                           \
        return signed_add_##SUF(theta, n, seed, stream, round, bit_offset,     \
                                delta, saved, isa);                             \
    }                                                                           \
                                                                                \
    uint64_t fz_perturb_##SUF(T *theta, uint64_t n, uint64_t seed,             \
                              uint64_t stream, uint64_t round,                 \
                              uint64_t bit_offset, int32_t delta, T *saved)    \
    {                                                                           \
        return signed_add_##SUF(theta, n, seed, stream, round, bit_offset,     \
                                delta, saved, fz_isa_best());                   \
    }                                                                           \
                                                                                \
    void fz_restore_##SUF(T *theta, uint64_t n, const T *saved)                \
    {                                                                           \
        memcpy(theta, saved, (size_t)n * sizeof(T));                            \
    }                                                                           \
                                                                                \
    uint64_t fz_update_##SUF(T *theta, uint64_t n, uint64_t seed,              \
                             uint64_t stream, uint64_t round,                  \
                             uint64_t bit_offset, int32_t delta)               \
    {                                                                           \
        return signed_add_##SUF(theta, n, seed, stream, round, bit_offset,     \
                                delta, NULL, fz_isa_best());                    \
    }                                                                           \
                                                                                \
    uint64_t fz_quantize_##SUF(const float *x, uint64_t n, int32_t frac_bits,  \
                               T *q)                                            \
    {                                                                           \
        double scale = ldexp(1.0, frac_bits);                                   \
        uint64_t sat = 0;                                                       \
        for (uint64_t j = 0; j < n; j++) {                                      \
            /* float32 * 2^f is exact in double; rint rounds ties to even. */   \
            double v = nearbyint((double)x[j] * scale);                         \
            if (v > (double)(TMAX)) {                                           \
                v = (double)(TMAX);                                             \
                sat++;                                                          \
            } else if (v < (double)(TMIN)) {                                    \
                v = (double)(TMIN);                                             \
                sat++;                                                          \
            }                                                                   \
            q[j] = (T)v;                                                        \
        }                                                                       \
        return sat;                                                             \
    }                                                                           \
                                                                                \
    void fz_dequantize_##SUF(const T *q, uint64_t n, int32_t frac_bits,        \
                             float *x)                                          \
    {                                                                           \
        float scale = (float)ldexp(1.0, -frac_bits);                            \
        for (uint64_t j = 0; j < n; j++)                                        \
            x[j] = (float)q[j] * scale;                                         \
    }

FZ_DEFINE_SIGNED_ADD(i16, int16_t, int64_t, INT16_MIN, INT16_MAX)
FZ_DEFINE_SIGNED_ADD(i32, int32_t, int64_t, INT32_MIN, INT32_MAX)
