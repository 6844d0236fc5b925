/* Fused CUBA neuron dynamics for CPU training: slayer's arithmetic, one pass over T.
 *
 * slayer (lava-dl 0.6.0, neuron/cuba.py) runs a CUBA neuron as two leaky integrators and a spike
 * function, each a loop of whole-tensor torch ops over T. These kernels do the same integer and
 * float32 operations in the same order, per neuron, in one pass (OpenMP over chunks of neurons):
 *
 *   forward   cur = rstz(cur * (4096 - cd), 12) + (int64)(4096.f * x[t])      current, no reset
 *             c   = (float)cur / 4096.f
 *             vol = rstz(vol * (4096 - vd), 12) + (int64)(4096.f * c)        voltage
 *             v   = (float)vol / 4096.f
 *             s   = v >= thr_f                                   slayer's Spike (float compare)
 *             vol = 0 if (float)vol >= thr4096_f                 slayer's reset (int vs float)
 *   backward  g_v[t] = g_s[t] * (a * exp(-|v - thr_f| / tau)) + g_vout[t]    surrogate (+ readout)
 *             g_c[t] = dv * g_c[t+1] + g_v[t]     (leaky integrators ignore the reset, as slayer)
 *             g_x[t] = dc * g_x[t+1] + g_c[t]
 * rstz is slayer's right_shift_to_zero. Compile with -ffp-contract=off so that no multiply-add is
 * fused: the forward is bit-identical to slayer; the backward differs only where this file's exp
 * and torch's round differently (<= 2 ulp of the surrogate).
 *
 * Layout: nb blocks of J neurons over T steps, element (b, t, j) at b * T * J + t * st + j * sj:
 * tna's time-major training layout (N, T, features) is st = J, sj = 1; slayer's (N, ..., T) is
 * nb = 1, st = 1, sj = T. The integer state is held in doubles: every value is an integer below
 * 2^53, so rstz is trunc(x / 4096) exactly, and the loop over j vectorises (AVX2 has no 64-bit
 * integer multiply). Build with -fno-trapping-math, which lets gcc vectorise trunc; it changes
 * no value.
 */
#include <math.h>
#include <stdint.h>

#define CHUNK 64   /* neurons per inner loop: the state of a chunk stays in L1 */

/* exp(x) for x <= 0 in float, within 2 ulp of libm's (Cephes' expf: Cody-Waite reduction and a
 * degree-6 polynomial); unlike libm's expf, gcc vectorises it. Below -87.33 it returns 0 (libm: a
 * number under 1.2e-38). */
static inline float exp_neg(float x) {
    const float xc = x < -87.33f ? -87.33f : x;
    const float n = rintf(xc * 1.44269504088896341f);
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = { .i = ((int32_t)n + 127) << 23 };
    return x < -87.33f ? 0.0f : y * scale.f;
}

void cuba_forward(const float *x, float *spikes, float *voltage, int64_t nb, int64_t T,
                  int64_t J, int64_t st, int64_t sj, int64_t cd, int64_t vd, float thr_f,
                  float thr4096_f) {
    const double ci = (double)(4096 - cd), vi = (double)(4096 - vd);
    const int64_t chunks = (J + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static)
    for (int64_t bc = 0; bc < nb * chunks; bc++) {
        const int64_t b = bc / chunks, j0 = (bc % chunks) * CHUNK;
        const int64_t m = J - j0 < CHUNK ? J - j0 : CHUNK;
        double cur[CHUNK], vol[CHUNK];
        for (int64_t j = 0; j < m; j++) cur[j] = vol[j] = 0.0;
        for (int64_t t = 0; t < T; t++) {
            const int64_t o = b * T * J + t * st + j0 * sj;
            const float *xt = x + o;
            float *s = spikes + o, *vt = voltage + o;
            #pragma omp simd
            for (int64_t j = 0; j < m; j++) {
                double c = trunc(cur[j] * ci / 4096.0) + trunc((double)(4096.0f * xt[j * sj]));
                cur[j] = c;
                double vnew = trunc(vol[j] * vi / 4096.0) +
                              trunc((double)(4096.0f * ((float)c / 4096.0f)));
                float v = (float)vnew / 4096.0f;
                s[j * sj] = v >= thr_f ? 1.0f : 0.0f;
                vt[j * sj] = v;
                vol[j] = ((float)vnew >= thr4096_f) ? 0.0 : vnew;
            }
        }
    }
}

/* g_spikes (may be NULL), g_voltage (may be NULL), voltage: the forward's layout; writes g_x. */
void cuba_backward(const float *g_spikes, const float *g_voltage, const float *voltage,
                   float *g_x, int64_t nb, int64_t T, int64_t J, int64_t st, int64_t sj,
                   float dc, float dv, float thr_f, float a, float tau) {
    const int64_t chunks = (J + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static)
    for (int64_t bc = 0; bc < nb * chunks; bc++) {
        const int64_t b = bc / chunks, j0 = (bc % chunks) * CHUNK;
        const int64_t m = J - j0 < CHUNK ? J - j0 : CHUNK;
        float gc_next[CHUNK], gx_next[CHUNK], gv[CHUNK];
        for (int64_t t = T - 1; t >= 0; t--) {
            const int64_t o = b * T * J + t * st + j0 * sj;
            const float *v = voltage + o;
            float *gx = g_x + o;
            if (g_spikes) {        /* surrogate: the branches stay outside the vector loops */
                const float *gs = g_spikes + o;
                #pragma omp simd
                for (int64_t j = 0; j < m; j++)
                    gv[j] = gs[j * sj] * (a * exp_neg(-fabsf(v[j * sj] - thr_f) / tau));
            } else {
                for (int64_t j = 0; j < m; j++) gv[j] = 0.0f;
            }
            if (g_voltage) {       /* the readout's voltage gradient */
                const float *gvo = g_voltage + o;
                #pragma omp simd
                for (int64_t j = 0; j < m; j++) gv[j] += gvo[j * sj];
            }
            #pragma omp simd
            for (int64_t j = 0; j < m; j++) {
                const float gc = (t == T - 1) ? gv[j] : dv * gc_next[j] + gv[j];
                const float g = (t == T - 1) ? gc : dc * gx_next[j] + gc;
                gx[j * sj] = g;
                gc_next[j] = gc;
                gx_next[j] = g;
            }
        }
    }
}
