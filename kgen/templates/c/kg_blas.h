/* kg_blas.h -- kg_gemm_f32 / kg_gemm_f64 on top of an external CBLAS.
 *
 * Compiled instead of kg_gemm.h when KG_BLAS is defined, with the same two
 * functions, so generated sources compile either way. kgen's local builds
 * use it with OpenBLAS from NumPy's wheel (scipy-openblas64: 64-bit integers,
 * kgen's own instance of it, kgen/build/blas.py); shipped packages use
 * kg_gemm.h. No cblas.h is needed: the entry points are declared here.
 *
 *   -DKG_BLAS -DKG_BLAS_INT=int64_t
 *       the entry points are given when the module loads:
 *       kg_blas_bind(sgemm, dgemm), which kgen's runtime calls
 *   -DKG_BLAS -DKG_BLAS_SGEMM=cblas_sgemm -DKG_BLAS_DGEMM=cblas_dgemm
 *       linked against those names instead (any CBLAS; KG_BLAS_INT as it takes)
 *
 * Operands whose strides no CBLAS layout can express (neither of the two
 * strides is 1) take a plain loop, as do all products while no entry points
 * are bound. Products with a narrow result (N at most one vector) go to
 * kg_narrow.h instead when it was pasted before this file.
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

#define KG__BLAS_GEMM_ARGS(T)                                                       \
    int order, int trans_a, int trans_b, KG_BLAS_INT m, KG_BLAS_INT n, KG_BLAS_INT k,   \
    T alpha, const T *a, KG_BLAS_INT lda, const T *b, KG_BLAS_INT ldb, T beta, T *c,    \
    KG_BLAS_INT ldc
#if defined(KG_BLAS_SGEMM) && defined(KG_BLAS_DGEMM)
void KG_BLAS_SGEMM(KG__BLAS_GEMM_ARGS(float));
void KG_BLAS_DGEMM(KG__BLAS_GEMM_ARGS(double));
#  define KG__BLAS_BOUND(BLAS) 1
static const int kg__blas_split = 0;
#else
/* bound when the module loads; NULL (a plain loop) until then. split: the
 * library runs each call on the calling thread only (kgen's own instance),
 * so large products are cut into bands on the kernel's OpenMP threads. */
static void (*kg__blas_sgemm)(KG__BLAS_GEMM_ARGS(float));
static void (*kg__blas_dgemm)(KG__BLAS_GEMM_ARGS(double));
static int kg__blas_split;
void kg_blas_bind(void *sgemm, void *dgemm, int split)
{
    kg__blas_sgemm = (void (*)(KG__BLAS_GEMM_ARGS(float)))sgemm;
    kg__blas_dgemm = (void (*)(KG__BLAS_GEMM_ARGS(double)))dgemm;
    kg__blas_split = split;
}
#  define KG_BLAS_SGEMM kg__blas_sgemm
#  define KG_BLAS_DGEMM kg__blas_dgemm
#  define KG__BLAS_BOUND(BLAS) ((BLAS) != NULL)
#endif

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

/* Why bands: an OpenBLAS with threads of its own keeps them apart from the
 * kernel's OpenMP team, and on a small machine the two pools take each
 * other's cores (each spins a while after its work). With one pool, OpenMP
 * workers can spin between a kernel's loops and wake at once. Each thread
 * multiplies a band of rows (or of columns, when N is the longer side) of C,
 * whole, so every element is summed as one call would sum it. */
#ifndef KG_BLAS_SPLIT_MIN_FLOPS
#  define KG_BLAS_SPLIT_MIN_FLOPS (1 << 20)
#endif
#ifdef _OPENMP
#  include <omp.h>
#  define KG__BLAS_BANDS(BLAS)                                                     \
    if (kg__blas_split && (double)M * (double)N * (double)K >= KG_BLAS_SPLIT_MIN_FLOPS \
            && omp_get_max_threads() > 1 && !omp_in_parallel()) {                   \
        _Pragma("omp parallel")                                                     \
        {                                                                           \
            const ptrdiff_t nt = omp_get_num_threads(), t = omp_get_thread_num();    \
            const int rows = M >= N;                                                \
            const ptrdiff_t L = rows ? M : N;                                       \
            /* band edges on multiples of 16 (the kernels' register tiles) */       \
            const ptrdiff_t lo = L * t / nt / 16 * 16;                              \
            const ptrdiff_t hi = t + 1 == nt ? L : L * (t + 1) / nt / 16 * 16;      \
            if (hi > lo)                                                            \
                BLAS(KG_CBLAS_ROW_MAJOR, ta, tb, (KG_BLAS_INT)(rows ? hi - lo : M), \
                     (KG_BLAS_INT)(rows ? N : hi - lo), (KG_BLAS_INT)K, alpha,      \
                     rows ? A + lo * rsa : A, lda, rows ? B : B + lo * csb, ldb,    \
                     beta, rows ? C + lo * ldc : C + lo,                            \
                     (KG_BLAS_INT)(ldc > 1 ? ldc : 1));                             \
        }                                                                           \
        return;                                                                     \
    }
#else
#  define KG__BLAS_BANDS(BLAS)
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
    if (K > 0 && KG__BLAS_BOUND(BLAS) && kg__blas_layout(M, K, rsa, csa, &ta, &lda)  \
            && kg__blas_layout(K, N, rsb, csb, &tb, &ldb)) {                         \
        KG__BLAS_BANDS(BLAS)                                                         \
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
