"""`python -m kgen`: build packages from spec files, show generated source, manage the cache.

    python -m kgen build spec.py [-o OUTDIR] [--name NAME] [--target c,cuda]
    python -m kgen show  spec.py [KERNEL] [--target c|cuda]
    python -m kgen cache info | clear

Every failure ends with one `kgen: error: ...` line on stderr and an exit
status that says which failure it was (EXIT_CODES below, also in --help).
"""
import argparse
import subprocess
import sys
import textwrap
import threading
import time

EXIT_CODES = {
    "ok": 0,
    "failed": 1,         # any other kgen error: a name clash, an unsupported op, no CUDA backend
    "usage": 2,          # bad command line (argparse's own code)
    "no_file": 3,        # the spec file does not exist
    "spec_raised": 4,    # running the spec raised (its traceback is printed)
    "no_kernels": 5,     # the spec defines no module-level kernel
    "no_compiler": 6,    # no C compiler (or nvcc): which one, and how to get it
    "compile_error": 7,  # the compiler failed: its message and the kept source
}

_EPILOG = """exit status:
  0 success                      4 the spec raised (traceback printed)
  1 other error                  5 no kernels in the spec
  2 bad command line             6 no compiler (says which, and how to get one)
  3 spec file not found          7 compile error (compiler output, kept source)
"""


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args, parser)
    except KeyboardInterrupt:
        print("kgen: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message and a status
        return _fail(exc)


# ---- the parser -------------------------------------------------------------------

def _wrap(text):
    # RawDescriptionHelpFormatter keeps the exit-status table aligned; wrap prose here
    return textwrap.fill(text, 79)


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m kgen",
        description=_wrap("kgen ahead of time: build kernels from a spec file into a package that "
                    "needs only NumPy and cffi, print their generated source, manage the "
                    "build cache."),
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="commands", metavar="{build,show,cache}", required=True)

    build = sub.add_parser(
        "build", help="build the kernels of spec files into packages",
        description=_wrap("Run each spec file and build its module-level kernels (kg.kernel) into "
                    "OUTDIR/NAME/: an importable package (kernels as callables, shared "
                    "variables as attributes), NAME.c and NAME.h (standalone C99), the "
                    "compiled abi3 extension and manifest.json. The package imports and runs "
                    "with NumPy and cffi only."),
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("specs", nargs="+", metavar="spec.py", help="spec file(s) to build (each in its own interpreter)")
    build.add_argument("-o", "--outdir", default="generated", metavar="OUTDIR",
                       help="where the package folder goes (default: ./generated)")
    build.add_argument("--name", help="package name (default: the spec's file stem; "
                                      "one spec only)")
    build.add_argument("--target", default="c", metavar="c[,cuda]",
                       help="targets to build: c (default) or c,cuda (needs nvcc, no GPU)")
    build.add_argument("--native", action="store_true",
                       help="tune for this machine's CPU (-march=native); the default "
                            "build runs on any CPU of its architecture")
    build.add_argument("--openmp", action="store_true",
                       help="thread large loops with OpenMP (the package then needs the "
                            "OpenMP runtime, libgomp, where it runs)")
    build.add_argument("--sources-only", action="store_true",
                       help="write the sources, header, package code and manifest; run no "
                            "compiler")
    build.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    build.set_defaults(run=_build)

    show = sub.add_parser(
        "show", help="print the generated source of a spec's kernels",
        description=_wrap("Print the source that `build` would compile for the spec's kernels "
                    "(all of them, or KERNEL), without building anything."),
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    show.add_argument("spec", metavar="spec.py", help="spec file")
    show.add_argument("kernel", nargs="?", metavar="KERNEL", help="only this kernel")
    show.add_argument("--target", choices=("c", "cuda"), default="c",
                      help="which source: c (default) or cuda")
    show.set_defaults(run=_show)

    cache = sub.add_parser(
        "cache", help="inspect or clear the disk cache of built kernels",
        description=_wrap("The cache of kernels built by kg.function: $KGEN_CACHE_DIR, else "
                    "$XDG_CACHE_HOME/kgen, else ~/.cache/kgen."),
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    cache.add_argument("action", choices=("info", "clear"),
                       help="info: where it is and what it holds; clear: delete every entry")
    cache.set_defaults(run=_cache)
    return parser


# ---- the commands -----------------------------------------------------------------

def _build(args, parser):
    from .package import build_package, check_package_name, load_spec
    if args.name is not None and len(args.specs) > 1:
        parser.error("--name names one package: give one spec file with it")
    if args.name is not None and check_package_name(args.name):
        parser.error(f"--name: {check_package_name(args.name)}")
    if len(args.specs) > 1:
        return _build_each(args)
    start = time.perf_counter()
    progress = _Progress(start, quiet=args.quiet)
    spec = load_spec(args.specs[0])
    name = args.name or spec.stem
    if check_package_name(name):
        raise _UsageError(f"{check_package_name(name)}: the package is named after the "
                          f"spec file {spec.filename!r}; pass --name")
    progress(f"{spec.filename}: {len(spec.kernels)} kernel(s)")
    _check_outdir(args.outdir)
    try:
        result = build_package(spec.kernels, args.outdir, name, spec.path,
                               targets=[t.strip() for t in args.target.split(",") if t.strip()],
                               native=args.native, openmp=args.openmp,
                               compile=not args.sources_only, progress=progress)
    except OSError as exc:  # unwritable, full, or a file in the way: say where, not a traceback
        import os
        where = os.path.join(args.outdir, name)
        reason = exc.strerror or str(exc)
        if exc.filename and str(exc.filename) != where:
            reason += f": {exc.filename}"
        raise _OutputError(f"cannot write the package {name!r} to {where}: {reason} "
                           f"(pick another -o OUTDIR)") from exc
    finally:
        progress.close()
    what = "built" if result.compiled else "wrote the sources of"
    n = len(result.kernels)
    print(f"kgen: {what} {name}: {n} kernel{'s' if n != 1 else ''} "
          f"({', '.join(result.kernels)}) in {time.perf_counter() - start:.2f} s "
          f"-> {result.path}")
    return EXIT_CODES["ok"]


def _check_outdir(outdir):
    """-o must be a folder or a path that can become one: no file on the way."""
    from pathlib import Path
    path = Path(outdir)
    for part in [path, *path.parents]:
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                what = "is not a folder" if part.exists() else "is a broken link"
                raise _OutputError(f"-o {outdir}: {part} {what}; pick another -o OUTDIR")
            return


def _build_each(args):
    """Several specs: each in its own interpreter, as if built alone. A spec is a
    script and may change process state (kg.config.floatX, counters behind
    variable names), which must not leak into the next spec's output."""
    options = ["-o", args.outdir, "--target", args.target]
    for flag in ("native", "openmp", "sources_only", "quiet"):
        if getattr(args, flag):
            options.append("--" + flag.replace("_", "-"))
    for path in args.specs:
        sys.stdout.flush()
        code = subprocess.call([sys.executable, "-m", "kgen", "build", path, *options],
                               env=_child_env())
        if code != EXIT_CODES["ok"]:
            return code
    return EXIT_CODES["ok"]


def _show(args, parser):
    from . import __version__
    from .codegen.render import render_module
    from .lower.names import KernelNames
    from .package import check_package_name, load_spec
    from .package.model import RESERVED
    spec = load_spec(args.spec)
    # the C symbols `build` gives them: <package>_<kernel>
    names = KernelNames(spec.stem if not check_package_name(spec.stem) else "kgen",
                        reserved=sorted(RESERVED))
    kernels = [(k, *names.claim(k.label)) for k in spec.kernels]
    if args.kernel is not None:
        kernels = [(k, a, sym) for k, a, sym in kernels if args.kernel in (k.label, a)]
        if not kernels:
            listed = ", ".join(repr(k.label) for k in spec.kernels)
            raise _NoSuchKernel(f"no kernel named {args.kernel!r} in {spec.filename!r}; "
                                f"its kernels: {listed}")
    plans = [k.plan(symbol=sym) for k, _, sym in kernels]
    if args.target == "cuda":
        from .package import cuda
        source = cuda.cuda_source(plans, __version__)
    else:  # with the Dask stage kernels built into the extension too (kgen/dask/stages.py)
        from .dask.stages import package_stages
        plans += [p for k, _, sym in kernels for p in package_stages(k, sym)[1]]
        source = render_module(plans, "c", __version__, external_blas=False)
    sys.stdout.write(source)
    return EXIT_CODES["ok"]


def _cache(args, parser):
    from .build import cache_clear, cache_info
    if args.action == "clear":
        info = cache_info()
        n = cache_clear()
        print(f"kgen: removed {n} cache entr{'y' if n == 1 else 'ies'} from {info['dir']}")
        return EXIT_CODES["ok"]
    info = cache_info()
    print(f"cache directory: {info['dir']}")
    print(f"entries:         {info['entries']}")
    print(f"failed builds:   {info['failed']} (sources kept for reading)")
    print(f"size:            {_size(info['bytes'])}")
    return EXIT_CODES["ok"]


def _child_env():
    """The environment for a child `python -m kgen`: this same kgen first on its path."""
    import os
    from pathlib import Path
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


# ---- failures and progress --------------------------------------------------------

class _UsageError(Exception):
    pass


class _NoSuchKernel(Exception):
    pass


class _OutputError(Exception):
    """-o names a place the package cannot be written to."""


def _fail(exc):
    """Print what went wrong; return the matching exit status."""
    from .errors import CompileError, CompilerNotFoundError, KgenError
    from .package import NoKernelsError, SpecNotFoundError, SpecRaisedError
    if isinstance(exc, SpecRaisedError):
        sys.stderr.write(exc.traceback_text)
        code = "spec_raised"
    elif isinstance(exc, SpecNotFoundError):
        code = "no_file"
    elif isinstance(exc, (NoKernelsError, _NoSuchKernel)):
        code = "no_kernels"
    elif isinstance(exc, CompilerNotFoundError):  # before CompileError: it is one
        code = "no_compiler"
    elif isinstance(exc, CompileError):
        code = "compile_error"
    elif isinstance(exc, _UsageError):
        code = "usage"
    elif isinstance(exc, (KgenError, _OutputError)):
        code = "failed"
    else:
        raise exc  # a bug in kgen: let Python print the whole traceback
    print(f"kgen: error: {exc}", file=sys.stderr)
    return EXIT_CODES[code]


class _Progress:
    """Progress lines on stderr, only for builds that take over a second: lines wait
    until then (a timer lets them out while a slow step still runs), so a quick
    build prints just its summary."""

    def __init__(self, start, quiet=False, after=1.0):
        self.start, self.quiet, self.after = start, quiet, after
        self.pending, self.live = [], False
        self.lock = threading.Lock()
        self.timer = None

    def __call__(self, message):
        if self.quiet:
            return
        with self.lock:
            self.pending.append(message)
            if self.live or time.perf_counter() - self.start > self.after:
                self._flush()
            elif self.timer is None:
                delay = max(0.0, self.after - (time.perf_counter() - self.start))
                self.timer = threading.Timer(delay, self._on_timer)
                self.timer.daemon = True
                self.timer.start()

    def _on_timer(self):
        with self.lock:
            self._flush()

    def _flush(self):
        self.live = True
        for line in self.pending:
            print(f"kgen: {line}", file=sys.stderr, flush=True)
        self.pending = []

    def close(self):
        """The build is over: no more lines, and no timer left running."""
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
            self.pending = []


def _size(n):
    if n < 1024:
        return f"{n} bytes"
    return f"{n / 1024:.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f} MiB"
