/* particles_demo.c - calling kgen-generated kernels from C.
 *
 * Launches N particles from the origin at angles spread over (0, pi/2), all
 * at 30 m/s, and advances them STEPS times with the `step` kernel of
 * examples/specs/particles.py (gravity plus quadratic drag), then prints
 * each particle's state and its mechanical energy from the `energy` kernel.
 * It needs only the generated particles.c and particles.h (no Python):
 *
 *     python -m kgen build examples/specs/particles.py     (writes generated/particles/)
 *     make -C examples/c && ./examples/c/particles_demo 5 100
 *
 * Output: one line per particle, "x y vx vy energy" with 17 significant
 * digits (tests/test_c_example.py checks them against NumPy).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "particles.h"

#define DT 0.01

static double *alloc_doubles(int64_t n)
{
    double *p = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? atoll(argv[1]) : 5;
    long steps = argc > 2 ? atol(argv[2]) : 100;
    const double pi = 3.14159265358979323846, dt = DT;
    char err[256];
    int64_t shape[PARTICLES_STEP_OUT_SHAPE_LEN];
    double *state[4], *next[4], *e;

    /* 1. ask the kernel for its output shapes: it also checks ours */
    if (particles_step_shapes(n, n, n, n, shape, err, sizeof err) != KG_OK) {
        fprintf(stderr, "particles_step_shapes: %s\n", err);
        return 1;
    }
    /* 2. state = (x, y, vx, vy); the kernel writes the next state to separate buffers */
    for (int k = 0; k < 4; k++) {
        state[k] = alloc_doubles(n);
        next[k] = alloc_doubles(shape[k]);
    }
    for (int64_t i = 0; i < n; i++) {
        double angle = pi / 2 * (double)(i + 1) / (double)(n + 1);
        state[0][i] = 0.0;
        state[1][i] = 0.0;
        state[2][i] = 30.0 * cos(angle);
        state[3][i] = 30.0 * sin(angle);
    }
    /* 3. run; then swap the buffers, as a caller does with shared variables' updates */
    for (long s = 0; s < steps; s++) {
        int rc = particles_step(state[0], state[1], state[2], state[3], &dt, n, n, n, n,
                      next[0], next[1], next[2], next[3], err, sizeof err);
        if (rc != KG_OK) {
            fprintf(stderr, "particles_step: error %d: %s\n", rc, err);
            return 1;
        }
        for (int k = 0; k < 4; k++) {
            double *t = state[k];
            state[k] = next[k];
            next[k] = t;
        }
    }
    e = alloc_doubles(n);
    if (particles_energy(state[1], state[2], state[3], n, n, n, e, err, sizeof err) != KG_OK) {
        fprintf(stderr, "particles_energy: %s\n", err);
        return 1;
    }
    for (int64_t i = 0; i < n; i++)
        printf("%.17g %.17g %.17g %.17g %.17g\n", state[0][i], state[1][i], state[2][i],
               state[3][i], e[i]);
    for (int k = 0; k < 4; k++) {
        free(state[k]);
        free(next[k]);
    }
    free(e);
    return 0;
}
