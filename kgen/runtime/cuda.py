"""The CUDA runtime: a Kernel compiled by nvcc and run through PyCUDA (or, where
PyCUDA is missing, NVIDIA's cuda-python: kgen/runtime/cuda_python.py).

A call:
  1. binds and checks the arguments (CallSignature, as the C runtime does;
     PyCUDA GPUArrays are accepted as they are);
  2. runs the shape phase on the host - `NAME_ints`, C built with cffi from the
     C backend's own shape-phase macros - so every shape error is raised
     before anything touches the GPU;
  3. allocates outputs and temporaries from a memory pool and launches the
     plan's kernels in order (kgen/runtime/cuda_launch.py computes the grids
     and packs the arguments);
  4. reads the index-error record if a gather or scatter ran, copies the
     outputs back (or hands out GPUArrays: `f.device_outputs = True`);
  5. only then gives updated shared variables their new device buffers.

Shared variables live on the GPU between calls: each holds a DeviceValue
(kgen/runtime/device.py, shared with GPU packages) as its `_device` hook, which uploads the host value when that is the newer one
and copies back on `get_value()`.
"""
import ctypes
import ctypes.util
import importlib.util
import sys

import numpy as np

from .. import __version__
from ..codegen.cuda import ERR_WORDS, branch_checks, flat_steps
from ..errors import BackendUnavailableError, KgenError, KgenIndexError, KgenTypeError, ShapeError
from ..expr.types import format_shape
from . import core
from .c import ERRLEN, CallSignature, raise_for
from .cuda_launch import Schedule, host_program, index_error_message
from .device import (CudaError, CudaMemoryError, DeviceValue, device_argument,  # noqa: F401
                     held_value, interface_of)


# ---- is there a GPU? --------------------------------------------------------------
_CUDA_ERRORS = {35: "the driver is older than the CUDA runtime needs",
                100: "no CUDA-capable device is detected",
                999: "unknown error"}


def driver_problem():
    """None when the NVIDIA driver reports a GPU, else why not (through ctypes:
    no PyCUDA needed, so the message can name both missing pieces)."""
    names = {"win32": ["nvcuda.dll"], "darwin": []}.get(sys.platform,
                                                      ["libcuda.so.1", "libcuda.so"])
    lib = None
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        return (f"no NVIDIA driver ({names[0] if names else 'libcuda'} not found: "
                f"this machine has no NVIDIA GPU, or its driver is not installed)")
    rc = lib.cuInit(0)
    if rc != 0:
        return f"the NVIDIA driver found no usable GPU (cuInit: error {rc}, " \
               f"{_CUDA_ERRORS.get(rc, 'see the CUDA driver API error codes')})"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return "the NVIDIA driver sees no GPU (check CUDA_VISIBLE_DEVICES)"
    return None


def _have(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package that is missing
        return False


def binding():
    """'pycuda' or 'cuda-python': the driver bindings target='cuda' uses; None if neither."""
    if _have("pycuda"):
        return "pycuda"
    if _have("cuda.bindings") or _have("cuda.cuda"):
        return "cuda-python"
    return None


def missing():
    """What keeps target='cuda' from running here: a list of reasons, empty if nothing."""
    reasons = []
    if binding() is None:
        reasons.append("neither PyCUDA nor NVIDIA's cuda-python is installed (pip install "
                       "'kgen[cuda]' for PyCUDA, which builds against the CUDA toolkit, or "
                       "pip install cuda-python, a wheel that needs only the driver)")
    problem = driver_problem()
    if problem:
        reasons.append(problem)
    return reasons


def unavailable(reasons):
    return BackendUnavailableError(
        "target='cuda' cannot run here: " + "; and ".join(reasons) + ". kernel.source('cuda') "
        "and `python -m kgen build --target cuda` still work: they need nvcc, not a GPU.")


_DRIVER = None


def default_driver():
    """The process's driver, created on first use: PyCUDA's if it is installed, else
    cuda-python's (kgen/runtime/cuda_python.py); BackendUnavailableError if neither works."""
    global _DRIVER
    if _DRIVER is None:
        reasons = missing()
        if reasons:
            raise unavailable(reasons)
        if binding() == "pycuda":
            _DRIVER = PyCudaDriver()
        else:
            from .cuda_python import CudaPythonDriver
            try:
                _DRIVER = CudaPythonDriver()
            except (ImportError, CudaError) as exc:
                raise unavailable([f"cuda-python cannot start CUDA ({exc})"]) from exc
    return _DRIVER


def check_capability(name, capability, names):
    """BackendUnavailableError unless the build's architectures can run on this GPU."""
    oldest = min(int(t.split("_", 1)[1].rstrip("af")) for t in names)
    have = capability[0] * 10 + capability[1]
    if have < oldest:
        raise unavailable([f"the GPU ({name}, compute capability "
                           f"{capability[0]}.{capability[1]}) is older than "
                           f"kgen's build targets {', '.join(names)} (set "
                           f"KGEN_CUDA_TARGETS, e.g. compute_{have},sm_{have})"])


# ---- the few PyCUDA calls the runtime makes ------------------------------------------
class PyCudaDriver:
    """PyCUDA behind a small interface, so tests can substitute a fake one."""

    def __init__(self):
        try:
            import pycuda.driver as drv
            import pycuda.gpuarray as gpuarray
            from pycuda.tools import DeviceMemoryPool
        except ImportError as exc:
            raise unavailable([f"PyCUDA does not import ({exc})"]) from exc
        try:  # the device's primary context: shared with other CUDA libraries in the process
            import pycuda.autoprimaryctx  # noqa: F401
        except ImportError:
            import pycuda.autoinit  # noqa: F401  (PyCUDA < 2021.1)
        except drv.Error as exc:
            raise unavailable([f"CUDA could not start ({exc})"]) from exc
        self.drv, self.gpuarray = drv, gpuarray
        self.pool = DeviceMemoryPool()
        device = drv.Context.get_device()
        self.name = device.name()
        self.capability = device.compute_capability()

    def check_targets(self, names):
        """BackendUnavailableError unless the build's architectures can run on this GPU."""
        check_capability(self.name, self.capability, names)

    def load(self, image):
        return self.drv.module_from_buffer(image)

    def function(self, module, name, fmt):
        fn = module.get_function(name)
        fn.prepare(fmt)
        return fn

    def launch(self, fn, grid, block, args):
        fn.prepared_call(grid, block, *args)

    def empty(self, shape, dtype):
        return self.gpuarray.GPUArray(shape, dtype, allocator=self.pool.allocate)

    def upload(self, array):
        # np.array, not np.ascontiguousarray: that would make a 0-d array 1-d
        return self.gpuarray.to_gpu(np.asarray(array, order="C"),
                                    allocator=self.pool.allocate)

    def download(self, array):
        return array.get()

    def zero(self, array):
        if array.nbytes:
            self.drv.memset_d8(int(array.gpudata), 0, array.nbytes)

    def pointer(self, array):
        return 0 if array.gpudata is None else int(array.gpudata)

    def is_device_array(self, value):
        return isinstance(value, self.gpuarray.GPUArray)

    def is_contiguous(self, array):
        return array.flags.c_contiguous

    def translate(self, exc):
        """The kgen error for a PyCUDA exception, or None if it is not one."""
        if not isinstance(exc, self.drv.Error):
            return None
        if isinstance(exc, self.drv.MemoryError) or "out of memory" in str(exc):
            return CudaMemoryError(f"CUDA: out of GPU memory ({exc})")
        return CudaError(f"CUDA driver error: {exc}")


class CudaSignature(CallSignature):
    """CallSignature that also accepts device arrays (checked without copying them)."""

    def __init__(self, kernel, plan, driver):
        super().__init__(kernel, plan)
        self.driver = driver

    def coerce(self, k, value):
        if self.driver.is_device_array(value):
            return coerce_device_array(self.driver, self.inputs[k], value, self.dtypes[k],
                                       self.labels[k])
        # any other device array (CuPy, Numba...), where the driver can take one
        cai = interface_of(value) if hasattr(self.driver, "download_strided") else None
        if cai is not None:
            return device_argument(self.driver, value, cai, self.dtypes[k],
                                   self.inputs[k].type.shape, self.labels[k])
        return super().coerce(k, value)


def coerce_device_array(driver, var, arr, dtype, label):
    """A GPUArray argument, checked like a NumPy one; cast or made contiguous through the
    host only when it must be (a safe cast to another dtype, a strided view)."""
    if len(arr.shape) != var.ndim:
        raise KgenTypeError(
            f"{label}: expected a {var.ndim}-d array of {var.dtype} with shape "
            f"{format_shape(var.type.shape)}, got a {len(arr.shape)}-d GPUArray with shape "
            f"{tuple(arr.shape)}")
    if arr.dtype != dtype and not np.can_cast(arr.dtype, dtype, "safe"):
        raise KgenTypeError(f"{label}: expected dtype {var.dtype}, got a GPUArray of {arr.dtype} "
                            f"(which does not cast safely; use .astype)")
    for axis, (want, got) in enumerate(zip(var.type.shape, arr.shape)):
        if want is not None and want != got:
            raise ShapeError(f"{label}: expected shape {format_shape(var.type.shape)}, "
                             f"got {tuple(arr.shape)} (axis {axis})")
    if arr.dtype != dtype or not driver.is_contiguous(arr):
        return driver.upload(np.array(driver.download(arr), dtype=dtype, order="C"))
    return arr


# ---- the function ---------------------------------------------------------------------
def compile_plan(plan, names=None):
    """Build (or load from the disk cache) a plan's two halves: the host shape phase
    (C, through cffi) and the kernels (nvcc). Returns (CUDA source, host module,
    GPU image, from_cache). Needs nvcc and a C compiler, not a GPU."""
    from ..build import build_module
    from ..build import nvcc
    from ..codegen.cuda import render_host, render_host_cdef
    from ..codegen.render import render_module
    source = render_module([plan], "cuda", __version__)
    host, host_cached = build_module(render_host([plan], __version__), render_host_cdef([plan]),
                                     name_hint=plan.name + "_host")
    image, image_cached = nvcc.build_cuda(source, plan.name, names=names or nvcc.targets())
    return source, host, image, host_cached and image_cached


class CudaFunction:
    """A kernel compiled for the GPU: kg.function(..., target='cuda')."""

    target = "cuda"

    def __init__(self, kernel, optimize=True, *, driver=None):
        from ..build import nvcc
        driver = driver or default_driver()  # first: no GPU means no build either
        names = nvcc.targets()
        driver.check_targets(names)
        self.kernel, self._driver = kernel, driver
        plan = self.plan = kernel.plan(optimize)
        self._source, host, image, self.from_cache = compile_plan(plan, names)
        self._schedule = Schedule(plan)
        self._program = host_program(plan)
        # a loop's HostStep -> the place of its end_loop
        self._loop_end, opened = {}, []
        for k, h in enumerate(self._program):
            if h.kind == "loop":
                opened.append(k)
            elif h.kind == "end_loop":
                self._loop_end[opened.pop()] = k
        self._calls = {}  # shape-phase integers -> Call (the launches for those shapes)
        try:
            module = driver.load(image)
            self._functions = {k.name: driver.function(module, k.name, k.fmt)
                               for k in self._schedule.kernels}
        except Exception as exc:
            error = driver.translate(exc)
            if error is None:
                raise
            raise unavailable([f"the GPU cannot load kgen's build for {', '.join(names)} "
                               f"({error})"]) from exc
        self._ffi, self._ints_fn = host.ffi, getattr(host.lib, plan.name + "_ints")
        # an ifelse branch's shape checks, repeated on the host when it is taken
        self._branch_checks = {(id(st), side): getattr(host.lib, name)
                               for name, st, side, _ in branch_checks(plan)}
        self._n_ints = len(plan.int_vars)
        from .c import value_positions
        self._values = value_positions(plan)
        self.signature = CudaSignature(kernel, plan, driver)
        self._inputs = [p.name for p in plan.params if p.role == "input"]
        self._shared = [(p.name, p.var) for p in plan.params if p.role == "shared"]
        self._n_outputs = len(kernel.outputs)
        self._updated = [s for s, _ in kernel.updates]
        self._single = kernel.single
        # (output index, scan step) of each output an until() loop cuts to its steps
        scans = {name: st for st, _, _ in flat_steps(plan) if st.kind == "scan"
                 for name in st.args["lengths"]}
        self._trims = [(k, scans[p.length]) for k, p in enumerate(self._schedule.outputs)
                       if k < self._n_outputs and p.length]
        # a call that reads or updates shared variables holds their locks throughout
        # (their device copies move too), as the C runtime's updating calls do
        self._locks = core.lock_order([s for _, s in self._shared] + self._updated)
        self.device_outputs = False  # True: return GPUArrays instead of copying back

    def source(self, target=None):
        if target not in (None, "cuda"):
            return self.kernel.source(target)
        return self._source

    def _device_value(self, shared):
        return held_value(shared, self._driver)

    def _int_value(self, v):
        """The value of a 0-d int input (a host or device array) or shared variable."""
        if isinstance(v, core.SharedVariable) or hasattr(v, "_lock"):
            v = v.get_value()
        elif self._driver.is_device_array(v):
            v = self._driver.download(v)
        return int(np.asarray(v))

    def shape_phase(self, dims, fn=None):
        """The shape-phase integers (plan.int_vars order) for these input dims, or the
        error (`fn`: a branch's strict variant of the shape phase)."""
        ffi = self._ffi
        # buffers of this call's own: calls from other threads run at the same time
        ints, err = ffi.new("int64_t[]", max(1, self._n_ints)), ffi.new("char[]", ERRLEN)
        rc = (fn or self._ints_fn)(*dims, ints, err, ERRLEN)
        if rc:  # KG_ESHAPE, or KG_EINDEX for an index out of range
            raise_for(rc, ffi.string(err).decode())
        return ffi.unpack(ints, self._n_ints)

    def _condition(self, a, buffers, ints):
        """The side (0: then, 1: else) an ifelse takes: its 0-d condition's truth."""
        if a["cond_view"] is not None:
            view = a["cond_view"]
            flat = self._driver.download(buffers[view.buf]).reshape(-1)
            return 0 if flat[self._schedule.value(view.offset, ints)] else 1
        if a["cond_int"] is not None:
            return 0 if self._schedule.value(a["cond_int"], ints) else 1
        return 0 if a["cond_literal"] else 1

    def _launch_all(self, launches, buffers, ints, dims):
        """Run the call's host program (cuda_launch.host_program, which the
        packages' C launcher renders too): each ifelse decided from its
        condition, copied back, with the taken branch's shape checks; only the
        taken branches' launches; a scan's body once per step. Returns id(scan
        step) -> the steps each scan ran."""
        by_name = {launch.kernel.name: launch for launch in launches}  # those with work
        program, side, steps, k = self._program, {}, {}, 0
        while k < len(program):
            h = program[k]
            end = self._loop_end[k] if h.kind == "loop" else k
            if all(side.get(i) == s for i, s in h.guards):
                if h.kind == "decide":
                    side[h.index] = self._condition(h.step.args, buffers, ints)
                    check = self._branch_checks.get((id(h.step), side[h.index]))
                    if check is not None:
                        self.shape_phase(dims, check)
                elif h.kind == "loop":
                    body = [by_name[b.kernel.name] for b in program[k + 1:end]
                            if b.kind == "launch" and b.kernel.name in by_name]
                    if body:  # else nothing to run: its last-row copies take all n steps
                        steps[id(h.step)] = self._run_scan(h.step, body, buffers, ints)
                elif h.kind == "launch" and h.kernel.name in by_name:
                    launch = by_name[h.kernel.name]
                    self._launch(launch, self._pack(launch, buffers, steps, ints))
            k = end + 1
        return steps

    def _run_scan(self, scan, body, buffers, ints):
        """A scan's host-side loop: its body's kernels for t = 0, 1, ... (see
        kgen/codegen/cuda.py). Under until(), the stop flag is copied back after
        each step - one scalar per step, the simple first version - and the
        loop ends where it is set. Returns the steps taken."""
        a = scan.args
        n = self._schedule.value(a["n"], ints)
        packed = [self._pack(launch, buffers, steps=None, ints=ints) for launch in body]
        at_t = [[j for j, (kind, _) in enumerate(launch.args) if kind == "t"] for launch in body]
        stop = buffers[a["stop"]] if a["stop"] else None
        for t in range(n):
            for launch, args, where in zip(body, packed, at_t):
                for j in where:
                    args[j] = t
                self._launch(launch, args)
            if stop is not None and self._driver.download(stop).reshape(-1)[0]:
                return t + 1
        return n

    def _pack(self, launch, buffers, steps, ints):
        """A launch's arguments: device pointers, integers, and the steps a scan
        ran for its last-row copy (all n when its body launched nothing); a body
        kernel's t is set by the loop."""
        pointer, st = self._driver.pointer, launch.kernel.step
        return [pointer(buffers[v]) if kind == "buffer" else
                (steps.get(id(st)) or self._schedule.value(st.args["n"], ints))
                if kind == "steps" else v
                for kind, v in launch.args]

    def _launch(self, launch, args):
        self._driver.launch(self._functions[launch.kernel.name], launch.grid, launch.block, args)

    def __call__(self, *args, **kwargs):
        values = self.signature.bind(args, kwargs)
        core.acquire(self._locks)
        try:
            return self._call(values)
        finally:
            core.release(self._locks)

    def _call(self, values):
        driver = self._driver
        held = [(name, s, self._device_value(s)) for name, s in self._shared]
        dims = [d for v in values for d in v.shape]
        dims += [d for _, s, dv in held for d in dv.shape(s)]
        if self._values:  # 0-d int arguments whose values decide sizes (int64_t, after dims)
            arrays = list(values) + [s for _, s, _ in held]
            dims += [self._int_value(arrays[k]) for k in self._values]
        ints = self.shape_phase(dims)  # every check, before anything touches the GPU
        call = self._calls.get(tuple(ints))
        if call is None:  # new shapes: work the launches out (then reuse them)
            if len(self._calls) >= 64:
                self._calls.clear()
            call = self._calls[tuple(ints)] = self._schedule.resolve(ints)
        try:
            buffers = {name: (v if driver.is_device_array(v) else driver.upload(v))
                       for name, v in zip(self._inputs, values)}
            buffers.update((name, dv.current(s)) for name, s, dv in held)
            outputs = [driver.empty(shape, dtype) for _, shape, dtype in call.outputs]
            buffers.update((name, o) for (name, _, _), o in zip(call.outputs, outputs))
            buffers.update((name, driver.empty(shape, dtype)) for name, shape, dtype in call.temps)
            if call.err:  # a record of this call's own
                err_record = driver.empty((ERR_WORDS,), np.int64)
                driver.zero(err_record)
                buffers["kg_err"] = err_record
            steps = self._launch_all(call.launches, buffers, ints, dims)
            if call.err:
                record = driver.download(err_record)
                if record[0]:
                    raise KgenIndexError(index_error_message(self.plan, record))
            results = outputs[:self._n_outputs]
            if not self.device_outputs:
                results = [driver.download(o).reshape(shape)
                           for o, (_, shape, _) in zip(results, call.outputs)]
            for k, scan in self._trims:  # until() outputs: cut to the steps taken
                cut = steps.get(id(scan), self._schedule.value(scan.args["n"], ints))
                results[k] = results[k][:cut] if not self.device_outputs else \
                    driver.upload(driver.download(results[k])[:cut])  # rare: a copy is fine
        except KgenError:
            raise
        except Exception as exc:
            error = driver.translate(exc)
            if error is None:
                raise
            raise error from exc
        # success: the updates become the shared variables' values (on the device)
        for s, array in zip(self._updated, outputs[self._n_outputs:]):
            self._device_value(s).replace(s, array)
        return results[0] if self._single else results
