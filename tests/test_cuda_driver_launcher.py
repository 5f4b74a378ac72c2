"""A GPU package's host launcher (NAME_cuda.c) without a GPU.

The package is built with --target c,cuda (nvcc, no GPU needed). Its launcher
opens the driver named by $KGEN_LIBCUDA: here tests/fake_cuda/libcuda_stub.c,
compiled in the test, which keeps "device memory" in host memory, logs every
driver call, and hands each launch to a hook. The hook runs the kernel on the
CPU with tests/_cuda_emu.py (the generated .cu compiled by g++), so the package's
GPU path is compared with its own CPU kernels and with NumPy; it also records
each launch's geometry and integer arguments, compared with what
kgen/runtime/cuda_launch.py computes for the same shapes.

Each launcher opens the driver once per process, so the cases that need a fresh
start (no driver, another compute capability, cuInit failing) import a fresh
copy of the package folder.
"""
import ctypes
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import kgen as kg
import _cuda_emu
from _fake_cuda import CC, build_gpu_package, build_stub, driver_log, fresh_copy, nvcc_problem, \
    off_stub, on_stub

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NO_NVCC = nvcc_problem()

pytestmark = [
    pytest.mark.skipif(NO_NVCC is not None, reason=f"building a GPU package needs nvcc: {NO_NVCC}"),
    pytest.mark.skipif(CC is None, reason="no C compiler"),
]
needs_gxx = pytest.mark.skipif(not _cuda_emu.have_compiler(),
                               reason="running the kernels on the CPU needs g++")

TARGETS = "compute_80,sm_80,sm_90"
SPEC = '''
import numpy as np
import kgen as kg
import kgen.tensor as T

x, y = T.dvector("x"), T.dvector("y")
i = T.lvector("i")
W = kg.shared(np.arange(12.0).reshape(3, 4) / 10, name="W")
b = kg.shared(np.array([0.5, -1.0, 2.0]), name="b")

# a GEMV, a broadcast add and an update of a shared variable
affine = kg.kernel("affine", [x], T.tanh(T.dot(W, x) + b), updates=[(b, b + 0.25)])
# a fused map and a reduction (split in two passes for long vectors)
stats = kg.kernel("stats", [x, y], [T.sum((x - y) ** 2), T.exp(-x * x) * T.sin(y)])
# a gather: its index errors are recorded on the device
pick = kg.kernel("pick", [x, i], x[i] * 2)
# a scan: the launcher loops over its steps, launching the body's kernels at each
w = T.dscalar("w")
h, _ = kg.scan(lambda x_t, h_tm1, w: T.tanh(w * h_tm1 + x_t), sequences=x,
               outputs_info=T.zeros_like(w), non_sequences=w, name="rnn")
rnn = kg.kernel("rnn", [x, w], [h, kg.grad(h.sum(), w)])
'''


# ---- building -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    """The stand-in driver: (path of libcuda.so.1, its ctypes handle)."""
    return build_stub(tmp_path_factory.mktemp("fake_cuda"))


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """The built package folder (sources, binaries, extension)."""
    return build_gpu_package(SPEC, tmp_path_factory.mktemp("gpu_pkg"), "gpumini", TARGETS)


@pytest.fixture(scope="module")
def gpu(package, stub, tmp_path_factory):
    """(the package on the stand-in GPU, the emulator hook, the stub)."""
    pkg, emu = on_stub(package, stub, tmp_path_factory.mktemp("copies"))
    yield pkg, emu, stub[1]
    off_stub(stub)


# ---- the build --------------------------------------------------------------------------
def test_package_holds_the_launcher_and_embedded_binaries(package):
    names = {p.name for p in package.iterdir()}
    assert {"gpumini.cu", "gpumini.ptx", "gpumini.sm_80.cubin", "gpumini.sm_90.cubin",
            "gpumini_cuda.c", "gpumini_images.c", "_device.py"} <= names
    header = (package / "gpumini.h").read_text()
    for k in ("affine", "stats", "pick"):
        assert f"int gpumini_{k}_cuda(" in header
    assert "typedef struct CUstream_st *kg_cuda_stream;" in header
    assert "cuda.h" not in header.replace("no cuda.h", "")
    images = (package / "gpumini_images.c").read_text()
    cubin = (package / "gpumini.sm_90.cubin").read_bytes()
    assert f"[{len(cubin)}]" in images and f"[{len((package / 'gpumini.ptx').read_bytes()) + 1}]" in images


def test_launcher_compiles_warning_free(package, tmp_path):
    for src in ("gpumini_cuda.c", "gpumini_images.c"):
        subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
                        f"-I{package}", "-c", str(package / src), "-o", str(tmp_path / "x.o")],
                       check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def gpu_demo(tmp_path_factory):
    """examples/c/gpu_demo.c against the particles package's header, compiled and
    linked warning-free: (the program, the package folder)."""
    tmp = tmp_path_factory.mktemp("gpu_demo")
    pkg = build_gpu_package((REPO / "examples" / "specs" / "particles.py").read_text(), tmp,
                            "particles", "compute_80")  # one nvcc run: the PTX
    exe = tmp / "gpu_demo"
    subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{pkg}",
                    str(REPO / "examples" / "c" / "gpu_demo.c"), str(pkg / "particles.c"),
                    str(pkg / "particles_cuda.c"), str(pkg / "particles_images.c"),
                    "-o", str(exe), "-ldl", "-lpthread", "-lm"],
                   check=True, capture_output=True, text=True)
    return exe, pkg


def test_c_example_reports_a_missing_driver(gpu_demo, tmp_path):
    """Where the driver is missing it says so and exits 2 after the CPU kernel ran."""
    exe, _ = gpu_demo
    env = dict(os.environ, KGEN_LIBCUDA=str(tmp_path / "nowhere" / "libcuda.so.1"))
    run = subprocess.run([str(exe), "100"], capture_output=True, text=True, env=env)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "no NVIDIA driver" in run.stderr and "nowhere" in run.stderr
    assert run.stdout.startswith("cpu: x[0] = ")


@needs_gxx
def test_c_example_runs_on_the_stand_in_driver(gpu_demo, stub):
    """The whole program, its GPU half on the stand-in driver whose launches run the
    package's kernels on the CPU emulator: the GPU results are the CPU kernel's."""
    exe, pkg = gpu_demo
    emulator, _ = _cuda_emu.build((pkg / "particles.cu").read_text())
    env = dict(os.environ, KGEN_LIBCUDA=str(stub[0]), KGSTUB_EMULATOR=emulator._name)
    run = subprocess.run([str(exe), "1000"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    worst = float(run.stdout.split("max |cpu - gpu| = ")[1].split()[0])
    assert worst < 1e-12 and "over 1000 particles" in run.stdout, run.stdout


# ---- no driver, no device -----------------------------------------------------------------
def test_no_driver_is_backend_unavailable_and_cpu_still_works(package, tmp_path, monkeypatch):
    monkeypatch.setenv("KGEN_LIBCUDA", str(tmp_path / "missing" / "libcuda.so.1"))
    pkg = fresh_copy(package, tmp_path)
    assert pkg.device() == "cpu"
    with pytest.raises(pkg.BackendUnavailableError, match="no NVIDIA driver.*missing") as info:
        pkg.device("cuda")
    assert isinstance(info.value, RuntimeError)  # a package's own class, as kgen's is
    assert pkg.device() == "cpu"
    x = np.linspace(-1, 1, 4)
    W, b = pkg.W.get_value(), pkg.b.get_value()
    np.testing.assert_allclose(pkg.affine(x), np.tanh(W @ x + b), rtol=1e-12)
    with pytest.raises(ValueError, match="devices are"):
        pkg.device("tpu")


def test_kgen_device_env_without_a_gpu_warns_and_keeps_the_cpu(package, tmp_path, monkeypatch):
    monkeypatch.setenv("KGEN_LIBCUDA", str(tmp_path / "missing" / "libcuda.so.1"))
    monkeypatch.setenv("KGEN_DEVICE", "cuda")
    with pytest.warns(RuntimeWarning, match="KGEN_DEVICE=cuda.*no NVIDIA driver"):
        pkg = fresh_copy(package, tmp_path)
    assert pkg.device() == "cpu"


def test_real_libcuda_missing_here_gives_the_clear_error(package, tmp_path, monkeypatch):
    try:
        ctypes.CDLL("libcuda.so.1")
        pytest.skip("this machine has an NVIDIA driver")
    except OSError:
        pass
    monkeypatch.delenv("KGEN_LIBCUDA", raising=False)
    pkg = fresh_copy(package, tmp_path)
    with pytest.raises(pkg.BackendUnavailableError, match="libcuda.so.1.*no NVIDIA GPU"):
        pkg.device("cuda")


@pytest.mark.parametrize("control, code, message", [
    ("no device", 100, "cuInit.*CUDA_ERROR_NO_DEVICE"),
    ("cuDevicePrimaryCtxRetain", 35, "cuDevicePrimaryCtxRetain: CUDA_ERROR_INSUFFICIENT_DRIVER"),
    ("cuModuleLoadData", 209, "cannot load gpumini's sm_90 kernels.*CUDA_ERROR_NO_BINARY_FOR_GPU"),
])
def test_start_failures_name_the_driver_error(package, stub, tmp_path, monkeypatch,
                                              control, code, message):
    path, lib = stub
    monkeypatch.setenv("KGEN_LIBCUDA", str(path))
    lib.kgstub_reset()
    if control == "no device":
        lib.kgstub_set_device(0, 9, 0)
    else:
        lib.kgstub_fail(control.encode(), code)
    pkg = fresh_copy(package, tmp_path)
    with pytest.raises(pkg.BackendUnavailableError, match=message):
        pkg.device("cuda")
    with pytest.raises(pkg.BackendUnavailableError, match=message):  # the first answer stands
        pkg.device("cuda")
    lib.kgstub_reset()


# ---- which image is loaded ------------------------------------------------------------------
@pytest.mark.parametrize("cc, expected", [((9, 0), "gpumini.sm_90.cubin"),
                                          ((8, 6), "gpumini.sm_80.cubin"),
                                          ((10, 0), "gpumini.ptx"),
                                          ((7, 5), None)])
def test_the_image_for_the_device(package, stub, tmp_path, monkeypatch, cc, expected):
    path, lib = stub
    monkeypatch.setenv("KGEN_LIBCUDA", str(path))
    lib.kgstub_reset()
    lib.kgstub_set_device(1, *cc)
    pkg = fresh_copy(package, tmp_path)
    if expected is None:
        with pytest.raises(pkg.BackendUnavailableError,
                           match=r"compute capability 7\.5\) is older.*compute_75,sm_75"):
            pkg.device("cuda")
        return
    pkg.device("cuda")
    size = ctypes.c_size_t()
    data = bytes(lib.kgstub_image(ctypes.byref(size))[:size.value])
    want = (package / expected).read_bytes()
    assert data == (want + b"\0" if expected.endswith(".ptx") else want)
    log = driver_log(lib)
    assert log[0] == "cuInit 0" and "cuDevicePrimaryCtxRetain 0" in log
    assert pkg._devices.launcher.device() == (cc, "kgen stub GPU 0")
    lib.kgstub_reset()


# ---- calls, through the emulator -----------------------------------------------------------
@needs_gxx
def test_kernels_on_the_gpu_match_the_cpu(gpu):
    pkg, emu, lib = gpu
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(10000), rng.standard_normal(10000)
    pkg.device("cpu")
    cpu_stats = pkg.stats(x, y)
    pkg.device("cuda")
    s, e = pkg.stats(x, y)
    assert not emu.errors
    np.testing.assert_allclose(s, np.sum((x - y) ** 2), rtol=1e-12)
    np.testing.assert_allclose(s, cpu_stats[0], rtol=1e-12)
    np.testing.assert_allclose(e, np.exp(-x * x) * np.sin(y), rtol=1e-14)
    np.testing.assert_allclose(e, cpu_stats[1], rtol=1e-14)  # libm vs libmvec: last bits
    np.testing.assert_array_equal(pkg.pick(x[:5], np.array([4, 0, -1])), 2 * x[:5][[4, 0, -1]])
    hs, gw = pkg.rnn(x[:6], 0.5)
    assert not emu.errors
    want, hv = [], 0.0
    for x_t in x[:6]:
        hv = np.tanh(0.5 * hv + x_t)
        want.append(hv)
    np.testing.assert_allclose(hs, want, rtol=1e-12)
    pkg.device("cpu")
    np.testing.assert_allclose(gw, pkg.rnn(x[:6], 0.5)[1], rtol=1e-12)  # BPTT, both ways
    pkg.device("cuda")


@needs_gxx
def test_shared_variables_live_on_the_device(gpu):
    pkg, emu, lib = gpu
    W, b0 = pkg.W.get_value(), pkg.b.get_value()
    x = np.array([1.0, -2.0, 0.5, 3.0])
    lib.kgstub_reset()
    first = pkg.affine(x)
    second = pkg.affine(x)
    np.testing.assert_allclose(first, np.tanh(W @ x + b0), rtol=1e-13)
    np.testing.assert_allclose(second, np.tanh(W @ x + b0 + 0.25), rtol=1e-13)
    # W and b went up once, at the first call; the second call uploaded x only
    uploads = [line for line in driver_log(lib) if line.startswith("cuMemcpyHtoD")]
    assert uploads.count(f"cuMemcpyHtoD {x.nbytes}") == 2 and len(uploads) == 4, uploads
    np.testing.assert_allclose(pkg.b.get_value(), b0 + 0.5)  # copied back
    pkg.b.set_value(np.zeros(3))
    np.testing.assert_allclose(pkg.affine(x), np.tanh(W @ x), rtol=1e-13)
    pkg.device("cpu")  # the CPU kernel reads the device's value
    np.testing.assert_allclose(pkg.affine(x), np.tanh(W @ x + 0.25), rtol=1e-13)
    pkg.device("cuda")
    np.testing.assert_allclose(pkg.b.get_value(), [0.5, 0.5, 0.5])


@needs_gxx
def test_device_arrays_in_and_out_without_host_copies(gpu):
    pkg, emu, lib = gpu
    x, y = np.linspace(0, 1, 300), np.linspace(1, 2, 300)
    pkg.stats.device_outputs = True
    try:
        s, e = pkg.stats(x, y)
    finally:
        pkg.stats.device_outputs = False
    assert isinstance(e, pkg.DeviceArray) and e.shape == (300,) and e.dtype == np.float64
    cai = e.__cuda_array_interface__
    assert cai["version"] == 3 and cai["typestr"] == "<f8" and cai["shape"] == (300,)

    class Foreign:  # another library's device array, by the interface alone
        def __init__(self, owner):
            self.owner, self.__cuda_array_interface__ = owner, owner.__cuda_array_interface__

    lib.kgstub_reset()
    s2, e2 = pkg.stats(Foreign(e), y)
    log = driver_log(lib)
    assert [line for line in log if line.startswith("cuMemcpyHtoD")] == [f"cuMemcpyHtoD {y.nbytes}"]
    ref = np.exp(-x * x) * np.sin(y)
    np.testing.assert_allclose(s2, np.sum((ref - y) ** 2), rtol=1e-12)
    # a strided view and a float32 array are copied through the host, with the same result
    view = dict(cai, shape=(150,), strides=(16,))
    lib.kgstub_reset()
    s3, _ = pkg.stats(type("V", (), {"__cuda_array_interface__": view})(), y[:150])
    np.testing.assert_allclose(s3, np.sum((ref[::2] - y[:150]) ** 2), rtol=1e-12)
    with pytest.raises(pkg.KgenTypeError, match="input 'x': expected a 1-d array"):
        pkg.stats(type("M", (), {"__cuda_array_interface__": dict(cai, shape=(3, 100))})(), y)


@needs_gxx
def test_launches_follow_cuda_launch_geometry(gpu):
    """The C launcher's grids, blocks and integer arguments are what
    kgen/runtime/cuda_launch.py computes for the same shape-phase integers."""
    from kgen.package import load_spec
    from kgen.package.model import build_model
    from kgen.runtime.cuda_launch import Schedule
    pkg, emu, lib = gpu
    spec = load_spec(_spec_path(gpu))
    model = build_model("gpumini", "gpumini.py", spec.kernels, kg.__version__)
    plans = {k.name: k.plan for k in model.kernels}
    ffi, clib = pkg._ext.ffi, pkg._ext.lib
    for n in (5, 3000, 10000, 70000):  # one lane, a warp, the block, and split reductions
        x = np.ones(n)
        emu.launches.clear()
        pkg.stats(x, x)
        ints = ffi.new("int64_t[]", 64)
        err = ffi.new("char[]", 256)
        assert clib.gpumini_stats_ints(n, n, ints, err, 256) == 0
        plan = plans["stats"]
        call = Schedule(plan).resolve(ffi.unpack(ints, len(plan.int_vars)))
        want = [(ln.kernel.name, tuple(ln.grid), tuple(ln.block),  # the C integer arguments
                 [v for (_, v), t in zip(ln.args, emu.sigs[ln.kernel.name]) if "*" not in t])
                for ln in call.launches]
        assert emu.launches == want, n
    assert any(name.endswith("_final") for name, *_ in emu.launches)  # 70000: two passes


def _spec_path(gpu):
    pkg = gpu[0]
    path = Path(pkg.__file__).parent / "spec_copy.py"
    path.write_text(SPEC)
    return path


# ---- errors on the device -------------------------------------------------------------------
@needs_gxx
def test_index_error_recorded_on_the_device(gpu):
    pkg, emu, lib = gpu
    with pytest.raises(pkg.KgenIndexError, match="index 7 is out of bounds for axis 0 with size 3"):
        pkg.pick(np.zeros(3), np.array([0, 7]))


@needs_gxx
def test_shape_errors_before_the_gpu_is_touched(gpu):
    pkg, emu, lib = gpu
    lib.kgstub_reset()
    with pytest.raises(pkg.ShapeError):
        pkg.stats(np.zeros(3), np.zeros(4))
    assert not [line for line in driver_log(lib) if not line.startswith("cuCtx")]


@needs_gxx
@pytest.mark.parametrize("symbol, code, error, name", [
    ("cuLaunchKernel", 701, RuntimeError, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"),
    ("cuStreamSynchronize", 700, RuntimeError, "CUDA_ERROR_ILLEGAL_ADDRESS"),
    ("cuMemAlloc_v2", 2, MemoryError, "CUDA_ERROR_OUT_OF_MEMORY"),
])
def test_driver_errors_name_themselves_and_change_nothing(gpu, symbol, code, error, name):
    pkg, emu, lib = gpu
    x = np.array([1.0, 2.0, 3.0, 4.0])
    before = pkg.b.get_value()
    live = lib.kgstub_live_allocations()
    lib.kgstub_fail(symbol.encode(), code)
    with pytest.raises(error, match=name):
        pkg.affine(x)
    np.testing.assert_array_equal(pkg.b.get_value(), before)  # the update was not applied
    assert lib.kgstub_live_allocations() <= live + 2  # only W and b's device copies remain
    np.testing.assert_allclose(pkg.affine(x), np.tanh(pkg.W.get_value() @ x + before))


@needs_gxx
def test_no_device_memory_leaks(gpu):
    pkg, emu, lib = gpu
    x = np.ones(2000)
    pkg.stats(x, x)
    pkg.affine(x[:4])
    live = lib.kgstub_live_allocations()
    for _ in range(5):
        pkg.stats(x, x)
        pkg.affine(x[:4])  # b's new device value replaces the old one, which is freed
    assert lib.kgstub_live_allocations() == live
