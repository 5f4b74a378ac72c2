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

/* outlined loops (a long fused body cut into part functions, each one
 * element at a time): gcc never optimises one huge function */
#if defined(__GNUC__)
#  define KG_NOINLINE __attribute__((noinline))
#else
#  define KG_NOINLINE
#endif
#if defined(__GNUC__)
#  define KG_MAYBE_UNUSED __attribute__((unused))
#else
#  define KG_MAYBE_UNUSED
#endif
/* A file with many parts or heavy step groups may also be compiled as two
 * translation units at once and linked (kgen.build.compiler): -DKG_UNIT=0
 * keeps the kernels, the even parts and the groups step_groups gives it,
 * -DKG_UNIT=1 the others; parts, groups and the matrix products are then
 * extern (hidden by -fvisibility=hidden) instead of static. Without
 * KG_UNIT: one unit. */
#ifdef KG_UNIT
#  define KG_PART KG_NOINLINE
#  define KG_GEMM_LINKAGE
#  define KG_IN_UNIT(k) ((k) == KG_UNIT)
#else
#  define KG_PART static KG_NOINLINE
#  define KG_GEMM_LINKAGE static KG_MAYBE_UNUSED
#  define KG_IN_UNIT(k) 1
#endif

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

/* gcc >= 11 warns that a temporary filled by one loop "may be used
 * uninitialized" when a GEMM then reads it through a const pointer: it cannot
 * see that one of the loop's branches always runs. A false positive. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

/* A kernel's temporaries are carved from one block, which the kernel keeps
 * for its next call: a large block from malloc is fresh pages from the OS on
 * every call (mapped, zeroed and faulted in: a sixth of an LSTM training
 * step's time, a quarter of a denoising autoencoder's). Each kernel keeps at
 * most one block, taken with an atomic exchange, so concurrent calls each use
 * their own; none above KG_WS_KEEP_MAX bytes is kept, nor any without GCC's
 * atomic builtins. */
#ifndef KG_WS_KEEP_MAX
#  define KG_WS_KEEP_MAX ((size_t)256 << 20)
#endif
#define KG_WS_HEAD 64   /* the block's size is kept in front of it; 64: alignment */

/* *total + bytes rounded up to KG_WS_HEAD; 1 (and *total unchanged) on overflow */
static inline int kg_ws_grow(size_t *total, size_t bytes)
{
    const size_t step = (bytes + (KG_WS_HEAD - 1)) / KG_WS_HEAD * KG_WS_HEAD;
    if (bytes > SIZE_MAX - KG_WS_HEAD || step > SIZE_MAX - KG_WS_HEAD - *total) return 1;
    *total += step;
    return 0;
}

static inline char *kg_ws_take(void **slot, size_t size)
{
    char *block;
#if defined(__GNUC__)
    block = (char *)__atomic_exchange_n(slot, NULL, __ATOMIC_ACQ_REL);
    if (block && *(size_t *)block >= size) return block + KG_WS_HEAD;
    free(block);
#else
    (void)slot;
#endif
    block = (char *)malloc(size + KG_WS_HEAD);
    if (!block) return NULL;
    *(size_t *)block = size;
    return block + KG_WS_HEAD;
}

static inline void kg_ws_give(void **slot, char *ws)
{
    if (!ws) return;
    char *block = ws - KG_WS_HEAD;
#if defined(__GNUC__)
    void *none = NULL;
    if (*(size_t *)block <= KG_WS_KEEP_MAX &&
        __atomic_compare_exchange_n(slot, &none, (void *)block, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return;
#else
    (void)slot;
#endif
    free(block);
}
