/* gpu_demo.c - calling a kgen kernel on the GPU from C, with only the NVIDIA driver.
 *
 * Runs the `step` kernel of examples/specs/particles.py once on the CPU
 * (particles_step) and once on the GPU (particles_step_cuda, on device
 * buffers), and prints the largest difference. The GPU half needs the files a
 * `--target c,cuda` build writes - the host launcher particles_cuda.c and the
 * embedded kernels particles_images.c - and a GPU with its driver; no CUDA
 * toolkit, no cuda.h:
 *
 *     python -m kgen build examples/specs/particles.py --target c,cuda
 *     make -C examples/c gpu_demo && ./examples/c/gpu_demo 1000
 *
 * Without a driver or a GPU it prints why and exits with status 2; it exits
 * with 1 when the two disagree.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "particles.h"

#define N_IN 4   /* x, y, vx, vy; dt is a 0-d input: a pointer to one double */

static int check(int rc, const char *what, const char *err)
{
    if (rc != KG_OK) {
        fprintf(stderr, "%s: error %d: %s\n", what, rc, err);
        exit(rc == KG_ENODEV ? 2 : 1);
    }
    return rc;
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? atoll(argv[1]) : 1000;
    const double dt = 0.01;
    char err[512];
    int64_t shape[PARTICLES_STEP_OUT_SHAPE_LEN];
    double *in[N_IN], *cpu[N_IN], *gpu[N_IN];
    kg_cuda_ptr d_in[N_IN], d_out[N_IN], d_dt;
    size_t bytes = sizeof(double) * (size_t)(n > 0 ? n : 1);

    check(particles_step_shapes(n, n, n, n, shape, err, sizeof err), "particles_step_shapes", err);
    for (int k = 0; k < N_IN; k++) {
        in[k] = malloc(bytes);
        cpu[k] = malloc(bytes);
        gpu[k] = malloc(bytes);
        if (!in[k] || !cpu[k] || !gpu[k])
            return 1;
        for (int64_t i = 0; i < n; i++)
            in[k][i] = k < 2 ? 0.0 : 30.0 * (k == 2 ? cos : sin)(1.5 * (double)(i + 1) / (double)(n + 1));
    }

    /* on the CPU */
    check(particles_step(in[0], in[1], in[2], in[3], &dt, n, n, n, n,
                         cpu[0], cpu[1], cpu[2], cpu[3], err, sizeof err), "particles_step", err);
    printf("cpu: x[0] = %.17g\n", cpu[0][0]);

    /* on the GPU: device buffers, the same call with a stream (NULL: the default one) */
    check(particles_cuda_init(err, sizeof err), "particles_cuda_init", err);
    check(particles_cuda_alloc(&d_dt, sizeof dt, err, sizeof err), "alloc", err);
    check(particles_cuda_upload(d_dt, &dt, sizeof dt, err, sizeof err), "upload", err);
    for (int k = 0; k < N_IN; k++) {
        check(particles_cuda_alloc(&d_in[k], bytes, err, sizeof err), "alloc", err);
        check(particles_cuda_alloc(&d_out[k], bytes, err, sizeof err), "alloc", err);
        check(particles_cuda_upload(d_in[k], in[k], bytes, err, sizeof err), "upload", err);
    }
    check(particles_step_cuda((const double *)(uintptr_t)d_in[0], (const double *)(uintptr_t)d_in[1],
                              (const double *)(uintptr_t)d_in[2], (const double *)(uintptr_t)d_in[3],
                              (const double *)(uintptr_t)d_dt, n, n, n, n,
                              (double *)(uintptr_t)d_out[0], (double *)(uintptr_t)d_out[1],
                              (double *)(uintptr_t)d_out[2], (double *)(uintptr_t)d_out[3],
                              NULL, err, sizeof err), "particles_step_cuda", err);
    double worst = 0.0;
    for (int k = 0; k < N_IN; k++) {
        check(particles_cuda_download(gpu[k], d_out[k], bytes, err, sizeof err), "download", err);
        for (int64_t i = 0; i < n; i++) {
            double d = fabs(gpu[k][i] - cpu[k][i]);
            if (!(d <= worst))   /* a NaN counts: fmax would skip it */
                worst = d;
        }
        particles_cuda_free(d_in[k], err, sizeof err);
        particles_cuda_free(d_out[k], err, sizeof err);
        free(in[k]);
        free(cpu[k]);
        free(gpu[k]);
    }
    particles_cuda_free(d_dt, err, sizeof err);
    printf("gpu: max |cpu - gpu| = %.3g over %lld particles\n", worst, (long long)n);
    return worst <= 1e-9 ? 0 : 1;
}
