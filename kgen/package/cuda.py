"""The CUDA part of a package (`--target c,cuda`): NAME.cu and its PTX.

It stands on the CUDA backend (kgen/templates/cuda/, kgen/build/nvcc.py),
which may be absent from a given kgen; then the build stops with
BackendUnavailableError saying what is missing, before anything is written.
"""
import importlib

import jinja2

from ..errors import BackendUnavailableError

_MISSING = ("--target cuda: this kgen has no CUDA backend yet ({what}); "
            "build with --target c, or update kgen")


def _nvcc_module():
    try:
        return importlib.import_module("kgen.build.nvcc")
    except ImportError as exc:
        raise BackendUnavailableError(_MISSING.format(what=f"kgen.build.nvcc: {exc}")) from exc


def check_available():
    """Raise BackendUnavailableError unless the CUDA renderer and nvcc helper exist."""
    nvcc = _nvcc_module()
    if not hasattr(nvcc, "compile_ptx"):
        raise BackendUnavailableError(_MISSING.format(what="kgen.build.nvcc.compile_ptx"))
    return nvcc


def cuda_source(plans, version):
    """NAME.cu: the kernels' plans rendered by the CUDA templates."""
    from ..codegen.render import render_module
    try:
        return render_module(plans, "cuda", version)
    except (jinja2.TemplateNotFound, KeyError) as exc:
        raise BackendUnavailableError(
            _MISSING.format(what=f"no CUDA template or printer: {exc}")) from exc


def compile_ptx(cu_path, outdir):
    """Compile NAME.cu (already written) into PTX next to it; returns the files written."""
    return list(check_available().compile_ptx(cu_path, outdir))
