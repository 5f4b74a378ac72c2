"""Ahead-of-time packages: the kernels of a spec file built into OUTDIR/NAME/,
a folder that imports and runs with NumPy and cffi only (no kgen, no
compiler), with standalone C99 sources and a header for C programs.

    spec.py     run a spec file, collect its module-level kg.kernel objects
    model.py    the package as data: lowered kernels, shared variables, names
    render.py   the text files (C, header, __init__.py, runtime, manifest)
    writer.py   the folder, and the compiled extension
    cuda.py     NAME.cu and PTX, through the CUDA backend when it is there

`python -m kgen build` (kgen/cli.py) drives these.
"""
from .model import PackageError, check_package_name
from .spec import NoKernelsError, SpecError, SpecNotFoundError, SpecRaisedError, load_spec
from .writer import BuildResult, build_package

__all__ = ["BuildResult", "NoKernelsError", "PackageError", "SpecError", "SpecNotFoundError",
           "SpecRaisedError", "build_package", "check_package_name", "load_spec"]
