"""Turn C kernel source plus a cffi cdef into a Python extension (.so).

We drive cffi only to emit its wrapper (`ffi.emit_c_code`) and then call the C
compiler ourselves, in one invocation: going through setuptools costs several
hundred milliseconds per build and gives no control over the output name.

The kernel source never includes Python headers. The kernel and the wrapper
(which sees only the kernel's prototypes) are separate translation units,
compiled at the same time and then linked; sources are named by bare names
next to them, so compiler messages point at the kernel's own lines and the
generated files hold no absolute paths.
"""
import contextlib
import functools
import io
import os
import platform
import shlex
import shutil
import sys
import sysconfig
from pathlib import Path

from kgen.errors import CompileError, CompilerNotFoundError



class _Log:
    """kgen.build's logger, with `logging` imported at the first message: a
    warm build (a cache hit) logs nothing, and importing logging cost it a
    few milliseconds."""

    def __getattr__(self, name):
        import logging
        return getattr(logging.getLogger("kgen.build"), name)


log = _Log()

_HOW_TO_GET_ONE = (
    "Install a C compiler (Debian/Ubuntu: `apt install gcc`; Fedora: `dnf install gcc`; "
    "macOS: `xcode-select --install`) or point $CC at one."
)


class Compiler:
    """A resolved C compiler: the argv prefix to run and a line that identifies it."""

    def __init__(self, argv, identity):
        self.argv = tuple(argv)
        self.identity = identity

    def __repr__(self):
        return f"Compiler({' '.join(self.argv)!r})"


def find_compiler():
    """The C compiler to use: $CC, else sysconfig's CC, else cc/gcc/clang.

    Memoized per value of $CC, so `cc --version` runs once per process.
    """
    return _find_compiler(os.environ.get("CC", ""))


@functools.lru_cache(maxsize=None)
def _find_compiler(env_cc):
    if env_cc:
        # An explicit $CC is never second-guessed by falling back to another compiler.
        candidates = [("$CC", shlex.split(env_cc))]
    else:
        candidates = []
        sys_cc = sysconfig.get_config_var("CC")
        if sys_cc:
            candidates.append(("sysconfig CC", shlex.split(sys_cc)))
        candidates += [("default", [name]) for name in ("cc", "gcc", "clang")]
    for _, argv in candidates:
        path = shutil.which(argv[0]) if argv else None
        if path:
            argv = [path, *argv[1:]]
            return Compiler(argv, _identity(argv))
    looked_for = ", ".join(f"{' '.join(argv)!r} ({origin})" for origin, argv in candidates)
    raise CompilerNotFoundError(f"No C compiler found: looked for {looked_for}. {_HOW_TO_GET_ONE}")


def _identity(argv):
    """Path, extra arguments and the first line of `--version`: part of every cache key."""
    import subprocess  # deferred, like every compiler run: a warm build starts none

    try:
        proc = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise CompilerNotFoundError(
            f"C compiler {argv[0]!r} cannot be run ({exc}). {_HOW_TO_GET_ONE}"
        ) from exc
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    version = lines[0] if lines else f"unknown (exit {proc.returncode})"
    return f"{os.path.realpath(argv[0])} {' '.join(argv[1:])} | {version}"


def target_id(native):
    """What the machine code depends on: the architecture, and the CPU itself for -march=native."""
    machine = platform.machine()
    return f"{sys.platform}-{machine}-{_cpu_signature()}" if native else f"{sys.platform}-{machine}"


@functools.lru_cache(maxsize=None)
def _cpu_signature():
    # A cache shared over NFS must not hand a -march=native build to another CPU model.
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            wanted = ("model name", "flags", "cpu model", "CPU part", "Features", "cpu")
            lines = []
            for line in f:
                if not line.strip():
                    break  # the first processor's block is enough
                if line.split(":")[0].strip() in wanted:
                    lines.append(line.strip())
            if lines:
                return " ".join(lines)
    except OSError:
        pass
    return platform.processor() or "unknown-cpu"


def abi3_available():
    """Whether this interpreter can build and load stable-ABI (abi3) extensions."""
    return not (sysconfig.get_config_var("Py_DEBUG") or sysconfig.get_config_var("Py_GIL_DISABLED"))


def extension_suffix(limited_api):
    """The file suffix importlib expects, e.g. '.abi3.so' or '.cpython-311-x86_64-linux-gnu.so'."""
    if limited_api and abi3_available():
        return ".pyd" if sys.platform == "win32" else ".abi3.so"
    return sysconfig.get_config_var("EXT_SUFFIX")


def compile_flags(*, native, limited_api, extra_compile_args=(), define_macros=()):
    """Every flag placed before the source file; also hashed into cache keys."""
    flags = ["-shared", "-fPIC", "-O3", "-fvisibility=hidden"]
    if native:
        # GCC spells "tune for this CPU" -mcpu on ARM and POWER, -march on x86.
        x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
        flags.append("-march=native" if x86 else "-mcpu=native")
    if sys.platform == "darwin":
        # Python symbols are resolved from the interpreter at load time.
        flags += ["-undefined", "dynamic_lookup"]
    if not (limited_api and abi3_available()):
        flags.append("-D_CFFI_NO_LIMITED_API")
    for macro in define_macros:
        name, value = macro if isinstance(macro, (tuple, list)) else (macro, None)
        flags.append(f"-D{name}" if value is None else f"-D{name}={value}")
    paths = sysconfig.get_paths()
    for inc in dict.fromkeys([paths["include"], paths["platinclude"]]):
        flags.append(f"-I{inc}")
    flags += list(extra_compile_args)
    if "-fwrapv" not in flags:
        # every module kgen builds (kernels get it from flags.C_FLAGS; the CUDA
        # host shape phase from here): signed overflow wraps, as in NumPy
        flags.append("-fwrapv")
    return flags


def link_flags(libraries=()):
    """`-l` options, placed after the source; libm always, since kernels call it."""
    libs = list(dict.fromkeys(["m", *libraries])) if sys.platform != "win32" else list(libraries)
    return [f"-l{lib}" for lib in libs]


def compile_extension(c_source, cdef, modname, outdir, *, native=False, limited_api=True,
                      extra_compile_args=(), libraries=(), define_macros=(), kernel_filename=None,
                      extra_sources=(), kernel_units=1, wrapper_source=""):
    """Write the kernel, cffi's wrapper and the compiled extension into `outdir`.

    Returns the path of the extension, named `<modname><suffix>` so that importlib
    accepts it. `kernel_filename` (default `<modname>_kernel.c`) is where the kernel
    source is written; the wrapper declares its functions. Raises
    CompileError (with the compiler's output and the kernel's path) or
    CompilerNotFoundError. `extra_sources` name C files already in `outdir`,
    compiled and linked in as translation units of their own. `kernel_units=2`
    compiles the kernel file twice at once, with -DKG_UNIT=0 and -DKG_UNIT=1
    (a source with many outlined parts or heavy step groups: templates/c/prelude.h,
    kgen/codegen/outline.py). `wrapper_source` is C appended to cffi's wrapper,
    after the kernels' declarations.
    """
    cc = find_compiler()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    kernel_filename = kernel_filename or f"{modname}_kernel.c"
    kernel_path = outdir / kernel_filename
    kernel_path.write_text(c_source, encoding="utf-8")
    wrapper = f"{modname}.c"

    so_name = modname + extension_suffix(limited_api)
    partial = f".{so_name}.partial"
    flags = compile_flags(native=native, limited_api=limited_api,
                          extra_compile_args=extra_compile_args, define_macros=define_macros)
    # Separate translation units, compiled at once (one per core) and linked:
    # the kernel with the caller's flags, cffi's glue (argument conversion,
    # Python.h) at -O1, where it compiles fastest and runs as fast.
    unit_flags = _compile_only(flags)
    if kernel_units == 1:
        units = [(kernel_filename, unit_flags)]
    else:
        units = [(kernel_filename, [*unit_flags, f"-DKG_UNIT={k}"]) for k in range(kernel_units)]
    units += [(wrapper, [*unit_flags, *WRAPPER_FLAGS])]
    units += [(src, unit_flags) for src in extra_sources]
    objects = [f".{Path(src).name}.{k}.o" for k, (src, _) in enumerate(units)]
    jobs = []
    try:
        for (src, args), obj in zip(units, objects):
            if src == wrapper:  # cffi writes it while the kernel's units compile
                _emit_wrapper(cdef, modname, kernel_filename, outdir / wrapper, kernel_path,
                              wrapper_source)
            jobs.append(_start(cc, [*cc.argv, *args, "-c", src, "-o", obj], outdir,
                               kernel_path))
        for cmd, proc in jobs:
            _finish(cmd, proc, modname, kernel_path)
        link = [*cc.argv, *_link_only(flags), *objects, "-o", partial, *link_flags(libraries)]
        _finish(*_start(cc, link, outdir, kernel_path), modname, kernel_path)
    finally:
        for _, proc in jobs:
            if proc.poll() is None:  # another unit failed: stop this one
                proc.kill()
                proc.communicate()
        for obj in objects:
            (outdir / obj).unlink(missing_ok=True)
    os.replace(outdir / partial, outdir / so_name)
    return outdir / so_name


# cffi's wrapper only converts arguments and calls the kernel: -O1 compiles it
# in about half the time of -O3 (the kernel keeps its own level).
WRAPPER_FLAGS = ["-O1"]


def _link_only(flags):
    """The flags the link step needs: all but the preprocessor's and the warnings."""
    return [f for f in flags
            if f.startswith("-Wl,") or not f.startswith(("-D", "-I", "-W"))]


def _compile_only(flags):
    """The flags a `-c` step takes: no linker inputs (a library's path, -Wl,
    options, -undefined's argument), which would only draw warnings there."""
    out, skip = [], False
    for f in flags:
        if skip:
            skip = False
        elif f == "-undefined":
            skip = True
        elif f.startswith("-Wl,") or f == "-shared" or not f.startswith("-"):
            continue
        else:
            out.append(f)
    return out


def _start(cc, cmd, outdir, kernel_path):
    import subprocess

    log.debug("compiling in %s: %s", outdir, shlex.join(cmd))
    # cwd= instead of os.chdir: relative names keep paths out of the output and messages.
    try:
        return cmd, subprocess.Popen(cmd, cwd=outdir, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as exc:
        raise CompilerNotFoundError(
            f"C compiler {cc.argv[0]!r} cannot be run ({exc}). {_HOW_TO_GET_ONE}",
            source_path=str(kernel_path)) from exc


def _finish(cmd, proc, modname, kernel_path):
    """Wait for one compiler run; CompileError with its output if it failed."""
    output, _ = proc.communicate()
    if proc.returncode != 0:
        raise CompileError(
            f"C compiler failed (exit {proc.returncode}) building {modname}\n"
            f"  command (run next to the source): {shlex.join(cmd)}",
            output=output, source_path=str(kernel_path))


# The cffi releases kgen's extensions load with: the range pyproject.toml declares.
CFFI_REQUIRES = "cffi>=1.15"


def cffi_wrapper_abi(cdef, modname):
    """The ABI version (e.g. '0x2601') that cffi's wrapper for `cdef` passes to
    `_cffi_init`: what the extension requires of the `_cffi_backend` it loads
    with. It depends on the C types used, not on the installed cffi release."""
    import re
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kgen-cffi-") as tmp:
        path = Path(tmp, f"{modname}.c")
        _emit_wrapper(cdef, modname, "kernel.c", path, path)
        text = path.read_text(encoding="utf-8")
    found = re.search(r'_cffi_init\("[^"]*", (0x[0-9a-fA-F]+),', text)
    if not found:
        raise CompileError(f"cffi's wrapper for {modname} has no _cffi_init call", output="")
    return found.group(1).lower()


def _emit_wrapper(cdef, modname, kernel_filename, path, kernel_path, more=""):
    import cffi  # deferred: importing cffi and pycparser is only needed to build

    ffi = cffi.FFI()
    try:
        ffi.cdef(cdef)
    except (cffi.CDefError, cffi.FFIError) as exc:
        raise CompileError(f"cffi rejected the cdef of {modname}: {exc}",
                           output=cdef, source_path=str(kernel_path)) from exc
    # the kernel is a translation unit of its own: the wrapper sees only its
    # declarations (the cdef is plain C prototypes)
    ffi.set_source(modname, f'/* the functions of {kernel_filename} */\n'
                            f'#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n{cdef}\n{more}')
    with contextlib.redirect_stdout(io.StringIO()):  # cffi prints "generating <file>"
        ffi.emit_c_code(str(path))
