"""The C runtime: a Kernel built with cffi (through the disk cache), called by the
runtime that packages carry too (kgen/runtime/core.py: argument checks, the two
C calls, updates written only after success, thread safety)."""
import os

from .. import __version__
from ..codegen.outline import kernel_units
from ..lower.plan import trims
from . import core
from .core import ERRLEN, raise_for  # noqa: F401  (the CUDA runtime and tests use them)


class CallSignature(core.Signature):
    """The runtime's Signature for a kg.Kernel and its plan: it also knows the input
    variables and the shared variables the kernel reads."""

    def __init__(self, kernel, plan):
        self.kernel = kernel
        self.inputs = list(kernel.inputs)
        # function's In(...) and allow_input_downcast (kgen/function_io.py), if any
        self.options = options = getattr(kernel, "call_options", None)
        names = options.names if options else [v.name for v in self.inputs]
        super().__init__(kernel.name, [(name, v.dtype, v.type.shape)
                                       for name, v in zip(names, self.inputs)],
                         options.defaults if options else None)
        self.shared = [p.var for p in plan.params if p.role == "shared"]

    def coerce(self, k, value):
        if self.options is None or self.options.casts[k] == "safe":
            return super().coerce(k, value)
        from ..function_io import coerce_argument
        return core.contiguous(coerce_argument(self.inputs[k], value, self.labels[k],
                                               self.options.casts[k]))


class CFunction(core.Kernel):
    """A kernel compiled for the CPU."""

    target = "c"
    profile = None  # Theano's attribute: a ProfileStats on profile=True functions

    def lazy_call(self, args, kwargs):
        """A call given Dask arrays: chunk by chunk (kgen.dask, imported only now)."""
        from ..dask import call
        return call(self, args, kwargs)

    def __init__(self, kernel, optimize=True, profile=False):
        from ..build import build_module
        from ..build import flags
        from ..codegen.render import render_cdef, render_fastcall, render_module
        self.kernel, self._optimize = kernel, optimize
        flags.start_probes()  # an empty cache's compiler probes run while the kernel renders
        plan = kernel.plan(optimize)
        # profile: a build with a timer around each step (kgen/profiling.py reads them)
        self._source = render_module([plan], "c", __version__, profile=profile)
        blas = ()
        if "gemm" in plan.features:
            from ..build.blas import gemm_build_args
            blas = gemm_build_args()
        cdef = render_cdef([plan], profile=profile, blas_bind=bool(blas))
        # -O2: every hot loop carries `omp simd`, so it vectorizes anyway, and
        # compiles take half the time of -O3
        extra = tuple(flags.compile_args()) + tuple(os.environ.get("KGEN_OPT", "-O2").split()) + blas
        module, self.from_cache = build_module(
            self._source, cdef, name_hint=plan.name,
            extra_compile_args=extra, libraries=tuple(flags.libraries()),
            kernel_units=kernel_units(plan, profile),
            wrapper_source="" if profile else render_fastcall([plan]))
        self._module = module  # kgen.dask ships its file to workers
        roles = {role: [p for p in plan.params if p.role == role]
                 for role in ("shared", "output", "update")}
        updated = [s for s, _ in kernel.updates]
        # the C entry points are named by the plan (a C identifier), not the user's text
        super().__init__(
            module, plan.name, kernel.name,
            inputs=[(v.name, v.dtype, v.type.shape) for v in kernel.inputs],
            shared=[p.var for p in roles["shared"]],
            outputs=[(p.name, p.dtype, p.ndim) for p in roles["output"]],
            updates=[(s, p.dtype, p.ndim) for s, p in zip(updated, roles["update"])],
            single=kernel.single, values=value_positions(plan),
            # a profiled call goes through the timed bind; others are called in C
            fast=False if profile else "c", trims=trims(plan))
        self.signature = CallSignature(kernel, plan)
        self.names = self.signature.names
        if profile:
            self.steps = list(plan.steps)
            self._step_seconds = getattr(module.lib, plan.name + "_step_seconds")

    def copy(self, *args, **kwargs):
        """Theano's f.copy(share_memory=False, swap=None, delete_updates=False, ...)."""
        from ..function import copy_function
        return copy_function(self, *args, **kwargs)

    def source(self, target=None):
        if target not in (None, "c"):
            return self.kernel.source(target)
        return self._source

    def __reduce__(self):
        """Pickles as the kernel's declaration; unpickling loads the build from the disk
        cache, or builds it again. Shared variables pickled in the same pickle come
        back as the same objects (pickle's memo)."""
        spec = getattr(self, "_spec", None)
        if spec is not None:  # built by kg.function: build it again the same way
            from ..function import from_spec
            return from_spec, (spec,)
        k = self.kernel
        outputs = k.outputs[0] if k.single else list(k.outputs)
        return _rebuild, (k.name, list(k.inputs), outputs, list(k.updates), self._optimize)


def value_positions(plan):
    """Positions among the inputs then the shared variables of those whose values
    the shape phase reads (passed as int64_t after the lengths)."""
    params = [p for p in plan.params if p.role in ("input", "shared")]
    return [k for k, p in enumerate(params) if p.value_arg]


def _rebuild(name, inputs, outputs, updates, optimize):
    from ..function import Kernel
    return CFunction(Kernel(name, inputs, outputs, updates), optimize)

