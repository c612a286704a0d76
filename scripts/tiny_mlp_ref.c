/* Single-threaded C reference for scripts/bench.py's tiny-net workloads (issue 21).

   Trains SEEDS independent copies of a 2-HID-1 tanh MLP with a sigmoid output unit on one
   full-batch problem: loss = mean over the N points of softplus(z) - y z (Bernoulli NLL on the
   logit z), gradient by hand, Adam with optax.adam's semantics (b1 0.9, b2 0.999, eps 1e-8,
   mu_hat = mu / (1 - b1^t), nu_hat = nu / (1 - b2^t), update = -lr mu_hat / (sqrt(nu_hat) + eps)),
   float32 throughout.

   Seeds are innermost: a block of BLOCK seeds is stored [param][block] and trained for all
   steps before the next block (its params, gradient, mu and nu: 4 (4 HID + 1) BLOCK floats,
   34 KB at HID 8, in L1); the loops over a block's seeds carry `#pragma omp simd`, so the compiler
   vectorizes across seeds (in the loop over one point's seeds and in the Adam update: GCC 12
   -march=native on a Sapphire Rapids core uses 64-byte AVX-512 vectors); each seed's gradient
   accumulates in [param][block] arrays. tanh and exp are written here (Cephes-style
   polynomials, ~1e-7 relative) because libm calls (and fminf/fmaxf, and a union bit-cast)
   block GCC's vectorizer; the final loss uses libm (tanhf, log1pf, expf) once per seed.
   BLOCK 64 measured best (16 to 256 within 10% on XOR and spirals).

   Build: cc -O3 -march=native -fno-math-errno -fno-trapping-math -fopenmp-simd -DHID=2 \
            tiny_mlp_ref.c -o tiny_mlp_ref -lm
     -fno-math-errno lets sqrtf vectorize; -fno-trapping-math lets GCC if-convert tanh's
     branches into masked vector ops (without the two: scalar code, ~10x slower, same floats);
     -fopenmp-simd honours the `omp simd` pragmas. No -ffast-math: no reassociation, so the
     floats are those of the source's operation order (with FMA contraction).
   Run:   tiny_mlp_ref DATA STEPS SEEDS LR [INIT]
     DATA: text, first N, then N lines "x0 x1 y".
     INIT: optional text of 4 HID + 1 floats (w1 [2][HID] row-major, b1 [HID], w2 [HID], b2):
       every seed starts there instead of from its own glorot-normal draw.
   Prints one JSON line: loop_s (clock_gettime wall of init + training + final loss, data
   loading excluded), mean_final_loss, fail_fraction (final loss > 0.1), first_final_loss
   (seed 0's), peak_rss_kb (VmHWM) and the settings.
   The initial weights are N(0, 2 / (fan_in + fan_out)) (glorot normal, gbl.mlp's default),
   biases 0, drawn with splitmix64 + Box-Muller per seed (not JAX's draws). */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef HID
#define HID 2
#endif
#ifndef BLOCK
#define BLOCK 64
#endif
#define NP (4 * HID + 1)            /* w1 [2][HID], b1 [HID], w2 [HID], b2 */
#define W1(i, j) ((i) * HID + (j))
#define B1(j) (2 * HID + (j))
#define W2(j) (3 * HID + (j))
#define B2 (4 * HID)

static inline float exp_f(float x) {
    /* Cephes expf: x = n ln2 + r, |r| <= ln2 / 2, e^r by a degree-6 polynomial, times 2^n. */
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;   /* not fminf/fmaxf: their NaN rules block
                                                          vectorization */
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float z = r * r;
    float p = ((((( 1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                 + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * z + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;   /* 2^n; memcpy, not a union: a union blocks GCC's */
    float scale;                               /* vectorizer ("no vectype") */
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float tanh_f(float x) {
    /* Cephes tanhf: an odd polynomial below |x| 0.625, 1 - 2 / (e^{2|x|} + 1) above. */
    float a = fabsf(x);
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
                    + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (exp_f(2.0f * (a < 10.0f ? a : 10.0f)) + 1.0f);
    big = copysignf(big, x);
    return a < 0.625f ? small : big;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double normal(uint64_t *state) {
    double u1 = ((splitmix64(state) >> 11) + 1.0) * 0x1.0p-53;   /* (0, 1] */
    double u2 = (splitmix64(state) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static long peak_rss_kb(void) {   /* VmHWM: this process's peak RSS since exec (Linux; else 0) */
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

static float softplus_loss(float z, float y) {   /* log(1 + e^z) - y z, stably */
    return fmaxf(z, 0.0f) + log1pf(expf(-fabsf(z))) - y * z;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s DATA STEPS SEEDS LR [INIT]\n", argv[0]);
        return 2;
    }
    int steps = atoi(argv[2]), seeds = atoi(argv[3]);
    float lr = (float)atof(argv[4]);
    FILE *f = fopen(argv[1], "r");
    int n;
    if (!f || fscanf(f, "%d", &n) != 1 || n < 1) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    float *x0 = malloc(n * sizeof(float)), *x1 = malloc(n * sizeof(float)),
          *y = malloc(n * sizeof(float));
    for (int i = 0; i < n; i++)
        if (fscanf(f, "%f %f %f", &x0[i], &x1[i], &y[i]) != 3) {
            fprintf(stderr, "%s: expected %d lines of x0 x1 y\n", argv[1], n);
            return 2;
        }
    fclose(f);
    int given = argc > 5;
    float init[NP];
    if (given) {
        f = fopen(argv[5], "r");
        for (int p = 0; p < NP; p++)
            if (!f || fscanf(f, "%f", &init[p]) != 1) {
                fprintf(stderr, "%s: expected %d floats\n", argv[5], NP);
                return 2;
            }
        fclose(f);
    }
    /* optax computes 1 - decay^count in float32 */
    float *bc1 = malloc((steps + 1) * sizeof(float)), *bc2 = malloc((steps + 1) * sizeof(float));
    for (int t = 1; t <= steps; t++) {
        bc1[t] = 1.0f - powf(0.9f, (float)t);
        bc2[t] = 1.0f - powf(0.999f, (float)t);
    }
    const float inv_n = 1.0f / n, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float std1 = sqrtf(2.0f / (2 + HID)), std2 = sqrtf(2.0f / (HID + 1));
    static float prm[NP][BLOCK] __attribute__((aligned(64)));
    static float mu[NP][BLOCK] __attribute__((aligned(64)));
    static float nu[NP][BLOCK] __attribute__((aligned(64)));
    static float g[NP][BLOCK] __attribute__((aligned(64)));
    double loss_sum = 0.0, first = 0.0;
    long failed = 0;

    double start = now();
    for (int s0 = 0; s0 < seeds; s0 += BLOCK) {
        for (int s = 0; s < BLOCK; s++) {
            uint64_t state = 0x5eed0000ULL + (uint64_t)(s0 + s) * 0x100000001b3ULL;
            for (int p = 0; p < NP; p++) {
                float std = p < 2 * HID ? std1 : std2;
                prm[p][s] = given ? init[p] : (p < B1(0) || (p >= W2(0) && p < B2))
                                                  ? (float)(std * normal(&state)) : 0.0f;
                mu[p][s] = nu[p][s] = 0.0f;
            }
        }
        for (int t = 1; t <= steps; t++) {
            for (int p = 0; p < NP; p++)
                for (int s = 0; s < BLOCK; s++) g[p][s] = 0.0f;
            for (int i = 0; i < n; i++) {
                const float a0 = x0[i], a1 = x1[i], yi = y[i];
#pragma omp simd
                for (int s = 0; s < BLOCK; s++) {
                    float h[HID], z = prm[B2][s];
#pragma GCC unroll 64
                    for (int j = 0; j < HID; j++) {
                        h[j] = tanh_f(a0 * prm[W1(0, j)][s] + a1 * prm[W1(1, j)][s]
                                      + prm[B1(j)][s]);
                        z += h[j] * prm[W2(j)][s];
                    }
                    /* d loss / d z = (sigmoid(z) - y) / N, with sigmoid from e^{-|z|} */
                    float e = exp_f(-fabsf(z));
                    float sig = (z >= 0.0f ? 1.0f : e) / (1.0f + e);
                    float dz = (sig - yi) * inv_n;
                    g[B2][s] += dz;
#pragma GCC unroll 64
                    for (int j = 0; j < HID; j++) {
                        g[W2(j)][s] += dz * h[j];
                        float da = dz * prm[W2(j)][s] * (1.0f - h[j] * h[j]);
                        g[B1(j)][s] += da;
                        g[W1(0, j)][s] += da * a0;
                        g[W1(1, j)][s] += da * a1;
                    }
                }
            }
            const float c1 = bc1[t], c2 = bc2[t];
            for (int p = 0; p < NP; p++)
#pragma omp simd
                for (int s = 0; s < BLOCK; s++) {
                    float m = b1 * mu[p][s] + (1.0f - b1) * g[p][s];
                    float v = b2 * nu[p][s] + (1.0f - b2) * g[p][s] * g[p][s];
                    mu[p][s] = m;
                    nu[p][s] = v;
                    prm[p][s] -= lr * ((m / c1) / (sqrtf(v / c2) + eps));
                }
        }
        for (int s = 0; s < BLOCK && s0 + s < seeds; s++) {
            double loss = 0.0;
            for (int i = 0; i < n; i++) {
                float z = prm[B2][s];
                for (int j = 0; j < HID; j++)
                    z += tanhf(x0[i] * prm[W1(0, j)][s] + x1[i] * prm[W1(1, j)][s]
                               + prm[B1(j)][s]) * prm[W2(j)][s];
                loss += softplus_loss(z, y[i]);
            }
            loss /= n;
            if (s0 + s == 0) first = loss;
            loss_sum += loss;
            failed += loss > 0.1;
        }
    }
    double elapsed = now() - start;
    printf("{\"loop_s\": %.6f, \"mean_final_loss\": %.9g, \"fail_fraction\": %.6f, "
           "\"first_final_loss\": %.9g, \"hid\": %d, \"block\": %d, \"n\": %d, \"steps\": %d, "
           "\"seeds\": %d, \"peak_rss_kb\": %ld}\n", elapsed, loss_sum / seeds,
           (double)failed / seeds, first, HID, BLOCK, n, steps, seeds, peak_rss_kb());
    return 0;
}
