/* libcuda_stub.c - a stand-in for the NVIDIA driver library (libcuda.so.1), so
 * the host launcher of a GPU package (kgen/templates/cuda/launcher.c.jinja) is
 * tested on a machine without a GPU. tests/test_cuda_driver_launcher.py
 * compiles it to TMP/libcuda.so.1 and points $KGEN_LIBCUDA at it.
 *
 * It exports the cu* functions the launcher resolves, under the driver's own
 * names (cuMemAlloc_v2...), and:
 *   - "device memory" is host memory (aligned to 256 bytes), so a launch hook
 *     can run the kernels on the CPU (tests/_cuda_emu.py) and the results be
 *     compared; copies and memsets outside an allocation are refused;
 *   - every call is logged, one line each, and the last module image kept;
 *   - the test sets the device (count, compute capability) and can make any
 *     one function fail with a given CUresult;
 *   - without a hook, a launch runs on the emulator library $KGSTUB_EMULATOR
 *     names, if any (tests/_cuda_emu.py's build of the .cu: emu_NAME(geometry,
 *     args)), so a C program (examples/c/gpu_demo.c) gets real results too.
 *     Its arguments are all 8 bytes (pointers, int64) and kgen's launcher ends
 *     the list with NULL, which is how they are counted here.
 * The kgstub_* functions are the test's controls.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef void *CUhandle;
typedef unsigned long long CUdeviceptr;

#define OK 0
#define INVALID_VALUE 1
#define NOT_INITIALIZED 3
#define NO_DEVICE 100
#define INVALID_IMAGE 200
#define NOT_FOUND 500
#define LAUNCH_FAILED 719

static const struct { int code; const char *name; } NAMES[] = {
    {0, "CUDA_SUCCESS"}, {1, "CUDA_ERROR_INVALID_VALUE"}, {2, "CUDA_ERROR_OUT_OF_MEMORY"},
    {3, "CUDA_ERROR_NOT_INITIALIZED"}, {35, "CUDA_ERROR_INSUFFICIENT_DRIVER"},
    {100, "CUDA_ERROR_NO_DEVICE"}, {200, "CUDA_ERROR_INVALID_IMAGE"},
    {209, "CUDA_ERROR_NO_BINARY_FOR_GPU"}, {218, "CUDA_ERROR_INVALID_PTX"},
    {500, "CUDA_ERROR_NOT_FOUND"}, {700, "CUDA_ERROR_ILLEGAL_ADDRESS"},
    {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"}, {719, "CUDA_ERROR_LAUNCH_FAILED"},
};

/* ---- the test's controls ---- */
typedef int (*launch_hook)(const char *name, const unsigned *geometry, void **params);

static char log_text[1 << 20];
static size_t log_len;
static int device_count = 1, cc_major = 9, cc_minor = 0, initialized;
static char fail_name[64];
static CUresult fail_code;
static launch_hook hook;
static unsigned char *image;
static size_t image_size;

#define MAX_ALLOCS 4096
static struct { unsigned char *ptr; size_t size; } allocs[MAX_ALLOCS];
static int live;

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (log_len < sizeof log_text - 256) {
        int n = vsnprintf(log_text + log_len, sizeof log_text - log_len - 1, fmt, ap);
        if (n > 0)
            log_len += (size_t)n < sizeof log_text - log_len - 1 ? (size_t)n : 0;
        log_text[log_len++] = '\n';
        log_text[log_len] = 0;
    }
    va_end(ap);
}

void kgstub_reset(void)
{
    log_len = 0;
    log_text[0] = 0;
    fail_name[0] = 0;
    device_count = 1, cc_major = 9, cc_minor = 0;
}

const char *kgstub_log(void) { return log_text; }
void kgstub_set_device(int count, int major, int minor)
{
    device_count = count;
    cc_major = major;
    cc_minor = minor;
}
void kgstub_fail(const char *name, int code)
{
    snprintf(fail_name, sizeof fail_name, "%s", name);
    fail_code = code;
}
void kgstub_set_hook(launch_hook h) { hook = h; }
const unsigned char *kgstub_image(size_t *size) { *size = image_size; return image; }
int kgstub_live_allocations(void) { return live; }

/* a launch on $KGSTUB_EMULATOR's emu_NAME; 0 when there is none (a launch then
 * does nothing), else what it returns */
static int run_on_emulator(const char *name, const unsigned *geometry, void **params)
{
    static void *emulator;
    static int tried;
    if (!tried) {
        const char *path = getenv("KGSTUB_EMULATOR");
        tried = 1;
        emulator = path && *path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
    }
    if (emulator == NULL)
        return 0;
    char symbol[256];
    snprintf(symbol, sizeof symbol, "emu_%s", name);
    void *found = dlsym(emulator, symbol);
    if (found == NULL)
        return 1;
    int64_t args[64];
    int n = 0;
    for (; n < 64 && params[n] != NULL; n++)
        memcpy(&args[n], params[n], sizeof args[n]);
    int (*run)(const unsigned *, const int64_t *);
    memcpy(&run, &found, sizeof run);
    return run(geometry, args);
}

/* the function the test asked to fail: once */
static int failing(const char *name)
{
    if (fail_name[0] && strcmp(fail_name, name) == 0) {
        fail_name[0] = 0;
        say("%s -> fails with %d", name, fail_code);
        return 1;
    }
    return 0;
}
#define FAIL_IF_ASKED(name) do { if (failing(name)) return fail_code; } while (0)
#define NEEDS_INIT() do { if (!initialized) return NOT_INITIALIZED; } while (0)

/* whether [p, p + n) lies inside one allocation */
static int inside(CUdeviceptr p, size_t n)
{
    for (int k = 0; k < MAX_ALLOCS; k++) {
        unsigned char *a = allocs[k].ptr;
        if (a && (uintptr_t)p >= (uintptr_t)a && (uintptr_t)p + n <= (uintptr_t)a + allocs[k].size)
            return 1;
    }
    return 0;
}

/* ---- the driver API ---- */
CUresult cuGetErrorName(CUresult error, const char **name)
{
    for (size_t k = 0; k < sizeof NAMES / sizeof NAMES[0]; k++)
        if (NAMES[k].code == error) {
            *name = NAMES[k].name;
            return OK;
        }
    *name = NULL;
    return INVALID_VALUE;
}

CUresult cuInit(unsigned int flags)
{
    say("cuInit %u", flags);
    FAIL_IF_ASKED("cuInit");
    if (device_count == 0)
        return NO_DEVICE;
    initialized = 1;
    return OK;
}

CUresult cuDeviceGetCount(int *count)
{
    NEEDS_INIT();
    FAIL_IF_ASKED("cuDeviceGetCount");
    *count = device_count;
    return OK;
}

CUresult cuDeviceGet(int *device, int ordinal)
{
    NEEDS_INIT();
    say("cuDeviceGet %d", ordinal);
    if (ordinal < 0 || ordinal >= device_count)
        return INVALID_VALUE;
    *device = ordinal;
    return OK;
}

CUresult cuDeviceGetAttribute(int *value, int attribute, int device)
{
    NEEDS_INIT();
    (void)device;
    *value = attribute == 75 ? cc_major : attribute == 76 ? cc_minor : 0;
    return OK;
}

CUresult cuDeviceGetName(char *name, int len, int device)
{
    NEEDS_INIT();
    snprintf(name, (size_t)len, "kgen stub GPU %d", device);
    return OK;
}

static int primary_context;           /* its address is the context handle */
static _Thread_local CUhandle current;

CUresult cuDevicePrimaryCtxRetain(CUhandle *ctx, int device)
{
    NEEDS_INIT();
    say("cuDevicePrimaryCtxRetain %d", device);
    FAIL_IF_ASKED("cuDevicePrimaryCtxRetain");
    *ctx = &primary_context;
    return OK;
}

CUresult cuCtxGetCurrent(CUhandle *ctx)
{
    NEEDS_INIT();
    *ctx = current;
    return OK;
}

CUresult cuCtxSetCurrent(CUhandle ctx)
{
    NEEDS_INIT();
    current = ctx;
    return OK;
}

CUresult cuCtxGetDevice(int *device)
{
    NEEDS_INIT();
    if (current == NULL)
        return INVALID_VALUE;
    *device = 0;
    return OK;
}

/* the size of a 64-bit ELF file from its header: where its section or program
 * header table ends, whichever is last (they end a cubin) */
static size_t elf_size(const unsigned char *p)
{
    uint64_t shoff, phoff;
    uint16_t phentsize, phnum, shentsize, shnum;
    memcpy(&phoff, p + 0x20, 8);
    memcpy(&shoff, p + 0x28, 8);
    memcpy(&phentsize, p + 0x36, 2);
    memcpy(&phnum, p + 0x38, 2);
    memcpy(&shentsize, p + 0x3A, 2);
    memcpy(&shnum, p + 0x3C, 2);
    uint64_t sh_end = shoff + (uint64_t)shentsize * shnum, ph_end = phoff + (uint64_t)phentsize * phnum;
    return (size_t)(sh_end > ph_end ? sh_end : ph_end);
}

CUresult cuModuleLoadData(CUhandle *module, const void *data)
{
    NEEDS_INIT();
    FAIL_IF_ASKED("cuModuleLoadData");
    if (current == NULL)
        return INVALID_VALUE;  /* the driver needs a current context */
    const unsigned char *p = data;
    int cubin = memcmp(p, "\177ELF", 4) == 0;
    size_t n = cubin ? elf_size(p) : strlen((const char *)p) + 1;
    if (!cubin && strstr((const char *)p, ".version") == NULL)
        return INVALID_IMAGE;
    free(image);
    image = malloc(n);
    memcpy(image, p, n);
    image_size = n;
    say("cuModuleLoadData %s %zu", cubin ? "cubin" : "ptx", n);
    *module = image;
    return OK;
}

CUresult cuModuleGetFunction(CUhandle *fn, CUhandle module, const char *name)
{
    NEEDS_INIT();
    FAIL_IF_ASKED("cuModuleGetFunction");
    if (module != image)
        return INVALID_VALUE;
    /* the name must be in the image: a PTX .entry, or a cubin's symbol table */
    size_t len = strlen(name);
    int found = 0;
    for (size_t k = 0; k + len <= image_size && !found; k++)
        found = memcmp(image + k, name, len) == 0 && (k + len == image_size
                || image[k + len] == 0 || image[k + len] == '(');
    if (!found)
        return NOT_FOUND;
    *fn = strdup(name);   /* leaked on purpose: lives as long as the module */
    return OK;
}

CUresult cuMemAlloc_v2(CUdeviceptr *ptr, size_t bytes)
{
    NEEDS_INIT();
    FAIL_IF_ASKED("cuMemAlloc_v2");
    if (current == NULL || bytes == 0)
        return INVALID_VALUE;
    for (int k = 0; k < MAX_ALLOCS; k++)
        if (allocs[k].ptr == NULL) {
            allocs[k].ptr = aligned_alloc(256, (bytes + 255) / 256 * 256);
            allocs[k].size = bytes;
            memset(allocs[k].ptr, 0xFF, bytes);  /* NaN / -1: a missed write shows */
            *ptr = (CUdeviceptr)(uintptr_t)allocs[k].ptr;
            live++;
            say("cuMemAlloc %zu", bytes);
            return OK;
        }
    return 2;
}

CUresult cuMemFree_v2(CUdeviceptr ptr)
{
    NEEDS_INIT();
    FAIL_IF_ASKED("cuMemFree_v2");
    for (int k = 0; k < MAX_ALLOCS; k++)
        if (allocs[k].ptr && (CUdeviceptr)(uintptr_t)allocs[k].ptr == ptr) {
            say("cuMemFree %zu", allocs[k].size);
            free(allocs[k].ptr);
            allocs[k].ptr = NULL;
            live--;
            return OK;
        }
    say("cuMemFree of an unknown pointer");
    return INVALID_VALUE;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes)
{
    NEEDS_INIT();
    FAIL_IF_ASKED("cuMemcpyHtoD_v2");
    say("cuMemcpyHtoD %zu", bytes);
    if (!inside(dst, bytes))
        return INVALID_VALUE;
    memcpy((void *)(uintptr_t)dst, src, bytes);
    return OK;
}

CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t bytes)
{
    NEEDS_INIT();
    FAIL_IF_ASKED("cuMemcpyDtoH_v2");
    say("cuMemcpyDtoH %zu", bytes);
    if (!inside(src, bytes))
        return INVALID_VALUE;
    memcpy(dst, (const void *)(uintptr_t)src, bytes);
    return OK;
}

CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t n, void *stream)
{
    NEEDS_INIT();
    say("cuMemsetD8Async %zu stream=%p", n, stream);
    if (!inside(dst, n))
        return INVALID_VALUE;
    memset((void *)(uintptr_t)dst, value, n);
    return OK;
}

CUresult cuLaunchKernel(CUhandle fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned shared_bytes, void *stream,
                        void **params, void **extra)
{
    NEEDS_INIT();
    FAIL_IF_ASKED("cuLaunchKernel");
    say("cuLaunchKernel %s %u %u %u %u %u %u shared=%u stream=%p", (const char *)fn, gx, gy, gz,
        bx, by, bz, shared_bytes, stream);
    if (current == NULL || params == NULL || extra != NULL || gx == 0 || gy == 0 || gz == 0
            || bx * by * bz == 0 || bx * by * bz > 1024)
        return INVALID_VALUE;
    unsigned geometry[6] = {gx, gy, gz, bx, by, bz};
    if (hook ? hook((const char *)fn, geometry, params) != 0
             : run_on_emulator((const char *)fn, geometry, params) != 0)
        return LAUNCH_FAILED;
    return OK;
}

CUresult cuStreamSynchronize(void *stream)
{
    NEEDS_INIT();
    FAIL_IF_ASKED("cuStreamSynchronize");
    say("cuStreamSynchronize %p", stream);
    return OK;
}
