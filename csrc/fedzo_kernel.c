/* fedzo kernel: see fedzo_kernel.h for the contract.
 *
 * Plain C99 (128-bit multiply used only where the compiler offers it, with a
 * portable fallback), fixed-width integer types, no allocation, no mutable
 * state. The hot loops work on one 64-bit word of sign bits at a time and are
 * written so that the compiler can vectorise them without intrinsics.
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

static inline uint64_t mulhilo64(uint64_t a, uint64_t b, uint64_t *hi)
{
#if defined(__SIZEOF_INT128__)
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
                                                int32_t delta, T *sv)           \
    {                                                                           \
        uint64_t sat = 0;                                                       \
        if (delta >= -(int32_t)(TMAX) && delta <= (int32_t)(TMAX)) {           \
            /* A negative delta is a positive one with every sign flipped. */  \
            const uint64_t flip = delta < 0 ? ~UINT64_C(0) : 0;                 \
            const T d = (T)(delta < 0 ? -delta : delta);                        \
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
                                     T *saved)                                 \
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
                                     saved == NULL ? NULL : saved + j);         \
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
    uint64_t fz_perturb_##SUF(T *theta, uint64_t n, uint64_t seed,             \
                              uint64_t stream, uint64_t round,                 \
                              uint64_t bit_offset, int32_t delta, T *saved)    \
    {                                                                           \
        return signed_add_##SUF(theta, n, seed, stream, round, bit_offset,     \
                                delta, saved);                                  \
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
                                delta, NULL);                                   \
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
