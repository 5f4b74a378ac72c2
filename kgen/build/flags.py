"""Compiler flags and libraries that kgen's C kernels need, kept as data.

The generated C includes `templates/c/kg_math.h` (SIMD transcendental math
through glibc's libmvec) and `templates/c/kg_gemm.h` (blocked matrix
multiply). Those headers only pay off with the flags below, and a module
built with libmvec enabled must also link it; this module is the one place
that says so. `compile_args()` / `libraries()` give what the backend adds to
a build, after checking once per compiler that libmvec links and runs here
(otherwise `-DKG_NO_LIBMVEC`: same results from scalar libm, no -lmvec).

Why each flag (never -ffast-math: it breaks NaN/inf handling and isnan):
  -fno-math-errno     lets gcc call exp's SIMD variant instead of exp, and
                      turn sqrt into one instruction; errno is never read.
  -fwrapv             signed integer overflow wraps (two's complement), as
                      NumPy's int32/int64 arithmetic does; without it the
                      overflow is undefined and gcc folds (x + 1 > x) to 1.
  -ffp-contract=fast  a*b+c may become one FMA (gcc's GNU-mode default, but
                      -std=c99 would turn it off; the GEMM kernel needs it).
  -fopenmp-simd       honour `#pragma omp simd` without the OpenMP runtime;
                      it defines no macro, hence -DKG_OPENMP_SIMD for the
                      headers' pragma macros.
  -fopenmp            (OPENMP_FLAGS, compile and link) threaded loops and
                      GEMM on the default team, sized by OMP_NUM_THREADS.
"""
import functools
import os
import platform
import shlex
import shutil
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

TEMPLATE_C_DIR = Path(__file__).resolve().parent.parent / "templates" / "c"

# Optimisation level for stand-alone builds (kgen.build.compiler adds its own -O3).
OPT_FLAGS = ["-O3"]
# Flags every kgen C kernel is compiled with.
C_FLAGS = ["-fno-math-errno", "-fwrapv", "-ffp-contract=fast", "-fopenmp-simd", "-DKG_OPENMP_SIMD"]
# Tuned for the build machine (JIT builds); shipped packages use the baseline
# (x86-64 = SSE2), where libmvec's SSE variants still vectorize the math.
NATIVE_FLAGS = ["-march=native"]
PORTABLE_FLAGS = []
# Threads, for compiling and linking alike.
OPENMP_FLAGS = ["-fopenmp"]
# Libraries (names for `-l`) when libmvec is used, and the opt-out otherwise.
C_LIBS = ["mvec", "m"]
NO_LIBMVEC_FLAGS = ["-DKG_NO_LIBMVEC"]
NO_LIBMVEC_LIBS = ["m"]
# Warnings the headers are kept clean under (tests build with them).
WARN_FLAGS = ["-Wall", "-Wextra"]


def default_compiler():
    """argv of the C compiler: $CC, else the one Python was built with, else cc."""
    return tuple(shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"))


def compile_args(openmp=True, cc=None):
    """Extra compile arguments for a kernel (not -O3 nor -march, which the caller picks)."""
    args = list(C_FLAGS)
    if not libmvec_available(cc):
        args += NO_LIBMVEC_FLAGS
    if openmp and openmp_available(cc):
        args += OPENMP_FLAGS
    return args


def libraries(cc=None):
    """Library names to link a kernel with."""
    return list(C_LIBS if libmvec_available(cc) else NO_LIBMVEC_LIBS)


def link_args(openmp=True, cc=None):
    """Extra link arguments (OpenMP needs its flag at link time too)."""
    return list(OPENMP_FLAGS) if openmp and openmp_available(cc) else []


# The probe programs run the real headers, so a "yes" means generated code will
# build, link and load the same way.
_LIBMVEC_PROBE = r"""
#include "kg_math.h"
#if !KG_HAVE_LIBMVEC
#error "kg_math.h does not enable libmvec here"
#endif
int main(void)
{
    double x[64], y[64];
    float xf[64], yf[64];
    int i;
    for (i = 0; i < 64; i++) { x[i] = i * 0.25; xf[i] = (float)x[i]; }
    KG_OMP_SIMD
    for (i = 0; i < 64; i++) y[i] = kg_exp(-x[i]) * kg_sin(x[i]) + kg_log1p(x[i]);
    KG_OMP_SIMD
    for (i = 0; i < 64; i++) yf[i] = kg_expf(-xf[i]) * kg_sinf(xf[i]) + kg_log1pf(xf[i]);
    for (i = 0; i < 64; i++) {
        double want = exp(-x[i]) * sin(x[i]) + log1p(x[i]);
        if (fabs(y[i] - want) > 1e-12 * (1 + fabs(want))) return 1;
        if (fabs(yf[i] - want) > 1e-5 * (1 + fabs(want))) return 1;
    }
    return 0;
}
"""

_OPENMP_PROBE = r"""
#include <omp.h>
int main(void)
{
    int n = 0;
    #pragma omp parallel reduction(+ : n)
    n += 1;
    return n == omp_get_max_threads() ? 0 : 1;
}
"""


_pending = {}                    # probe -> the thread answering it (start_probes)
_MEMO_LOCK = threading.Lock()    # one writer of probes.json at a time in a process


def start_probes(cc=None):
    """Answer the compiler probes (libmvec, OpenMP) on threads of their own,
    at once: a build calls this before rendering its kernel, so with an empty
    cache the probes' compiler runs (about 0.1 s) overlap the rendering and
    each other; compile_args() then waits for what is left. With the
    answers cached it costs two short threads."""
    cc = tuple(cc) if cc else default_compiler()
    for probe in (_libmvec_probe(cc), _openmp_probe(cc)):
        if probe is not None and probe not in _pending:
            thread = threading.Thread(target=_probe, args=probe, daemon=True)
            _pending[probe] = thread
            thread.start()


def _answer(cc, source, args):
    """_probe's answer, after the thread start_probes gave this probe, if any
    (an answer it failed to give is computed here again, raising here)."""
    thread = _pending.get((cc, source, args))
    if thread is not None:
        thread.join()
    return _probe(cc, source, args)


@functools.lru_cache(maxsize=None)
def _probe(cc, source, args):
    """Compile, link and run `source`; True when all three succeed. Answers
    are remembered in kgen's cache (per compiler binary, probe and header
    text), so a new process does not pay for the probe again.

    Each answer is also remembered under the compiler *request* alone (`cc`
    as given, without the binary it resolves to): a process with no compiler
    on its PATH gets the answer the last build had, so it computes the same
    flags, hence the same cache keys, and loads cached modules."""
    import hashlib
    import json
    import os
    request_parts = [*cc, *args, source, (TEMPLATE_C_DIR / "kg_math.h").read_text(encoding="utf-8")]
    request_key = "request:" + hashlib.sha256("\0".join(request_parts).encode()).hexdigest()
    exe = shutil.which(cc[0]) if cc else None
    key = None
    if exe:
        st = os.stat(os.path.realpath(exe))
        key_parts = request_parts + [os.path.realpath(exe), str(st.st_size), str(st.st_mtime_ns)]
        key = hashlib.sha256("\0".join(key_parts).encode()).hexdigest()
    try:
        from .cache import cache_dir
        memo_path = cache_dir() / "probes.json"
    except Exception:
        memo_path = None
    memo = _read_memo(memo_path)
    if key is None:
        # no compiler: nothing can be built, but cached modules can still load
        return memo.get(request_key) is True
    answer = memo.get(key)
    if not isinstance(answer, bool):
        answer = _run_probe(cc, source, args)
    elif memo.get(request_key) is answer:
        return answer
    if memo_path is not None:
        with _MEMO_LOCK:  # the file again: another probe's thread may have added its answer
            memo = _read_memo(memo_path)
            memo[key] = answer
            memo[request_key] = answer
            tmp = memo_path.with_name(f".probes.{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps(memo), encoding="utf-8")
                os.replace(tmp, memo_path)
            except OSError:  # an unwritable cache only costs the probe next time
                try:
                    tmp.unlink()
                except OSError:
                    pass
    return answer


def _read_memo(memo_path):
    """The remembered probe answers ({} when none yet, unreadable or corrupt:
    probe again)."""
    import json

    if memo_path is None:
        return {}
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _run_probe(cc, source, args):
    """Compile, link and run `source` now."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="kgen-probe-") as tmp:
        src = Path(tmp, "probe.c")
        exe = Path(tmp, "probe.exe")
        src.write_text(source, encoding="utf-8")
        cmd = [*cc, *OPT_FLAGS, f"-I{TEMPLATE_C_DIR}", str(src), "-o", str(exe), *args]
        try:
            built = subprocess.run(cmd, capture_output=True, timeout=120)
            if built.returncode != 0:
                return False
            ran = subprocess.run([str(exe)], capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return ran.returncode == 0


def libmvec_available(cc=None):
    """Whether kg_math.h's libmvec route builds, links and runs with this compiler.

    Only x86-64 Linux with glibc >= 2.22 and gcc qualifies (see kg_math.h);
    the answer is cached per compiler for the life of the process.
    """
    probe = _libmvec_probe(tuple(cc) if cc else default_compiler())
    return probe is not None and _answer(*probe)


def _libmvec_probe(cc):
    """The probe libmvec_available asks of `cc`, or None where libmvec does not apply."""
    if sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    return (cc, _LIBMVEC_PROBE, (*C_FLAGS, "-lmvec", "-lm"))


def openmp_available(cc=None):
    """Whether `-fopenmp` compiles, links and runs (Apple clang, for one, lacks it)."""
    return _answer(*_openmp_probe(tuple(cc) if cc else default_compiler()))


def _openmp_probe(cc):
    return (cc, _OPENMP_PROBE, tuple(OPENMP_FLAGS))


def cblas_flags():
    """Build settings for kg_gemm.h's KG_USE_CBLAS route via the `scipy-openblas32` wheel.

    Returns a dict with include_dirs, library_dirs, libraries, define_macros
    (name, value) and extra_link_args (an rpath, so the module finds the
    library without LD_LIBRARY_PATH), or None when the wheel is not
    installed (`pip install scipy-openblas32`). Its cblas.h declares
    `scipy_cblas_sgemm` etc., hence KG_CBLAS_PREFIX=scipy_.
    """
    try:
        import scipy_openblas32 as sob
    except ImportError:
        return None
    lib_dir = sob.get_lib_dir()
    include_dir = sob.get_include_dir()
    if not Path(include_dir, "cblas.h").is_file():
        return None
    link_args = [] if sys.platform == "win32" else [f"-Wl,-rpath,{lib_dir}"]
    return {
        "include_dirs": [include_dir],
        "library_dirs": [lib_dir],
        "libraries": [sob.get_library()],
        "define_macros": [("KG_USE_CBLAS", "1"), ("KG_CBLAS_PREFIX", "scipy_")],
        "extra_link_args": link_args,
    }
