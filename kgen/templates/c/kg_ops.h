/* kg_ops.h -- scalar helpers behind kgen's op expressions (NumPy semantics).
 *
 * Each op record in kgen/expr/ops/ names the helper its C expression calls,
 * e.g. floor_div -> kg_floordiv_i32(a, b). Tags: b (bool), i32, i64, f32, f64.
 * Plain C99, pasted verbatim into generated sources.
 */
#ifndef KG_OPS_H
#define KG_OPS_H
#include <math.h>
#include <stdint.h>
#include <stdbool.h>

/* KG_FN declares every helper: `static inline` in C, and always inlined
 * with gcc and clang: a call left in an elementwise loop (gcc keeps
 * kg_sigmoid_f32 out of line in a large fused loop) stops the loop from
 * vectorizing. Under nvcc the same helpers compile for the host and the GPU
 * (the CUDA kernels call them), and are plain `inline` there, which nvcc does
 * not warn about when unused. */
#ifndef KG_FN
#  ifdef __CUDACC__
#    define KG_FN inline __host__ __device__
#  elif defined(__GNUC__)
#    define KG_FN static inline __attribute__((always_inline))
#  else
#    define KG_FN static inline
#  endif
#endif

/* floor division and remainder: the result takes the divisor's sign (Python's
 * and NumPy's rule); integer division by zero gives 0, INT_MIN // -1 wraps. */
#define KG_INT_DIVMOD(tag, T, TMIN)                                             \
KG_FN T kg_floordiv_##tag(T a, T b) {                                           \
    if (b == 0) return 0;                                                       \
    if (b == -1) return (T)(0 - (uint64_t)a);                                   \
    T q = a / b;                                                                \
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;                    \
}                                                                               \
KG_FN T kg_mod_##tag(T a, T b) {                                                \
    if (b == 0 || b == -1) return 0;                                            \
    T r = a % b;                                                                \
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;                        \
}                                                                               \
KG_FN T kg_pow_##tag(T a, T b) {                                                \
    if (b < 0) return (a == 1) ? 1 : (a == -1) ? ((b & 1) ? -1 : 1) : 0;        \
    uint64_t r = 1, base = (uint64_t)a;                                         \
    for (uint64_t e = (uint64_t)b; e; e >>= 1) {                                \
        if (e & 1) r *= base;                                                   \
        base *= base;                                                           \
    }                                                                           \
    return (T)r;                                                                \
}                                                                               \
KG_FN T kg_max_##tag(T a, T b) { return a > b ? a : b; }                        \
KG_FN T kg_min_##tag(T a, T b) { return a < b ? a : b; }                        \
KG_FN T kg_abs_##tag(T a) { return a < 0 ? (T)(0 - (uint64_t)a) : a; }          \
KG_FN T kg_sign_##tag(T a) { return (T)((a > 0) - (a < 0)); }                   \
KG_FN T kg_recip_##tag(T a) { return a == 0 ? TMIN : (T)(1 / a); }              \
KG_FN T kg_relu_##tag(T a) { return a > 0 ? a : 0; }                           \
KG_FN T kg_invert_##tag(T a) { return ~a; }                                     \
KG_FN bool kg_isnan_##tag(T a) { (void)a; return false; }                       \
KG_FN bool kg_isinf_##tag(T a) { (void)a; return false; }                       \
KG_FN bool kg_argbetter_max_##tag(T v, T best) { return v > best; }             \
KG_FN bool kg_argbetter_min_##tag(T v, T best) { return v < best; }

KG_INT_DIVMOD(i32, int32_t, INT32_MIN)
KG_INT_DIVMOD(i64, int64_t, INT64_MIN)

/* floats: Python's floor division and modulo (np.floor_divide, np.remainder) */
#define KG_FLOAT_OPS(tag, T, F)                                                 \
KG_FN T kg_mod_##tag(T a, T b) {                                                \
    if (b == 0) return fmod##F(a, b);                                           \
    T r = fmod##F(a, b);                                                        \
    if (r != 0) { if ((b < 0) != (r < 0)) r += b; }                            \
    else r = copysign##F((T)0, b);                                              \
    return r;                                                                   \
}                                                                               \
KG_FN T kg_floordiv_##tag(T a, T b) {                                           \
    if (b == 0) return a / b;                                                   \
    T m = fmod##F(a, b);                                                        \
    T d = (a - m) / b;                                                          \
    if (m != 0 && ((b < 0) != (m < 0))) d -= 1;                                 \
    if (d == 0) return copysign##F((T)0, a / b);                                \
    T f = floor##F(d);                                                          \
    return (d - f > (T)0.5) ? f + 1 : f;                                        \
}                                                                               \
KG_FN T kg_pow_##tag(T a, T b) { return pow##F(a, b); }                         \
/* NaN propagates through maximum/minimum and max/min, as in NumPy; two       \
   selects, since `(a > b || a != a) ? a : b` is a branch that gcc leaves      \
   unvectorized */                                                              \
KG_FN T kg_max_##tag(T a, T b) { T m = a > b ? a : b; return a != a ? a : m; }  \
KG_FN T kg_min_##tag(T a, T b) { T m = a < b ? a : b; return a != a ? a : m; }  \
KG_FN T kg_abs_##tag(T a) { return fabs##F(a); }                                \
KG_FN T kg_sign_##tag(T a) { return a > 0 ? 1 : a < 0 ? -1 : a; }               \
KG_FN T kg_recip_##tag(T a) { return 1 / a; }                                   \
/* relu(NaN) is NaN; sigmoid and softplus never exponentiate a positive value */\
KG_FN T kg_relu_##tag(T a) { return a > 0 ? a : (a != a ? a : 0); }             \
KG_FN T kg_sigmoid_##tag(T a) {                                                 \
    T e = exp##F(-fabs##F(a));                                                  \
    return a >= 0 ? 1 / (1 + e) : e / (1 + e);                                  \
}                                                                               \
KG_FN T kg_softplus_##tag(T a) {                                                \
    return (a > 0 ? a : 0) + log1p##F(exp##F(-fabs##F(a)));                     \
}                                                                               \
KG_FN bool kg_isnan_##tag(T a) { return a != a; }                              \
KG_FN bool kg_isinf_##tag(T a) { return a == (T)INFINITY || a == -(T)INFINITY; }         \
KG_FN bool kg_argbetter_max_##tag(T v, T best) { return v > best || (v != v && best == best); }         \
KG_FN bool kg_argbetter_min_##tag(T v, T best) { return v < best || (v != v && best == best); }

KG_FLOAT_OPS(f32, float, f)
KG_FLOAT_OPS(f64, double, )

/* bool: NumPy's loops for the ops that accept it */
KG_FN bool kg_max_b(bool a, bool b) { return a || b; }
KG_FN bool kg_min_b(bool a, bool b) { return a && b; }
KG_FN bool kg_invert_b(bool a) { return !a; }
KG_FN bool kg_abs_b(bool a) { return a; }
KG_FN bool kg_isnan_b(bool a) { (void)a; return false; }
KG_FN bool kg_isinf_b(bool a) { (void)a; return false; }
KG_FN bool kg_argbetter_max_b(bool v, bool best) { return v > best; }
KG_FN bool kg_argbetter_min_b(bool v, bool best) { return v < best; }

/* start and length of x[start:stop:step] over an axis of length n (Python's
 * slice.indices); has_* = 0 for an omitted bound */
KG_FN int64_t kg_slice_start(int64_t n, int has_start, int64_t start,
                                     int has_stop, int64_t stop, int64_t step) {
    (void)has_stop; (void)stop;
    if (!has_start) return step > 0 ? 0 : n - 1;
    if (start < 0) { start += n; if (start < 0) start = step > 0 ? 0 : -1; }
    else if (start >= n) start = step > 0 ? n : n - 1;
    return start;
}

KG_FN int64_t kg_slice_len(int64_t n, int has_start, int64_t start,
                                   int has_stop, int64_t stop, int64_t step) {
    int64_t lo = kg_slice_start(n, has_start, start, has_stop, stop, step), hi;
    if (!has_stop) hi = step > 0 ? n : -1;
    else if (stop < 0) { hi = stop + n; if (hi < 0) hi = step > 0 ? 0 : -1; }
    else hi = stop >= n ? (step > 0 ? n : n - 1) : stop;
    /* ceil(span / |step|) without overflow, whatever the step */
    if (step > 0) return hi > lo ? (hi - lo - 1) / step + 1 : 0;
    if (lo <= hi) return 0;
    return step == INT64_MIN ? 1 : (lo - hi - 1) / (-step) + 1;
}

/* length of arange(start, stop, step) as NumPy computes it (ceil of the span) */
KG_FN int64_t kg_arange_len(double start, double stop, double step) {
    double n = ceil((stop - start) / step);
    return n > 0 ? (int64_t)n : 0;
}

#endif /* KG_OPS_H */
