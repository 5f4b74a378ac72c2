"""Rendering Plans into source text with Jinja2 (one cached environment,
StrictUndefined, as SymForce does)."""
import functools
import math
import os
from pathlib import Path

import jinja2
import numpy as np

from ..lower.names import c_string, comment
from .printer import PRINTERS, TAGS

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


@functools.lru_cache(maxsize=None)
def environment(target):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False,
        # Jinja2's constant-folding pass: the same text and render speed
        # without it (measured on the MLP step), and 15% off compiling the
        # templates, which a cold cache's first build pays (~0.2 s)
        optimized=False)
    printer = PRINTERS[target]
    env.globals.update(ctype=printer.ctype, expr=printer.expr, tags=TAGS,
                       grouped=printer.grouped, blocks=printer.blocks, words=printer.words,
                       lit=printer.literal, acc_ctype=_acc_ctype(printer),
                       reduce_init=_reduce_init(printer), reduce_combine=_reduce_combine,
                       nan_tracked=_nan_tracked, simd_reduction_op=_simd_reduction_op)
    if target == "c":  # long fused loops become part functions (gcc is superlinear)
        from .outline import plan_outlines, state_fields, step_groups
        env.globals.update(outline_steps=plan_outlines, step_groups=step_groups,
                           state_fields=state_fields)
    env.globals.update(pasted=_pasted)
    env.filters["lit"] = lambda v, dtype: printer.literal(v, dtype)
    # the only ways user text enters C: a string literal, a comment
    env.filters.update(cstr=c_string, ccomment=comment)
    if target == "cuda":  # the kernel records (kgen/codegen/cuda.py) and launch constants
        from .cuda import cuda_globals
        env.globals.update(cuda_globals())
    return env


@functools.lru_cache(maxsize=None)
def _pasted(name):
    """A plain C header from templates/ (kg_math.h, kg_gemm.h...), pasted as it
    is: read once, never lexed or compiled as a Jinja2 template (the headers
    are most of the template text, and compiling them cost a cold build
    about 0.3 s). Its last newline is the template's own line end."""
    text = (TEMPLATE_DIR / name).read_text(encoding="utf-8")
    return text[:-1] if text.endswith("\n") else text


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja2's file cache, made harmless: a cache folder that is read-only,
    full, or removed by `python -m kgen cache clear` meanwhile only costs
    speed, never a render."""

    def load_bytecode(self, bucket):
        try:
            super().load_bytecode(bucket)
        except (OSError, ValueError, EOFError):
            bucket.reset()

    def dump_bytecode(self, bucket):
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache():
    """Compiled templates kept in kgen's cache (keyed by each template's
    checksum): a new process renders without recompiling Jinja2 templates."""
    try:
        from ..build import cache_dir
        return _BytecodeCache(str(cache_dir() / "jinja"))
    except Exception:  # an unusable cache only costs speed
        return None


# A reduce loop's accumulator, from its op record (kgen/expr/ops/reduce.py).

def _acc_dtype(loop):
    if loop.red_op.widens_float32:
        return "float64" if loop.dtype == "float32" else loop.dtype
    return loop.in_dtype


def _acc_ctype(printer):
    return lambda loop: printer.ctype(_acc_dtype(loop))


def _reduce_init(printer):
    def init(loop):
        start, dtype = loop.red_op.start, _acc_dtype(loop)
        if math.isinf(start) and dtype == "bool":
            start = start > 0
        elif math.isinf(start) and dtype != "float32" and dtype != "float64":
            info = np.iinfo(dtype)
            start = info.max if start > 0 else info.min
        return printer.literal(start, dtype)
    return init


def _reduce_combine(loop, acc, x):
    return loop.red_op.c_combine.format(acc=acc, x=x, s=TAGS[_acc_dtype(loop)])


def _nan_tracked(loop):
    """A float max/min keeps a NaN flag beside its accumulator (the op's nan_flag)."""
    return loop.red_op.nan_flag and _acc_dtype(loop) in ("float32", "float64")


def _simd_reduction_op(loop):
    """The OpenMP `reduction` operator of a reduce loop's accumulator, or None
    (OpenMP has no max/min over _Bool)."""
    op = loop.red_op.omp_reduction
    return None if _acc_dtype(loop) == "bool" and op in ("max", "min") else op


def render_module(plans, target="c", version="0", profile=False, external_blas=True):
    """The whole source file for a list of lowered kernels (with per-step timers
    and NAME_step_seconds() when `profile`, C only). `external_blas`: keep the
    products' route through a CBLAS (kg_narrow.h, kg_blas.h, used where the
    build defines KG_BLAS); shipped packages, built without, leave it out."""
    features = set().union(*(p.features for p in plans)) if plans else set()
    env = environment(target)
    template = env.get_template(f"{target}/module.{'c' if target == 'c' else 'cu'}.jinja")
    body = template.render(plans=plans, features=features, version=version, profile=profile,
                           external_blas=external_blas)
    if target != "c":
        return body
    # the banner names the line where each kernel starts (its length does not
    # depend on the numbers, so one extra render of it places them)
    banner = env.get_template("c/banner.c.jinja")
    offset = banner.render(plans=plans, version=version, profile=profile, lines=None).count("\n")
    starts = _kernel_lines(body, plans)
    return banner.render(plans=plans, version=version, profile=profile,
                         lines=[offset + n for n in starts]) + body


def _kernel_lines(body, plans):
    """1-based line of each plan's `/* ---- kernel NAME` header in `body`."""
    lines, at = [], 0
    for plan in plans:
        at = body.index(f"/* ---- kernel {plan.name} ", at)
        lines.append(body.count("\n", 0, at) + 1)
    return lines


def fast_callable(plan):
    """Whether a kernel gets a call from Python in C (templates/c/fastcall.c.jinja):
    it reads inputs only and writes outputs only (runtime/core.py's fast path)."""
    return any(p.role == "output" for p in plan.params) and all(
        p.role in ("input", "output") and not p.value_arg for p in plan.params)


def render_fastcall(plans):
    """C for cffi's wrapper: the fast-callable kernels' calls from Python ("" if none)."""
    plans = [p for p in plans if fast_callable(p)]
    if not plans:
        return ""
    return environment("c").get_template("c/fastcall.c.jinja").render(plans=plans)


def render_cdef(plans, profile=False, blas_bind=False):
    """The cffi declarations of the kernels (the same signatures as the header), and
    kg_blas.h's kg_blas_bind where `blas_bind` (a local build on kgen's OpenBLAS)."""
    return environment("c").get_template("c/cdef.h.jinja").render(
        plans=plans, profile=profile, blas_bind=blas_bind)
