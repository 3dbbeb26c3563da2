/* fedzo kernel: the policy's forward pass (see fz_mlp_act in fedzo_kernel.h).
 *
 * Determinism across platforms is the point of this file, speed the second:
 * every value is produced by IEEE-754 +, -, *, / and conversions in an order
 * written out here, with no libm call (libm's tanh differs between C
 * libraries) and no fused multiply-add (the build passes -ffp-contract=off,
 * and every product is its own statement besides). A platform that evaluates
 * float arithmetic in wider registers (FLT_EVAL_METHOD != 0: x87 without
 * SSE2) would round differently, so there fz_mlp_available() says 0 and fedzo
 * uses the NumPy twin of this code (fedzo.edge.policy.forward), which performs
 * the same operations in the same order and gives the same bits.
 *
 * Dot products: 8 partial sums, lane k adding the products of inputs
 * k, k + 8, k + 16, ... in turn (starting from +0; a lane with no product
 * in the last, partial block of 8 adds +0 there, which changes no sum that
 * starts at +0, since such a sum is never -0), then combined as
 * ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)), then the bias added.
 * The 8 lanes are independent, so the compiler may run them as one vector
 * without changing any rounding.
 *
 * tanh, in double, rounded once to float at the end: for a = min(|x|, 20),
 *   t = 1 - 2 / (e + 1), e = exp(2a) = 2^k p(r), k = floor(2a log2(e) + 1/2),
 *   r = 2a - k ln 2, p the Taylor polynomial of exp to r^9 (|r| <= 0.35:
 *   relative error < 1e-11), 2^k made from its bits; the sign of x is put
 *   back; NaN stays NaN. Its absolute error is below 1e-11 everywhere (at 20
 *   and beyond it is 1 - 2/(e + 1) = 1 within 5e-18): far below the float32
 *   rounding that follows, so the actions are tanh's to the last bit or one
 *   bit off. Near 0 the relative error grows (1 - 2/(e + 1) cancels), which a
 *   policy, adding these values to others in float32, cannot see.
 */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "fedzo_kernel.h"

#define FZ_LANES 8
#define FZ_TANH_LARGE 20.0
#define FZ_LOG2E 1.4426950408889634
#define FZ_LN2 0.6931471805599453

int fz_mlp_available(void)
{
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    return 1;
#else
    return 0;
#endif
}

/* 2^k for 0 <= k <= 60, built from its bits (exact). */
static inline double pow2(int k)
{
    uint64_t bits = (uint64_t)(k + 1023) << 52;
    double out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

/* Written without early returns, so that the compiler can run it on several
 * neurons at once; NaN is carried through as 20 and put back at the end. */
static inline double tanh_inline(double x)
{
    double a = x < 0.0 ? -x : x;
    a = a <= FZ_TANH_LARGE ? a : FZ_TANH_LARGE;
    double y = a + a;
    double kf = y * FZ_LOG2E;
    int k = (int)(kf + 0.5);
    double kd = (double)k;
    double r = kd * FZ_LN2;
    r = y - r;
    double p = 2.7557319223985893e-06;
    p = p * r; p = p + 2.48015873015873e-05;
    p = p * r; p = p + 0.0001984126984126984;
    p = p * r; p = p + 0.001388888888888889;
    p = p * r; p = p + 0.008333333333333333;
    p = p * r; p = p + 0.041666666666666664;
    p = p * r; p = p + 0.16666666666666666;
    p = p * r; p = p + 0.5;
    p = p * r; p = p + 1.0;
    p = p * r; p = p + 1.0;
    double e = p * pow2(k);
    double t = e + 1.0;
    t = 2.0 / t;
    t = 1.0 - t;
    t = x < 0.0 ? -t : t;
    return x != x ? x : t;
}

double fz_tanh(double x)
{
    return tanh_inline(x);
}

/* out[j] = tanh(sum_i w[j][i] x[i] + b[j]), in float (see the file comment):
 * all the sums first, then all the tanh, whose long chains of dependent
 * operations then overlap from one neuron to the next. */
static void layer(const float *w, const float *b, const float *x, uint32_t n_in, uint32_t n_out, float *out)
{
    uint32_t whole = n_in - n_in % FZ_LANES;
    for (uint32_t j = 0; j < n_out; j++) {
        const float *row = w + (size_t)j * n_in;
        /* eight named sums (registers, where an array would live in memory) */
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s4 = 0.0f, s5 = 0.0f, s6 = 0.0f, s7 = 0.0f;
        for (uint32_t i = 0; i < whole; i += FZ_LANES) {
            float p0 = row[i] * x[i], p1 = row[i + 1] * x[i + 1];
            float p2 = row[i + 2] * x[i + 2], p3 = row[i + 3] * x[i + 3];
            float p4 = row[i + 4] * x[i + 4], p5 = row[i + 5] * x[i + 5];
            float p6 = row[i + 6] * x[i + 6], p7 = row[i + 7] * x[i + 7];
            s0 = s0 + p0; s1 = s1 + p1; s2 = s2 + p2; s3 = s3 + p3;
            s4 = s4 + p4; s5 = s5 + p5; s6 = s6 + p6; s7 = s7 + p7;
        }
        float tail[FZ_LANES] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        for (uint32_t i = whole; i < n_in; i++) {
            float p = row[i] * x[i];
            tail[i - whole] = p;
        }
        /* adding +0 to a lane with no product there changes nothing (a sum that
         * starts at +0 is never -0), so the tail adds all eight */
        s0 = s0 + tail[0]; s1 = s1 + tail[1]; s2 = s2 + tail[2]; s3 = s3 + tail[3];
        s4 = s4 + tail[4]; s5 = s5 + tail[5]; s6 = s6 + tail[6]; s7 = s7 + tail[7];
        float h0 = s0 + s4, h1 = s1 + s5, h2 = s2 + s6, h3 = s3 + s7;
        float q0 = h0 + h2, q1 = h1 + h3;
        float sum = q0 + q1;
        out[j] = sum + b[j];
    }
    for (uint32_t j = 0; j < n_out; j++)
        out[j] = (float)tanh_inline((double)out[j]);
}

void fz_mlp_act(const fz_mlp *net, const double *obs, double *action)
{
    const uint32_t *sizes = net->sizes;
    float *x = net->work, *y = net->work + net->max_width;
    for (uint32_t i = 0; i < sizes[0]; i++) {
        double diff = obs[i] - net->obs_mean[i];
        float v = (float)diff;
        v = v * net->obs_scale[i];
        if (v > net->obs_clip)          /* comparisons keep NaN, as NumPy's minimum/maximum */
            v = net->obs_clip;
        if (v < -net->obs_clip)
            v = -net->obs_clip;
        x[i] = v;
    }
    const float *theta = net->theta;
    for (uint32_t l = 0; l < net->n_layers; l++) {
        uint32_t n_in = sizes[l], n_out = sizes[l + 1];
        const float *w = theta, *b = theta + (size_t)n_in * n_out;
        layer(w, b, x, n_in, n_out, y);
        theta = b + n_out;
        float *t = x; x = y; y = t;
    }
    uint32_t n_act = sizes[net->n_layers];
    for (uint32_t j = 0; j < n_act; j++) {
        float v = x[j];
        if (net->act_half != NULL)
            v = v * net->act_half[j];
        double a = (double)v;
        if (net->act_mid != NULL)
            a = a + net->act_mid[j];
        action[j] = a;
    }
}

double fz_mlp_observe_act(const fz_mlp *net, const double *qpos, uint32_t n_pos, const double *qvel,
                          uint32_t n_vel, double vel_clip, double *obs, double *action, double *ctrl)
{
    for (uint32_t i = 0; i < n_pos; i++)
        obs[i] = qpos[i];
    for (uint32_t i = 0; i < n_vel; i++) {
        double v = qvel[i];
        if (vel_clip >= 0.0) {          /* NumPy's minimum then maximum: NaN stays NaN */
            if (v > vel_clip)
                v = vel_clip;
            if (v < -vel_clip)
                v = -vel_clip;
        }
        obs[n_pos + i] = v;
    }
    fz_mlp_act(net, obs, action);
    uint32_t n_act = net->sizes[net->n_layers];
    double total = 0.0;
    for (uint32_t j = 0; j < n_act; j++) {
        double a = action[j];
        ctrl[j] = a;
        double square = a * a;
        total = total + square;
    }
    return total;
}
