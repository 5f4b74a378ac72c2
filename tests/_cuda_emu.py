"""A CPU stand-in for PyCUDA, so the CUDA runtime runs its real kernels without a GPU.

`EmuDriver` implements the interface of kgen.runtime.cuda.PyCudaDriver: device
arrays are NumPy arrays, and a loaded "image" is the generated .cu source,
compiled with g++ after tests/cuda_emu/cuda_emu.h (blocks run one at a time,
their threads as real threads, so barriers and warp shuffles are real). Each
kernel gets an `emu_NAME(geometry, args)` wrapper taking its arguments as one
int64 array, checked against the format string the runtime prepared, as
PyCUDA's prepared_call packs them.

`emulate(monkeypatch)` makes `kg.function(..., target='cuda')` use it: the
nvcc build is replaced by "the image is the source", and the default driver by
an EmuDriver.
"""
import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HEADER_DIR = Path(__file__).resolve().parent / "cuda_emu"
_SIGNATURE = re.compile(r"__launch_bounds__\(KG_BLOCK\)\n(\w+)\(\n(.*?)\)\n\{", re.S)
_BUILD_DIR = Path(tempfile.mkdtemp(prefix="kgen-cuda-emu-"))
_libs = {}


def have_compiler():
    return shutil.which("g++") is not None


def kernel_signatures(source):
    """name -> [parameter C type, ...] of every kernel in a generated .cu file."""
    out = {}
    for name, params in _SIGNATURE.findall(source):
        types = []
        for p in params.split(",\n"):
            p = p.strip()
            types.append(p[:p.rstrip().rfind(" ")].strip())
        out[name] = types
    return out


def build(source):
    """The ctypes library of `source` compiled for the emulator (cached per text)."""
    key = hashlib.sha256(source.encode()).hexdigest()[:20]
    if key in _libs:
        return _libs[key]
    sigs = kernel_signatures(source)
    wrappers = []
    for name, types in sigs.items():
        args = ", ".join(f"({t})(intptr_t)a[{k}]" if "*" in t else f"({t})a[{k}]"
                         for k, t in enumerate(types))
        wrappers.append(f"static void emu_run_{name}(const int64_t *a) {{ {name}({args}); }}\n"
                        f'extern "C" int emu_{name}(const unsigned *g, const int64_t *a)\n'
                        f"{{ return emu_launch(g, emu_run_{name}, a); }}\n")
    text = '#include "cuda_emu.h"\n' + source + "\n/* ---- emulator entry points */\n" + \
        "".join(wrappers)
    cpp, so = _BUILD_DIR / f"emu_{key}.cpp", _BUILD_DIR / f"emu_{key}.so"
    cpp.write_text(text)
    proc = subprocess.run(["g++", "-std=c++17", "-O0", "-shared", "-fPIC", "-pthread",
                           "-w", f"-I{HEADER_DIR}", str(cpp), "-o", str(so)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"the emulator could not compile {cpp}:\n{proc.stderr[-4000:]}")
    lib = ctypes.CDLL(str(so))
    for name in sigs:
        fn = getattr(lib, f"emu_{name}")
        fn.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_int64)]
        fn.restype = ctypes.c_int
    _libs[key] = (lib, sigs)
    return _libs[key]


class EmuError(Exception):
    """What PyCUDA's driver.Error is to the real driver."""


class EmuArray:
    """A device array: host memory, with GPUArray's few attributes the runtime reads."""

    def __init__(self, data):
        self.data = data
        self.shape, self.dtype, self.nbytes = data.shape, data.dtype, data.nbytes
        self.flags = data.flags

    @property
    def size(self):
        return self.data.size

    def get(self):
        return self.data.copy()


class EmuDriver:
    """kgen.runtime.cuda.PyCudaDriver's interface, on the CPU."""

    def __init__(self):
        self.launches = []   # (kernel name, grid, block) of every launch, in order
        self.uploads = 0
        self.fail_next_launch = None  # an exception to raise at the next launch

    def check_targets(self, names):
        pass

    def load(self, image):
        return build(image.decode())

    def function(self, module, name, fmt):
        lib, sigs = module
        types = sigs[name]
        assert len(fmt) == len(types), (name, fmt, types)
        for code, t in zip(fmt, types):  # the prepared format agrees with the C signature
            assert (code == "P") == ("*" in t), (name, fmt, types)
            assert code in "Pq", (name, fmt)
        return name, fmt, getattr(lib, f"emu_{name}")

    def launch(self, fn, grid, block, args):
        name, fmt, entry = fn
        if self.fail_next_launch is not None:
            exc, self.fail_next_launch = self.fail_next_launch, None
            raise exc
        assert len(args) == len(fmt), (name, fmt, args)
        for code, a in zip(fmt, args):
            assert isinstance(a, (int, np.integer)), (name, a)
        self.launches.append((name, tuple(grid), tuple(block)))
        geometry = (ctypes.c_uint * 6)(*grid, *block)
        packed = (ctypes.c_int64 * max(1, len(args)))(*[int(a) for a in args])
        if entry(geometry, packed) != 0:
            raise EmuError(f"launch of {name} with grid {grid}, block {block} refused")

    def empty(self, shape, dtype):
        data = np.empty(shape, dtype)
        data.reshape(-1).view(np.uint8)[:] = 0xFF  # NaN / -1: a missed write shows
        return EmuArray(data)

    def upload(self, array):
        self.uploads += 1
        return EmuArray(np.array(array, order="C", copy=True))

    def download(self, array):
        return array.data.copy()

    def zero(self, array):
        array.data[...] = 0

    def pointer(self, array):
        return 0 if array.data.size == 0 else array.data.ctypes.data

    def is_device_array(self, value):
        return isinstance(value, EmuArray)

    def is_contiguous(self, array):
        return array.data.flags.c_contiguous

    def translate(self, exc):
        from kgen.runtime.cuda import CudaError
        return CudaError(f"CUDA driver error: {exc}") if isinstance(exc, EmuError) else None


def emulate(monkeypatch, driver=None):
    """Route target='cuda' through an EmuDriver for the rest of the test; returns it."""
    import kgen.build.nvcc as nvcc
    import kgen.runtime.cuda as rt
    driver = driver or EmuDriver()
    monkeypatch.setattr(nvcc, "build_cuda",
                        lambda source, name, **kw: (source.encode(), False))
    monkeypatch.setattr(rt, "default_driver", lambda: driver)
    return driver
