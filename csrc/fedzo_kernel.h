/* fedzo kernel: shared-seed packed-bit perturbations on a fixed-point store.
 *
 * The header stands on its own (include guard, <stdint.h>), and it is also
 * the cffi cdef: csrc/build_kernel.py hands cffi only the lines between the
 * "cdef begin" and "cdef end" markers below, because cffi's parser cannot
 * read preprocessor lines. Keep every declaration cffi must see between the
 * markers and every `#` line outside them.
 *
 * Stream (DESIGN.md §4): for key (seed, stream) and round t, 64-bit word w of the
 * stream is word (w mod 4) of Philox4x64-10 applied to the counter
 * [w/4 + 1, t, 0, 0] (numpy.random.Philox increments before it encrypts).
 * Sign of element i of a vector is bit (i mod 64) of word i/64: 1 -> +1, 0 -> -1.
 *
 * Every operation on the store takes `bit_offset`: element j of the slice uses
 * sign bit (bit_offset + j), so a slice may start anywhere inside a word.
 * Arithmetic saturates at the storage type's limits and returns how many
 * entries saturated. Nothing allocates and nothing is global.
 */
#ifndef FEDZO_KERNEL_H
#define FEDZO_KERNEL_H

#include <stdint.h>

/* cdef begin */

/* uint64 words [first_word, first_word + n_words) of the stream. */
void fz_stream_words(uint64_t seed, uint64_t stream, uint64_t round,
                     uint64_t first_word, uint64_t n_words, uint64_t *out);

/* theta[j] = sat(theta[j] + s_j * delta) for j < n. If `saved` is not NULL the
 * original values are copied there first (so fz_restore_* is exact even where
 * the perturbation saturated). Returns the number of saturated entries. */
uint64_t fz_perturb_i16(int16_t *theta, uint64_t n, uint64_t seed,
                        uint64_t stream, uint64_t round, uint64_t bit_offset,
                        int32_t delta, int16_t *saved);
uint64_t fz_perturb_i32(int32_t *theta, uint64_t n, uint64_t seed,
                        uint64_t stream, uint64_t round, uint64_t bit_offset,
                        int32_t delta, int32_t *saved);

/* Instruction sets the whole-word loops of perturb and update can use. They
 * give bit-identical results (tests/edge/kernel); only the speed differs. */
enum {
    FZ_ISA_PORTABLE = 0, /* plain C, left to the compiler's auto-vectoriser */
    FZ_ISA_SSE2 = 1,     /* x86 (baseline on x86-64): 128-bit saturating adds */
    FZ_ISA_AVX2 = 2,     /* x86 with AVX2, chosen at run time: 256-bit */
    FZ_ISA_NEON = 3      /* aarch64, and armv7 built with NEON: 128-bit */
};

/* 1 if `isa` is compiled into this build and the CPU running it has it. */
int fz_isa_available(int isa);
/* The fastest available instruction set (what fz_perturb_* and fz_update_* use). */
int fz_isa_best(void);

/* theta[j] = sat(theta[j] + s_j * delta), saving the old values in `saved`
 * unless it is NULL, using instruction set `isa`; an unavailable `isa` runs
 * the portable code. fz_perturb_* and fz_update_* are this with fz_isa_best(). */
uint64_t fz_signed_add_i16(int16_t *theta, uint64_t n, uint64_t seed,
                           uint64_t stream, uint64_t round, uint64_t bit_offset,
                           int32_t delta, int16_t *saved, int isa);
uint64_t fz_signed_add_i32(int32_t *theta, uint64_t n, uint64_t seed,
                           uint64_t stream, uint64_t round, uint64_t bit_offset,
                           int32_t delta, int32_t *saved, int isa);

/* Undo a perturbation: theta[j] = saved[j] (exact by construction). */
void fz_restore_i16(int16_t *theta, uint64_t n, const int16_t *saved);
void fz_restore_i32(int32_t *theta, uint64_t n, const int32_t *saved);

/* The update theta += alpha_lsb * vote * v: fz_perturb_* with no copy. */
uint64_t fz_update_i16(int16_t *theta, uint64_t n, uint64_t seed,
                       uint64_t stream, uint64_t round, uint64_t bit_offset,
                       int32_t delta);
uint64_t fz_update_i32(int32_t *theta, uint64_t n, uint64_t seed,
                       uint64_t stream, uint64_t round, uint64_t bit_offset,
                       int32_t delta);

/* q[j] = sat(rint(x[j] * 2^frac_bits)), ties to even; returns saturations.
 * NaN inputs are the caller's to reject. */
uint64_t fz_quantize_i16(const float *x, uint64_t n, int32_t frac_bits, int16_t *q);
uint64_t fz_quantize_i32(const float *x, uint64_t n, int32_t frac_bits, int32_t *q);

/* x[j] = q[j] * 2^-frac_bits as float32. */
void fz_dequantize_i16(const int16_t *q, uint64_t n, int32_t frac_bits, float *x);
void fz_dequantize_i32(const int32_t *q, uint64_t n, int32_t frac_bits, float *x);

/* ---- The policy's forward pass (csrc/fedzo_forward.c) ----
 *
 * A tanh MLP obs -> action with fixed summation order and a tanh made of
 * IEEE arithmetic only, so its bits are the same on every platform and equal
 * those of its NumPy twin (fedzo.edge.policy.forward). The caller fills the
 * struct once; every pointer stays valid while it is used. */
typedef struct {
    uint32_t n_layers;        /* weight layers: sizes has n_layers + 1 entries */
    uint32_t max_width;       /* the largest entry of sizes; work holds 2 x this */
    const uint32_t *sizes;    /* obs_dim, hidden widths..., act_dim */
    const float *theta;       /* per layer: W (outputs x inputs, row-major), then b */
    const double *obs_mean;   /* float32 values held in double */
    const float *obs_scale;   /* 1 / std */
    float obs_clip;           /* normalised observations are clipped to +-this */
    const float *act_half;    /* action = tanh(...) * half + mid; NULL: half = 1 */
    const double *act_mid;    /* NULL: mid = 0 */
    float *work;
} fz_mlp;

/* 1 if this build's float arithmetic is plain IEEE single/double (FLT_EVAL_METHOD
 * 0), the condition for fz_mlp_act's bits; 0 and fedzo uses NumPy's twin. */
int fz_mlp_available(void);
/* action[0 .. act_dim) for obs[0 .. obs_dim). */
void fz_mlp_act(const fz_mlp *net, const double *obs, double *action);
/* The tanh fz_mlp_act uses, in double (the layers round it to float). */
double fz_tanh(double x);
/* One step of a locomotion task's loop before the physics (fedzo.edge.tasks.base):
 * obs = (qpos[0 .. n_pos), qvel[0 .. n_vel) clipped to +-vel_clip unless
 * vel_clip < 0), action = fz_mlp_act(obs), ctrl = action; returns the sum of
 * the squared actions, added left to right in double from 0. */
double fz_mlp_observe_act(const fz_mlp *net, const double *qpos, uint32_t n_pos, const double *qvel,
                          uint32_t n_vel, double vel_clip, double *obs, double *action, double *ctrl);

/* cdef end */

#endif /* FEDZO_KERNEL_H */
