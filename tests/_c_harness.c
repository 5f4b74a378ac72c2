/* Test and benchmark harness for kg_math.h (with H_MATH defined) and
 * kg_gemm.h (with H_GEMM defined).
 *
 * Each math function gets a loop h_<name> (double) and h_<name>f (float)
 * shaped like generated elementwise code: a KG_OMP_SIMD loop over restrict
 * pointers, so gcc uses libmvec exactly as it would in a kernel.
 * tests/_c_harness.py lists the same names for cffi.
 */
#include <stddef.h>
#ifdef _OPENMP
#  include <omp.h>
#endif
#include "kg_math.h"
#ifdef H_GEMM
#  include "kg_gemm.h"
#endif

#ifdef H_MATH

#define H_UNARY(F)                                                              \
    void h_##F(ptrdiff_t n, const double *restrict x, double *restrict y)       \
    {                                                                           \
        ptrdiff_t i;                                                            \
        KG_OMP_SIMD                                                             \
        for (i = 0; i < n; i++) y[i] = kg_##F(x[i]);                            \
    }                                                                           \
    void h_##F##f(ptrdiff_t n, const float *restrict x, float *restrict y)      \
    {                                                                           \
        ptrdiff_t i;                                                            \
        KG_OMP_SIMD                                                             \
        for (i = 0; i < n; i++) y[i] = kg_##F##f(x[i]);                         \
    }

#define H_BINARY(F)                                                             \
    void h_##F(ptrdiff_t n, const double *restrict x, const double *restrict y, \
               double *restrict z)                                              \
    {                                                                           \
        ptrdiff_t i;                                                            \
        KG_OMP_SIMD                                                             \
        for (i = 0; i < n; i++) z[i] = kg_##F(x[i], y[i]);                      \
    }                                                                           \
    void h_##F##f(ptrdiff_t n, const float *restrict x, const float *restrict y,\
                  float *restrict z)                                            \
    {                                                                           \
        ptrdiff_t i;                                                            \
        KG_OMP_SIMD                                                             \
        for (i = 0; i < n; i++) z[i] = kg_##F##f(x[i], y[i]);                   \
    }

H_UNARY(exp)
H_UNARY(exp2)
H_UNARY(exp10)
H_UNARY(expm1)
H_UNARY(log)
H_UNARY(log2)
H_UNARY(log10)
H_UNARY(log1p)
H_UNARY(sqrt)
H_UNARY(cbrt)
H_UNARY(sin)
H_UNARY(cos)
H_UNARY(tan)
H_UNARY(asin)
H_UNARY(acos)
H_UNARY(atan)
H_UNARY(sinh)
H_UNARY(cosh)
H_UNARY(tanh)
H_UNARY(asinh)
H_UNARY(acosh)
H_UNARY(atanh)
H_UNARY(erf)
H_UNARY(erfc)
H_BINARY(atan2)
H_BINARY(pow)
H_BINARY(hypot)

/* isnan must survive the flags (it would not under -ffast-math). */
void h_nan_to_minus1(ptrdiff_t n, const double *restrict x, double *restrict y)
{
    ptrdiff_t i;
    KG_OMP_SIMD
    for (i = 0; i < n; i++) y[i] = isnan(x[i]) ? -1.0 : kg_exp(x[i]);
}

/* Long-double references for what NumPy lacks (erf, erfc); a plain loop. */
void h_ref_erfl(ptrdiff_t n, const long double *x, long double *y)
{
    ptrdiff_t i;
    for (i = 0; i < n; i++) y[i] = erfl(x[i]);
}

void h_ref_erfcl(ptrdiff_t n, const long double *x, long double *y)
{
    ptrdiff_t i;
    for (i = 0; i < n; i++) y[i] = erfcl(x[i]);
}

/* The benchmark's fused loop W1: exp(-x*x)*sin(y) + log1p(z*z), written as
 * a generated kernel would be: multi-versioned, threaded, SIMD. */
KG_MULTIVERSION
void h_w1(ptrdiff_t n, const double *restrict x, const double *restrict y,
          const double *restrict z, double *restrict out)
{
    ptrdiff_t i;
    KG_OMP_PARALLEL_FOR_SIMD(n)
    for (i = 0; i < n; i++)
        out[i] = kg_exp(-x[i] * x[i]) * kg_sin(y[i]) + kg_log1p(z[i] * z[i]);
}

KG_MULTIVERSION
void h_w1f(ptrdiff_t n, const float *restrict x, const float *restrict y,
           const float *restrict z, float *restrict out)
{
    ptrdiff_t i;
    KG_OMP_PARALLEL_FOR_SIMD(n)
    for (i = 0; i < n; i++)
        out[i] = kg_expf(-x[i] * x[i]) * kg_sinf(y[i]) + kg_log1pf(z[i] * z[i]);
}

#endif /* H_MATH */

/* Sets the OpenMP team size for later calls; returns the previous one. */
int h_set_threads(int n)
{
#ifdef _OPENMP
    int previous = omp_get_max_threads();
    omp_set_num_threads(n);
    return previous;
#else
    (void)n;
    return 1;
#endif
}

int h_have_libmvec(void) { return KG_HAVE_LIBMVEC; }
