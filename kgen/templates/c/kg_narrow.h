/* kg_narrow.h -- matrix products with a narrow result, C = A @ B with N at
 * most one vector wide (16 floats or 8 doubles with AVX-512), for kg_blas.h.
 *
 *   static int kg_narrow_f32(M, N, K, alpha, A, rsa, csa, B, rsb, csb,
 *                            beta, C, ldc)     (and kg_narrow_f64)
 *
 * The same arguments and meaning as kg_gemm_f32; returns 1 when it computed
 * the product, 0 when the shape is not one it takes (N wider than a vector,
 * M under one block of rows, no vector extensions) and nothing was touched.
 *
 * Why: a softmax layer's products, X @ W and X.T @ delta with N = 10 classes
 * (benchmarks/bench_minibatch.py), are a poor fit for a GEMM built for
 * square tiles: OpenBLAS's sgemm ran them at about 0.35 and 0.2 ms for
 * 600 x 784 x 10, where reading X once from memory takes about 0.12 ms.
 * Here B is packed once, one zero-padded vector per row of B (K vectors,
 * 50 KB for K = 784, so it stays in L1/L2), and each block of KG__NARROW_RB
 * rows of C keeps one accumulator vector per row:
 *     acc[r] += A[i + r][q] * Bp[q]        (a broadcast and an FMA)
 * which reads A exactly once, in any layout, and streams it with software
 * prefetches (hardware prefetchers do not run far enough ahead for eight
 * interleaved row streams): the next block's rows when A's rows are
 * contiguous (X @ W), eight rows of q ahead when its columns are (X.T @ d).
 * Measured on one core (AVX-512): 0.14 and 0.15 ms for the two products
 * above, against OpenBLAS's 0.35 and 0.20.
 *
 * K is taken in chunks of KG__NARROW_KC rows of B, so the packed copy lives
 * on the stack (64 KB at most) and nothing is allocated. Each element of C
 * is summed in the same order whatever the thread count (blocks of rows are
 * split between threads; the order over q depends only on the chunking), so
 * results are bitwise reproducible. Called inside a parallel region, or for
 * a product under KG_NARROW_PARALLEL_MIN_FLOPS multiply-adds, it is serial.
 */
#ifndef KG_NARROW_H
#define KG_NARROW_H
#include <stddef.h>
#ifdef _OPENMP
#  include <omp.h>
#endif

#if defined(__GNUC__) && !defined(KG_NARROW_OFF)
#  if defined(__AVX512F__)
#    define KG__NARROW_VBYTES 64
#  elif defined(__AVX__)
#    define KG__NARROW_VBYTES 32
#  else
#    define KG__NARROW_VBYTES 16
#  endif
/* rows of C per block: eight independent FMA chains cover the FMA latency */
#  define KG__NARROW_RB 8
/* rows of B packed per chunk: KC vectors = 64 KB of stack */
#  define KG__NARROW_KC (65536 / KG__NARROW_VBYTES)
#  define KG__NARROW_UNROLL _Pragma("GCC unroll 8")
#  ifndef KG_NARROW_PARALLEL_MIN_FLOPS
#    define KG_NARROW_PARALLEL_MIN_FLOPS (1 << 24)
#  endif

#  define KG__NARROW(T, SFX)                                                    \
typedef T kg__nv_##SFX __attribute__((vector_size(KG__NARROW_VBYTES)));           \
enum { KG__NARROW_VL_##SFX = KG__NARROW_VBYTES / (int)sizeof(T) };               \
                                                                                 \
/* rows [i, i + nr) of C += (or =, on the first chunk) the chunk's products.     \
 * csa == 1: prefetch the rows pf blocks ahead (pf 0 for the last block: its     \
 * own rows, so nothing past A); otherwise pf 2: eight q's ahead. Kernels        \
 * build at -O2, which unrolls only on request: hence the pragmas. */            \
static inline __attribute__((always_inline)) void kg__narrow_block_##SFX(       \
        ptrdiff_t i, ptrdiff_t nr, ptrdiff_t N, ptrdiff_t kc, T alpha,           \
        const T *A, ptrdiff_t rsa, ptrdiff_t csa, const kg__nv_##SFX *Bp,        \
        T beta, int first, T *C, ptrdiff_t ldc, int pf)                          \
{                                                                                \
    kg__nv_##SFX acc[KG__NARROW_RB];                                             \
    const T *a = A + i * rsa;                                                    \
    const ptrdiff_t line = 64 / (ptrdiff_t)sizeof(T);                            \
    KG__NARROW_UNROLL                                                            \
    for (int r = 0; r < KG__NARROW_RB; r++) acc[r] = (kg__nv_##SFX){0};         \
    if (csa == 1 && nr == KG__NARROW_RB) {  /* a line of q at a time */         \
        for (ptrdiff_t q0 = 0; q0 < kc; q0 += line) {                            \
            const ptrdiff_t qe = kc - q0 < line ? kc : q0 + line;                \
            KG__NARROW_UNROLL                                                    \
            for (int r = 0; r < KG__NARROW_RB; r++)                              \
                __builtin_prefetch(a + (pf * KG__NARROW_RB + r) * rsa + q0);     \
            for (ptrdiff_t q = q0; q < qe; q++) {                                \
                const kg__nv_##SFX b = Bp[q];                                    \
                KG__NARROW_UNROLL                                                \
                for (int r = 0; r < KG__NARROW_RB; r++)                          \
                    acc[r] += a[r * rsa + q] * b;                                \
            }                                                                    \
        }                                                                        \
    } else if (nr == KG__NARROW_RB) {                                            \
        for (ptrdiff_t q = 0; q < kc; q++) {                                     \
            const kg__nv_##SFX b = Bp[q];                                        \
            if (pf == 2 && q + 8 < kc) __builtin_prefetch(a + (q + 8) * csa);    \
            KG__NARROW_UNROLL                                                    \
            for (int r = 0; r < KG__NARROW_RB; r++)                              \
                acc[r] += a[r * rsa + q * csa] * b;                              \
        }                                                                        \
    } else {                                                                     \
        for (ptrdiff_t q = 0; q < kc; q++)                                       \
            for (int r = 0; r < nr; r++)                                         \
                acc[r] += a[r * rsa + q * csa] * Bp[q];                          \
    }                                                                            \
    for (int r = 0; r < nr; r++) {                                               \
        T *c = C + (i + r) * ldc;                                                \
        for (ptrdiff_t j = 0; j < N; j++) {                                      \
            T v = alpha * acc[r][j];                                             \
            c[j] = first ? (beta == 0 ? v : v + beta * c[j]) : c[j] + v;         \
        }                                                                        \
    }                                                                            \
}                                                                                \
                                                                                 \
static int kg_narrow_##SFX(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, T alpha,       \
        const T *A, ptrdiff_t rsa, ptrdiff_t csa,                                \
        const T *B, ptrdiff_t rsb, ptrdiff_t csb, T beta, T *C, ptrdiff_t ldc)   \
{                                                                                \
    kg__nv_##SFX Bp[KG__NARROW_KC];                                              \
    const ptrdiff_t nb = M / KG__NARROW_RB;                                      \
    if (N < 1 || N > KG__NARROW_VL_##SFX || M < KG__NARROW_RB || K < 1)          \
        return 0;                                                                \
    for (ptrdiff_t k0 = 0; k0 < K; k0 += KG__NARROW_KC) {                        \
        const ptrdiff_t kc = K - k0 < KG__NARROW_KC ? K - k0 : KG__NARROW_KC;    \
        const T *a = A + k0 * csa;                                               \
        const int first = k0 == 0;                                               \
        for (ptrdiff_t q = 0; q < kc; q++) {                                     \
            kg__nv_##SFX v = {0};                                                \
            for (ptrdiff_t j = 0; j < N; j++) v[j] = B[(k0 + q) * rsb + j * csb]; \
            Bp[q] = v;                                                           \
        }                                                                        \
        KG__NARROW_PRAGMA_FOR(M, N, K)                                           \
        for (ptrdiff_t blk = 0; blk < nb; blk++) {                               \
            const ptrdiff_t i = blk * KG__NARROW_RB;                             \
            if (csa == 1)     /* rows contiguous (X @ W); the last block  */ \
                kg__narrow_block_##SFX(i, KG__NARROW_RB, N, kc, alpha, a, rsa, 1, \
                                       Bp, beta, first, C, ldc, blk + 1 < nb);   \
            else if (rsa == 1)          /* a transpose's columns: X.T @ d */     \
                kg__narrow_block_##SFX(i, KG__NARROW_RB, N, kc, alpha, a, 1,     \
                                       csa, Bp, beta, first, C, ldc, 2);         \
            else                                                                 \
                kg__narrow_block_##SFX(i, KG__NARROW_RB, N, kc, alpha, a, rsa,   \
                                       csa, Bp, beta, first, C, ldc, 2);         \
        }                                                                        \
        if (M > nb * KG__NARROW_RB)                                              \
            kg__narrow_block_##SFX(nb * KG__NARROW_RB, M - nb * KG__NARROW_RB,   \
                                   N, kc, alpha, a, rsa, csa, Bp, beta, first,   \
                                   C, ldc, 0);                                   \
    }                                                                            \
    return 1;                                                                    \
}

#  ifdef _OPENMP
#    define KG__NARROW_PRAGMA_FOR(M, N, K)                                        \
    _Pragma("omp parallel for schedule(static) if ((double)(M) * (double)(N) * (double)(K) >= KG_NARROW_PARALLEL_MIN_FLOPS && !omp_in_parallel())")
#  else
#    define KG__NARROW_PRAGMA_FOR(M, N, K)
#  endif
#ifndef KG_GEMM_NO_F32  /* (kgen defines it where no product has this dtype) */
KG__NARROW(float, f32)
#endif
#ifndef KG_GEMM_NO_F64  /* (kgen defines it where no product has this dtype) */
KG__NARROW(double, f64)
#endif
#  undef KG__NARROW_PRAGMA_FOR
#  undef KG__NARROW_UNROLL
#  define KG_HAVE_NARROW 1
#endif /* __GNUC__ */
#endif /* KG_NARROW_H */
