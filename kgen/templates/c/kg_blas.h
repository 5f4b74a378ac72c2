/* kg_blas.h -- kg_gemm_f32 / kg_gemm_f64 on top of an external CBLAS.
 *
 * Compiled instead of kg_gemm.h when KG_BLAS is defined, with the same two
 * functions, so generated sources compile either way. kgen's local builds
 * use it with NumPy's own OpenBLAS (the scipy-openblas64 library NumPy ships,
 * already loaded in the process); shipped packages use kg_gemm.h.
 * No cblas.h is needed: the entry points are declared here.
 *
 *   -DKG_BLAS -DKG_BLAS_INT=int64_t
 *   -DKG_BLAS_SGEMM=scipy_cblas_sgemm64_ -DKG_BLAS_DGEMM=scipy_cblas_dgemm64_
 *
 * Operands whose strides no CBLAS layout can express (neither of the two
 * strides is 1) take a plain loop. Products with a narrow result (N at most
 * one vector) go to kg_narrow.h instead when it was pasted before this file.
 */
#ifndef KG_BLAS_H
#define KG_BLAS_H
#include <stddef.h>
#include <stdint.h>

#ifndef KG_BLAS_INT
#  define KG_BLAS_INT int
#endif
/* the CBLAS enumerations' standard values */
#define KG_CBLAS_ROW_MAJOR 101
#define KG_CBLAS_NO_TRANS 111
#define KG_CBLAS_TRANS 112

void KG_BLAS_SGEMM(int order, int trans_a, int trans_b, KG_BLAS_INT m, KG_BLAS_INT n,
                   KG_BLAS_INT k, float alpha, const float *a, KG_BLAS_INT lda,
                   const float *b, KG_BLAS_INT ldb, float beta, float *c, KG_BLAS_INT ldc);
void KG_BLAS_DGEMM(int order, int trans_a, int trans_b, KG_BLAS_INT m, KG_BLAS_INT n,
                   KG_BLAS_INT k, double alpha, const double *a, KG_BLAS_INT lda,
                   const double *b, KG_BLAS_INT ldb, double beta, double *c, KG_BLAS_INT ldc);

/* How row-major CBLAS reads a rows x cols operand with element strides
 * (rs, cs): as stored (cs == 1), transposed (rs == 1), or not at all (0). */
static inline int kg__blas_layout(ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t rs, ptrdiff_t cs,
                                  int *trans, KG_BLAS_INT *ld)
{
    if (cs == 1 && (rows <= 1 || rs >= (cols > 1 ? cols : 1))) {
        *trans = KG_CBLAS_NO_TRANS;
        *ld = (KG_BLAS_INT)(rows <= 1 ? (cols > 1 ? cols : 1) : rs);
        return 1;
    }
    if (rs == 1 && (cols <= 1 || cs >= (rows > 1 ? rows : 1))) {
        *trans = KG_CBLAS_TRANS;
        *ld = (KG_BLAS_INT)(cols <= 1 ? (rows > 1 ? rows : 1) : cs);
        return 1;
    }
    return 0;
}

#ifdef KG_HAVE_NARROW
#  define KG__BLAS_TRY_NARROW(SFX)                                                  \
    if (kg_narrow_##SFX(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc)) return;
#else
#  define KG__BLAS_TRY_NARROW(SFX)
#endif

/* kgen's split builds (prelude.h) share kg_gemm_* between their units */
#ifndef KG_GEMM_LINKAGE
#  define KG_GEMM_LINKAGE static
#endif

#define KG__BLAS_GEMM(T, SFX, BLAS)                                                 \
KG_GEMM_LINKAGE void kg_gemm_##SFX(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, T alpha,   \
        const T *A, ptrdiff_t rsa, ptrdiff_t csa,                                    \
        const T *B, ptrdiff_t rsb, ptrdiff_t csb, T beta, T *C, ptrdiff_t ldc)       \
{                                                                                    \
    int ta, tb;                                                                      \
    KG_BLAS_INT lda, ldb;                                                            \
    if (M == 0 || N == 0) return;                                                    \
    KG__BLAS_TRY_NARROW(SFX)                                                         \
    if (K > 0 && kg__blas_layout(M, K, rsa, csa, &ta, &lda)                          \
            && kg__blas_layout(K, N, rsb, csb, &tb, &ldb)) {                         \
        BLAS(KG_CBLAS_ROW_MAJOR, ta, tb, (KG_BLAS_INT)M, (KG_BLAS_INT)N,             \
             (KG_BLAS_INT)K, alpha, A, lda, B, ldb, beta, C,                         \
             (KG_BLAS_INT)(ldc > 1 ? ldc : 1));                                      \
        return;                                                                      \
    }                                                                                \
    for (ptrdiff_t i = 0; i < M; i++)                                                \
        for (ptrdiff_t j = 0; j < N; j++) {                                          \
            T s = 0;                                                                 \
            for (ptrdiff_t q = 0; q < K; q++)                                        \
                s += A[i * rsa + q * csa] * B[q * rsb + j * csb];                    \
            C[i * ldc + j] = alpha * s + (beta == 0 ? (T)0 : beta * C[i * ldc + j]); \
        }                                                                            \
}
#ifndef KG_GEMM_NO_F32  /* (kgen defines it where no product has this dtype) */
KG__BLAS_GEMM(float, f32, KG_BLAS_SGEMM)
#endif
#ifndef KG_GEMM_NO_F64  /* (kgen defines it where no product has this dtype) */
KG__BLAS_GEMM(double, f64, KG_BLAS_DGEMM)
#endif

#endif /* KG_BLAS_H */
