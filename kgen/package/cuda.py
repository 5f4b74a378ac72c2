"""The CUDA part of a package (`--target c,cuda`): NAME.cu, its PTX and cubins,
and the host launcher that runs them with only the driver (NAME_cuda.c, with
the binaries embedded by NAME_images.c, both compiled into the extension).

It stands on the CUDA backend (kgen/templates/cuda/, kgen/build/nvcc.py). The
architectures are named by kgen.build.nvcc (its DEFAULT_TARGETS, or
$KGEN_CUDA_TARGETS), never taken from a GPU: NAME.ptx for the baseline
virtual architecture (newer GPUs JIT it) and NAME.sm_NN.cubin per real one.
Building needs nvcc, not a GPU. Where the backend is missing the build stops
with BackendUnavailableError, and without nvcc with CompilerNotFoundError,
both before anything is written.
"""
import importlib
import os
import tempfile
from pathlib import Path

import jinja2

from ..errors import BackendUnavailableError

_MISSING = ("--target cuda: this kgen has no CUDA backend yet ({what}); "
            "build with --target c, or update kgen")


def _nvcc_module():
    try:
        nvcc = importlib.import_module("kgen.build.nvcc")
    except ImportError as exc:
        raise BackendUnavailableError(_MISSING.format(what=f"kgen.build.nvcc: {exc}")) from exc
    if not hasattr(nvcc, "compile_cuda"):
        raise BackendUnavailableError(_MISSING.format(what="kgen.build.nvcc.compile_cuda"))
    return nvcc


def check_available():
    """The nvcc helper module, once nvcc itself was found (CompilerNotFoundError if not)."""
    nvcc = _nvcc_module()
    nvcc.find_nvcc()
    return nvcc


def cuda_source(plans, version):
    """NAME.cu: the kernels' plans rendered by the CUDA templates."""
    from ..codegen.render import render_module
    try:
        return render_module(plans, "cuda", version)
    except (jinja2.TemplateNotFound, KeyError) as exc:
        raise BackendUnavailableError(
            _MISSING.format(what=f"no CUDA template or printer: {exc}")) from exc


def build_section():
    """The manifest's record of the CUDA build: nvcc, its flags, the architectures."""
    nvcc = _nvcc_module()
    names = list(nvcc.targets())
    return {"nvcc": nvcc.find_nvcc().identity.split(" | ", 1)[-1],
            "flags": list(nvcc.FLAGS), "architectures": names}


def compile_binaries(source, name, pkg):
    """NAME.ptx and NAME.sm_NN.cubin next to NAME.cu; returns their file names.

    nvcc runs in a private folder (kgen.build.nvcc writes its own copy of the
    .cu there) and only the binaries are moved into the package.
    """
    nvcc = _nvcc_module()
    names = tuple(nvcc.targets())
    jobs = [("ptx", names, f"{name}.ptx")]
    jobs += [("cubin", (t,), f"{name}.{t}.cubin") for t in names if t.startswith("sm_")]
    written = []
    for output, arch, filename in jobs:
        with tempfile.TemporaryDirectory(prefix=".nvcc-", dir=pkg) as tmp:
            try:
                built = nvcc.compile_cuda(source, name, tmp, output=output, names=arch)
            except Exception as exc:
                if getattr(exc, "source_path", None):  # point at the package's copy
                    exc.source_path = str(Path(pkg) / f"{name}.cu")
                raise
            os.replace(built, Path(pkg) / filename)
        written.append(filename)
    return written


def _environment():
    """The package templates' environment, with what the launcher template reads."""
    from ..codegen.cuda import branch_checks, cuda_kernels
    from ..runtime.cuda_launch import host_program, launch_constants, launch_rule, step_labels
    from .render import environment
    env = environment()
    env.globals.update(cuda_kernels=cuda_kernels, launch_rule=launch_rule,
                       step_labels=step_labels, launch_constants=launch_constants,
                       host_program=host_program, branch_checks=branch_checks)
    return env


def launcher_source(model):
    """NAME_cuda.c: the host launcher (the shape phase, geometry and launches in C).
    An ifelse reads its condition back and launches only the taken branch's
    kernels; an until() loop reads its stop flag after each step and writes
    the steps it ran into the kernel's length arguments (see host_program)."""
    return _environment().get_template("cuda/launcher.c.jinja").render(
        name=model.name, version=model.version, plans=model.plans)


def launcher_cdef(model):
    """cffi's declarations of NAME_cuda.c's functions."""
    return _environment().get_template("cuda/launcher_cdef.h.jinja").render(
        name=model.name, plans=model.plans)


def _arch(filename):
    """NAME.sm_90.cubin -> sm_90; NAME.ptx -> the baseline compute_NN it was built for."""
    if filename.endswith(".cubin"):
        return filename.rsplit(".", 2)[1]
    nvcc = _nvcc_module()
    return nvcc.ptx_target(tuple(nvcc.targets()))


def images_source(model, pkg, binaries):
    """NAME_images.c: the bytes of the binaries nvcc wrote, as C arrays (a PTX
    gets the NUL the driver needs)."""
    images = []
    for filename in binaries:
        data = (Path(pkg) / filename).read_bytes()
        if filename.endswith(".ptx"):
            data += b"\0"
        rows = [",".join(map(str, data[k:k + 24])) for k in range(0, len(data), 24)]
        images.append({"file": filename, "arch": _arch(filename), "size": len(data),
                       "rows": rows})
    return _environment().get_template("cuda/images.c.jinja").render(
        name=model.name, version=model.version, images=images)
