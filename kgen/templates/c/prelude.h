/* ---- error codes and loop macros shared by the kernels below ---- */
#define KG_OK 0
#define KG_ESHAPE 1   /* shapes that do not fit: nothing was written */
#define KG_EINDEX 2   /* an index out of range */
#define KG_ENOMEM 3   /* a temporary could not be allocated */

/* record a message, set the return code and leave through the cleanup path */
#define KG_FAIL(code, ...) \
    do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); rc = (code); goto fail; } while (0)

/* shape-phase size arithmetic: 1 (and *r unset) where a op b leaves int64,
 * else 0 with the result in *r; sizes never wrap (gcc/clang builtins, or
 * the same checks spelled out for other C99 compilers) */
#if defined(__GNUC__) && (__GNUC__ >= 5 || defined(__clang__))
#  define kg_mul_overflows(a, b, r) __builtin_mul_overflow((int64_t)(a), (int64_t)(b), (r))
#  define kg_add_overflows(a, b, r) __builtin_add_overflow((int64_t)(a), (int64_t)(b), (r))
#  define kg_sub_overflows(a, b, r) __builtin_sub_overflow((int64_t)(a), (int64_t)(b), (r))
#else
static int kg_mul_overflows(int64_t a, int64_t b, int64_t *r)
{
    if (a > 0 ? (b > 0 ? a > INT64_MAX / b : b < INT64_MIN / a)
              : (b > 0 ? a < INT64_MIN / b : (a != 0 && b < INT64_MAX / a))) return 1;
    *r = a * b;
    return 0;
}
static int kg_add_overflows(int64_t a, int64_t b, int64_t *r)
{
    if (b > 0 ? a > INT64_MAX - b : a < INT64_MIN - b) return 1;
    *r = a + b;
    return 0;
}
static int kg_sub_overflows(int64_t a, int64_t b, int64_t *r)
{
    if (b < 0 ? a > INT64_MAX + b : a < INT64_MIN + b) return 1;
    *r = a - b;
    return 0;
}
#endif

#ifndef KG_EXPORT
#  define KG_EXPORT
#endif
#define KG_RESTRICT restrict

#ifdef _OPENMP
#  define KG_OMP_PARALLEL_FOR(n) \
     KG__PRAGMA(omp parallel for schedule(static) if ((n) >= KG_PARALLEL_MIN_N))
#else
#  define KG_OMP_PARALLEL_FOR(n)
#endif
#if defined(_OPENMP) || defined(KG_OPENMP_SIMD)
#  define KG_OMP_SIMD_REDUCTION(op, var) KG__PRAGMA(omp simd reduction(op:var))
#  define KG_OMP_SIMD_REDUCTION2(op, var, op2, var2) KG__PRAGMA(omp simd reduction(op:var) reduction(op2:var2))
#else
#  define KG_OMP_SIMD_REDUCTION(op, var)
#  define KG_OMP_SIMD_REDUCTION2(op, var, op2, var2)
#endif

/* a deterministic reduction keeps one partial result per thread */
#ifndef KG_MAX_THREADS
#  define KG_MAX_THREADS 256
#endif
/* max pooling's gradient handles this many windows of a row at a time */
#define KG_POOL_BLOCK 256
#ifdef _OPENMP
#  include <omp.h>
static inline int kg_team_size(void) {
    int t = omp_get_max_threads();
    return t < KG_MAX_THREADS ? t : KG_MAX_THREADS;
}
#endif

/* A kernel's temporaries live in one 64-byte aligned block per call (each
 * temporary at a 64-byte multiple offset). Up to KG_WORKSPACE_CACHE_BYTES the
 * block is kept, per thread and per kernel, for the next call: a block of
 * megabytes freed and allocated again on every call goes back to the kernel
 * (heap trim, munmap) and is page-faulted and zeroed anew each time, which
 * cost a training step of a denoising autoencoder a quarter of its time
 * (benchmarks/bench_random.py). Larger blocks, and compilers without
 * thread-local storage, take a fresh block per call. The kept block is
 * released when the process ends, not when its thread does. */
#ifndef KG_WORKSPACE_CACHE_BYTES
#  define KG_WORKSPACE_CACHE_BYTES ((size_t)64 << 20)
#endif
#if defined(__GNUC__) && !defined(KG_NO_WORKSPACE_CACHE)
#  define KG_THREAD_LOCAL __thread
#  define KG_WORKSPACE_CACHE 1
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_THREADS__) \
    && !defined(KG_NO_WORKSPACE_CACHE)
#  define KG_THREAD_LOCAL _Thread_local
#  define KG_WORKSPACE_CACHE 1
#endif
#define KG_WS_ROUND(bytes) (((size_t)(bytes) + 63u) / 64u * 64u)
typedef struct { void *raw; size_t size; } kg_ws_cache;

/* `bytes` of 64-byte aligned scratch, from `cache` when it may keep them
 * (cache NULL: never); *to_free is what the caller frees on exit (NULL when
 * the cache serves the block). NULL when out of memory. */
static inline char *kg_workspace(kg_ws_cache *cache, size_t bytes, void **to_free)
{
    *to_free = NULL;
    if (cache && bytes <= KG_WORKSPACE_CACHE_BYTES) {
        if (cache->size < bytes) {
            free(cache->raw);
            cache->raw = malloc(bytes + 64);
            cache->size = cache->raw ? bytes : 0;
            if (!cache->raw)
                return NULL;
        }
        return (char *)(((uintptr_t)cache->raw + 63u) & ~(uintptr_t)63u);
    }
    *to_free = malloc(bytes + 64);
    return *to_free ? (char *)(((uintptr_t)*to_free + 63u) & ~(uintptr_t)63u) : NULL;
}

/* gcc >= 11 warns that a temporary filled by one loop "may be used
 * uninitialized" when a GEMM then reads it through a const pointer: it cannot
 * see that one of the loop's branches always runs. A false positive. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
