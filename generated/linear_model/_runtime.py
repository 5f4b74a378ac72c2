"""Calling compiled kgen kernels from Python: one runtime for kg.function and packages.

kgen imports this module as `kgen.runtime.core`; every package built by
`python -m kgen build` carries this very file, byte for byte, as `_runtime.py`.
So it imports NumPy and the standard library only (never kgen), and one code
path decides, for both:

- argument binding and checking: by position or by name; array-likes are
  accepted; a dtype is cast only when NumPy's 'safe' rule allows it; Python
  scalars and nested lists of them are weak (NEP 50) but must fit;
- the errors: wrong argument count, ndim or dtype is a KgenTypeError
  (a TypeError), shapes that do not fit a ShapeError (a ValueError), an index
  out of range a KgenIndexError; each message names the input or the operation;
- a call: `NAME_shapes` computes the output shapes (or reports a shape error
  before anything is allocated), then `NAME` fills fresh outputs; updates are
  written only after both succeeded, so a call that raises changes nothing;
- threads: every call has its own error and shape buffers, and a call that
  updates shared variables holds their locks from reading to writing, so it is
  atomic; other calls run in parallel, with the GIL released in the kernel;
- shared values: stored native-endian, aligned and C-contiguous;
- loading a package: its extension is checked against the manifest's sha256
  before it is loaded, and a broken shared/*.npy is named.
"""
import functools
import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import math
import os
import threading
import types

import numpy as np

ERRLEN = 512
_CARRAY = 0x1 | 0x100  # ndarray.flags.num: NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED
_CTYPES = {"bool": "_Bool[]", "int32": "int32_t[]", "int64": "int64_t[]",
           "float32": "float[]", "float64": "double[]"}


class KgenError(Exception):
    """Base class of kgen's own errors."""


class ShapeError(KgenError, ValueError):
    """Shapes that cannot work together (a static shape, a broadcast, a dot...)."""


class KgenIndexError(KgenError, IndexError):
    """An integer index out of range at run time."""


class KgenTypeError(KgenError, TypeError):
    """Wrong argument count, dtype, ndim or argument kind."""


def raise_for(rc, message):
    """Turn a kernel's return code (KG_ESHAPE, KG_EINDEX, KG_ENOMEM) into an exception."""
    text = message or "kernel failed"
    if rc == 1:
        raise ShapeError(text)
    if rc == 2:
        raise KgenIndexError(text)
    if rc == 3:
        raise MemoryError(text)
    raise RuntimeError(f"kernel returned {rc}: {text}")


def format_shape(shape):
    """A shape as NumPy prints it, with `?` for unknown axes."""
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


# ---- one argument ---------------------------------------------------------------------
def coerce_value(dtype, static_shape, value, label):
    """`value` as an array of `dtype` (a np.dtype) and the static shape's ndim, or an
    error naming `label`. Not necessarily contiguous: see `contiguous`."""
    if _is_python_scalar(value):
        arr = weak_scalar(value, dtype, label)
    else:
        arr = _as_array(value, dtype, label)
        if arr.dtype.kind not in "biuf":
            raise KgenTypeError(f"{label}: expected {dtype.name} data, got {arr.dtype}")
        if arr.dtype != dtype and isinstance(value, (list, tuple)) and arr.size:
            arr = _weak_sequence(arr, dtype, label)
        if arr.dtype != dtype:
            if not np.can_cast(arr.dtype, dtype, "safe"):
                raise KgenTypeError(
                    f"{label}: expected dtype {dtype.name}, got {arr.dtype} "
                    f"(which does not cast safely; use .astype)")
            arr = arr.astype(dtype)
    ndim = len(static_shape)
    if arr.ndim != ndim:
        raise KgenTypeError(
            f"{label}: expected a {ndim}-d array of {dtype.name} with shape "
            f"{format_shape(static_shape)}, got {arr.ndim}-d with shape {arr.shape}")
    for axis, (want, got) in enumerate(zip(static_shape, arr.shape)):
        if want is not None and want != got:
            raise ShapeError(f"{label}: expected shape {format_shape(static_shape)}, "
                             f"got {arr.shape} (axis {axis})")
    return arr


def contiguous(arr):
    """`arr` itself when C code can read it (aligned, C-contiguous, native byte
    order), else such a copy. (np.ascontiguousarray would make a 0-d array 1-d.)"""
    flags = arr.flags
    if flags.c_contiguous and flags.aligned and arr.dtype.isnative:
        return arr
    return np.array(arr, dtype=arr.dtype.newbyteorder("="), order="C", copy=True)


def _is_python_scalar(value):
    return isinstance(value, (bool, int, float)) and not isinstance(value, np.generic)


def _as_array(value, dtype, label):
    """np.asarray, with an error naming the input for what NumPy cannot read
    (a ragged nested list, an int too large for any dtype...)."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise KgenTypeError(f"{label}: expected {dtype.name} data, got a "
                            f"{type(value).__name__} that is not one array ({exc})") from None


def _show(value):
    """A Python number for a message (a huge int would be hundreds of digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an int of {value.bit_length()} bits"
    return repr(value)


def weak_scalar(value, dtype, label):
    """A Python scalar adapts to the input's dtype when it fits (NEP 50): an int in
    range, a float whose magnitude the dtype can hold (inf and nan stay allowed)."""
    kind = "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f"
    if kind == "f" and dtype.kind in "biu" or kind == "i" and dtype.kind == "b":
        raise KgenTypeError(f"{label}: expected {dtype.name}, got Python "
                            f"{type(value).__name__} {_show(value)}")
    if kind == "i" and dtype.kind == "i":
        low, high = _int_bounds(dtype)
        if not low <= value <= high:
            raise KgenTypeError(f"{label}: {_show(value)} does not fit in {dtype.name}")
    if dtype.kind == "f" and not (kind == "f" and not math.isfinite(value)):
        try:
            number = abs(float(value))
        except OverflowError:
            number = math.inf
        if number >= _ROUNDS_TO_INF.get(dtype, math.inf):
            raise KgenTypeError(f"{label}: {_show(value)} does not fit in {dtype.name}")
    return np.array(value, dtype=dtype)


@functools.lru_cache(maxsize=None)
def _int_bounds(dtype):
    """(min, max) of an integer dtype: np.iinfo is built anew per call, ~3 us."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


# the smallest magnitude that rounds to inf in float32 (max + half an ulp); keyed
# by the dtype itself: dtype.name is computed in Python, at microseconds a call
_ROUNDS_TO_INF = {np.dtype("float32"): 2.0 ** 128 - 2.0 ** 103}


def _weak_sequence(arr, dtype, label):
    """Nested Python numbers are weak like a Python scalar: they take the input's
    dtype when of a compatible kind and in range."""
    if arr.dtype.kind == "i" and dtype.kind == "i":
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise KgenTypeError(f"{label}: values do not fit in {dtype.name}")
        return arr.astype(dtype)
    if arr.dtype.kind in "if" and dtype.kind == "f":
        with np.errstate(over="ignore"):
            cast = arr.astype(dtype)
        if arr.dtype.kind == "f" and np.any(np.isinf(cast) & np.isfinite(arr)):
            raise KgenTypeError(f"{label}: values do not fit in {dtype.name} "
                                f"(largest {np.finfo(dtype).max:g})")
        return cast
    return arr


# ---- binding a call's arguments ---------------------------------------------------------
MISSING = object()  # "no default": an argument the call must give
LAZY = object()     # bind's answer for Dask arguments: the call goes to kgen.dask


class Signature:
    """A kernel's inputs: binds a call's arguments to them and checks each.

    `inputs` holds (name, dtype, static shape) per input, None for an unknown axis;
    `defaults` a value per input, MISSING where the call must give it.
    """

    def __init__(self, label, inputs, defaults=None):
        self.label = label
        self.names = [name for name, _, _ in inputs]
        self.defaults = [MISSING] * len(inputs) if defaults is None else list(defaults)
        self.labels = [f"input {name!r}" if name else f"input {k}"
                       for k, name in enumerate(self.names)]
        self.dtypes = [np.dtype(dtype) for _, dtype, _ in inputs]
        self.shapes = [tuple(shape) for _, _, shape in inputs]
        self.static = [any(d is not None for d in shape) for shape in self.shapes]
        # the per-call fast path: inputs without static dims to check
        self._fast = None if any(self.static) else [(d, len(s)) for d, s in
                                                    zip(self.dtypes, self.shapes)]

    def bind(self, args, kwargs):
        """The arguments as arrays the kernel can read, in input order."""
        fast = self._fast
        if fast is not None and not kwargs and len(args) == len(fast):
            # each already an aligned, contiguous array of its input's exact kind?
            for value, (dtype, ndim) in zip(args, fast):
                if type(value) is not np.ndarray or value.dtype is not dtype \
                        or value.ndim != ndim:
                    break
                flags = value.flags
                if not (flags.c_contiguous and flags.aligned):
                    break
            else:
                return list(args)
        if any(hasattr(v, "__dask_graph__") for v in (*args, *kwargs.values())):
            return LAZY
        return [self.coerce(k, value) for k, value in enumerate(self._order(args, kwargs))]

    def _order(self, args, kwargs):
        """The arguments in input order: positional, then by name, then defaults."""
        n, names, defaults = len(self.names), self.names, self.defaults
        if len(args) > n:
            raise KgenTypeError(f"{self.label}() takes {n} argument(s) "
                                f"({', '.join(map(str, names))}), got {len(args)}")
        slots = list(args) + [MISSING] * (n - len(args))
        for key, value in kwargs.items():
            if key not in names:
                raise KgenTypeError(f"{self.label}() got an unexpected argument {key!r}; "
                                    f"inputs are {names}")
            pos = names.index(key)
            if slots[pos] is not MISSING:
                raise KgenTypeError(f"{self.label}() got two values for {key!r}")
            slots[pos] = value
        missing = [k for k, a in enumerate(slots) if a is MISSING and defaults[k] is MISSING]
        if missing:
            if not kwargs and all(d is MISSING for d in defaults):
                raise KgenTypeError(f"{self.label}() takes {n} argument(s) "
                                    f"({', '.join(map(str, names))}), got {len(args)}")
            raise KgenTypeError(f"{self.label}() is missing inputs "
                                f"{[names[k] or k for k in missing]}")
        return [defaults[k] if a is MISSING else a for k, a in enumerate(slots)]

    def coerce(self, k, value):
        """Argument `k` as an aligned, C-contiguous array of its input's dtype (the
        CUDA runtime overrides this to accept device arrays too)."""
        dtype = self.dtypes[k]
        if (type(value) is np.ndarray and value.dtype is dtype and value.ndim == len(self.shapes[k])
                and value.flags.c_contiguous and value.flags.aligned and not self.static[k]):
            return value
        return contiguous(coerce_value(dtype, self.shapes[k], value, self.labels[k]))


# ---- shared variables ---------------------------------------------------------------------
def stored_value(value, dtype, ndim, label, borrow=False):
    """A shared variable's new value as it is kept: a fresh native-endian, aligned,
    C-contiguous array of `dtype`; the same ndim and a safe cast, else KgenTypeError.
    borrow=True: `value` itself when it is already such an array (no copy)."""
    if borrow and type(value) is np.ndarray and value.dtype == dtype and value.ndim == ndim:
        flags = value.flags
        if flags.c_contiguous and flags.aligned and value.dtype.isnative:
            return value
    if _is_python_scalar(value):
        value = weak_scalar(value, dtype, label)
    arr = _as_array(value, dtype, label)
    if arr.ndim != ndim:
        raise KgenTypeError(f"{label}: expected a {ndim}-d array, got {arr.ndim}-d "
                            f"with shape {arr.shape}")
    if not np.can_cast(arr.dtype, dtype, "safe"):
        raise KgenTypeError(f"{label}: cannot safely cast {arr.dtype} to {dtype.name}")
    return np.array(arr, dtype=dtype, order="C", copy=True)


def new_lock():
    """The lock a shared variable's readers-and-writers take (see Kernel.__call__)."""
    return threading.Lock()


def lock_order(shared):
    """The distinct locks of `shared`, in the one global order every call takes them
    in (so two calls can never each hold a lock the other waits for)."""
    locks = {id(s._lock): s._lock for s in shared}
    return [locks[k] for k in sorted(locks)]


def acquire(locks):
    for lock in locks:
        lock.acquire()


def release(locks):
    for lock in reversed(locks):
        lock.release()


def host_value(shared):
    """The array a C kernel reads (a value living on the GPU is copied back first)."""
    return shared._value if shared._device is None else shared.get_value()


class SharedVariable:
    """A package's shared variable: a value that persists between calls; kernels read
    it and their updates replace it. (kg.shared variables follow the same protocol:
    `_value`, `_device`, `_lock`.)"""

    def __init__(self, name, dtype, ndim, path):
        self.name, self.dtype, self.ndim = name, dtype, ndim
        self._device, self._lock = None, new_lock()
        try:
            value = np.load(path, allow_pickle=False)
            if not isinstance(value, np.ndarray):
                raise ValueError("it holds several arrays, not one")
        except (OSError, ValueError, EOFError) as exc:
            raise ImportError(f"{path}: cannot read the initial value of shared variable "
                              f"{name!r} ({type(exc).__name__}: {exc}); the file is damaged "
                              f"or missing: rebuild the package from its spec") from None
        if value.dtype.name != dtype or value.ndim != ndim:  # any byte order: it is converted
            raise ImportError(f"{path}: expected a {ndim}-d {dtype} array for shared variable "
                              f"{name!r}, found {value.ndim}-d {value.dtype}")
        self._value = stored_value(value, np.dtype(dtype), ndim, name)

    def __repr__(self):
        return f"<shared {self.name}: {self.dtype}{list(self._value.shape)}>"

    def get_value(self, borrow=False, return_internal_type=False):
        """A copy of the current value; borrow=True: the array held itself (never
        written in place by kernels, whose updates replace it). A value living on
        the GPU is copied back either way."""
        if self._device is not None:
            return self._device.get_value(self)
        return self._value if borrow else self._value.copy()

    def set_value(self, value, borrow=False):
        """Replace the value: same ndim, a dtype that casts safely; the shape may change.
        borrow=True keeps `value` itself when it is already a native-endian,
        aligned, C-contiguous array of the dtype (else a copy)."""
        new = stored_value(value, np.dtype(self.dtype), self.ndim, f"set_value({self.name})",
                           borrow=borrow)
        with self._lock:
            if self._device is not None:
                self._device.set_value(self, new)
            self._value = new


# ---- a compiled kernel ------------------------------------------------------------------------
class Kernel:
    """One compiled kernel as a Python callable.

    ext:     the cffi extension (`.ffi`, `.lib`); `c_name` names its entry points
             c_name() and c_name_shapes()
    name:    the kernel's name as the user wrote it (for messages and __name__)
    inputs:  (name, dtype, static shape) per input, None for an unknown axis
    shared:  the shared variables it reads, in its C argument order
    outputs: (name, dtype, ndim) per output
    updates: (shared variable, dtype, ndim) per update, in its C argument order
    values:  positions, among the inputs then the shared variables, of the 0-d int
             arrays whose values decide sizes (x[i * bs:(i + 1) * bs]): each value
             is passed to both C functions as an int64_t after the lengths
    trims:   (output, k) pairs: that output's length is known only after the run
             (a scan that stopped at until()): the C function writes it into its
             k-th int64 length argument (after the updates), and the output,
             allocated at its longest, is cut to it
    fast:    give the kernel a fast path for calls of plain arrays (see fast_class);
             "c": its extension was built with a call in C for it (kg.function's
             builds: templates/c/fastcall.c.jinja), used where it loads
    """

    # how a call given Dask arrays runs: kg.function's C kernels hand it to kgen.dask
    # (runtime/c.py), a package's to its _dask_exec.py (set by its __init__.py);
    # others (a GPU kernel) refuse them
    lazy_call = None

    def __init__(self, ext, c_name, name, inputs, shared, outputs, updates, single, doc=None,
                 values=(), fast=True, trims=()):
        self.__name__ = self.name = name
        if doc is not None:
            self.__doc__ = doc
        self._ffi = ext.ffi
        self._run = getattr(ext.lib, c_name)
        self._shapes = getattr(ext.lib, c_name + "_shapes")
        self.signature = Signature(name, inputs)
        self.names = self.signature.names
        self.shared = list(shared)
        ctypes = [np.dtype(d).name for _, d, _ in inputs] + [s.dtype for s in self.shared]
        self._in_ctypes = [self._ffi.typeof(_CTYPES[d]) for d in ctypes]
        specs = [(ndim, np.dtype(d)) for _, d, ndim in outputs]
        specs += [(ndim, np.dtype(d)) for _, d, ndim in updates]
        self._trims = tuple(trims)
        specs += [(0, np.dtype("int64"))] * len({k for _, k in self._trims})
        self._out_specs = specs
        self._out_ctypes = [self._ffi.typeof(_CTYPES[d.name]) for _, d in specs]
        self._n_out_dims = sum(ndim for ndim, _ in specs)
        self._n_outputs = len(outputs)
        self._updated = [s for s, _, _ in updates]
        self._single = single
        self._values = tuple(values)
        self._out_dtypes = [d for _, d in specs]
        self._shape_memo = {}   # input dims (and values) -> output shapes (they depend on
                                # nothing else)
        # A call with updates holds the locks of every shared variable it touches from
        # reading to writing; one that only reads takes them just to read a consistent
        # set of values (one reference alone is read atomically anyway).
        touched = self.shared + self._updated
        self._locks = lock_order(touched) if self._updated or len(self.shared) > 1 else []
        if fast and self.signature._fast is not None and not touched and not self._values \
                and not self._trims:
            self.__class__ = fast_class(type(self), self,
                                        c_call(self, ext, c_name) if fast == "c" else None)

    def __repr__(self):
        return f"<kernel {self.name}({', '.join(map(str, self.names))})>"

    def call(self, *args, **kwargs):
        """A call, any arguments: bound and checked by the signature (`__call__` is
        this, or the kernel's fast path in front of it: see `fast_class`)."""
        arrays = self.signature.bind(args, kwargs)
        if arrays is LAZY:
            if self.lazy_call is None:
                raise KgenTypeError(
                    f"{self.name}() was given Dask arrays, which this kernel cannot run over "
                    f"(C kernels of kg.function and of packages can); pass NumPy arrays")
            return self.lazy_call(args, kwargs)
        return self._finish(self._bound(arrays))

    __call__ = call

    def _bound(self, arrays):
        """Run on bound input arrays, with the shared values read under their locks."""
        locks = self._locks
        if not locks:
            return self._compute(arrays + [host_value(s) for s in self.shared])
        if not self._updated:
            acquire(locks)
            try:
                arrays += [host_value(s) for s in self.shared]
            finally:
                release(locks)
            return self._compute(arrays)
        acquire(locks)
        try:
            arrays += [host_value(s) for s in self.shared]
            outs = self._compute(arrays)
            for s, value in zip(self._updated, outs[self._n_outputs:]):
                s._value = value
        finally:
            release(locks)
        return outs

    def _finish(self, outs):
        if self._trims:
            lengths = outs[self._n_outputs + len(self._updated):]
            outs = list(outs)
            for k, j in self._trims:
                outs[k] = outs[k][:int(lengths[j])]
        if self._single:
            return outs[0]
        return outs[:self._n_outputs]

    def _compute(self, arrays):
        """Run the kernel on its input and shared arrays; returns outputs and updates."""
        from_buffer = self._ffi.from_buffer
        dims, ptrs = [], []
        for ctype, a in zip(self._in_ctypes, arrays):
            dims += a.shape
            ptrs.append(from_buffer(ctype, a))
        if self._values:  # 0-d int arrays (bound and checked): their values decide sizes
            dims += [int(arrays[k]) for k in self._values]
        out_shapes = self._shape_memo.get(tuple(dims))
        if out_shapes is None:
            out_shapes = self._out_shapes(dims)
        outs = [np.empty(shape, dtype) for shape, dtype in zip(out_shapes, self._out_dtypes)]
        ptrs += dims
        ptrs += [from_buffer(ctype, o, True) for ctype, o in zip(self._out_ctypes, outs)]
        # no message buffer: a call that fails runs again with one (see _failed)
        rc = self._run(*ptrs, self._ffi.NULL, 0)
        if rc:
            self._failed(rc, ptrs)
        return outs

    def _failed(self, rc, ptrs):
        """Raise for a failed run, with the message of a second run that writes one
        (the outputs are fresh and updates unwritten, so running again changes nothing)."""
        err = self._ffi.new("char[]", ERRLEN)
        again = self._run(*ptrs, err, ERRLEN)
        raise_for(rc, self._ffi.string(err).decode() if again == rc else "")

    def _out_shapes(self, dims):
        """The output shapes for these input dims and values (computed by the C shape
        phase into buffers of this call's own), or the shape error."""
        ffi = self._ffi
        buf = ffi.new("int64_t[]", max(1, self._n_out_dims))
        err = ffi.new("char[]", ERRLEN)
        rc = self._shapes(*dims, buf, err, ERRLEN)
        if rc:  # KG_ESHAPE, or KG_EINDEX for an index out of range
            raise_for(rc, ffi.string(err).decode())
        flat, k, shapes = ffi.unpack(buf, self._n_out_dims), 0, []
        for ndim, _ in self._out_specs:
            shapes.append(tuple(flat[k:k + ndim]))
            k += ndim
        if len(self._shape_memo) < 64:
            self._shape_memo[tuple(dims)] = shapes
        return shapes


# ---- the fast path of a call -----------------------------------------------------------------
# A call of positional arrays that are already what the C code reads (the exact
# dtype and ndim, aligned, C-contiguous) needs no binding. For a kernel without
# shared variables, static dims or size-deciding values, such a call runs in
# straight-line code compiled for its arity: the per-argument loops of the
# general path cost more than the kernel itself on small arrays. Each input slot
# keeps the cffi pointer of the last array passed (so a loop calling f(x) again
# and again converts x once); the kernel holds that array until its next call.
_FAST_CALL = """\
def __call__(self, {params}/, *more, **kwargs):
{floats}    if more or kwargs{checks}:
        return self.call(*present(({args})), *more, **kwargs)
    key = ({key})
    shapes = memo.get(key)
    if shapes is None:
        shapes = remember(memo, key, self._out_shapes([{dims}]))
{pointers}{outputs}    rc = run({ptrs}{dims}{out_ptrs}NULL, 0)
    if rc:
        self._failed(rc, [{ptrs}{dims}{out_ptrs}])
    return {result}
"""
_fast_code = {}   # (arity, 0-d float64 slots) -> compiled __call__ (its code depends
                  # on those alone)
# (its `memo` maps the input shapes to the output shapes: the same as
# Kernel._shape_memo, keyed by a tuple of shapes, which is quicker to build)


def remember(memo, key, shapes):
    """`shapes`, kept in `memo` under `key` while it holds fewer than 64 entries."""
    if len(memo) < 64:
        memo[key] = shapes
    return shapes


def present(args):
    """The positional arguments a call gave (the others are MISSING)."""
    return [a for a in args if a is not MISSING]


def c_call(kernel, ext, c_name):
    """The kernel's call from Python in C (templates/c/kg_fastcall.h: it checks
    and runs plain-array calls, and passes every other call to `kernel.call`),
    or None where the extension cannot give one."""
    path = getattr(ext, "__file__", None)
    if not path:
        return None
    import ctypes  # here, not at import: only kg.function's builds have a C call
    try:  # the loaded extension itself: dlopen hands back the same library
        make = getattr(ctypes.PyDLL(path), c_name + "_fast_make")
    except (OSError, AttributeError):
        return None
    make.restype, make.argtypes = ctypes.py_object, [ctypes.py_object]
    # what the buffer protocol calls each input's dtype ('d', 'f', 'l', '?'...)
    formats = tuple(memoryview(np.empty(0, dtype)).format.encode()
                    for dtype, _ in kernel.signature._fast)
    try:
        return make((np.ndarray, np.empty, kernel.call, formats, tuple(kernel._out_dtypes),
                     bool(kernel._single)))
    except ValueError:  # more inputs, outputs or dims than it takes
        return None


def fast_class(base, kernel, c_call=None):
    """A subclass of `base` (named as it is) whose __call__ is `kernel`'s fast path:
    `c_call` where there is one (a builtin: it does not bind, so it gets the
    call's arguments alone), else python_call's."""
    call = python_call(base, kernel) if c_call is None else c_call
    return type(base.__name__, (base,), {"__call__": call, "__module__": base.__module__,
                                         "__qualname__": base.__qualname__})


def python_call(base, kernel):
    """`kernel`'s fast path in Python: straight-line code compiled for its arity."""
    n_in, n_out = len(kernel.signature.dtypes), len(kernel._out_dtypes)
    # 0-d float64 inputs take a Python float as it is (the weak-scalar rule
    # keeps every float for float64): an array of it, without the general path
    floats = tuple(k for k, (dtype, ndim) in enumerate(kernel.signature._fast)
                   if ndim == 0 and dtype == np.float64)
    key = (n_in, n_out, kernel._single, floats)
    code = _fast_code.get(key)
    if code is None:
        code = _fast_code[key] = _compile_fast(n_in, n_out, kernel._single, floats)
    ffi = kernel._ffi
    names = {"np": np, "MISSING": MISSING, "present": present, "memo": {}, "remember": remember,
             "run": kernel._run, "NULL": ffi.NULL, "from_buffer": ffi.from_buffer,
             "empty": np.empty, "ndarray": np.ndarray, "CARRAY": _CARRAY, "array": np.array,
             "held": [(None, None)] * n_in}
    for k, (dtype, ndim) in enumerate(kernel.signature._fast):
        names[f"D{k}"], names[f"N{k}"], names[f"C{k}"] = dtype, ndim, kernel._in_ctypes[k]
    for k, (dtype, ctype) in enumerate(zip(kernel._out_dtypes, kernel._out_ctypes)):
        names[f"OD{k}"], names[f"OC{k}"] = dtype, ctype
    call = types.FunctionType(code, names, "__call__", (MISSING,) * n_in)
    call.__doc__ = base.call.__doc__
    return call


def _compile_fast(n_in, n_out, single, floats=()):
    ins, outs = range(n_in), range(n_out)
    text = _FAST_CALL.format(
        params="".join(f"a{k}=MISSING, " for k in ins),
        floats="".join(f"    if type(a{k}) is float:\n        a{k} = array(a{k})\n"
                       for k in floats),
        checks="".join(f" or type(a{k}) is not ndarray or a{k}.dtype is not D{k}"
                       f" or a{k}.ndim != N{k} or a{k}.flags.num & CARRAY != CARRAY"
                       for k in ins),
        args="".join(f"a{k}, " for k in ins),
        key="".join(f"a{k}.shape, " for k in ins),
        dims="".join(f"*key[{k}], " for k in ins),
        pointers="".join(f"    h{k} = held[{k}]\n    if h{k}[0] is a{k}:\n        p{k} = h{k}[1]\n"
                         f"    else:\n        p{k} = from_buffer(C{k}, a{k})\n"
                         f"        held[{k}] = (a{k}, p{k})\n" for k in ins),
        outputs="".join(f"    o{k} = empty(shapes[{k}], OD{k})\n" for k in outs),
        ptrs="".join(f"p{k}, " for k in ins),
        out_ptrs="".join(f"from_buffer(OC{k}, o{k}, True), " for k in outs),
        result="o0" if single else "[" + ", ".join(f"o{k}" for k in outs) + "]")
    namespace = {"MISSING": MISSING}
    exec(compile(text, "<kgen fast call>", "exec"), namespace)
    return namespace["__call__"].__code__


# ---- loading a package ----------------------------------------------------------------------
def here(init_file, *parts):
    """A path inside the package, wherever it was copied to."""
    return os.path.join(os.path.dirname(os.path.abspath(init_file)), *parts)


def import_extension(path, modname):
    """Import the extension at `path` as `modname`, without touching sys.path or the cwd."""
    path = str(path)
    loader = importlib.machinery.ExtensionFileLoader(modname, path)
    spec = importlib.util.spec_from_file_location(modname, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_extension(package, init_file, modname):
    """The package's compiled kernels (a cffi extension), after checking the file
    against the sha256 recorded beside it at build time (loading a damaged shared
    library can kill the process); an ImportError that says why otherwise."""
    manifest_path = here(init_file, "manifest.json")
    try:
        with open(manifest_path, encoding="utf-8") as f:
            build = json.load(f).get("build") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise ImportError(f"{package}: cannot read {manifest_path} ({exc}); the package needs "
                          f"the manifest kgen wrote; rebuild it from its spec") from None
    filename = build.get("extension")
    if not filename:
        raise ImportError(
            f"{package}: cannot load its compiled kernels {modname} (manifest.json records "
            f"no extension). The package needs the extension that `python -m kgen build` "
            f"compiled next to its sources (a build with --sources-only has none); rebuild "
            f"it from its spec.")
    path = here(init_file, filename)
    try:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        with open(path + ".sha256", encoding="ascii") as f:
            recorded = f.read().strip()
    except (OSError, ValueError) as exc:
        raise ImportError(f"{package}: cannot read its compiled kernels {path} or the "
                          f"checksum beside it ({exc}); rebuild the package from its spec") from None
    if digest != recorded:
        raise ImportError(f"{package}: {path} is damaged or not the one this package was "
                          f"built with (its sha256 is not the one in {filename}.sha256); not "
                          f"loading it: rebuild the package from its spec")
    try:
        return importlib.import_module(f".{modname}", package)
    except ImportError as exc:
        raise ImportError(
            f"{package}: cannot load its compiled kernels {modname} ({exc}); rebuild it "
            f"from its spec on this kind of machine.") from exc
