"""kg.function(target='cuda') through NVIDIA's cuda-python bindings, where PyCUDA is missing.

`cuda.bindings.driver` (cuda-python 12.x; `cuda.cuda` in older releases) is a
thin wheel over the driver API that needs no compiler to install. This class
gives it PyCudaDriver's interface (kgen/runtime/cuda.py), so CudaFunction runs
unchanged: device memory is a kgen.runtime.device.DeviceArray (it has
`__cuda_array_interface__`, so CuPy and friends read it without a copy), and
inputs may be DeviceArrays or any object with that interface.

Every call's CUresult is checked; a failure is a CudaError (CudaMemoryError
for out-of-memory) carrying the driver's own error name.
"""
import ctypes
import importlib

import numpy as np

from . import device
from .device import CudaError, CudaMemoryError, DeviceArray


def bindings():
    """The driver module of cuda-python, or None when it is not installed."""
    for name in ("cuda.bindings.driver", "cuda.cuda"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


class CudaPythonDriver:
    """cuda-python behind PyCudaDriver's interface (the device's primary context)."""

    def __init__(self, cu=None):
        cu = cu or bindings()
        if cu is None:
            raise ImportError("cuda-python (cuda.bindings.driver) is not installed")
        self.cu = cu
        attr = cu.CUdevice_attribute
        self._check(cu.cuInit(0), "cuInit")
        dev = self._check(cu.cuDeviceGet(0), "cuDeviceGet")
        self.context = self._check(cu.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain")
        self._check(cu.cuCtxSetCurrent(self.context), "cuCtxSetCurrent")
        major = self._check(cu.cuDeviceGetAttribute(
            attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev), "cuDeviceGetAttribute")
        minor = self._check(cu.cuDeviceGetAttribute(
            attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev), "cuDeviceGetAttribute")
        self.capability = (int(major), int(minor))
        name = self._check(cu.cuDeviceGetName(256, dev), "cuDeviceGetName")
        self.name = bytes(name).split(b"\0", 1)[0].decode("utf-8", "replace")

    def _check(self, result, what):
        """The value of a cuda-python call `(CUresult, value...)`, or its CudaError."""
        err, rest = result[0], result[1:]
        if int(err) != 0:
            code, ename = self.cu.cuGetErrorName(err)
            ename = bytes(ename).decode() if int(code) == 0 and ename else f"CUresult {int(err)}"
            cls = CudaMemoryError if int(err) == 2 else CudaError
            raise cls(f"CUDA driver error: {what}: {ename}")
        return rest[0] if len(rest) == 1 else rest

    def _current(self):
        self._check(self.cu.cuCtxSetCurrent(self.context), "cuCtxSetCurrent")

    def check_targets(self, names):
        from .cuda import check_capability
        check_capability(self.name, self.capability, names)

    def load(self, image):
        self._current()
        return self._check(self.cu.cuModuleLoadData(image), "cuModuleLoadData")

    def function(self, module, name, fmt):
        fn = self._check(self.cu.cuModuleGetFunction(module, name.encode()), name)
        types = tuple(ctypes.c_void_p if code == "P" else ctypes.c_int64 for code in fmt)
        return name, fn, types

    def launch(self, fn, grid, block, args):
        name, handle, types = fn
        self._check(self.cu.cuLaunchKernel(handle, *grid, *block, 0, 0,
                                           (tuple(int(a) for a in args), types), 0), name)

    def _free(self, ptr):
        self._check(self.cu.cuMemFree(ptr), "cuMemFree")

    def empty(self, shape, dtype):
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes == 0:
            return DeviceArray(0, shape, dtype)
        self._current()
        ptr = self._check(self.cu.cuMemAlloc(nbytes), "cuMemAlloc")
        return DeviceArray(int(ptr), shape, dtype, free=self._free)

    def upload(self, array):
        array = np.array(array, order="C", copy=True)  # 0-d stays 0-d
        out = self.empty(array.shape, array.dtype)
        if out.nbytes:
            self._check(self.cu.cuMemcpyHtoD(out.ptr, array.ctypes.data, out.nbytes),
                        "cuMemcpyHtoD")
        return out

    def _copy_to_host(self, out, ptr):
        if out.nbytes:
            self._current()
            self._check(self.cu.cuMemcpyDtoH(out.ctypes.data, ptr, out.nbytes), "cuMemcpyDtoH")

    def download(self, array):
        out = np.empty(array.shape, array.dtype)
        self._copy_to_host(out, array.ptr)
        return out

    # device.device_argument's strided copy, shared with the packages' launcher
    download_strided = device.Launcher.download_strided

    def zero(self, array):
        if array.nbytes:
            self._check(self.cu.cuMemsetD8(array.ptr, 0, array.nbytes), "cuMemsetD8")

    def pointer(self, array):
        return array.ptr

    def is_device_array(self, value):
        return isinstance(value, DeviceArray)

    def is_contiguous(self, array):
        return True  # a DeviceArray always is

    def translate(self, exc):
        return None  # its errors are kgen's already
