"""The text files of a package, rendered from a PackageModel.

Every file here is a pure function of the spec's kernels and kgen's templates:
no paths, no timestamps, no host names, so two builds of one spec into any two
folders are byte-identical. (The one machine-dependent part, the compiler and
its flags, lives in the manifest's "build" section.)
"""
import functools
import hashlib
import json

import jinja2

from ..codegen.render import TEMPLATE_DIR, render_cdef, render_module
from ..codegen.render import environment as codegen_environment
from ..lower.names import comment

FORMAT = "kgen-package/1"


@functools.lru_cache(maxsize=None)
def environment():
    """The C templates' environment (same loader, printer globals and filters),
    plus the filters the package templates need."""
    base = codegen_environment("c")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)
    env.globals.update(base.globals)
    env.filters.update(base.filters)
    env.filters.update(pyrepr=repr, docsafe=_docsafe, ccomment=comment, clip=_clip)
    return env


def _docsafe(text):
    """Text for inside a triple-quoted docstring: no quote, backslash or
    unprintable character (a line break, a lone surrogate) passes as itself."""
    out = []
    for ch in str(text):
        if ch in '\\"':
            out.append("\\" + ch)
        elif not ch.isprintable():
            out.append(ascii(ch)[1:-1].replace("\\", "\\\\"))
        else:
            out.append(ch)
    return "".join(out)


def _clip(text, n):
    text = str(text)
    return text if len(text) <= n else text[:n - 4] + " ..."


def _context(model):
    return {"name": model.name, "spec_file": model.spec_file, "version": model.version,
            "kernels": model.kernels, "shared": model.shared}


def c_source(model):
    return render_module(model.c_plans, "c", model.version, external_blas=False)


def c_cdef(model):
    return render_cdef(model.c_plans)


def c_header(model, cuda=False):
    """NAME.h; with `cuda`, also the GPU entry points of NAME_cuda.c."""
    return environment().get_template("c/header.h.jinja").render(**_context(model), cuda=cuda)


def py_init(model, cuda=False):
    return environment().get_template("py/__init__.py.jinja").render(**_context(model), cuda=cuda)


def py_runtime(module="core"):
    """The package's _runtime.py (module "core") or _dask_exec.py ("dask_exec"):
    kgen's own runtime module, byte for byte (so a package checks, calls and runs
    over Dask arrays exactly as kg.function does)."""
    import importlib
    path = importlib.import_module(f"kgen.runtime.{module}").__file__
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


def py_device():
    """A GPU package's _device.py: kgen/runtime/device.py, byte for byte."""
    return py_runtime("device")


def sha256(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _value_arg(p):
    """The int64_t argument carrying a 0-d int input's value, where sizes depend on it."""
    return {"c_value": p.value_arg} if p.value_arg else {}


def manifest(model, files, spec_sha256, targets, build):
    """manifest.json: what the package holds, for people and tools.

    `files` maps each written source's name to its text; `build` is the
    compiler section (None for a --sources-only build).
    """
    kernels = []
    for k in model.kernels:
        kernels.append({
            "name": k.label,            # as the spec named it
            "python_name": k.name,      # the package's attribute
            "c_name": k.symbol,         # the C functions: c_name and c_name_shapes
            "c_functions": {"shapes": _signature(k, "shapes"), "run": _signature(k, "run")},
            "inputs": [dict({"name": p.var.name, "c_name": p.name, "dtype": p.dtype,
                             "shape": list(p.static_shape), "c_dims": list(p.dim_args)},
                            **_value_arg(p)) for p in k.inputs],
            "shared": [dict({"name": p.var.name, "c_name": p.name, "dtype": p.dtype,
                             "ndim": p.ndim, "c_dims": list(p.dim_args)}, **_value_arg(p))
                       for p in k.shared],
            "outputs": [{"name": p.label, "c_name": p.name, "dtype": p.dtype, "ndim": p.ndim}
                        for p in k.outputs],
            "updates": [{"shared": target, "c_name": p.name, "dtype": p.dtype, "ndim": p.ndim}
                        for p, target in zip(k.updates, k.update_targets)],
            "lengths": [{"c_name": p.name, "dtype": p.dtype} for p in k.lengths],
            "trims": [list(t) for t in k.trims],
            "out_shape_len": k.out_shape_len,
            "dask": k.dask,             # its split into chunk kernels (kgen/runtime/dask_exec.py)
        })
    data = {
        "format": FORMAT,
        "package": model.name,
        "kgen_version": model.version,
        "spec": {"file": model.spec_file, "sha256": spec_sha256},
        "targets": list(targets),
        "kernels": kernels,
        "shared": [{"name": s.name, "dtype": s.dtype, "shape": list(s.value.shape),
                    "file": s.filename} for s in model.shared],
        "files": {name: {"sha256": sha256(text), "bytes": len(text.encode("utf-8"))}
                  for name, text in sorted(files.items())},
        "build": build,
    }
    return _to_json(data) + "\n"


def _to_json(value, indent=""):
    """JSON with two-space indents, lists of scalars on one line (a shape, a flag list)."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {_to_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(inner + _to_json(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value)


def _signature(k, which):
    from_template = environment().get_template("c/kernel.c.jinja").module
    macro = from_template.shapes_signature if which == "shapes" else from_template.run_signature
    return str(macro(k.plan))
