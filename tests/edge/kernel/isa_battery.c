/* A known-answer battery for the kernel's SIMD paths, built natively and with
 * cross compilers and run under qemu-user by tests/edge/kernel/test_build.py.
 *
 * For each case (store type, length, bit offset, misalignment, step, values at
 * or near the limits) it runs perturb on the portable path and on every other
 * path this build and CPU have (SSE2/AVX2 on x86, NEON on ARM), checks that
 * they agree bit for bit (theta, the saved copy, the saturation count), and
 * prints one line per case: a hash of the result and the count. The hash mixes
 * element values, not bytes, so the lines are the same on any byte order and
 * the test compares them across machines. Exit status 1 on any disagreement;
 * stderr names the paths checked. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedzo_kernel.h"

static uint64_t next(uint64_t *s)
{
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *s >> 17;
}

static uint64_t mix(uint64_t h, int64_t v)
{
    h ^= (uint64_t)v;
    h *= UINT64_C(0x100000001B3);
    return h ^ (h >> 29);
}

#define MAX_N (64 * 2048 * 2 + 77)

static const int ISAS[] = {FZ_ISA_SSE2, FZ_ISA_AVX2, FZ_ISA_NEON};
static const char *NAMES[] = {"sse2", "avx2", "neon"};

/* One case for store type T: `buf` holds four regions of MAX_N + 3 entries
 * (the values, their copy, the portable path's saved copy, another path's
 * result). Values are at or within SPREAD of a limit, or (one in four)
 * anywhere. Prints the case's line; returns 1 if a path disagrees. */
#define FZ_DEFINE_CASE(SUF, T, TMIN, TMAX, SPREAD)                                  \
    static int case_##SUF(T *buf, uint64_t *rng, uint64_t n, uint64_t off,          \
                          unsigned misalign, uint64_t stream, int32_t step)          \
    {                                                                                \
        T *t = buf + misalign, *orig = buf + (MAX_N + 3) + misalign;                 \
        T *saved = buf + 2 * (MAX_N + 3) + misalign;                                 \
        T *u = buf + 3 * (MAX_N + 3) + (misalign + 1) % 4;                           \
        uint64_t h = UINT64_C(14695981039346656037), sat;                            \
        int bad = 0;                                                                 \
        for (uint64_t j = 0; j < n; j++) {                                           \
            const uint64_t x = next(rng);                                            \
            const int64_t near = (int64_t)((x >> 2) % (SPREAD));                     \
            t[j] = (x & 3) == 0 ? (T)(int64_t)(x >> 2)                                \
                   : (x & 1)    ? (T)((TMAX) - near) : (T)((TMIN) + near);           \
        }                                                                            \
        memcpy(orig, t, n * sizeof(T));                                              \
        sat = fz_signed_add_##SUF(t, n, 7, stream, 99, off, step, saved,             \
                                  FZ_ISA_PORTABLE);                                  \
        bad |= memcmp(saved, orig, n * sizeof(T)) != 0;                              \
        for (uint64_t j = 0; j < n; j++)                                             \
            h = mix(h, t[j]);                                                        \
        for (int k = 0; k < 3; k++) {                                                \
            if (!fz_isa_available(ISAS[k]))                                          \
                continue;                                                            \
            memcpy(u, orig, n * sizeof(T));                                          \
            /* The saved copy goes where the portable one was: compared below. */   \
            memset(saved, 0, n * sizeof(T));                                         \
            if (fz_signed_add_##SUF(u, n, 7, stream, 99, off, step, saved, ISAS[k])  \
                    != sat || memcmp(u, t, n * sizeof(T)) != 0                       \
                || memcmp(saved, orig, n * sizeof(T)) != 0) {                        \
                fprintf(stderr, #SUF " n=%llu off=%llu step=%ld: %s differs\n",      \
                        (unsigned long long)n, (unsigned long long)off, (long)step,  \
                        NAMES[k]);                                                   \
                bad = 1;                                                             \
            }                                                                        \
        }                                                                            \
        printf(#SUF " n=%llu off=%llu step=%ld sat=%llu hash=%016llx\n",             \
               (unsigned long long)n, (unsigned long long)off, (long)step,           \
               (unsigned long long)sat, (unsigned long long)h);                      \
        return bad;                                                                  \
    }

FZ_DEFINE_CASE(i16, int16_t, INT16_MIN, INT16_MAX, 50)
FZ_DEFINE_CASE(i32, int32_t, INT32_MIN, INT32_MAX, 70000)

int main(void)
{
    static const uint64_t lengths[] = {0, 1, 17, 63, 64, 65, 127, 1000, 4099, MAX_N};
    static const uint64_t offsets[] = {0, 5, 64, 1001};
    static const int32_t steps16[] = {0, 1, -41, 300, 32767, -32767, 40000, -2147483647};
    static const int32_t steps32[] = {0, 1, -41, 65537, 2147483647, -2147483647, 1 << 30};
    int16_t *b16 = malloc((MAX_N + 3) * sizeof(int16_t) * 4);
    int32_t *b32 = malloc((MAX_N + 3) * sizeof(int32_t) * 4);
    uint64_t rng = 12345;
    int bad = 0;
    if (b16 == NULL || b32 == NULL)
        return 2;
    fprintf(stderr, "paths: portable");
    for (int k = 0; k < 3; k++)
        if (fz_isa_available(ISAS[k]))
            fprintf(stderr, " %s", NAMES[k]);
    fprintf(stderr, "\n");
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++)
        for (size_t oi = 0; oi < sizeof offsets / sizeof offsets[0]; oi++) {
            const unsigned misalign = (unsigned)((li + oi) % 4);
            for (size_t si = 0; si < sizeof steps16 / sizeof steps16[0]; si++)
                bad |= case_i16(b16, &rng, lengths[li], offsets[oi], misalign, si, steps16[si]);
            for (size_t si = 0; si < sizeof steps32 / sizeof steps32[0]; si++)
                bad |= case_i32(b32, &rng, lengths[li], offsets[oi], misalign, si, steps32[si]);
        }
    free(b16);
    free(b32);
    return bad;
}
