"""The C runtime: a Kernel built with cffi (through the disk cache) and called
with argument checking.

Calling a kernel is two C calls: `NAME_shapes` computes the output shapes (or
reports a shape error before anything is allocated), then `NAME` fills freshly
allocated outputs. Shared variables take their new values only after the
second call succeeded, so a failed call changes no state.
"""
import os

import numpy as np

from .. import __version__
from ..errors import KgenIndexError, KgenTypeError, ShapeError
from ..expr.arguments import coerce_argument

ERRLEN = 512


def raise_for(rc, message):
    text = message or "kernel failed"
    if rc == 1:
        raise ShapeError(text)
    if rc == 2:
        raise KgenIndexError(text)
    if rc == 3:
        raise MemoryError(text)
    raise RuntimeError(f"kernel returned {rc}: {text}")


class CallSignature:
    """Argument binding and checking shared by every runtime."""

    def __init__(self, kernel, plan):
        self.kernel = kernel
        self.inputs = list(kernel.inputs)
        self.names = [v.name for v in self.inputs]
        self.labels = [f"input {v.name!r}" if v.name else f"input {k}"
                       for k, v in enumerate(self.inputs)]
        self.dtypes = [np.dtype(v.dtype) for v in self.inputs]
        self.static = [any(d is not None for d in v.type.shape) for v in self.inputs]
        self.shared = [p.var for p in plan.params if p.role == "shared"]

    def bind(self, args, kwargs):
        n = len(self.inputs)
        if kwargs:
            args = list(args) + [None] * (n - len(args))
            for key, value in kwargs.items():
                if key not in self.names:
                    raise KgenTypeError(f"{self.kernel.name}() got an unexpected argument {key!r}; "
                                        f"inputs are {self.names}")
                pos = self.names.index(key)
                if pos < len(args) and args[pos] is not None and pos < n - len(kwargs):
                    raise KgenTypeError(f"{self.kernel.name}() got two values for {key!r}")
                args[pos] = value
            if any(a is None for a in args):
                missing = [self.names[k] for k, a in enumerate(args) if a is None]
                raise KgenTypeError(f"{self.kernel.name}() is missing inputs {missing}")
        if len(args) != n:
            raise KgenTypeError(f"{self.kernel.name}() takes {n} argument(s) "
                                f"({', '.join(map(str, self.names))}), got {len(args)}")
        return [self.coerce(var, value, dtype, label, static) for var, value, dtype, label, static
                in zip(self.inputs, args, self.dtypes, self.labels, self.static)]

    def coerce(self, var, value, dtype, label, static):
        """One argument as an aligned, C-contiguous array of the input's dtype (the
        CUDA runtime overrides this to accept GPUArrays too)."""
        # fast path: an aligned, contiguous array of exactly the right kind
        if (type(value) is np.ndarray and value.dtype == dtype and value.ndim == var.ndim
                and value.flags.c_contiguous and value.flags.aligned and not static):
            return value
        arr = coerce_argument(var, value, label)
        if not (arr.flags.c_contiguous and arr.flags.aligned):
            arr = np.array(arr, order="C", copy=True)
        return arr


class CFunction:
    """A kernel compiled for the CPU."""

    target = "c"

    def __init__(self, kernel, optimize=True):
        from ..build import build_module
        from ..build import flags
        from ..codegen.render import render_cdef, render_module
        self.kernel = kernel
        plan = kernel.plan(optimize)
        self._source = render_module([plan], "c", __version__)
        cdef = render_cdef([plan])
        # -O2: every hot loop carries `omp simd`, so it vectorizes anyway, and
        # compiles take half the time of -O3
        extra = tuple(flags.compile_args()) + tuple(os.environ.get("KGEN_OPT", "-O2").split())
        if "gemm" in plan.features:
            from ..build.blas import gemm_build_args
            extra += gemm_build_args()
        module, self.from_cache = build_module(
            self._source, cdef, name_hint=plan.name,
            extra_compile_args=extra, libraries=tuple(flags.libraries()))
        self._ffi, lib = module.ffi, module.lib
        self._run = getattr(lib, plan.name)
        self._shapes = getattr(lib, plan.name + "_shapes")
        self.signature = CallSignature(kernel, plan)
        sig = self.signature
        # the per-call fast path applies to inputs without static dims to check
        self._fast = None if any(sig.static) else [(d, v.ndim) for d, v in
                                                  zip(sig.dtypes, sig.inputs)]
        outs = [p for p in plan.params if p.role in ("output", "update")]
        self._out_specs = [(p.ndim, np.dtype(p.dtype)) for p in outs]
        self._n_outputs = len(kernel.outputs)
        self._updated = [s for s, _ in kernel.updates]
        ins = [p for p in plan.params if p.role in ("input", "shared")]
        self._in_ctypes = [f"{_CTYPE[p.dtype]}[]" for p in ins]
        self._out_ctypes = [f"{_CTYPE[p.dtype]}[]" for p in outs]
        self._n_out_dims = sum(p.ndim for p in outs)
        self._shape_memo = {}
        self._out_shape = self._ffi.new("int64_t[]", max(1, self._n_out_dims))
        self._err = self._ffi.new("char[]", ERRLEN)
        self._single = kernel.single

    def source(self, target=None):
        if target not in (None, "c"):
            return self.kernel.source(target)
        return self._source

    def _fast_args(self, args):
        """The arguments themselves when each is already an aligned, contiguous
        array of its input's exact dtype and ndim (else None: the full checks)."""
        if len(args) != len(self._fast):
            return None
        for value, (dtype, ndim) in zip(args, self._fast):
            if type(value) is not np.ndarray or value.dtype is not dtype or value.ndim != ndim:
                return None
            flags = value.flags
            if not (flags.c_contiguous and flags.aligned):
                return None
        return list(args)

    def __call__(self, *args, **kwargs):
        arrays = None if kwargs or self._fast is None else self._fast_args(args)
        if arrays is None:
            arrays = self.signature.bind(args, kwargs)
        for s in self.signature.shared:
            # a value that lives on the GPU (kgen.runtime.cuda) is read back first
            arrays.append(s._value if s._device is None else s.get_value())
        dims = [d for a in arrays for d in a.shape]
        ffi, err = self._ffi, self._err
        # output shapes depend on input shapes only: remember them per shape
        key = tuple(dims)
        out_shapes = self._shape_memo.get(key)
        if out_shapes is None:
            rc = self._shapes(*dims, self._out_shape, err, ERRLEN)
            if rc:  # KG_ESHAPE, or KG_EINDEX for an index out of range
                raise_for(rc, ffi.string(err).decode())
            flat, k, out_shapes = ffi.unpack(self._out_shape, self._n_out_dims), 0, []
            for ndim, _ in self._out_specs:
                out_shapes.append(tuple(flat[k:k + ndim]))
                k += ndim
            if len(self._shape_memo) < 64:
                self._shape_memo[key] = out_shapes
        outs = [np.empty(shape, dtype) for shape, (_, dtype) in zip(out_shapes, self._out_specs)]
        from_buffer = ffi.from_buffer
        ptrs = [from_buffer(c, a) for c, a in zip(self._in_ctypes, arrays)]
        ptrs += dims
        ptrs += [from_buffer(c, o, True) for c, o in zip(self._out_ctypes, outs)]
        rc = self._run(*ptrs, err, ERRLEN)
        if rc:
            raise_for(rc, ffi.string(err).decode())
        for s, value in zip(self._updated, outs[self._n_outputs:]):
            s._set_value_unchecked(value)
        if self._single:
            return outs[0]
        return outs[:self._n_outputs]


_CTYPE = {"int32": "int32_t", "int64": "int64_t", "float32": "float", "float64": "double",
          "bool": "_Bool"}
