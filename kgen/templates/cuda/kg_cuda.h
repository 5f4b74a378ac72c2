/* kg_cuda.h -- device helpers of kgen's generated CUDA: lane shuffles for the
 * reduction trees, the argmax/argmin combine, and the index-error record.
 *
 * Plain CUDA C++ (no template syntax), pasted verbatim into each generated .cu
 * file after kg_ops.h, whose scalar helpers are __host__ __device__ there.
 */
#ifndef KG_CUDA_H
#define KG_CUDA_H

/* Helpers are `inline`, not `static`: nvcc warns about unused static functions.
 *
 * ---- warp shuffles --------------------------------------------------------
 * __shfl_down_sync has overloads for int, long, long long, float and double but
 * not for bool: a bool travels as an int. Every lane of the warp calls these
 * (the reduction loops run the same number of times in every lane). */
template <typename T>
__device__ __forceinline__ T kg_shfl_down(T v, int delta)
{
    return __shfl_down_sync(0xffffffffu, v, delta);
}

__device__ __forceinline__ bool kg_shfl_down(bool v, int delta)
{
    return __shfl_down_sync(0xffffffffu, (int)v, delta) != 0;
}

/* ---- rounding -----------------------------------------------------------------
 * floor, ceil and rint of an integer or a bool are the value itself. C converts
 * such an argument of floor() to double; C++ would call <cmath>'s host-only
 * integer template instead, so these ops' CUDA expressions call these. */
#define KG_ROUND_INT(tag, T)                                                            \
__device__ __forceinline__ T kg_floor_##tag(T a) { return a; }                           \
__device__ __forceinline__ T kg_ceil_##tag(T a) { return a; }                            \
__device__ __forceinline__ T kg_rint_##tag(T a) { return a; }
KG_ROUND_INT(b, bool)
KG_ROUND_INT(i32, int32_t)
KG_ROUND_INT(i64, int64_t)
__device__ __forceinline__ float kg_floor_f32(float a) { return floorf(a); }
__device__ __forceinline__ float kg_ceil_f32(float a) { return ceilf(a); }
__device__ __forceinline__ float kg_rint_f32(float a) { return rintf(a); }
__device__ __forceinline__ double kg_floor_f64(double a) { return floor(a); }
__device__ __forceinline__ double kg_ceil_f64(double a) { return ceil(a); }
__device__ __forceinline__ double kg_rint_f64(double a) { return rint(a); }

/* ---- argmax / argmin --------------------------------------------------------
 * Should (v, at) replace (best, best_at)? The better value wins (NaN beats
 * everything, as in NumPy: kg_argbetter_* from kg_ops.h); on a tie the earlier
 * position wins, so the result is the first occurrence whatever order the
 * tree combines partial results in. A position of -1 marks an empty slot. */
#define KG_ARGTAKE(op, tag, T)                                                          \
__device__ __forceinline__ bool kg_argtake_##op##_##tag(T v, int64_t at,                \
                                                        T best, int64_t best_at)        \
{                                                                                       \
    if (at < 0) return false;                                                           \
    if (best_at < 0) return true;                                                       \
    if (kg_argbetter_##op##_##tag(v, best)) return true;                                \
    if (kg_argbetter_##op##_##tag(best, v)) return false;                               \
    return at < best_at;                                                                \
}
KG_ARGTAKE(max, b, bool)
KG_ARGTAKE(min, b, bool)
KG_ARGTAKE(max, i32, int32_t)
KG_ARGTAKE(min, i32, int32_t)
KG_ARGTAKE(max, i64, int64_t)
KG_ARGTAKE(min, i64, int64_t)
KG_ARGTAKE(max, f32, float)
KG_ARGTAKE(min, f32, float)
KG_ARGTAKE(max, f64, double)
KG_ARGTAKE(min, f64, double)

/* ---- index errors -----------------------------------------------------------
 * A kernel cannot raise. A gather or scatter that meets an index out of range
 * skips it and records it here; the host reads the record after the launches
 * and raises before any output or update is kept. err: flag, step, axis,
 * index, size (the first thread to set the flag writes the rest).
 *
 * Returns the index wrapped into [0, size) (NumPy's rule for negative indices),
 * or -1 for an index out of range. */
__device__ __forceinline__ int64_t kg_wrap_index(int64_t k, int64_t size, int64_t *err,
                                                 int64_t step, int64_t axis)
{
    if (k < -size || k >= size) {
        if (atomicCAS((unsigned long long *)err, 0ull, 1ull) == 0ull) {
            err[1] = step;
            err[2] = axis;
            err[3] = k;
            err[4] = size;
        }
        return -1;
    }
    return k < 0 ? k + size : k;
}

#endif /* KG_CUDA_H */
