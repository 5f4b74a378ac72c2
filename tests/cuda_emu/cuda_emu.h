/* cuda_emu.h -- just enough of CUDA to run kgen's generated kernels on the CPU.
 *
 * Tests compile a generated .cu file as C++ after this header (g++ -x c++) and
 * launch its kernels through tests/_cuda_emu.py, so the kernels, the launch
 * geometry and the argument packing are checked against the C backend on a
 * machine without a GPU. Not a simulator of performance or of memory models:
 *   - blocks run one after another; a block's threads are real threads (a
 *     pool kept for the process), so __syncthreads() and warp shuffles are
 *     real barriers;
 *   - __shared__ variables are function statics: one copy, which is right
 *     because only one block runs at a time;
 *   - shuffles exchange values through a per-warp slot array between two
 *     barriers, so all 32 lanes of a warp must call them (as on a GPU).
 */
#ifndef CUDA_EMU_H
#define CUDA_EMU_H

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
};

static thread_local dim3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

/* barriers for the running block: one for the block, one per warp */
static pthread_barrier_t emu_block_barrier;
static pthread_barrier_t emu_warp_barrier[32];
static uint64_t emu_warp_slot[32][32];

static inline void __syncthreads() { pthread_barrier_wait(&emu_block_barrier); }

template <typename T>
static inline T __shfl_down_sync(unsigned mask, T v, int delta)
{
    (void)mask;
    const unsigned t = threadIdx.x, warp = t / 32, lane = t % 32;
    uint64_t raw = 0;
    memcpy(&raw, &v, sizeof(T));
    emu_warp_slot[warp][lane] = raw;
    pthread_barrier_wait(&emu_warp_barrier[warp]);
    T out = v;
    if (lane + delta < 32)  /* a lane past the end keeps its own value, as on a GPU */
        memcpy(&out, &emu_warp_slot[warp][lane + delta], sizeof(T));
    pthread_barrier_wait(&emu_warp_barrier[warp]);
    return out;
}

static inline unsigned long long atomicCAS(unsigned long long *p, unsigned long long cmp,
                                           unsigned long long val)
{
    __atomic_compare_exchange_n(p, &cmp, val, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return cmp;  /* the old value */
}

/* A pool of worker threads, one per thread of a block, kept for the whole
 * process: each block is a round between the `start` and `done` barriers. */
static struct {
    unsigned n;
    pthread_barrier_t start, done;
    void (*body)(const int64_t *);  /* the kernel, called with its packed arguments */
    const int64_t *args;
    dim3 block;
} emu_pool;

static void *emu_worker(void *arg)
{
    threadIdx = dim3{(unsigned)(uintptr_t)arg, 0, 0};
    for (;;) {
        pthread_barrier_wait(&emu_pool.start);
        blockIdx = emu_pool.block;
        emu_pool.body(emu_pool.args);
        pthread_barrier_wait(&emu_pool.done);
    }
    return NULL;
}

static void emu_start_pool(unsigned n)
{
    pthread_barrier_init(&emu_pool.start, NULL, n + 1);
    pthread_barrier_init(&emu_pool.done, NULL, n + 1);
    pthread_barrier_init(&emu_block_barrier, NULL, n);
    for (unsigned w = 0; w < n / 32; w++) pthread_barrier_init(&emu_warp_barrier[w], NULL, 32);
    for (unsigned t = 0; t < n; t++) {
        pthread_t thread;
        pthread_create(&thread, NULL, emu_worker, (void *)(uintptr_t)t);
        pthread_detach(thread);
    }
    emu_pool.n = n;
}

/* Run body(args) as a grid of blocks of threads (1-D blocks: kgen's kernels
 * use blockDim.x only, and always the same size). Returns 0, or -1 for a
 * geometry a GPU would refuse or this emulator cannot run. */
static int emu_launch(const unsigned *geometry, void (*body)(const int64_t *),
                      const int64_t *args)
{
    gridDim = dim3{geometry[0], geometry[1], geometry[2]};
    blockDim = dim3{geometry[3], geometry[4], geometry[5]};
    const unsigned n = blockDim.x;
    if (n == 0 || n > 1024 || n % 32 || blockDim.y != 1 || blockDim.z != 1 || gridDim.x == 0
        || gridDim.y == 0 || gridDim.z == 0 || gridDim.y > 65535 || gridDim.z > 65535
        || (emu_pool.n && emu_pool.n != n))
        return -1;
    if (!emu_pool.n) emu_start_pool(n);
    emu_pool.body = body;
    emu_pool.args = args;
    for (unsigned bz = 0; bz < gridDim.z; bz++)
        for (unsigned by = 0; by < gridDim.y; by++)
            for (unsigned bx = 0; bx < gridDim.x; bx++) {
                emu_pool.block = dim3{bx, by, bz};
                pthread_barrier_wait(&emu_pool.start);
                pthread_barrier_wait(&emu_pool.done);
            }
    return 0;
}

#endif /* CUDA_EMU_H */
