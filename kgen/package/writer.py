"""Writing OUTDIR/NAME/: the package's files, then its compiled extension.

    NAME/__init__.py     the kernels as callables, the shared variables as attributes
    NAME/_runtime.py     kgen/runtime/core.py verbatim: checks and calls (NumPy + cffi)
    NAME/_dask_exec.py   kgen/runtime/dask_exec.py verbatim: calls with Dask arrays
    NAME/NAME.c, NAME.h  standalone C99 and its documented header
    NAME/_NAME.abi3.so   the cffi extension (limited API: CPython 3.10 and newer)
    NAME/_NAME.abi3.so.sha256  its checksum, checked on import (beside it, not in the
                         manifest, so the manifest does not depend on the binary)
    NAME/shared/*.npy    the shared variables' initial values
    NAME/manifest.json   kernels, signatures, dtypes, hashes, versions, flags
    NAME/NAME.cu         with the cuda target, and its NAME.ptx and NAME.sm_NN.cubin;
    NAME/NAME_cuda.c     the host launcher (compiled into the extension, with
    NAME/NAME_images.c   the PTX and cubins embedded: written after nvcc ran)

The sources and the manifest are written before the compiler runs, so after a
compile error they are there to read. A previous build in the same place is
replaced as a whole; a folder that kgen did not write is never touched.
"""
import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import CompileError
from . import render
from .model import PackageError, build_model

TARGETS = ("c", "cuda")


@dataclass
class BuildResult:
    name: str
    path: Path                  # OUTDIR/NAME
    kernels: list               # kernel names
    files: list = field(default_factory=list)   # written, relative to path
    compiled: bool = False
    seconds: float = 0.0


def build_package(kernels, outdir, name, spec_path, *, targets=("c",), native=False,
                  openmp=False, compile=True, optimize=True, progress=None):
    """Build `kernels` into `outdir/name/`; returns a BuildResult.

    `progress(message)` receives one line per kernel and per compile step.
    Raises PackageError, CompilerNotFoundError, CompileError or
    BackendUnavailableError.
    """
    start = time.perf_counter()
    say = progress or (lambda message: None)
    targets = _check_targets(targets)
    spec_path = Path(spec_path)
    if "cuda" in targets:
        from . import cuda
        if compile:
            cuda.check_available()  # before the slow part; the templates are checked below
    c_options = _c_options(native, openmp) if compile else None  # no compiler: fail now
    if c_options and "cuda" in targets:
        # the launcher opens the driver with dlopen and guards its state with a mutex
        c_options["libraries"] += ("dl", "pthread")

    model = build_model(name, spec_path.name, kernels, __version__, optimize,
                        on_kernel=lambda k, s: say(f"kernel {_one_line(k)}: lowered in {s:.2f} s"))
    gpu = "cuda" in targets
    files = {f"{name}.c": render.c_source(model), f"{name}.h": render.c_header(model, cuda=gpu),
             "__init__.py": render.py_init(model, cuda=gpu), "_runtime.py": render.py_runtime(),
             "_dask_exec.py": render.py_runtime("dask_exec")}
    cdef = render.c_cdef(model)
    if gpu:
        files[f"{name}.cu"] = cuda.cuda_source(model.plans, model.version)
        files[f"{name}_cuda.c"] = cuda.launcher_source(model)
        files["_device.py"] = render.py_device()
        cdef += cuda.launcher_cdef(model)
    build = _build_section(name, c_options, cdef) if compile else None
    if build and "cuda" in targets:
        build["cuda"] = cuda.build_section()
    spec_sha256 = render.sha256(spec_path.read_bytes())
    manifest = render.manifest(model, files, spec_sha256, targets, build)

    pkg = _fresh_package_dir(Path(outdir) / name)
    for filename, text in files.items():
        _write_text(pkg / filename, text)
    if model.shared:
        (pkg / "shared").mkdir()
    for s in model.shared:
        with open(pkg / s.filename, "wb") as f:
            np.save(f, s.value, allow_pickle=False)
    _write_text(pkg / "manifest.json", manifest)
    written = sorted(files) + [s.filename for s in model.shared] + ["manifest.json"]

    result = BuildResult(name, pkg, [k.name for k in model.kernels], written)
    if compile:
        extra = []
        if gpu:  # first: the extension embeds what nvcc builds
            t = time.perf_counter()
            say(f"compiling {name}.cu")
            binaries = cuda.compile_binaries(files[f"{name}.cu"], name, pkg)
            say(f"compiled {name}.cu -> {', '.join(binaries)} in {time.perf_counter() - t:.2f} s")
            result.files += binaries
            _write_text(pkg / f"{name}_images.c", cuda.images_source(model, pkg, binaries))
            result.files.append(f"{name}_images.c")
            extra = [f"{name}_cuda.c", f"{name}_images.c"]
        t = time.perf_counter()
        n = len(model.kernels)
        say(f"compiling {name}.c{' and the CUDA launcher' if gpu else ''} "
            f"({n} kernel{'s' if n != 1 else ''})")
        so = _compile_c(model, files[f"{name}.c"], cdef, pkg, c_options, extra)
        say(f"compiled {name}.c -> {so.name} in {time.perf_counter() - t:.2f} s")
        result.files.append(so.name)
        # the package checks its extension against this before loading it; a file of
        # its own, beside the binary, so the manifest stays the same on every machine
        _write_text(pkg / f"{so.name}.sha256", render.sha256(so.read_bytes()) + "\n")
        result.files.append(f"{so.name}.sha256")
        result.compiled = True
    result.seconds = time.perf_counter() - start
    return result


def _one_line(name):
    """A kernel's name for a progress line: as written, or its repr when that
    would break the line (a newline, a control character)."""
    return name if name.isprintable() else repr(name)


def _check_targets(targets):
    targets = list(dict.fromkeys(targets))
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise PackageError(f"unknown target(s) {unknown or targets}; use c, cuda or c,cuda")
    if "c" not in targets:
        # The package's Python callables run the C extension; a CUDA-only loader
        # would need PyCUDA at import.
        raise PackageError("a package always has the C target; use --target c,cuda")
    return targets


def _c_options(native, openmp):
    """Compiler and flags for the extension: portable unless `native` (-march=native),
    no OpenMP runtime dependency unless `openmp`."""
    from ..build import find_compiler, flags
    cc = find_compiler()  # CompilerNotFoundError says which and how to get one
    return {"cc": cc, "native": native,
            "extra_compile_args": tuple(flags.compile_args(openmp=openmp, cc=cc.argv)),
            "libraries": tuple(flags.libraries(cc=cc.argv))}


def _build_section(name, options, cdef):
    """The manifest's machine-dependent part: compiler, flags (no -I paths), ABI.

    Nothing here depends on what is installed in the Python environment: for cffi
    it records the ABI version the extension asks of cffi's backend (a property
    of the generated wrapper) and the cffi releases that provide it, never the
    cffi version that happens to be installed, so rebuilding with another cffi
    release writes the same manifest."""
    from ..build.compiler import (CFFI_REQUIRES, abi3_available, cffi_wrapper_abi, compile_flags,
                                  extension_suffix, link_flags)
    cc = options["cc"]
    flags = compile_flags(native=options["native"], limited_api=True,
                          extra_compile_args=options["extra_compile_args"])
    return {
        "extension": f"_{name}{extension_suffix(True)}",
        "abi": "abi3 (CPython 3.10 and newer)" if abi3_available() else sys.implementation.cache_tag,
        "platform": f"{sys.platform}-{platform.machine()}",
        "compiler": cc.identity.split(" | ", 1)[-1],
        "flags": [f for f in flags if not f.startswith("-I")],
        "link": link_flags(options["libraries"]),
        "native": options["native"],
        "cffi": {"wrapper_abi": cffi_wrapper_abi(cdef, f"_{name}"), "requires": CFFI_REQUIRES},
    }


def _compile_c(model, c_source, cdef, pkg, options, extra_sources=()):
    from ..build import compile_extension
    modname = f"_{model.name}"
    try:
        so = compile_extension(c_source, cdef, modname, pkg,
                               native=options["native"], limited_api=True,
                               extra_compile_args=options["extra_compile_args"],
                               libraries=options["libraries"], kernel_filename=f"{model.name}.c",
                               extra_sources=extra_sources)
    except CompileError as exc:
        exc.source_path = str(pkg / f"{model.name}.c")
        raise
    (pkg / f"{modname}.c").unlink(missing_ok=True)  # cffi's wrapper: only needed to compile
    return so


def _fresh_package_dir(pkg):
    """An empty OUTDIR/NAME: created, or emptied when a previous kgen build is there."""
    if pkg.exists():
        if not pkg.is_dir():
            raise PackageError(f"{pkg} exists and is not a folder; remove it or pick another -o")
        if any(pkg.iterdir()):
            if not _is_kgen_package(pkg):
                raise PackageError(f"{pkg} exists and is not a package kgen built (it has no "
                                   f"kgen manifest.json); remove it or pick another -o/--name")
            shutil.rmtree(pkg)
    pkg.mkdir(parents=True, exist_ok=True)
    return pkg


def _is_kgen_package(pkg):
    try:
        data = json.loads((pkg / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == render.FORMAT


def _write_text(path, text):
    # newline="\n": the same bytes on every platform
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
