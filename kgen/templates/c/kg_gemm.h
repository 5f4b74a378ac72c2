/* kg_gemm.h -- matrix multiply for kgen's generated C.
 *
 *   static void kg_gemm_f32(M, N, K, alpha, A, rsa, csa, B, rsb, csb,
 *                           beta, C, ldc)
 *   static void kg_gemm_f64(... the same with double ...)
 *
 * compute C = alpha * A @ B + beta * C, where A is M x K, B is K x N and C is
 * M x N.  Sizes and strides are ptrdiff_t, counted in elements, not bytes:
 *   A[i][k] is A[i*rsa + k*csa],  B[k][j] is B[k*rsb + j*csb],
 *   C[i][j] is C[i*ldc + j]  (C row-major with leading dimension ldc).
 * A and B may have any strides (transposed, sliced, reversed, broadcast), so
 * views need no copy.  Zero sizes work: M or N == 0 does nothing; K == 0 (or
 * alpha == 0) leaves C = beta * C.  beta == 0 never reads C, so NaN or garbage
 * there is overwritten, as in BLAS.
 *
 * Plain C99 without template syntax: kgen's C templates paste it verbatim
 * into generated sources.  It does not depend on kg_math.h.
 *
 * How it works (the BLIS/GotoBLAS scheme): B is packed by KC x NC blocks into
 * NR-wide slivers and A by MC x KC blocks into MR-tall slivers, in 64-byte
 * aligned buffers; a register-tiled MR x NR micro-kernel, written with gcc
 * vector extensions (plain C elsewhere), multiplies a sliver pair.  Tiles
 * follow the vector width: 12 x 2 vectors with AVX-512, 6 x 2 with AVX/AVX2
 * or the SSE2/NEON baselines; one vector wide when that pads a narrow N
 * less.  When N spans only a couple of slivers, A is read in place instead
 * of packed.  An x86-64 build for less than AVX-512 (a portable one) also
 * carries AVX2 and AVX-512 versions and picks one by CPUID at run time.
 * Build with -O3 -ffp-contract=fast, so that a*b+c becomes an FMA where the
 * target has one (-std=c99 alone turns contraction off).
 *
 * Threads: built with -fopenmp, a product of at least
 * KG_GEMM_PARALLEL_MIN_FLOPS multiply-adds runs on the default OpenMP team
 * (OMP_NUM_THREADS).  C is cut into one band of rows (or of columns, when
 * that duplicates less packing) per thread, and each thread runs the serial
 * product on its band with its own buffers: no barrier but the final join,
 * which keeps it fast on a busy machine.  (Packing B once for the whole
 * team, with a barrier per panel, measured no faster on 2 cores.)  Called
 * inside a parallel region it stays serial.  Each element of C is summed in
 * the same order whatever the thread count (the order depends only on
 * KG_GEMM_KC), so results are bitwise reproducible.  If memory runs out, a
 * loop without scratch memory computes the product.
 *
 * Using a BLAS instead: compile with -DKG_USE_CBLAS (plus the BLAS's include
 * and library flags) and kg_gemm_* call cblas_sgemm / cblas_dgemm whenever
 * CBLAS can express the strides (one unit stride per operand, sizes within
 * int); other calls still use the built-in kernel.  Symbols with a prefix:
 * add -DKG_CBLAS_PREFIX=<prefix>.  The pip wheel scipy-openblas32 ships a
 * cblas.h declaring scipy_cblas_sgemm, so it needs
 *   -DKG_USE_CBLAS -DKG_CBLAS_PREFIX=scipy_ -I<get_include_dir()>
 *   -L<get_lib_dir()> -lscipy_openblas -Wl,-rpath,<get_lib_dir()>
 * which kgen.build.flags.cblas_flags() returns (None without the wheel).
 *
 * Tunables (define before including): KG_GEMM_KC, KG_GEMM_MC, KG_GEMM_NC,
 * KG_GEMM_PARALLEL_MIN_FLOPS, KG_GEMM_MAX_ISA / KG_GEMM_NO_DISPATCH (run
 * time CPU dispatch), KG_GEMM_CACHE_BYTES / KG_GEMM_NO_CACHE (per-thread
 * buffers).  For tests: KG_GEMM_NAIVE forces the loop without scratch
 * memory, KG_GEMM_NO_VECTOR_EXT the plain-C micro-kernel.
 */
#ifndef KG_GEMM_H
#define KG_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#  include <omp.h>
#endif
#ifdef KG_USE_CBLAS
#  include <limits.h>
#  include <cblas.h>
#endif

/* ---- geometry ------------------------------------------------------------ */
#if defined(__GNUC__) && !defined(KG_GEMM_NO_VECTOR_EXT)
#  define KG__GEMM_VEXT 1
#endif

/* The family for the compile-time target.  MR x 2 vectors: 24 accumulators
 * of AVX-512's 32 registers, 12 of the 16 that AVX2 and SSE2 have. */
#if defined(__AVX512F__)
#  define KG__GEMM_BASE_VBYTES 64
#  define KG__GEMM_BASE_MR 12
#elif defined(__AVX__)
#  define KG__GEMM_BASE_VBYTES 32
#  define KG__GEMM_BASE_MR 6
#else
#  define KG__GEMM_BASE_VBYTES 16
#  define KG__GEMM_BASE_MR 6
#endif

/* x86-64 builds for less than AVX-512 (e.g. portable ones) also carry
 * AVX2+FMA and AVX-512 families and pick one by CPUID at run time, so a
 * package built for the baseline multiplies at full speed everywhere.
 * KG_GEMM_MAX_ISA (0 baseline, 1 AVX2, 2 AVX-512) caps the choice;
 * KG_GEMM_NO_DISPATCH drops the extra families. */
#if defined(KG__GEMM_VEXT) && defined(__x86_64__) && !defined(__AVX512F__)     \
    && !defined(KG_GEMM_NO_DISPATCH) && (defined(__clang__) || __GNUC__ >= 6)
#  define KG__GEMM_DISPATCH 1
#  if !(defined(__AVX2__) && defined(__FMA__))
#    define KG__GEMM_DISPATCH_AVX2 1
#  endif
#endif
#ifndef KG_GEMM_MAX_ISA
#  define KG_GEMM_MAX_ISA 2
#endif

/* The KC x NR sliver of B stays in L1 (32 KiB for float with AVX-512), the
 * MC x KC block of A in L2, the KC x NC panel of B in L3. */
#ifndef KG_GEMM_KC
#  define KG_GEMM_KC 256
#endif
#ifndef KG_GEMM_MC
#  define KG_GEMM_MC 144
#endif
#ifndef KG_GEMM_NC
#  define KG_GEMM_NC 3072
#endif
#ifndef KG_GEMM_PARALLEL_MIN_FLOPS
#  define KG_GEMM_PARALLEL_MIN_FLOPS (48.0 * 48.0 * 48.0)
#endif

/* N within this many slivers: each A sliver would be used that often, so A
 * is read in place rather than packed. */
#define KG__GEMM_DIRECT_SLIVERS 2

#define KG__MIN(a, b) ((a) < (b) ? (a) : (b))
#define KG__ROUND_UP(n, w) (((n) + (w) - 1) / (w) * (w))

/* Generated code may use one type only: no unused-function warnings.
 * The big functions stay out of line: inlining or cloning them buys nothing
 * and would copy them into every OpenMP region (compile time). */
#if defined(__GNUC__)
#  define KG__STATIC static __attribute__((unused))
#  if defined(__clang__)
#    define KG__NOINLINE __attribute__((noinline))
#  else
#    define KG__NOINLINE __attribute__((noinline, noclone))
#  endif
#else
#  define KG__STATIC static
#  define KG__NOINLINE
#endif
/* kgen's split builds (prelude.h) share kg_gemm_* between their units */
#ifndef KG_GEMM_LINKAGE
#  define KG_GEMM_LINKAGE KG__STATIC
#endif

/* Packing buffers.  Allocating them per call costs page faults and, with
 * threads, TLB shootdowns when malloc hands the memory back, so each thread
 * keeps its largest buffers (one for A, one for B; up to KG_GEMM_CACHE_BYTES
 * each) for the next call, as OpenBLAS does.  Needs thread-local storage
 * (gcc/clang __thread); define KG_GEMM_NO_CACHE to allocate per call
 * instead.  Caveat: a cached buffer is released when the process ends, not
 * when its thread does. */
#ifndef KG_GEMM_CACHE_BYTES
#  define KG_GEMM_CACHE_BYTES ((size_t)16 << 20)
#endif
#if defined(__GNUC__) && !defined(KG_GEMM_NO_CACHE)
#  define KG__GEMM_CACHE 1
static __thread void *kg__gemm_cache_raw[2];
static __thread size_t kg__gemm_cache_size[2];
#endif

/* The micro-kernel's small constant loops must unroll fully (so that the
 * accumulators live in registers) even at -O2, which would not do it alone. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#  define KG__UNROLL _Pragma("GCC unroll 32")
#else
#  define KG__UNROLL
#endif

#define KG__ALIGN64(p) ((void *)(((uintptr_t)(p) + 63) & ~(uintptr_t)63))
#define KG__BYTES64(n) (((size_t)(n) + 63) / 64 * 64)

/* 64-byte aligned scratch of `bytes` from this thread's cache `slot` (0 for
 * A, 1 for B); *to_free is what the caller frees afterwards (NULL when the
 * cache served it).  NULL if out of memory. */
KG__STATIC void *kg__gemm_scratch(int slot, size_t bytes, void **to_free)
{
    *to_free = NULL;
#ifdef KG__GEMM_CACHE
    if (bytes <= KG_GEMM_CACHE_BYTES) {
        if (kg__gemm_cache_size[slot] < bytes) {
            free(kg__gemm_cache_raw[slot]);
            kg__gemm_cache_raw[slot] = malloc(bytes + 64);
            kg__gemm_cache_size[slot] = kg__gemm_cache_raw[slot] ? bytes : 0;
            if (!kg__gemm_cache_raw[slot])
                return NULL;
        }
        return KG__ALIGN64(kg__gemm_cache_raw[slot]);
    }
#else
    (void)slot;
#endif
    *to_free = malloc(bytes + 64);
    return *to_free ? KG__ALIGN64(*to_free) : NULL;
}

/* Which family runs: 0 compile-time target, 1 AVX2+FMA, 2 AVX-512F. */
KG__STATIC int kg__gemm_isa(void)
{
#ifdef KG__GEMM_DISPATCH
    __builtin_cpu_init();
    if (KG_GEMM_MAX_ISA >= 2 && __builtin_cpu_supports("avx512f"))
        return 2;
#  ifdef KG__GEMM_DISPATCH_AVX2
    if (KG_GEMM_MAX_ISA >= 1 && __builtin_cpu_supports("avx2")
        && __builtin_cpu_supports("fma"))
        return 1;
#  endif
#endif
    return 0;
}

/* Micro-tile height and vector bytes of family `isa`. */
KG__STATIC void kg__gemm_geometry(int isa, ptrdiff_t *mr, ptrdiff_t *vbytes)
{
    *mr = isa == 2 ? 12 : isa == 1 ? 6 : KG__GEMM_BASE_MR;
    *vbytes = isa == 2 ? 64 : isa == 1 ? 32 : KG__GEMM_BASE_VBYTES;
}

/* Band `t` of `nt` over n items in units of `unit`, as [*lo, *hi). */
KG__STATIC void kg__gemm_band(ptrdiff_t n, ptrdiff_t unit, int t, int nt,
                              ptrdiff_t *lo, ptrdiff_t *hi)
{
    ptrdiff_t units = (n + unit - 1) / unit;
    *lo = KG__MIN(n, units * t / nt * unit);
    *hi = KG__MIN(n, units * (t + 1) / nt * unit);
}

/* ---- pieces shared by all families, per type ----------------------------- */

/* The product without scratch memory: the fallback when malloc fails. */
#define KG__GEMM_NAIVE(T)                                                      \
KG__STATIC void kg__gemm_naive_##T(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,      \
        T alpha, const T *A, ptrdiff_t rsa, ptrdiff_t csa,                     \
        const T *B, ptrdiff_t rsb, ptrdiff_t csb, T beta, T *C, ptrdiff_t ldc) \
{                                                                              \
    ptrdiff_t i, j, k;                                                         \
    for (i = 0; i < M; i++)                                                    \
        for (j = 0; j < N; j++) {                                              \
            T acc = 0;                                                         \
            for (k = 0; k < K; k++)                                            \
                acc += A[i * rsa + k * csa] * B[k * rsb + j * csb];            \
            C[i * ldc + j] = beta == 0 ? alpha * acc                           \
                                       : alpha * acc + beta * C[i * ldc + j];  \
        }                                                                      \
}

/* C = beta * C, for K == 0 or alpha == 0. */
#define KG__GEMM_SCALE(T)                                                      \
KG__STATIC void kg__gemm_scale_##T(ptrdiff_t M, ptrdiff_t N, T beta, T *C,     \
        ptrdiff_t ldc)                                                         \
{                                                                              \
    ptrdiff_t i, j;                                                            \
    for (i = 0; i < M; i++)                                                    \
        for (j = 0; j < N; j++)                                                \
            C[i * ldc + j] = beta == 0 ? (T)0 : beta * C[i * ldc + j];         \
}

/* ---- one family: packing, micro-kernels, one block ------------------------
 * Stamped out per type T and family F with vector bytes VB, tile height MR_
 * and ATTR, the target attribute of a dispatched family (empty for base). */

/* Write the mr x nr corner of tile t (rows tstride apart) into C:
 * C = alpha*t + beta*C, or C += alpha*t for later K blocks (first == 0).
 * The same expressions as the vector path, so every element rounds alike.
 * (Compiled per family: with a narrow N every tile goes through here.) */
#define KG__GEMM_STORE(T, F, ATTR)                                             \
ATTR KG__STATIC KG__NOINLINE void kg__gemm_store_##T##_##F(const T *t,         \
        ptrdiff_t tstride, ptrdiff_t mr, ptrdiff_t nr, T alpha, T beta,        \
        int first, T *C, ptrdiff_t ldc)                                        \
{                                                                              \
    ptrdiff_t i, j;                                                            \
    for (i = 0; i < mr; i++) {                                                 \
        T *c = C + i * ldc;                                                    \
        const T *ti = t + i * tstride;                                         \
        if (!first)                                                            \
            for (j = 0; j < nr; j++) c[j] = c[j] + alpha * ti[j];              \
        else if (beta == 0)                                                    \
            for (j = 0; j < nr; j++) c[j] = alpha * ti[j];                     \
        else                                                                   \
            for (j = 0; j < nr; j++) c[j] = alpha * ti[j] + beta * c[j];       \
    }                                                                          \
}

/* Pack an mc x kc block of A into MR-tall slivers [s0, s1), each laid out
 * k-major (sliver[k*MR + r]); the last sliver is padded with zeros. */
#define KG__GEMM_PACK_A(T, F, MR_, ATTR)                                       \
ATTR KG__STATIC void kg__gemm_pack_a_##T##_##F(ptrdiff_t s0, ptrdiff_t s1,     \
        ptrdiff_t mc, ptrdiff_t kc, const T *A, ptrdiff_t rsa, ptrdiff_t csa,  \
        T *pa)                                                                 \
{                                                                              \
    enum { MR = MR_ };                                                         \
    ptrdiff_t s, k, r;                                                         \
    for (s = s0; s < s1; s++) {                                                \
        T *dst = pa + s * MR * kc;                                             \
        ptrdiff_t rows = KG__MIN(MR, mc - s * MR);                             \
        const T *src = A + s * MR * rsa;                                       \
        if (rows == MR) {                                                      \
            for (k = 0; k < kc; k++)                                           \
                for (r = 0; r < MR; r++)                                       \
                    dst[k * MR + r] = src[r * rsa + k * csa];                  \
        } else {                                                               \
            for (k = 0; k < kc; k++) {                                         \
                for (r = 0; r < rows; r++)                                     \
                    dst[k * MR + r] = src[r * rsa + k * csa];                  \
                for (; r < MR; r++)                                            \
                    dst[k * MR + r] = 0;                                       \
            }                                                                  \
        }                                                                      \
    }                                                                          \
}

/* Pack a kc x nc block of B into nr-wide slivers [s0, s1), each laid out
 * k-major (sliver[k*nr + j]); the last sliver is padded with zeros. */
#define KG__GEMM_PACK_B(T, F, VB, ATTR)                                        \
ATTR KG__STATIC void kg__gemm_pack_b_##T##_##F(ptrdiff_t s0, ptrdiff_t s1,     \
        ptrdiff_t nr, ptrdiff_t nc, ptrdiff_t kc, const T *B, ptrdiff_t rsb,   \
        ptrdiff_t csb, T *pb)                                                  \
{                                                                              \
    enum { VL = (VB) / sizeof(T) };                                            \
    ptrdiff_t s, k, j;                                                         \
    for (s = s0; s < s1; s++) {                                                \
        T *dst = pb + s * nr * kc;                                             \
        ptrdiff_t cols = KG__MIN(nr, nc - s * nr);                             \
        const T *src = B + s * nr * csb;                                       \
        if (cols == nr && csb == 1 && nr == 2 * VL) {                          \
            /* Constant sizes: inlined as vector moves, not a libc call. */    \
            for (k = 0; k < kc; k++)                                           \
                memcpy(dst + k * nr, src + k * rsb, 2 * VL * sizeof(T));       \
        } else if (cols == nr && csb == 1) {                                   \
            for (k = 0; k < kc; k++)                                           \
                memcpy(dst + k * nr, src + k * rsb, VL * sizeof(T));           \
        } else {                                                               \
            for (k = 0; k < kc; k++) {                                         \
                for (j = 0; j < cols; j++)                                     \
                    dst[k * nr + j] = src[k * rsb + j * csb];                  \
                for (; j < nr; j++)                                            \
                    dst[k * nr + j] = 0;                                       \
            }                                                                  \
        }                                                                      \
    }                                                                          \
}

/* Micro-kernel V: an MR x (NV vectors) tile of C from kc steps of A and of a
 * packed B sliver.  A's element (i, k) is a[i*AROW + k*AK]: AROW = 1 and
 * AK = MR for a packed sliver ("p"), the caller's strides (ars, aks) when A
 * is read in place ("d"). */
#ifdef KG__GEMM_VEXT
/* On vector extensions.  acc[][] is indexed by constants once the loops are
 * unrolled, so it lives in registers; each k step loads NV vectors of B and
 * broadcasts MR scalars of A. */
#define KG__GEMM_UKR(T, F, V, VB, MR_, NV, AROW, AK, ATTR)                     \
ATTR KG__STATIC KG__NOINLINE void kg__gemm_ukr_##V##_##T##_##F(                \
        ptrdiff_t kc, const T *restrict a, ptrdiff_t ars, ptrdiff_t aks,       \
        const T *restrict pb, ptrdiff_t mr, ptrdiff_t nr, T alpha, T beta,     \
        int first, T *restrict C, ptrdiff_t ldc)                               \
{                                                                              \
    typedef T vec __attribute__((vector_size(VB)));                            \
    /* rows of C are only element-aligned */                                   \
    typedef T vecu __attribute__((vector_size(VB), aligned(sizeof(T)),         \
                                  may_alias));                                 \
    enum { MR = MR_, VL = (VB) / sizeof(T) };                                  \
    vec acc[MR_][NV];                                                          \
    ptrdiff_t k;                                                               \
    int i, v;                                                                  \
    (void)ars;                                                                 \
    (void)aks;                                                                 \
    KG__UNROLL                                                                 \
    for (i = 0; i < MR; i++)                                                   \
        KG__UNROLL                                                             \
        for (v = 0; v < (NV); v++) acc[i][v] = (vec){0};                       \
    for (k = 0; k < kc; k++) {                                                 \
        const vec *b = (const vec *)(pb + k * (NV) * VL);                      \
        const T *ak = a + k * (AK);                                            \
        KG__UNROLL                                                             \
        for (i = 0; i < MR; i++)                                               \
            KG__UNROLL                                                         \
            for (v = 0; v < (NV); v++) acc[i][v] += ak[i * (AROW)] * b[v];     \
    }                                                                          \
    if (mr == MR && nr == (NV) * VL) {                                         \
        KG__UNROLL                                                             \
        for (i = 0; i < MR; i++) {                                             \
            vecu *c = (vecu *)(C + i * ldc);                                   \
            KG__UNROLL                                                         \
            for (v = 0; v < (NV); v++) {                                       \
                if (!first)                                                    \
                    c[v] = c[v] + alpha * acc[i][v];                           \
                else if (beta == 0)                                            \
                    c[v] = alpha * acc[i][v];                                  \
                else                                                           \
                    c[v] = alpha * acc[i][v] + beta * c[v];                    \
            }                                                                  \
        }                                                                      \
    } else {                                                                   \
        T tile[(MR_) * (NV) * ((VB) / sizeof(T))];                             \
        memcpy(tile, acc, sizeof tile);                                        \
        kg__gemm_store_##T##_##F(tile, (NV) * VL, mr, nr, alpha, beta, first,  \
                                 C, ldc);                                      \
    }                                                                          \
}
#else
/* Portable: the same tiling in scalar C, which compilers may vectorize. */
#define KG__GEMM_UKR(T, F, V, VB, MR_, NV, AROW, AK, ATTR)                     \
ATTR KG__STATIC KG__NOINLINE void kg__gemm_ukr_##V##_##T##_##F(                \
        ptrdiff_t kc, const T *restrict a, ptrdiff_t ars, ptrdiff_t aks,       \
        const T *restrict pb, ptrdiff_t mr, ptrdiff_t nr, T alpha, T beta,     \
        int first, T *restrict C, ptrdiff_t ldc)                               \
{                                                                              \
    enum { MR = MR_, NR = (NV) * ((VB) / sizeof(T)) };                         \
    T acc[(MR_) * (NV) * ((VB) / sizeof(T))];                                  \
    ptrdiff_t k;                                                               \
    int i, j;                                                                  \
    (void)ars;                                                                 \
    (void)aks;                                                                 \
    for (i = 0; i < MR * NR; i++) acc[i] = 0;                                  \
    for (k = 0; k < kc; k++)                                                   \
        for (i = 0; i < MR; i++)                                               \
            for (j = 0; j < NR; j++)                                           \
                acc[i * NR + j] += a[i * (AROW) + k * (AK)] * pb[k * NR + j];  \
    kg__gemm_store_##T##_##F(acc, NR, mr, nr, alpha, beta, first, C, ldc);     \
}
#endif

/* One block: C[mc x nc] (+)= alpha * A[mc x kc] @ (packed B panel), packing A
 * into pa first (only its last, partial sliver when `direct`: the others are
 * read in place).  Tiles go j-major, so that a B sliver stays in L1 while
 * the kernel walks down the A block. */
#define KG__GEMM_BLOCK(T, F, MR_, ATTR)                                        \
ATTR KG__STATIC KG__NOINLINE void kg__gemm_block_##T##_##F(ptrdiff_t mc,       \
        ptrdiff_t nc, ptrdiff_t kc, const T *A, ptrdiff_t rsa, ptrdiff_t csa,  \
        T *pa, const T *pb, ptrdiff_t nr, int direct, T alpha, T beta,         \
        int first, T *C, ptrdiff_t ldc)                                        \
{                                                                              \
    enum { MR = MR_ };                                                         \
    ptrdiff_t mb = (mc + MR - 1) / MR, mfull = direct ? mc / MR : 0, jr, ir;   \
    int wide = nr * (ptrdiff_t)sizeof(T) > (ptrdiff_t)(KG__GEMM_VB_##F);       \
    kg__gemm_pack_a_##T##_##F(mfull, mb, mc, kc, A, rsa, csa, pa);             \
    for (jr = 0; jr < nc; jr += nr) {                                          \
        ptrdiff_t nrr = KG__MIN(nr, nc - jr);                                  \
        const T *bs = pb + jr * kc;                                            \
        for (ir = 0; ir < mb; ir++) {                                          \
            ptrdiff_t mr = KG__MIN(MR, mc - ir * MR);                          \
            T *ct = C + ir * MR * ldc + jr;                                    \
            if (ir < mfull && wide)                                            \
                kg__gemm_ukr_d2_##T##_##F(kc, A + ir * MR * rsa, rsa, csa, bs, \
                                          mr, nrr, alpha, beta, first, ct, ldc); \
            else if (ir < mfull)                                               \
                kg__gemm_ukr_d1_##T##_##F(kc, A + ir * MR * rsa, rsa, csa, bs, \
                                          mr, nrr, alpha, beta, first, ct, ldc); \
            else if (wide)                                                     \
                kg__gemm_ukr_p2_##T##_##F(kc, pa + ir * MR * kc, 1, MR, bs,    \
                                          mr, nrr, alpha, beta, first, ct, ldc); \
            else                                                               \
                kg__gemm_ukr_p1_##T##_##F(kc, pa + ir * MR * kc, 1, MR, bs,    \
                                          mr, nrr, alpha, beta, first, ct, ldc); \
        }                                                                      \
    }                                                                          \
}

#define KG__GEMM_FAMILY(T, F, VB, MR_, ATTR)                                   \
    KG__GEMM_STORE(T, F, ATTR)                                                 \
    KG__GEMM_PACK_A(T, F, MR_, ATTR)                                           \
    KG__GEMM_PACK_B(T, F, VB, ATTR)                                            \
    KG__GEMM_UKR(T, F, p1, VB, MR_, 1, 1, MR_, ATTR)                           \
    KG__GEMM_UKR(T, F, p2, VB, MR_, 2, 1, MR_, ATTR)                           \
    KG__GEMM_UKR(T, F, d1, VB, MR_, 1, ars, aks, ATTR)                         \
    KG__GEMM_UKR(T, F, d2, VB, MR_, 2, ars, aks, ATTR)                         \
    KG__GEMM_BLOCK(T, F, MR_, ATTR)

#define KG__GEMM_VB_base KG__GEMM_BASE_VBYTES
#define KG__GEMM_VB_avx2 32
#define KG__GEMM_VB_avx512 64

/* The families this build carries, and a call to family `isa`'s function. */
#ifdef KG__GEMM_DISPATCH
#  define KG__GEMM_FAMILIES(T)                                                 \
    KG__GEMM_FAMILY(T, base, KG__GEMM_BASE_VBYTES, KG__GEMM_BASE_MR, )         \
    KG__GEMM_FAMILY(T, avx512, 64, 12,                                         \
                    __attribute__((target("avx512f,avx2,fma"))))               \
    KG__GEMM_FAMILY_AVX2(T)
#  define KG__GEMM_CALL_AVX512(name, T, args)                                  \
    if (isa == 2) kg__gemm_##name##_##T##_avx512 args; else
#else
#  define KG__GEMM_FAMILIES(T)                                                 \
    KG__GEMM_FAMILY(T, base, KG__GEMM_BASE_VBYTES, KG__GEMM_BASE_MR, )
#  define KG__GEMM_CALL_AVX512(name, T, args)
#endif
#ifdef KG__GEMM_DISPATCH_AVX2
#  define KG__GEMM_FAMILY_AVX2(T)                                              \
    KG__GEMM_FAMILY(T, avx2, 32, 6, __attribute__((target("avx2,fma"))))
#  define KG__GEMM_CALL_AVX2(name, T, args)                                    \
    if (isa == 1) kg__gemm_##name##_##T##_avx2 args; else
#else
#  define KG__GEMM_FAMILY_AVX2(T)
#  define KG__GEMM_CALL_AVX2(name, T, args)
#endif
#define KG__GEMM_CALL(name, T, args)                                           \
    KG__GEMM_CALL_AVX512(name, T, args)                                        \
    KG__GEMM_CALL_AVX2(name, T, args)                                          \
    kg__gemm_##name##_##T##_base args

/* ---- the blocked product and its threads -------------------------------- */

/* Bytes of the B panel buffer for an N-wide product (any family's NR). */
#define KG__GEMM_PANEL_BYTES(T, N, K)                                          \
    (sizeof(T) * (size_t)KG__MIN((ptrdiff_t)KG_GEMM_NC,                        \
                                 KG__ROUND_UP(N, 128 / (ptrdiff_t)sizeof(T)))  \
               * (size_t)KG__MIN((ptrdiff_t)KG_GEMM_KC, K))

/* The serial product on family `isa`.  Loop nest, outer to inner: jc over N
 * by NC, pc over K by KC (pack B), ic over M by MC (pack A, then the block's
 * tiles). */
#define KG__GEMM_SERIAL(T)                                                     \
KG__STATIC void kg__gemm_serial_##T(int isa, ptrdiff_t M, ptrdiff_t N,         \
        ptrdiff_t K, T alpha, const T *A, ptrdiff_t rsa, ptrdiff_t csa,        \
        const T *B, ptrdiff_t rsb, ptrdiff_t csb, T beta, T *C, ptrdiff_t ldc) \
{                                                                              \
    ptrdiff_t mr, vbytes, nr, jc, pc, ic;                                      \
    int direct;                                                                \
    void *a_free, *b_free;                                                     \
    T *pa, *pb;                                                                \
    kg__gemm_geometry(isa, &mr, &vbytes);                                      \
    nr = vbytes / (ptrdiff_t)sizeof(T);                                        \
    /* Tiles one vector wide when that pads N less (narrow outputs). */        \
    if (KG__ROUND_UP(N, 2 * nr) <= KG__ROUND_UP(N, nr))                        \
        nr *= 2;                                                               \
    direct = KG__ROUND_UP(N, nr) <= KG__GEMM_DIRECT_SLIVERS * nr;              \
    pa = (T *)kg__gemm_scratch(0, sizeof(T) * (size_t)(KG__MIN(KG_GEMM_MC,     \
            KG__ROUND_UP(M, mr)) * KG__MIN(KG_GEMM_KC, K)), &a_free);          \
    pb = (T *)kg__gemm_scratch(1, KG__GEMM_PANEL_BYTES(T, N, K), &b_free);     \
    if (!pa || !pb) {                                                          \
        kg__gemm_naive_##T(KG__GEMM_ARGS);                                     \
    } else {                                                                   \
        for (jc = 0; jc < N; jc += KG_GEMM_NC) {                               \
            ptrdiff_t nc = KG__MIN((ptrdiff_t)KG_GEMM_NC, N - jc);             \
            for (pc = 0; pc < K; pc += KG_GEMM_KC) {                           \
                ptrdiff_t kc = KG__MIN((ptrdiff_t)KG_GEMM_KC, K - pc);         \
                KG__GEMM_CALL(pack_b, T, (0, (nc + nr - 1) / nr, nr, nc, kc,   \
                                          B + pc * rsb + jc * csb, rsb, csb,   \
                                          pb));                                \
                for (ic = 0; ic < M; ic += KG_GEMM_MC) {                       \
                    ptrdiff_t mc = KG__MIN((ptrdiff_t)KG_GEMM_MC, M - ic);     \
                    KG__GEMM_CALL(block, T, (mc, nc, kc,                       \
                                             A + ic * rsa + pc * csa, rsa, csa, \
                                             pa, pb, nr, direct, alpha, beta,  \
                                             pc == 0, C + ic * ldc + jc, ldc)); \
                }                                                              \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    free(a_free);                                                              \
    free(b_free);                                                              \
}
#define KG__GEMM_ARGS M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc

/* Whether to cut C into row bands (each thread packs all of B) rather than
 * column bands (each packs all of A): whichever duplicates less packing.
 * Contiguous copies count a quarter of strided gathers. */
KG__STATIC int kg__gemm_split_rows(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                                   ptrdiff_t rsa, ptrdiff_t csb, int nt,
                                   ptrdiff_t mr, ptrdiff_t nr)
{
    double cost_a = (double)M * (double)K * (rsa == 1 ? 0.25 : 1.0);
    double cost_b = (double)K * (double)N * (csb == 1 ? 0.25 : 1.0);
    int rows_ok = (M + mr - 1) / mr >= nt, cols_ok = (N + nr - 1) / nr >= nt;
    if (rows_ok != cols_ok)
        return rows_ok;
    if (!rows_ok)
        return M / mr >= N / nr;
    return cost_b <= cost_a;
}

#ifdef _OPENMP
/* On the default team: C cut into one band of rows (or of columns) per
 * thread, each band a serial product with the thread's own buffers, so
 * there is no barrier but the final join (robust on a busy machine). */
#  define KG__GEMM_THREADED(T)                                                 \
    if ((double)M * (double)N * (double)K >= KG_GEMM_PARALLEL_MIN_FLOPS        \
        && !omp_in_parallel() && omp_get_max_threads() > 1) {                  \
        int nt = omp_get_max_threads(), rows;                                  \
        ptrdiff_t mr, vbytes, nr;                                              \
        kg__gemm_geometry(isa, &mr, &vbytes);                                  \
        nr = 2 * vbytes / (ptrdiff_t)sizeof(T);                                \
        rows = kg__gemm_split_rows(M, N, K, rsa, csb, nt, mr, nr);             \
        _Pragma("omp parallel num_threads(nt)")                                \
        {                                                                      \
            ptrdiff_t lo, hi;                                                  \
            int t = omp_get_thread_num(), n = omp_get_num_threads();           \
            kg__gemm_band(rows ? M : N, rows ? mr : nr, t, n, &lo, &hi);       \
            if (hi > lo && rows)                                               \
                kg__gemm_serial_##T(isa, hi - lo, N, K, alpha, A + lo * rsa,   \
                                    rsa, csa, B, rsb, csb, beta, C + lo * ldc, \
                                    ldc);                                      \
            else if (hi > lo)                                                  \
                kg__gemm_serial_##T(isa, M, hi - lo, K, alpha, A, rsa, csa,    \
                                    B + lo * csb, rsb, csb, beta, C + lo, ldc); \
        }                                                                      \
        return;                                                                \
    }
#else
#  define KG__GEMM_THREADED(T)
#endif

#ifdef KG_USE_CBLAS
#  ifndef KG_CBLAS_PREFIX
#    define KG_CBLAS_PREFIX
#  endif
#  define KG__CAT(a, b) a##b
#  define KG__XCAT(a, b) KG__CAT(a, b)
#  define KG__CBLAS(name) KG__XCAT(KG_CBLAS_PREFIX, name)
/* How row-major CBLAS can read a rows x cols operand with strides (rs, cs):
 * as is (cs == 1), transposed (rs == 1), or not at all (returns 0). */
KG__STATIC int kg__cblas_layout(ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t rs,
                                ptrdiff_t cs, enum CBLAS_TRANSPOSE *trans, int *ld)
{
    ptrdiff_t ld_;
    if (cs == 1 && (rows == 1 || rs >= (cols > 1 ? cols : 1))) {
        *trans = CblasNoTrans;
        ld_ = rows == 1 ? (cols > 1 ? cols : 1) : rs;
    } else if (rs == 1 && (cols == 1 || cs >= (rows > 1 ? rows : 1))) {
        *trans = CblasTrans;
        ld_ = cols == 1 ? (rows > 1 ? rows : 1) : cs;
    } else {
        return 0;
    }
    if (ld_ > INT_MAX)
        return 0;
    *ld = (int)ld_;
    return 1;
}
#  define KG__GEMM_TRY_CBLAS(name)                                             \
    {                                                                          \
        enum CBLAS_TRANSPOSE ta, tb;                                           \
        int lda, ldb;                                                          \
        if (M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && ldc <= INT_MAX     \
            && ldc >= (N > 1 ? N : 1)                                          \
            && kg__cblas_layout(M, K, rsa, csa, &ta, &lda)                     \
            && kg__cblas_layout(K, N, rsb, csb, &tb, &ldb)) {                  \
            KG__CBLAS(name)(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K,     \
                            alpha, A, lda, B, ldb, beta, C, (int)ldc);         \
            return;                                                            \
        }                                                                      \
    }
#else
#  define KG__GEMM_TRY_CBLAS(name)
#endif


#ifdef KG_GEMM_NAIVE
#  undef KG__GEMM_THREADED
#  define KG__GEMM_THREADED(T)
#  define KG__GEMM_RUN(T) kg__gemm_naive_##T(KG__GEMM_ARGS)
#else
#  define KG__GEMM_RUN(T) kg__gemm_serial_##T(isa, KG__GEMM_ARGS)
#endif

#define KG__GEMM_API(T, SFX, BLASNAME)                                         \
KG_GEMM_LINKAGE void kg_gemm_##SFX(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, T alpha,  \
        const T *A, ptrdiff_t rsa, ptrdiff_t csa,                              \
        const T *B, ptrdiff_t rsb, ptrdiff_t csb, T beta, T *C, ptrdiff_t ldc) \
{                                                                              \
    int isa;                                                                   \
    if (M <= 0 || N <= 0)                                                      \
        return;                                                                \
    if (K <= 0 || alpha == 0) {                                                \
        kg__gemm_scale_##T(M, N, beta, C, ldc);                                \
        return;                                                                \
    }                                                                          \
    KG__GEMM_TRY_CBLAS(BLASNAME)                                               \
    isa = kg__gemm_isa();                                                      \
    (void)isa;                                                                 \
    KG__GEMM_THREADED(T)                                                       \
    KG__GEMM_RUN(T);                                                           \
}

/* (kgen defines KG_GEMM_NO_F32 / KG_GEMM_NO_F64 where no product has that dtype) */
#ifndef KG_GEMM_NO_F32
KG__GEMM_NAIVE(float)
KG__GEMM_SCALE(float)
KG__GEMM_FAMILIES(float)
KG__GEMM_SERIAL(float)
KG__GEMM_API(float, f32, cblas_sgemm)
#endif
#ifndef KG_GEMM_NO_F64
KG__GEMM_NAIVE(double)
KG__GEMM_SCALE(double)
KG__GEMM_FAMILIES(double)
KG__GEMM_SERIAL(double)
KG__GEMM_API(double, f64, cblas_dgemm)
#endif

#endif /* KG_GEMM_H */
