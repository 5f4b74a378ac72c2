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
 * Three forms, chosen by A's layout; each reads A exactly once:
 *  - A's rows contiguous (X @ W), N <= KG__NARROW_DOT_N: dot products along
 *    K. B is packed transposed (N rows of K, 48 KB at most), and each pair of
 *    rows of C keeps 2N accumulator vectors over q, summed across lanes at
 *    the end. Every lane does work whatever N is; the broadcast form below
 *    leaves 16 - N lanes idle.
 *  - A's columns contiguous (X.T @ delta, A = X.T), N <= KG__NARROW_DOT_N:
 *    the rows of C go in the lanes. For each q, two vectors of A (32 rows of
 *    C) times a broadcast B[q][j] into 2N accumulators; no packing. K is
 *    split into two halves when C fits the stack buffer, the same split
 *    whatever the thread count, so that with two threads each reads from its
 *    own L2 the rows of X it read in the product before (X @ W splits X's
 *    rows the same way).
 *    Measured on one core (AVX-512, 600 x 784 x 10): 0.11 and 0.10 ms for
 *    the two products, against 0.18 and 0.17 for the broadcast form.
 *  - Otherwise (strided, broadcast or reversed A, or 12 < N <= one vector):
 *    B is packed once, one zero-padded vector per row of B (K vectors,
 *    50 KB for K = 784, so it stays in L1/L2), and each block of
 *    KG__NARROW_RB rows of C keeps one accumulator vector per row:
 *        acc[r] += A[i + r][q] * Bp[q]        (a broadcast and an FMA)
 *    with software prefetches (hardware prefetchers do not run far enough
 *    ahead for eight interleaved row streams).
 *
 * K is taken in chunks, so packed copies live on the stack (64 KB at most)
 * and nothing is allocated. Each element of C is summed in the same order
 * whatever the thread count (blocks of rows are split between threads; the
 * order over q depends only on the shape), so results are bitwise
 * reproducible. Called inside a parallel region, or for a product under
 * KG_NARROW_PARALLEL_MIN_FLOPS multiply-adds, it is serial.
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
#    define KG_NARROW_PARALLEL_MIN_FLOPS (1 << 22)
#  endif
/* the dot and columns forms: N at most this (2N accumulators + 3 vectors) */
#  define KG__NARROW_DOT_N 12
#  define KG__NARROW_UNROLL_N _Pragma("GCC unroll 12")
/* the dot form's packed B^T: 48 KB of stack */
#  define KG__NARROW_DKC(T) (49152 / (KG__NARROW_DOT_N * (ptrdiff_t)sizeof(T)))
/* the columns form's second half of K: its partial C, 64 KB of stack */
#  define KG__NARROW_PBUF(T) (65536 / (ptrdiff_t)sizeof(T))

#  define KG__NARROW(T, SFX)                                                    \
typedef T kg__nv_##SFX __attribute__((vector_size(KG__NARROW_VBYTES)));           \
enum { KG__NARROW_VL_##SFX = KG__NARROW_VBYTES / (int)sizeof(T) };               \
                                                                                 \
/* one element of C gets v: C = v (+ beta * C) on the first chunk of K,          \
 * C += v on the others */                                                       \
static inline void kg__narrow_put_##SFX(T *c, T v, T beta, int first)            \
{                                                                                \
    *c = first ? (beta == 0 ? v : v + beta * *c) : *c + v;                       \
}                                                                                \
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
            kg__narrow_put_##SFX(c + j, alpha * acc[r][j], beta, first);         \
        }                                                                        \
    }                                                                            \
}                                                                                \
                                                                                 \
/* a vector's lanes summed in a fixed tree (halves added until one is left) */   \
static inline T kg__narrow_hsum_##SFX(kg__nv_##SFX v)                            \
{                                                                                \
    T s[KG__NARROW_VL_##SFX];                                                    \
    __builtin_memcpy(s, &v, sizeof v);                                           \
    KG__NARROW_UNROLL                                                            \
    for (int w = KG__NARROW_VL_##SFX / 2; w >= 1; w /= 2)                        \
        for (int l = 0; l < w; l++) s[l] += s[l + w];                            \
    return s[0];                                                                 \
}                                                                                \
                                                                                 \
/* the dot form: rows i and i + nr - 1 (nr 1 or 2) of C from the chunk's         \
 * kc columns of A and the packed Bt (row j of B^T at Bt + j * DKC). The         \
 * lanes' sums, then the chunk's last kc % VL columns one by one. pf: also       \
 * prefetch the next pair's rows. */                                             \
static inline __attribute__((always_inline)) void kg__narrow_dot_##SFX(          \
        ptrdiff_t i, int nr, ptrdiff_t N, ptrdiff_t kc, T alpha, const T *A,     \
        ptrdiff_t rsa, const T *Bt, T beta, int first, T *C, ptrdiff_t ldc,      \
        int pf)                                                                  \
{                                                                                \
    const ptrdiff_t dkc = KG__NARROW_DKC(T), vl = KG__NARROW_VL_##SFX;           \
    const ptrdiff_t kv = kc / vl * vl;                                           \
    const T *a0 = A + i * rsa, *a1 = A + (i + nr - 1) * rsa;                     \
    kg__nv_##SFX acc0[KG__NARROW_DOT_N], acc1[KG__NARROW_DOT_N];                 \
    KG__NARROW_UNROLL_N                                                          \
    for (int j = 0; j < KG__NARROW_DOT_N; j++)                                   \
        acc0[j] = acc1[j] = (kg__nv_##SFX){0};                                   \
    for (ptrdiff_t q = 0; q < kv; q += vl) {                                     \
        kg__nv_##SFX x0, x1;                                                     \
        if (pf && q % (64 / (ptrdiff_t)sizeof(T)) == 0) {                        \
            __builtin_prefetch(a0 + 2 * rsa + q);                                \
            __builtin_prefetch(a1 + 2 * rsa + q);                                \
        }                                                                        \
        __builtin_memcpy(&x0, a0 + q, sizeof x0);                                \
        __builtin_memcpy(&x1, a1 + q, sizeof x1);                                \
        KG__NARROW_UNROLL_N                                                      \
        for (int j = 0; j < KG__NARROW_DOT_N; j++) {                             \
            if (j < N) {                                                         \
                const kg__nv_##SFX w = *(const kg__nv_##SFX *)(Bt + j * dkc + q); \
                acc0[j] += x0 * w;                                               \
                acc1[j] += x1 * w;                                               \
            }                                                                    \
        }                                                                        \
    }                                                                            \
    for (int r = 0; r < nr; r++) {                                               \
        const T *ar = r ? a1 : a0;                                               \
        T *c = C + (i + r) * ldc;                                                \
        for (ptrdiff_t j = 0; j < N; j++) {                                      \
            T s = kg__narrow_hsum_##SFX(r ? acc1[j] : acc0[j]);                  \
            for (ptrdiff_t q = kv; q < kc; q++) s += ar[q] * Bt[j * dkc + q];    \
            kg__narrow_put_##SFX(c + j, alpha * s, beta, first);                 \
        }                                                                        \
    }                                                                            \
}                                                                                \
                                                                                 \
static void kg__narrow_dots_##SFX(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,         \
        T alpha, const T *A, ptrdiff_t rsa, const T *B, ptrdiff_t rsb,           \
        ptrdiff_t csb, T beta, T *C, ptrdiff_t ldc)                              \
{                                                                                \
    const ptrdiff_t dkc = KG__NARROW_DKC(T), np = (M + 1) / 2;                   \
    T Bt[KG__NARROW_DOT_N * KG__NARROW_DKC(T)] __attribute__((aligned(64)));     \
    for (ptrdiff_t k0 = 0; k0 < K; k0 += dkc) {                                  \
        const ptrdiff_t kc = K - k0 < dkc ? K - k0 : dkc;                        \
        const int first = k0 == 0;                                               \
        for (ptrdiff_t j = 0; j < N; j++)                                        \
            for (ptrdiff_t q = 0; q < kc; q++)                                   \
                Bt[j * dkc + q] = B[(k0 + q) * rsb + j * csb];                   \
        KG__NARROW_PRAGMA_FOR(M, N, K)                                           \
        for (ptrdiff_t p = 0; p < np; p++)                                       \
            kg__narrow_dot_##SFX(2 * p, 2 * p + 1 < M ? 2 : 1, N, kc, alpha,     \
                                 A + k0, rsa, Bt, beta, first, C, ldc,           \
                                 p + 1 < np);                                    \
    }                                                                            \
}                                                                                \
                                                                                 \
/* the columns form: rows [i, i + NV * VL) of C (NV 1 or 2, a constant) over     \
 * the columns [q0, q1) of A, into D (row stride ldd), which gets                \
 * alpha * sum (+ beta * D). */                                                  \
static inline __attribute__((always_inline)) void kg__narrow_col_##SFX(          \
        ptrdiff_t i, int NV, ptrdiff_t N, ptrdiff_t q0, ptrdiff_t q1, T alpha,   \
        const T *A, ptrdiff_t csa, const T *B, ptrdiff_t rsb, ptrdiff_t csb,     \
        T beta, T *D, ptrdiff_t ldd)                                             \
{                                                                                \
    const ptrdiff_t vl = KG__NARROW_VL_##SFX;                                    \
    kg__nv_##SFX acc0[KG__NARROW_DOT_N], acc1[KG__NARROW_DOT_N];                 \
    KG__NARROW_UNROLL_N                                                          \
    for (int j = 0; j < KG__NARROW_DOT_N; j++)                                   \
        acc0[j] = acc1[j] = (kg__nv_##SFX){0};                                   \
    for (ptrdiff_t q = q0; q < q1; q++) {                                        \
        const T *a = A + q * csa + i, *b = B + q * rsb;                          \
        kg__nv_##SFX x0, x1 = {0};                                               \
        if (q + 8 < q1) __builtin_prefetch(a + 8 * csa);                         \
        __builtin_memcpy(&x0, a, sizeof x0);                                     \
        if (NV == 2) {                                                           \
            if (q + 8 < q1) __builtin_prefetch(a + 8 * csa + vl);                \
            __builtin_memcpy(&x1, a + vl, sizeof x1);                            \
        }                                                                        \
        KG__NARROW_UNROLL_N                                                      \
        for (int j = 0; j < KG__NARROW_DOT_N; j++) {                             \
            if (j < N) {                                                         \
                const T bj = b[j * csb];                                         \
                acc0[j] += x0 * bj;                                              \
                if (NV == 2) acc1[j] += x1 * bj;                                 \
            }                                                                    \
        }                                                                        \
    }                                                                            \
    for (ptrdiff_t j = 0; j < N; j++)                                            \
        for (int l = 0; l < NV * vl; l++) {                                      \
            kg__narrow_put_##SFX(D + (i + l) * ldd + j,                          \
                    alpha * (l < vl ? acc0[j][l] : acc1[j][l - vl]), beta, 1);   \
        }                                                                        \
}                                                                                \
                                                                                 \
static void kg__narrow_cols_##SFX(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,         \
        T alpha, const T *A, ptrdiff_t csa, const T *B, ptrdiff_t rsb,           \
        ptrdiff_t csb, T beta, T *C, ptrdiff_t ldc)                              \
{                                                                                \
    T P[KG__NARROW_PBUF(T)];  /* the second half's partial C, M x N */           \
    const ptrdiff_t vl = KG__NARROW_VL_##SFX, nb = M / (2 * vl);                 \
    const ptrdiff_t rest = M - nb * 2 * vl, tail = rest >= vl ? 1 : 0;           \
    const ptrdiff_t cut = nb * 2 * vl + tail * vl;  /* rows below: one by one */ \
    const int halves = M * N <= KG__NARROW_PBUF(T) && K >= 64 ? 2 : 1;           \
    const ptrdiff_t kh = (K + halves - 1) / halves, nt = nb + tail;              \
    KG__NARROW_PRAGMA_FOR(M, N, K)                                               \
    for (ptrdiff_t t = 0; t < halves * nt; t++) {                                \
        const ptrdiff_t h = t / nt, blk = t % nt;                                \
        const ptrdiff_t q0 = h * kh, q1 = q0 + kh < K ? q0 + kh : K;             \
        T *d = h ? P : C;                                                        \
        const ptrdiff_t ldd = h ? N : ldc;                                       \
        const T bh = h ? 0 : beta;  /* the partial ignores what P held */        \
        if (blk < nb)                                                            \
            kg__narrow_col_##SFX(blk * 2 * vl, 2, N, q0, q1, alpha, A, csa,      \
                                 B, rsb, csb, bh, d, ldd);                       \
        else                                                                     \
            kg__narrow_col_##SFX(nb * 2 * vl, 1, N, q0, q1, alpha, A, csa,       \
                                 B, rsb, csb, bh, d, ldd);                       \
        if (blk == nt - 1)  /* the last rows, one by one, in order of q */       \
            for (ptrdiff_t i = cut; i < M; i++)                                  \
                for (ptrdiff_t j = 0; j < N; j++) {                              \
                    T s = 0;                                                     \
                    for (ptrdiff_t q = q0; q < q1; q++)                          \
                        s += A[q * csa + i] * B[q * rsb + j * csb];              \
                    kg__narrow_put_##SFX(d + i * ldd + j, alpha * s, bh, 1);     \
                }                                                                \
    }                                                                            \
    if (halves == 2)                                                             \
        for (ptrdiff_t i = 0; i < M; i++)                                        \
            for (ptrdiff_t j = 0; j < N; j++) C[i * ldc + j] += P[i * N + j];    \
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
    if (N <= KG__NARROW_DOT_N && csa == 1 && rsa > 0) {                          \
        kg__narrow_dots_##SFX(M, N, K, alpha, A, rsa, B, rsb, csb, beta, C, ldc); \
        return 1;                                                                \
    }                                                                            \
    if (N <= KG__NARROW_DOT_N && rsa == 1 && csa > 0 && M >= KG__NARROW_VL_##SFX) { \
        kg__narrow_cols_##SFX(M, N, K, alpha, A, csa, B, rsb, csb, beta, C, ldc); \
        return 1;                                                                \
    }                                                                            \
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
