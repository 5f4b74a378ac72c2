"""The stand-in CUDA driver (tests/fake_cuda/libcuda_stub.c) and what the GPU
package tests do with it: compile it, build a package with --target c,cuda,
import fresh copies of it, and run its launches on the CPU emulator.

Shared by tests/test_cuda_driver_launcher.py and tests/test_cuda_launcher_control.py.
"""
import ctypes
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import _cuda_emu

HERE = Path(__file__).resolve().parent
CC = shutil.which("cc") or shutil.which("gcc")


def nvcc_problem():
    """None when nvcc is found, else why not."""
    try:
        from kgen.build import nvcc
        nvcc.find_nvcc()
        return None
    except Exception as exc:  # CompilerNotFoundError
        return str(exc)


def build_stub(out_dir):
    """(path of the stand-in libcuda.so.1 compiled into out_dir, its ctypes handle)."""
    out = Path(out_dir) / "libcuda.so.1"
    subprocess.run([CC, "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    str(HERE / "fake_cuda" / "libcuda_stub.c"), "-o", str(out), "-ldl"],
                   check=True, capture_output=True, text=True)
    lib = ctypes.CDLL(str(out))
    lib.kgstub_log.restype = ctypes.c_char_p
    lib.kgstub_image.restype = ctypes.POINTER(ctypes.c_ubyte)
    lib.kgstub_image.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    lib.kgstub_fail.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return out, lib


def build_gpu_package(spec_text, root, name, targets):
    """The folder of package `name` built from `spec_text` with --target c,cuda for
    the architectures `targets` ($KGEN_CUDA_TARGETS while it builds)."""
    from kgen.package import build_package, load_spec
    spec_file = Path(root) / f"{name}.py"
    spec_file.write_text(spec_text)
    old = os.environ.get("KGEN_CUDA_TARGETS")
    os.environ["KGEN_CUDA_TARGETS"] = targets
    try:
        spec = load_spec(spec_file)
        return build_package(spec.kernels, Path(root) / "out", name, spec.path,
                             targets=("c", "cuda")).path
    finally:
        if old is None:
            os.environ.pop("KGEN_CUDA_TARGETS")
        else:
            os.environ["KGEN_CUDA_TARGETS"] = old


_copies = [0]


def fresh_copy(package, tmp_path):
    """The package imported from a new folder: a launcher that has not opened a driver."""
    _copies[0] += 1
    name = f"{Path(package).name}_copy{_copies[0]}"
    shutil.copytree(package, Path(tmp_path) / name)
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


class Emulated:
    """The stub's launch hook: records each launch, then runs it on the CPU."""

    PROTO = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint),
                             ctypes.POINTER(ctypes.c_void_p))

    def __init__(self, source):
        self.lib, self.sigs = _cuda_emu.build(source)
        self.launches, self.errors = [], []
        self.callback = self.PROTO(self._launch)

    def _launch(self, name, geometry, params):
        try:
            name = name.decode()
            types = self.sigs[name]
            args = [ctypes.cast(params[k], ctypes.POINTER(ctypes.c_int64))[0]
                    for k in range(len(types))]
            ints = [a for a, t in zip(args, types) if "*" not in t]
            self.launches.append((name, tuple(geometry[:3]), tuple(geometry[3:6]), ints))
            packed = (ctypes.c_int64 * max(1, len(args)))(*args)
            return getattr(self.lib, f"emu_{name}")(geometry, packed)
        except Exception as exc:  # noqa: BLE001 - a ctypes callback cannot raise
            self.errors.append(exc)
            return 1


def on_stub(package, stub, tmp_path):
    """(the package copied to tmp_path, on the stand-in GPU, and its Emulated hook);
    the caller undoes it with off_stub(stub)."""
    path, lib = stub
    os.environ["KGEN_LIBCUDA"] = str(path)
    lib.kgstub_reset()
    emu = Emulated((Path(package) / f"{Path(package).name}.cu").read_text())
    lib.kgstub_set_hook(emu.callback)
    pkg = fresh_copy(package, tmp_path)
    assert pkg.device("cuda") == "cuda"
    return pkg, emu


def off_stub(stub):
    stub[1].kgstub_set_hook(None)
    os.environ.pop("KGEN_LIBCUDA", None)


def driver_log(lib):
    return lib.kgstub_log().decode().splitlines()
