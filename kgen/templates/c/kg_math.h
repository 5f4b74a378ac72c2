/* kg_math.h -- vectorizable transcendental math for kgen's generated C.
 *
 * Why this exists: a fused elementwise loop such as
 *     out[i] = exp(-x[i]*x[i]) * sin(y[i]) + log1p(z[i]*z[i]);
 * built with plain -O3 calls scalar libm once per element and loses to NumPy,
 * whose ufuncs use SIMD math.  -ffast-math would vectorize it but breaks
 * NaN/inf handling and isnan(), so kgen never uses it.  Instead this header
 * tells gcc that glibc's vector math library (libmvec) has SIMD variants of
 * the standard functions; gcc then calls e.g. _ZGVdN4v_exp on 4 doubles at a
 * time inside a vectorized loop.  IEEE semantics are untouched: libmvec
 * handles NaN, +-inf, +-0 and subnormals, within 4 ULP (table below).
 *
 * Plain C99 without template syntax: kgen's C templates paste it verbatim
 * into each standalone generated .c file.
 *
 * What generated code calls
 * -------------------------
 *   kg_<name>(x) for double and kg_<name>f(x) for float, <name> being the C99
 *   name: exp exp2 expm1 log log2 log10 log1p sqrt sin cos tan asin acos atan
 *   atan2(y, x) sinh cosh tanh erf pow(x, y), and also exp10 cbrt asinh acosh
 *   atanh erfc hypot(x, y).  Each kg_ name is a macro for the libm function
 *   (exp10 falls back to pow where it is not available), so the plain C99
 *   names (exp, expf, ...) vectorize just the same: the SIMD declarations are
 *   on them; kg_tanh and kg_tanhf are kgen's own functions (below).
 *
 *   KG_OMP_SIMD                  before an elementwise `for` loop
 *   KG_OMP_PARALLEL_FOR_SIMD(n)  the same, threaded over the default OpenMP
 *                                team when built with -fopenmp and
 *                                n >= KG_PARALLEL_MIN_N (default 32768)
 *   KG_MULTIVERSION              before a kernel function definition: in
 *                                portable x86-64 builds, AVX2 and AVX-512
 *                                clones picked at load time (see the end)
 *   (each expands to nothing where the compiler would ignore it, so -Wall
 *   stays quiet).  KG_HAVE_LIBMVEC is 1 when the SIMD route is active.
 *
 * Build flags (kgen/build/flags.py holds them as data)
 * ----------------------------------------------------
 *   -O3 -fno-math-errno -fopenmp-simd -DKG_OPENMP_SIMD, link -lmvec -lm.
 *   -fno-math-errno is required: with errno semantics gcc will not replace a
 *   call by its SIMD variant (it also lets sqrt become one instruction).
 *   -fopenmp-simd makes gcc honour `#pragma omp simd` without the OpenMP
 *   runtime; it defines no macro, hence -DKG_OPENMP_SIMD.  -fopenmp does both.
 *   Checked with objdump: the x86-64 baseline calls the SSE variants
 *   (_ZGVbN2v_exp, _ZGVbN4v_expf), -march=x86-64-v3 the AVX2 ones (_ZGVd),
 *   -march=native on an AVX-512 CPU the _ZGVe (and for float also _ZGVd) ones.
 *   Define KG_NO_LIBMVEC to opt out (then -lmvec is not needed): the same
 *   names call scalar libm, correct but not vectorized.
 *
 * When the SIMD declarations are active
 * -------------------------------------
 *   gcc >= 6 on x86-64 with glibc: glibc 2.22..2.34 has vector exp, log, sin,
 *   cos and pow only; glibc >= 2.35 all of the functions below.  Not with
 *   clang (it has its own -fveclib=libmvec) nor on other systems or CPUs,
 *   where everything is scalar libm.  A module built against glibc >= 2.35
 *   needs glibc >= 2.35 (libmvec.so.1) where it runs.
 *
 * Route and accuracy per function (x86-64, glibc 2.36).  Max error in ULP
 * against a higher-precision oracle (tests/test_vecmath_ulp.py; float64 vs
 * long double, float32 vs double), the worst over the SSE, AVX, AVX2 and
 * AVX-512 variants, ~1e5 points over each function's whole domain:
 *
 *   function  route          float64  float32
 *   exp       libmvec          2.8      2.6
 *   exp2      libmvec          1.6      1.1
 *   exp10     libmvec          1.4      3.8
 *   expm1     libmvec          2.8      2.3
 *   log       libmvec          1.5      4.0 (3.97 over 1e7 points)
 *   log2      libmvec          1.9      2.3
 *   log10     libmvec          1.9      2.1
 *   log1p     libmvec          1.8      1.7
 *   sqrt      instruction      0.5      0.5 (sqrtpd/sqrtps, correctly rounded)
 *   cbrt      libmvec          2.3      2.8
 *   sin       libmvec          3.0      2.1
 *   cos       libmvec          3.2      2.1
 *   tan       libmvec          3.0      3.9
 *   asin      libmvec          2.6      2.8
 *   acos      libmvec          1.8      2.2
 *   atan      libmvec          1.4      2.2
 *   atan2     libmvec          2.1      3.5
 *   sinh      libmvec          1.9      1.8
 *   cosh      libmvec          1.8      2.0
 *   tanh      kgen (below)     2.6      2.3
 *   asinh     libmvec          1.9      1.9
 *   acosh     libmvec          2.5      2.6
 *   atanh     libmvec          2.0      1.9
 *   erf       libmvec          2.3      4.0 (AVX-512 returns 1 from x=3.6533)
 *   erfc      libmvec          1.7      1.5
 *   pow       libmvec          1.0      0.7
 *   hypot     libmvec          1.6      1.2
 *   Scalar libm (KG_NO_LIBMVEC, other systems): at most 3.0 ULP here.
 * tanh is kgen's own (a short polynomial, see below): libmvec's is as
 * accurate in vector loops, but a scalar loop (a scan's recurrence, a
 * loop's epilogue) called libm's, several times slower.  Elements after the last
 * full vector (the loop epilogue) use the scalar function, so the last bit
 * of a result can depend on its position in the array; for a given n the
 * results are reproducible.
 */
#ifndef KG_MATH_H
#define KG_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if !defined(KG_NO_LIBMVEC) && defined(__GLIBC__) && defined(__x86_64__) \
    && defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER) \
    && __GNUC__ >= 6 && defined(__GLIBC_PREREQ)
#  if __GLIBC_PREREQ(2, 22)
#    define KG_HAVE_LIBMVEC 1
#    define KG__SIMD_DECL __attribute__((__simd__("notinbranch")))
/* Redeclaring a libm function with the simd attribute tells gcc that
 * libmvec provides _ZGV<isa>N<lanes>v_<name>; the prototypes match math.h. */
KG__SIMD_DECL double exp(double);
KG__SIMD_DECL float expf(float);
KG__SIMD_DECL double log(double);
KG__SIMD_DECL float logf(float);
KG__SIMD_DECL double sin(double);
KG__SIMD_DECL float sinf(float);
KG__SIMD_DECL double cos(double);
KG__SIMD_DECL float cosf(float);
KG__SIMD_DECL double pow(double, double);
KG__SIMD_DECL float powf(float, float);
/* sin and cos by other C names for the same symbols: gcc merges sin(x) and
 * cos(x) of one x (every gradient of sin or cos has both) into one sincos
 * call, which has no SIMD variant, and the loop then stays scalar (20 ns an
 * element instead of ~2). Names gcc does not know as builtins are not merged;
 * `const` says what the builtins' knowledge did (no errno under
 * -fno-math-errno): without it the calls stop if-conversion of kg_tanh's
 * selects in the same loop. */
__attribute__((__simd__("notinbranch"), const, nothrow)) double kg__sin(double) __asm__("sin");
__attribute__((__simd__("notinbranch"), const, nothrow)) float kg__sinf(float) __asm__("sinf");
__attribute__((__simd__("notinbranch"), const, nothrow)) double kg__cos(double) __asm__("cos");
__attribute__((__simd__("notinbranch"), const, nothrow)) float kg__cosf(float) __asm__("cosf");
#    define KG__SINCOS_APART 1
#  endif
#  if __GLIBC_PREREQ(2, 35)
#    define KG_HAVE_LIBMVEC_235 1
KG__SIMD_DECL double exp2(double);
KG__SIMD_DECL float exp2f(float);
KG__SIMD_DECL double exp10(double);
KG__SIMD_DECL float exp10f(float);
KG__SIMD_DECL double expm1(double);
KG__SIMD_DECL float expm1f(float);
KG__SIMD_DECL double log2(double);
KG__SIMD_DECL float log2f(float);
KG__SIMD_DECL double log10(double);
KG__SIMD_DECL float log10f(float);
KG__SIMD_DECL double log1p(double);
KG__SIMD_DECL float log1pf(float);
KG__SIMD_DECL double tan(double);
KG__SIMD_DECL float tanf(float);
KG__SIMD_DECL double asin(double);
KG__SIMD_DECL float asinf(float);
KG__SIMD_DECL double acos(double);
KG__SIMD_DECL float acosf(float);
KG__SIMD_DECL double atan(double);
KG__SIMD_DECL float atanf(float);
KG__SIMD_DECL double atan2(double, double);
KG__SIMD_DECL float atan2f(float, float);
KG__SIMD_DECL double sinh(double);
KG__SIMD_DECL float sinhf(float);
KG__SIMD_DECL double cosh(double);
KG__SIMD_DECL float coshf(float);
KG__SIMD_DECL double asinh(double);
KG__SIMD_DECL float asinhf(float);
KG__SIMD_DECL double acosh(double);
KG__SIMD_DECL float acoshf(float);
KG__SIMD_DECL double atanh(double);
KG__SIMD_DECL float atanhf(float);
KG__SIMD_DECL double erf(double);
KG__SIMD_DECL float erff(float);
KG__SIMD_DECL double erfc(double);
KG__SIMD_DECL float erfcf(float);
KG__SIMD_DECL double cbrt(double);
KG__SIMD_DECL float cbrtf(float);
KG__SIMD_DECL double hypot(double, double);
KG__SIMD_DECL float hypotf(float, float);
#  endif
#endif

#ifndef KG_HAVE_LIBMVEC
#  define KG_HAVE_LIBMVEC 0
#endif

/* exp10 is a GNU extension, not C99: elsewhere use pow(10, x). */
#if defined(KG_HAVE_LIBMVEC_235)
#  define kg_exp10(x) exp10(x)
#  define kg_exp10f(x) exp10f(x)
#else
#  define kg_exp10(x) pow(10.0, (x))
#  define kg_exp10f(x) powf(10.0f, (x))
#endif

#define kg_exp(x) exp(x)
#define kg_expf(x) expf(x)
#define kg_exp2(x) exp2(x)
#define kg_exp2f(x) exp2f(x)
#define kg_expm1(x) expm1(x)
#define kg_expm1f(x) expm1f(x)
#define kg_log(x) log(x)
#define kg_logf(x) logf(x)
#define kg_log2(x) log2(x)
#define kg_log2f(x) log2f(x)
#define kg_log10(x) log10(x)
#define kg_log10f(x) log10f(x)
#define kg_log1p(x) log1p(x)
#define kg_log1pf(x) log1pf(x)
#define kg_sqrt(x) sqrt(x)
#define kg_sqrtf(x) sqrtf(x)
#define kg_cbrt(x) cbrt(x)
#define kg_cbrtf(x) cbrtf(x)
#if defined(KG__SINCOS_APART)
#  define kg_sin(x) kg__sin(x)
#  define kg_sinf(x) kg__sinf(x)
#  define kg_cos(x) kg__cos(x)
#  define kg_cosf(x) kg__cosf(x)
#else
#  define kg_sin(x) sin(x)
#  define kg_sinf(x) sinf(x)
#  define kg_cos(x) cos(x)
#  define kg_cosf(x) cosf(x)
#endif
#define kg_tan(x) tan(x)
#define kg_tanf(x) tanf(x)
#define kg_asin(x) asin(x)
#define kg_asinf(x) asinf(x)
#define kg_acos(x) acos(x)
#define kg_acosf(x) acosf(x)
#define kg_atan(x) atan(x)
#define kg_atanf(x) atanf(x)
#define kg_atan2(y, x) atan2((y), (x))
#define kg_atan2f(y, x) atan2f((y), (x))
#define kg_sinh(x) sinh(x)
#define kg_sinhf(x) sinhf(x)
#define kg_cosh(x) cosh(x)
#define kg_coshf(x) coshf(x)
#define kg_asinh(x) asinh(x)
#define kg_asinhf(x) asinhf(x)
#define kg_acosh(x) acosh(x)
#define kg_acoshf(x) acoshf(x)
#define kg_atanh(x) atanh(x)
#define kg_atanhf(x) atanhf(x)
#define kg_erf(x) erf(x)
#define kg_erff(x) erff(x)
#define kg_erfc(x) erfc(x)
#define kg_erfcf(x) erfcf(x)
#define kg_pow(x, y) pow((x), (y))
#define kg_powf(x, y) powf((x), (y))
#define kg_hypot(x, y) hypot((x), (y))
#define kg_hypotf(x, y) hypotf((x), (y))

/* ---- kgen's own tanh ---------------------------------------------------- */
#if defined(__CUDACC__)   /* (nvcc warns about an unused static function; CUDA has its own tanh) */
#  define KG__INLINE inline
#elif defined(__GNUC__)
#  define KG__INLINE static inline __attribute__((always_inline))
#else
#  define KG__INLINE static inline
#endif

/* tanh(x) = sign(x) * (e - 1) / (e + 1), e = exp(2|x|), with e - 1 computed
 * here: range reduction 2|x| = k ln2 + r (|r| <= ln2 / 2; ln2 split so that
 * k * LN2_HI is exact even without FMA), e^r - 1 by its Taylor series
 * (Estrin's scheme: a short dependency chain), then 2^k (e^r - 1) + 2^k - 1.
 * No call, table or branch: it inlines, vectorizes, and a scalar recurrence
 * (h = tanh(w * h + x)) runs faster than through libm's tanh (~1.6x here).
 * |x| is clamped where tanh rounds to 1; NaN, +-0 and +-inf as in C99.
 * Max error 2.6 ulp (float64), 2.3 ulp (float32): tests/test_vecmath_ulp.py. */
KG__INLINE double kg_tanh(double x) {
    const double shift = 0x1.8p52;          /* + shift rounds to an integer, kept in the low bits */
    const double a = fabs(x), y = 2.0 * (a < 20.0 ? a : 20.0);   /* tanh(20) is 1.0 */
    double kd = y * 0x1.71547652b82fep+0 + shift;                 /* y / ln2 */
    uint64_t kb;
    memcpy(&kb, &kd, sizeof kb);
    kd -= shift;
    const double r = (y - kd * 0x1.62e42fefa4000p-1) - kd * -0x1.8432a1b0e2634p-43;
    const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    /* (e^r - 1 - r) / r^2 = 1/2! + r/3! + ... + r^11/13! */
    const double q = (0x1.0000000000000p-1 + 0x1.5555555555555p-3 * r)
                   + (0x1.5555555555555p-5 + 0x1.1111111111111p-7 * r) * r2
                   + ((0x1.6c16c16c16c17p-10 + 0x1.a01a01a01a01ap-13 * r)
                   + (0x1.a01a01a01a01ap-16 + 0x1.71de3a556c734p-19 * r) * r2) * r4
                   + ((0x1.27e4fb7789f5cp-22 + 0x1.ae64567f544e4p-26 * r)
                   + (0x1.1eed8eff8d898p-29 + 0x1.6124613a86d09p-33 * r) * r2) * r8;
    const uint64_t sb = (kb << 52) + ((uint64_t)1023 << 52);       /* 2^k, 0 <= k <= 58 */
    double s;
    memcpy(&s, &sb, sizeof s);
    const double em = s * (r + r2 * q) + (s - 1.0);                /* e^y - 1 */
    const double t = em / (em + 2.0);
    return x != x ? x : copysign(t, x);
}

KG__INLINE float kg_tanhf(float x) {
    const float shift = 0x1.8p23f;
    const float a = fabsf(x), y = 2.0f * (a < 9.5f ? a : 9.5f);  /* tanhf(9.5) is 1.0f */
    float kd = y * 0x1.715476p+0f + shift;
    uint32_t kb;
    memcpy(&kb, &kd, sizeof kb);
    kd -= shift;
    const float r = (y - kd * 0x1.62e4p-1f) - kd * 0x1.7f7d1cp-20f;
    const float r2 = r * r, r4 = r2 * r2;
    /* (e^r - 1 - r) / r^2 = 1/2! + r/3! + ... + r^5/7! */
    const float q = (0x1.000000p-1f + 0x1.555556p-3f * r)
                  + (0x1.555556p-5f + 0x1.111112p-7f * r) * r2
                  + (0x1.6c16c2p-10f + 0x1.a01a02p-13f * r) * r4;
    const uint32_t sb = (kb << 23) + ((uint32_t)127 << 23);        /* 2^k, 0 <= k <= 28 */
    float s;
    memcpy(&s, &sb, sizeof s);
    const float em = s * (r + r2 * q) + (s - 1.0f);
    const float t = em / (em + 2.0f);
    return x != x ? x : copysignf(t, x);
}

/* ---- loop pragmas ------------------------------------------------------ */
#define KG__PRAGMA(text) _Pragma(#text)

#if defined(_OPENMP) || defined(KG_OPENMP_SIMD)
#  define KG_OMP_SIMD KG__PRAGMA(omp simd)
#else
#  define KG_OMP_SIMD
#endif

/* Columns per block of a column reduction (kernel.c.jinja's reduce_cols): its
 * accumulators stay in registers or L1, and two threads share a 500-column
 * matrix evenly enough. */
#ifndef KG_COLS_BLOCK
#  define KG_COLS_BLOCK 64
#endif

/* Below this many elements a fork/join (a few microseconds) costs more than
 * it saves, even for loops full of transcendental calls. */
#ifndef KG_PARALLEL_MIN_N
#  define KG_PARALLEL_MIN_N 32768
#endif

#if defined(_OPENMP)
#  define KG_OMP_PARALLEL_FOR_SIMD(n) \
     KG__PRAGMA(omp parallel for simd schedule(static) if ((n) >= KG_PARALLEL_MIN_N))
#else
#  define KG_OMP_PARALLEL_FOR_SIMD(n) KG_OMP_SIMD
#endif

/* ---- multi-versioning for portable builds -------------------------------
 * Put KG_MULTIVERSION before the definition of a kernel function.  In a
 * build for less than AVX2 (the portable x86-64 baseline) with gcc >= 11 on
 * glibc, gcc then compiles the function (OpenMP regions included) for the
 * baseline, x86-64-v3 (AVX2+FMA) and x86-64-v4 (AVX-512) and the dynamic
 * loader picks the best clone for the CPU (an ifunc); each clone calls the
 * libmvec variants of its own width.  Elsewhere (native builds, clang,
 * non-x86, non-glibc) it is empty.  Define KG_NO_MULTIVERSION to opt out. */
#if !defined(KG_NO_MULTIVERSION) && defined(__x86_64__) && defined(__GLIBC__) \
    && defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER) \
    && __GNUC__ >= 11 && !defined(__AVX2__)
#  define KG_MULTIVERSION \
     __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#  define KG_MULTIVERSION
#endif

#endif /* KG_MATH_H */
