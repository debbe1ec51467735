/* rnngeom's compiled time loops (see recurrence.h and rnngeom/learning/compiled.py, which builds this file
 * with the system C compiler on first use and loads it with ctypes). Plain C99, no Python API. */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* float tanh, written out so that a loop of it vectorises (libm's tanhf is a scalar call, ~10x slower per
 * element here) and gives the same bits on every machine (each step an IEEE-rounded operation or an fma).
 * |x| < 0.625: x + x³ P(x²), P a degree-4 least-squares fit (relative error 5e-9 in exact arithmetic);
 * above: 1 − 2 / (e^{2|x|} + 1) with the sign of x, e^y from y = n ln2 + r, |r| ≤ ln2/2, a degree-7 Taylor
 * polynomial of e^r and 2^n from its bits (valid for 0 ≤ y ≤ 87); |x| is clamped at 9 (NaN passes through; tanh(9) rounds to 1 − 2⁻²⁴ or 1 in float).
 * Measured against float64 tanh: tests/test_compiled.py. */
static inline float exp_small_f32(float y) /* e^y for 0 ≤ y ≤ 87 (2^n stays a normal float) */
{
    const float n = (y * 1.44269504f + 12582912.0f) - 12582912.0f; /* round(y / ln2) (the 1.5·2²³ trick) */
    float r = fmaf(-n, 0.693145751953125f, y);                     /* ln2 = hi + lo, hi exact in float */
    r = fmaf(-n, 1.428606765330187e-06f, r);
    float p = 1.0f / 5040;
    p = fmaf(p, r, 1.0f / 720);
    p = fmaf(p, r, 1.0f / 120);
    p = fmaf(p, r, 1.0f / 24);
    p = fmaf(p, r, 1.0f / 6);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float tanh_f32(float x)
{
    const float ax = fabsf(x);
    const float u = x * x;
    float p = -0.005691935766987732f;
    p = fmaf(p, u, 0.020626248665033722f);
    p = fmaf(p, u, -0.05373530610207555f);
    p = fmaf(p, u, 0.13331381207586573f);
    p = fmaf(p, u, -0.33333279203178134f);
    const float small = fmaf(x * u, p, x);
    const float e = exp_small_f32(2.0f * (ax > 9.0f ? 9.0f : ax)); /* NaN stays NaN */
    const float large = copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return ax < 0.625f ? small : large;
}

/* float logistic σ(x) = 1 / (1 + e^{−x}): E = e^{|x|} (|x| clamped at 80: σ(±80) rounds to 1 or 0 in float's
 * precision of 1 − σ), σ = E / (E + 1) for x ≥ 0 and 1 / (1 + E) below (no cancellation either side). */
static inline float sigmoid_f32(float x)
{
    const float ax = fabsf(x);
    const float E = exp_small_f32(ax > 80.0f ? 80.0f : ax); /* NaN stays NaN */
    const float inv = 1.0f / (E + 1.0f);
    return x >= 0 ? E * inv : inv;
}

static inline double sigmoid_f64(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

float rnngeom_tanh_f32(float x) { return tanh_f32(x); }       /* for the accuracy tests */
float rnngeom_sigmoid_f32(float x) { return sigmoid_f32(x); }

/* An element-wise fused multiply-add of GCC/Clang vector types (the scalar fmaf of each lane, which the
 * compiler turns into one vector instruction where the CPU has FMA). */
#define VFMA_LANES(a, b, c, n, fma)                                                                        \
    do {                                                                                                   \
        for (int i_ = 0; i_ < (n); i_++)                                                                   \
            (c)[i_] = fma((a)[i_], (b)[i_], (c)[i_]);                                                      \
    } while (0)

typedef float vec_f32 __attribute__((vector_size(32)));
typedef double vec_f64 __attribute__((vector_size(32)));
#if defined(__AVX__) && defined(__FMA__)
/* The instruction itself where the build targets it: left to the lane loop below, GCC 12 tuned for a CPU
 * that prefers 128-bit vectors (-march=native on AMD Zen 1) assembled each 256-bit result lane by lane,
 * which made the matrix products 4x slower than with the instruction (measured). */
#include <immintrin.h>
static inline vec_f32 vfma_f32(vec_f32 a, vec_f32 b, vec_f32 c)
{
    return (vec_f32)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
}
static inline vec_f64 vfma_f64(vec_f64 a, vec_f64 b, vec_f64 c)
{
    return (vec_f64)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
}
#else
static inline vec_f32 vfma_f32(vec_f32 a, vec_f32 b, vec_f32 c)
{
    VFMA_LANES(a, b, c, 8, fmaf);
    return c;
}
static inline vec_f64 vfma_f64(vec_f64 a, vec_f64 b, vec_f64 c)
{
    VFMA_LANES(a, b, c, 4, fma);
    return c;
}
#endif

#define REAL float
#define VEC vec_f32
#define VFMA vfma_f32
#define SUFFIX f32
#define FMA fmaf
#define TANH tanh_f32
#define SIGMOID sigmoid_f32
#include "recurrence.h"
#undef REAL
#undef SUFFIX
#undef FMA
#undef TANH
#undef SIGMOID

#undef VEC
#undef VFMA
#define REAL double
#define VEC vec_f64
#define VFMA vfma_f64
#define SUFFIX f64
#define FMA fma
#define TANH tanh
#define SIGMOID sigmoid_f64
#include "recurrence.h"

