/* Fused CUBA neuron dynamics for CPU training: slayer's arithmetic, one pass per neuron.
 *
 * slayer (lava-dl 0.6.0, neuron/cuba.py) runs a CUBA neuron as two leaky integrators and a spike
 * function, each a loop of whole-tensor torch ops over T. These kernels do the same integer and
 * float32 operations in the same order, per neuron, in one pass (OpenMP over neurons):
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
 * fused: the forward is bit-identical to slayer; the backward differs only where libm's expf and
 * torch's vectorised exp round differently (<= 1 ulp of the surrogate).
 */
#include <math.h>
#include <stdint.h>

static inline int64_t rstz12(int64_t x) {
    int64_t sign = x > 0 ? 1 : -1;
    return sign * ((sign * x) >> 12);
}

/* x, spikes, voltage: n rows of T floats. voltage may be NULL (then not stored). */
void cuba_forward(const float *x, float *spikes, float *voltage, int64_t n, int64_t T,
                  int64_t cd, int64_t vd, float thr_f, float thr4096_f) {
    const int64_t ci = 4096 - cd, vi = 4096 - vd;
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * T;
        float *si = spikes + i * T;
        float *vo = voltage ? voltage + i * T : 0;
        int64_t cur = 0, vol = 0;
        for (int64_t t = 0; t < T; t++) {
            cur = rstz12(cur * ci) + (int64_t)(4096.0f * xi[t]);
            float c = (float)cur / 4096.0f;
            int64_t vnew = rstz12(vol * vi) + (int64_t)(4096.0f * c);
            float v = (float)vnew / 4096.0f;
            if (vo) vo[t] = v;
            si[t] = v >= thr_f ? 1.0f : 0.0f;
            vol = ((float)vnew >= thr4096_f) ? 0 : vnew;
        }
    }
}

/* g_spikes (may be NULL), g_voltage (may be NULL), voltage: n rows of T; writes g_x. */
void cuba_backward(const float *g_spikes, const float *g_voltage, const float *voltage,
                   float *g_x, int64_t n, int64_t T, float dc, float dv, float thr_f,
                   float a, float tau) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *gs = g_spikes ? g_spikes + i * T : 0;
        const float *gvo = g_voltage ? g_voltage + i * T : 0;
        const float *v = voltage + i * T;
        float *gx = g_x + i * T;
        float gc_next = 0.0f, gx_next = 0.0f;
        for (int64_t t = T - 1; t >= 0; t--) {
            float gv = 0.0f;
            if (gs) gv = gs[t] * (a * expf(-fabsf(v[t] - thr_f) / tau));
            if (gvo) gv = gs ? gv + gvo[t] : gvo[t];
            float gc = (t == T - 1) ? gv : dv * gc_next + gv;
            float g = (t == T - 1) ? gc : dc * gx_next + gc;
            gx[t] = g;
            gc_next = gc;
            gx_next = g;
        }
    }
}
