"""Kernels on the GPU with only the CUDA driver: the Python side of a package's launcher.

A package built with `--target c,cuda` carries this file verbatim as `_device.py`
(NumPy and the standard library only, like `_runtime.py`). Its extension holds
the host launcher (NAME_cuda.c, from kgen/templates/cuda/launcher.c.jinja),
which opens libcuda at run time, loads the embedded cubin or PTX and launches
the kernels; this module only decides where a call runs and moves arrays:

- `pkg.device('cuda')` (or KGEN_DEVICE=cuda at import) sends the kernels to
  the GPU; `pkg.device('cpu')` back. The default is the CPU. Selecting 'cuda'
  where it cannot run raises BackendUnavailableError with the launcher's
  reason; KGEN_DEVICE=cuda there warns and keeps the CPU.
- a call on the GPU checks its arguments as on the CPU, runs the C shape phase
  on the host (every shape error before the GPU is touched), uploads NumPy
  inputs, passes objects with `__cuda_array_interface__` (CuPy, Numba,
  PyTorch, PyCUDA arrays) as they are, and returns NumPy arrays (DeviceArrays,
  which have that interface too, with `kernel.device_outputs = True`);
- shared variables live on the device between calls (a DeviceValue each);
  `get_value()` copies back, `set_value()` replaces the device copy.

kg.function(target='cuda') shares DeviceValue and the error classes.
"""
import os
import warnings

import numpy as np

try:  # inside kgen
    from . import core
except ImportError:  # inside a package, where the runtime is _runtime.py
    from . import _runtime as core

KG_ENOMEM, KG_ENODEV, KG_ECUDA = 3, 4, 5   # the launcher's return codes (NAME.h)
DEVICES = ("cpu", "cuda")


class BackendUnavailableError(core.KgenError, RuntimeError):
    """A target cannot run here (no driver, no GPU, no PyCUDA...); the message says which."""


class CudaError(core.KgenError, RuntimeError):
    """The CUDA driver reported an error while kgen ran a kernel."""


class CudaMemoryError(core.KgenError, MemoryError):
    """The GPU ran out of memory."""


def error_for(rc, message):
    """The exception for a launcher return code."""
    if rc == KG_ENODEV:
        return BackendUnavailableError(message)
    if rc == KG_ECUDA:
        return CudaError(f"CUDA driver error: {message}")
    if rc == KG_ENOMEM:
        return CudaMemoryError(f"CUDA: out of GPU memory ({message})")
    try:
        core.raise_for(rc, message)
    except Exception as exc:  # ShapeError, KgenIndexError
        return exc
    return None  # pragma: no cover - raise_for always raises


# ---- device memory ----------------------------------------------------------------
class DeviceArray:
    """A C-contiguous array in GPU memory. It frees the memory when dropped if it
    owns it; one made from another object's `__cuda_array_interface__` keeps
    that object alive instead. Has `__cuda_array_interface__` itself."""

    def __init__(self, ptr, shape, dtype, free=None, owner=None):
        self.ptr, self.shape, self.dtype = int(ptr), tuple(shape), np.dtype(dtype)
        self._free, self._owner = free, owner

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False),
                "strides": None, "version": 3, "stream": None}

    def __repr__(self):
        return f"<DeviceArray {self.dtype.name}{list(self.shape)} at 0x{self.ptr:x}>"

    def __del__(self):
        free, self._free = getattr(self, "_free", None), None
        if free is not None and self.ptr:
            try:
                free(self.ptr)
            except Exception:  # noqa: BLE001 - at exit the driver may be gone first
                pass


def interface_of(value):
    """`value.__cuda_array_interface__`, or None for an object without one."""
    try:
        return value.__cuda_array_interface__
    except AttributeError:
        return None
    except Exception as exc:  # noqa: BLE001 - e.g. a CPU torch tensor raises
        raise core.KgenTypeError(f"cannot read {type(value).__name__}'s "
                                 f"__cuda_array_interface__ ({exc})") from None


def c_strides(shape, itemsize):
    strides, step = [], itemsize
    for d in reversed(shape):
        strides.append(step)
        step *= max(d, 1)
    return tuple(reversed(strides))


def device_argument(driver, value, cai, dtype, static_shape, label):
    """An argument with a `__cuda_array_interface__`, checked like a NumPy one, as a
    DeviceArray on the same memory (no copy) when it is C-contiguous and of the
    input's dtype; else cast or made contiguous through the host."""
    shape, src = tuple(int(d) for d in cai["shape"]), np.dtype(cai["typestr"])
    what = type(value).__name__
    if len(shape) != len(static_shape):
        raise core.KgenTypeError(
            f"{label}: expected a {len(static_shape)}-d array of {dtype.name} with shape "
            f"{core.format_shape(static_shape)}, got a {len(shape)}-d {what} with shape {shape}")
    if src != dtype and not np.can_cast(src, dtype, "safe"):
        raise core.KgenTypeError(f"{label}: expected dtype {dtype.name}, got a {what} of {src} "
                                 f"(which does not cast safely; use .astype)")
    for axis, (want, got) in enumerate(zip(static_shape, shape)):
        if want is not None and want != got:
            raise core.ShapeError(f"{label}: expected shape {core.format_shape(static_shape)}, "
                                  f"got {shape} (axis {axis})")
    ptr = int(cai["data"][0] or 0)
    strides = cai.get("strides")
    dense = strides is None or all(s == c for s, c, d in
                                   zip(strides, c_strides(shape, src.itemsize), shape) if d > 1)
    if src == dtype and src.isnative and dense:
        return DeviceArray(ptr, shape, dtype, owner=value)
    host = driver.download_strided(ptr, shape, src, strides)
    return driver.upload(np.array(host, dtype=dtype, order="C"))


class DeviceValue:
    """The GPU copy of one shared variable (its `_device` hook).

    `synced` is the host array the GPU copy was made from (or last copied back
    into): when the shared variable's `_value` is another object, the host was
    written since (set_value, or an update by the C backend) and is the newer.
    Otherwise the GPU copy is current, and newer when a CUDA update replaced it.
    """

    def __init__(self, driver):
        self.driver = driver
        self.array, self.synced, self.device_newer = None, None, False

    def _host_newer(self, shared):
        return self.array is None or shared._value is not self.synced

    def shape(self, shared):
        return shared._value.shape if self._host_newer(shared) else tuple(self.array.shape)

    def current(self, shared):
        """The device array to read, uploaded first if the host value is the newer."""
        if self._host_newer(shared):
            self.array = self.driver.upload(shared._value)
            self.synced, self.device_newer = shared._value, False
        return self.array

    def replace(self, shared, array):
        """A GPU update: the new value is `array`, on the device only."""
        if self._host_newer(shared):
            self.synced = shared._value  # the host value is overwritten, hence not newer
        self.array, self.device_newer = array, True

    # the shared variables' hook protocol (kgen/expr/node.py, core.SharedVariable)
    def get_value(self, shared):
        if not self._host_newer(shared) and self.device_newer:
            try:
                host = self.driver.download(self.array)
            except Exception as exc:
                error = self.driver.translate(exc)
                if error is None:
                    raise
                raise error from exc
            shared._value = self.synced = host
            self.device_newer = False
        return shared._value.copy()

    def set_value(self, shared, new):
        # called before shared._value = new: drop the device copy; the next call uploads
        self.array, self.synced, self.device_newer = None, None, False


def held_value(shared, driver):
    """The shared variable's DeviceValue for `driver`; a value another holder kept on
    a device is taken over through the host."""
    dv = shared._device
    if not isinstance(dv, DeviceValue) or dv.driver is not driver:
        if dv is not None:
            shared._value = shared.get_value()
        dv = shared._device = DeviceValue(driver)
    return dv


# ---- the package's launcher ------------------------------------------------------------
class Launcher:
    """The GPU functions of a package's extension (NAME_cuda_*), as a driver: the
    interface DeviceValue and device_argument use (upload, download, translate)."""

    def __init__(self, ext, package):
        self.ffi, self.lib, self.package = ext.ffi, ext.lib, package
        self._helper = lambda what: getattr(ext.lib, f"{package}_cuda_{what}")  # noqa: E731
        self.error = None   # why the GPU cannot be used, once asked

    def _check(self, rc, err):
        if rc:
            raise error_for(rc, self.ffi.string(err).decode("utf-8", "replace"))

    def start(self):
        """None when the GPU is ready, else the BackendUnavailableError saying why."""
        err = self.ffi.new("char[]", core.ERRLEN)
        rc = self._helper("init")(err, core.ERRLEN)
        if rc:
            return error_for(rc, f"{self.package}.device('cuda'): "
                                 f"{self.ffi.string(err).decode('utf-8', 'replace')}")
        return None

    def device(self):
        """(compute capability (major, minor), device name)."""
        major, minor = self.ffi.new("int *"), self.ffi.new("int *")
        name = self.ffi.new("char[]", core.ERRLEN)
        self._check(self._helper("device")(major, minor, name, core.ERRLEN), name)
        return (major[0], minor[0]), self.ffi.string(name).decode("utf-8", "replace")

    def free(self, ptr):
        err = self.ffi.new("char[]", core.ERRLEN)
        self._check(self._helper("free")(ptr, err, core.ERRLEN), err)

    def empty(self, shape, dtype):
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        ptr, err = self.ffi.new("kg_cuda_ptr *"), self.ffi.new("char[]", core.ERRLEN)
        self._check(self._helper("alloc")(ptr, nbytes, err, core.ERRLEN), err)
        return DeviceArray(ptr[0], shape, dtype, free=self.free)

    def upload(self, array):
        array = core.contiguous(np.asarray(array))
        out = self.empty(array.shape, array.dtype)
        if out.nbytes:
            err = self.ffi.new("char[]", core.ERRLEN)
            self._check(self._helper("upload")(out.ptr, self.ffi.from_buffer(array), out.nbytes,
                                               err, core.ERRLEN), err)
        return out

    def download(self, array):
        out = np.empty(array.shape, array.dtype)
        self._copy_to_host(out, array.ptr)
        return out

    def download_strided(self, ptr, shape, dtype, strides):
        """A strided device array's elements, copied through the bytes that span them."""
        if strides is None or 0 in shape:
            out = np.empty(shape, dtype)
            self._copy_to_host(out, ptr)
            return out
        low = sum(s * (d - 1) for s, d in zip(strides, shape) if s < 0)
        high = sum(s * (d - 1) for s, d in zip(strides, shape) if s > 0) + dtype.itemsize
        span = np.empty(high - low, np.uint8)
        self._copy_to_host(span, ptr + low)
        return np.ndarray(shape, dtype, buffer=span, offset=-low, strides=strides).copy()

    def _copy_to_host(self, out, ptr):
        if out.nbytes:
            err = self.ffi.new("char[]", core.ERRLEN)
            self._check(self._helper("download")(self.ffi.from_buffer(out, require_writable=True), ptr, out.nbytes,
                                                 err, core.ERRLEN), err)

    def translate(self, exc):
        return None  # the launcher's errors are already kgen's


class Devices:
    """Which device a package's kernels run on: `pkg.device(name=None)`."""

    def __init__(self, ext, package):
        self.launcher = Launcher(ext, package)
        self.package, self.name = package, "cpu"
        wanted = os.environ.get("KGEN_DEVICE", "").strip().lower()
        if wanted and wanted != "cpu":
            try:
                self.select(wanted)
            except (BackendUnavailableError, ValueError) as exc:
                warnings.warn(f"KGEN_DEVICE={wanted}: {exc}; {package} runs on the CPU",
                              RuntimeWarning, stacklevel=3)

    def select(self, name=None):
        """Select 'cpu' or 'cuda' for every kernel of the package (None: just ask);
        returns the selected device's name."""
        if name is None:
            return self.name
        if name not in DEVICES:
            raise ValueError(f"{self.package}.device({name!r}): the devices are "
                             f"{', '.join(map(repr, DEVICES))}")
        if name == "cuda":
            problem = self.launcher.start()
            if problem is not None:
                raise problem
        self.name = name
        return name

    def kernel(self, ext, c_name, name, **kwargs):
        """A package kernel (core.Kernel's arguments) that runs where selected."""
        return DeviceKernel(core.Kernel(ext, c_name, name, **kwargs), c_name, self)


class DeviceSignature(core.Signature):
    """core.Signature that also takes device arrays (by __cuda_array_interface__)."""

    def __init__(self, base, driver):
        self.__dict__.update(base.__dict__)
        self.driver = driver

    def coerce(self, k, value):
        cai = interface_of(value) if type(value) is not np.ndarray else None
        if cai is None:
            return super().coerce(k, value)
        return device_argument(self.driver, value, cai, self.dtypes[k], self.shapes[k],
                               self.labels[k])


class DeviceKernel:
    """One kernel of a package: its C kernel on the CPU, its launcher on the GPU."""

    def __init__(self, cpu, c_name, devices):
        self.cpu, self._devices = cpu, devices
        self.__name__ = self.name = cpu.name
        self.__doc__ = cpu.__doc__
        self.names, self.shared = cpu.names, cpu.shared
        launcher = devices.launcher
        self._launcher, self._ffi = launcher, launcher.ffi
        self._launch = getattr(launcher.lib, c_name + "_cuda")
        self._signature = DeviceSignature(cpu.signature, launcher)
        self._pointers = [c.cname[:-2] + " *" for c in cpu._in_ctypes + cpu._out_ctypes]
        self._locks = core.lock_order(cpu.shared + cpu._updated)
        self.device_outputs = False   # True: return DeviceArrays, not NumPy arrays

    def __repr__(self):
        return f"<kernel {self.name}({', '.join(map(str, self.names))}) on {self._devices.name}>"

    def __call__(self, *args, **kwargs):
        if self._devices.name == "cpu":
            return self.cpu(*args, **kwargs)
        values = self._signature.bind(args, kwargs)
        core.acquire(self._locks)
        try:
            outs = self._run(values)
        finally:
            core.release(self._locks)
        cpu = self.cpu
        results = self._trimmed(outs)
        if not self.device_outputs:
            results = [self._launcher.download(o) for o in results]
        return results[0] if cpu._single else results

    def _trimmed(self, outs):
        """The outputs, each one an until() loop cut to its steps (core.Kernel's
        trims: the launcher wrote the lengths after the updates) as a view of
        its leading rows, which keeps the whole device array alive."""
        cpu = self.cpu
        results = list(outs[:cpu._n_outputs])
        if cpu._trims:
            lengths = outs[cpu._n_outputs + len(cpu._updated):]
            for k, j in cpu._trims:
                o, n = results[k], int(self._launcher.download(lengths[j]))
                results[k] = DeviceArray(o.ptr, (min(n, o.shape[0]),) + o.shape[1:], o.dtype,
                                         owner=o)
        return results

    def _run(self, values):
        cpu, launcher, ffi = self.cpu, self._launcher, self._ffi
        held = [(s, held_value(s, launcher)) for s in cpu.shared]
        dims = [d for v in values for d in v.shape]
        dims += [d for s, dv in held for d in dv.shape(s)]
        if cpu._values:  # 0-d int arguments whose values decide sizes
            arrays = list(values) + [s for s, _ in held]
            dims += [self._int_value(arrays[k]) for k in cpu._values]
        err = ffi.new("char[]", core.ERRLEN)
        shapes = cpu._shape_memo.get(tuple(dims)) or cpu._out_shapes(dims)  # checks first
        arrays = [v if isinstance(v, DeviceArray) else launcher.upload(v) for v in values]
        arrays += [dv.current(s) for s, dv in held]
        outs = [launcher.empty(shape, dtype) for shape, dtype in zip(shapes, cpu._out_dtypes)]
        ptrs = [ffi.cast(c, a.ptr) for c, a in zip(self._pointers, arrays + outs)]
        n_in = len(arrays)
        rc = self._launch(*ptrs[:n_in], *dims, *ptrs[n_in:], ffi.NULL, err, core.ERRLEN)
        if rc:
            raise error_for(rc, ffi.string(err).decode("utf-8", "replace"))
        for s, array in zip(cpu._updated, outs[cpu._n_outputs:]):  # success: the new values
            held_value(s, launcher).replace(s, array)
        return outs

    def _int_value(self, v):
        """The value of a 0-d int input (a host or device array) or shared variable."""
        if hasattr(v, "_lock"):
            v = v.get_value()
        elif isinstance(v, DeviceArray):
            v = self._launcher.download(v)
        return int(np.asarray(v))
