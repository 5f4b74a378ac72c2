"""ifelse and until() in a GPU package's host launcher (NAME_cuda.c), without a GPU.

The package runs on the stand-in driver (tests/fake_cuda/libcuda_stub.c), whose
launches run the real kernels on the CPU emulator (tests/_fake_cuda.py). The
stub logs every driver call, so the tests see what the launcher did: for an
ifelse, one scalar copied back and only the taken branch's kernels launched
(an index out of range in the other one is never looked at); for until(),
the stop flag copied back after each step and no launch after it was set.
Results are checked against NumPy written here and the package's CPU kernels.
"""
import subprocess

import numpy as np
import pytest

import _cuda_emu
from _control_spec import SPEC
from _fake_cuda import CC, build_gpu_package, build_stub, driver_log, nvcc_problem, off_stub, \
    on_stub

NO_NVCC = nvcc_problem()
pytestmark = [
    pytest.mark.skipif(NO_NVCC is not None, reason=f"building a GPU package needs nvcc: {NO_NVCC}"),
    pytest.mark.skipif(CC is None, reason="no C compiler"),
    pytest.mark.skipif(not _cuda_emu.have_compiler(),
                       reason="running the kernels on the CPU needs g++"),
]



@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return build_gpu_package(SPEC, tmp_path_factory.mktemp("ctl_pkg"), "gpuctl", "compute_80")


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    return build_stub(tmp_path_factory.mktemp("fake_cuda"))


@pytest.fixture(scope="module")
def gpu(package, stub, tmp_path_factory):
    pkg, emu = on_stub(package, stub, tmp_path_factory.mktemp("copies"))
    yield pkg, emu, stub[1]
    off_stub(stub)


@pytest.fixture(scope="module")
def scan_bodies(package):
    """kernel name -> the __global__ functions its scans' host loops launch."""
    import kgen as kg
    from kgen.codegen.cuda import cuda_kernels
    from kgen.package import load_spec
    from kgen.package.model import build_model
    spec = load_spec(package.parent.parent / "gpuctl.py")
    model = build_model("gpuctl", "gpuctl.py", spec.kernels, kg.__version__)
    return {k.name: {c.name for c in cuda_kernels(k.plan) if c.scan is not None}
            for k in model.kernels}


def on_cpu(pkg, kernel, *args):
    pkg.device("cpu")
    try:
        return getattr(pkg, kernel)(*args)
    finally:
        pkg.device("cuda")


def launched(emu, since):
    return [name for name, *_ in emu.launches[since:]]


def copies_back(lib):
    """The sizes of the device-to-host copies in the stub's log."""
    return [int(line.split()[1]) for line in driver_log(lib) if line.startswith("cuMemcpyDtoH")]


def test_launcher_with_branches_and_loops_compiles_warning_free(package, tmp_path):
    for src in ("gpuctl_cuda.c", "gpuctl_images.c"):
        subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
                        f"-I{package}", "-c", str(package / src), "-o", str(tmp_path / "x.o")],
                       check=True, capture_output=True, text=True)


def test_only_the_taken_branch_is_launched(gpu):
    pkg, emu, lib = gpu
    Av, xv = np.arange(6.0).reshape(2, 3), np.array([1.0, -2.0])
    before = len(emu.launches)
    lib.kgstub_reset()
    p, q = pkg.branchy(-1.0, np.ones((2, 2)), xv, 99)   # x[99] is never looked at
    assert not emu.errors
    np.testing.assert_allclose(p, xv + 1)
    assert q == xv.sum()
    names = launched(emu, before)
    assert not any("gemm" in n for n in names), names  # the then branch's GEMV: not launched
    assert copies_back(lib) == [1, 16, 8]  # the condition (a bool), then p and q
    before = len(emu.launches)
    p, q = pkg.branchy(1.0, Av[:, :2], xv, 1)
    np.testing.assert_allclose(p, Av[:, :2] @ xv * 2)
    assert q == xv[1]
    names = launched(emu, before)
    assert any("gemm" in n for n in names) and not any("reduce" in n for n in names), names
    cpu = on_cpu(pkg, "branchy", 1.0, Av[:, :2], xv, 1)
    np.testing.assert_allclose(p, cpu[0], rtol=1e-14)
    assert q == cpu[1]


def test_a_taken_branch_checks_its_shapes_first(gpu):
    pkg, emu, lib = gpu
    xv = np.array([1.0, -2.0])
    before = len(emu.launches)
    with pytest.raises(IndexError, match="99"):      # the taken branch's x[99]
        pkg.branchy(1.0, np.ones((2, 2)), xv, 99)
    assert not any("gemm" in n for n in launched(emu, before))  # raised before its launches
    # x[99] in the branch not taken is no error, and the call after is right
    np.testing.assert_allclose(pkg.branchy(-1.0, np.ones((2, 2)), xv, 99)[0], xv + 1)


@pytest.mark.parametrize("cv, dv", [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)])
def test_nested_branches(gpu, cv, dv):
    pkg, emu, lib = gpu
    xv = np.linspace(-1, 1, 5)
    lib.kgstub_reset()
    got = pkg.nested(cv, dv, xv)
    want = (xv * 3 if dv > 0 else xv - 1) if cv > 0 else np.exp(xv)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    np.testing.assert_allclose(got, on_cpu(pkg, "nested", cv, dv, xv), rtol=1e-14)
    conditions = [n for n in copies_back(lib) if n == 1]
    assert len(conditions) == (2 if cv > 0 else 1)  # the inner one only when reached


def test_conditions_on_sizes_and_their_branch_checks(gpu):
    pkg, emu, lib = gpu
    lib.kgstub_reset()
    assert float(pkg.same(np.ones(2), np.ones(3))) == 2.0   # (x * y) would not broadcast
    assert float(pkg.same(np.arange(3.0), np.arange(3.0))) == 5.0
    assert float(pkg.short(np.arange(6.0), np.ones(2))) == 15.0
    assert copies_back(lib).count(1) == 3   # each condition, a bool computed on the device
    with pytest.raises(ValueError, match="do not fit"):   # taken: its check runs
        pkg.short(np.ones(2), np.ones(3))
    np.testing.assert_array_equal(on_cpu(pkg, "same", np.ones(2), np.ones(3)), 2.0)
    lib.kgstub_reset()
    assert float(pkg.empty(np.zeros(0), np.arange(4.0))) == 6.0   # x * y: not checked
    assert float(pkg.empty(np.arange(4.0), np.arange(4.0))) == 14.0
    assert 1 not in copies_back(lib)   # a size as the condition: known on the host
    with pytest.raises(ValueError, match="do not fit"):
        pkg.empty(np.ones(2), np.ones(3))


def test_until_stops_the_launch_loop(gpu, scan_bodies):
    pkg, emu, lib = gpu
    xv = np.random.default_rng(3).uniform(0.2, 1.0, 9)
    stop = int(np.argmax(np.cumsum(xv) > 2.5)) + 1
    body = scan_bodies["upto"]
    before = len(emu.launches)
    lib.kgstub_reset()
    got = pkg.upto(xv)
    assert not emu.errors
    np.testing.assert_allclose(got, np.cumsum(xv)[:stop], rtol=1e-14)  # cut to the steps run
    np.testing.assert_array_equal(got, on_cpu(pkg, "upto", xv))
    loop = [n for n in launched(emu, before) if n in body]
    assert len(loop) == stop * len(body) and body  # no launch after the stop flag was set
    assert copies_back(lib).count(1) == stop  # the flag, once per step
    np.testing.assert_allclose(pkg.upto(np.full(3, 0.1)), [0.1, 0.2, 0.3])  # never stops
    last = pkg.upto_last(xv)
    assert float(last) == pytest.approx(2 * np.cumsum(xv)[stop - 1], rel=1e-14)
    assert float(last) == float(on_cpu(pkg, "upto_last", xv))
    assert float(pkg.upto_last(np.full(3, 0.1))) == pytest.approx(0.6)


def test_until_output_stays_on_the_device_cut(gpu):
    pkg, emu, lib = gpu
    xv = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    pkg.upto.device_outputs = True
    try:
        out = pkg.upto(xv)
    finally:
        pkg.upto.device_outputs = False
    assert isinstance(out, pkg.DeviceArray) and out.shape == (3,)
    assert out.__cuda_array_interface__["shape"] == (3,)
    np.testing.assert_array_equal(pkg._devices.launcher.download(out), [1.0, 2.0, 3.0])


def test_a_loop_in_a_branch_not_taken_launches_nothing(gpu, scan_bodies):
    pkg, emu, lib = gpu
    xv = np.array([0.5, -0.25, 1.0])
    h = 0.0
    for e in xv:
        h = np.tanh(h + e)
    before = len(emu.launches)
    assert float(pkg.loop_in_branch(1.0, xv)) == pytest.approx(h, rel=1e-14)
    assert float(on_cpu(pkg, "loop_in_branch", 1.0, xv)) == pytest.approx(h, rel=1e-14)
    taken, body = launched(emu, before), scan_bodies["loop_in_branch"]
    assert body and all(taken.count(n) == len(xv) for n in body)  # once per step
    before = len(emu.launches)
    assert float(pkg.loop_in_branch(-1.0, xv)) == pytest.approx(xv.sum(), rel=1e-14)
    assert not body & set(launched(emu, before))


@pytest.mark.parametrize("kernel, args, what, first", [
    ("branchy", (1.0, np.ones((2, 2)), np.ones(2), 0), "the condition of ifelse", [4.0, 4.0]),
    ("upto", (np.full(4, 1.0),), "the stop flag of scan upto", [1.0, 2.0, 3.0]),
])
def test_a_failed_copy_back_names_itself_and_frees_everything(gpu, kernel, args, what, first):
    pkg, emu, lib = gpu
    live = lib.kgstub_live_allocations()
    lib.kgstub_fail(b"cuMemcpyDtoH_v2", 700)
    with pytest.raises(RuntimeError, match=f"{what}.*CUDA_ERROR_ILLEGAL_ADDRESS"):
        getattr(pkg, kernel)(*args)
    assert lib.kgstub_live_allocations() == live  # the call's temporaries and outputs went
    out = getattr(pkg, kernel)(*args)  # and the next call runs
    np.testing.assert_array_equal(out[0] if kernel == "branchy" else out, first)


def test_the_launcher_and_kg_function_launch_alike(gpu, monkeypatch):
    """The package's C launcher and kg.function's runtime run one host program
    (cuda_launch.host_program): for the same kernel and arguments they launch
    the same kernels, in the same order, with the same geometry."""
    import re
    import kgen as kg
    import kgen.tensor as T
    from kgen.ifelse import ifelse
    pkg, emu, lib = gpu
    driver = _cuda_emu.emulate(monkeypatch)
    c, A, x, i = T.dscalar("c"), T.dmatrix("A"), T.dvector("x"), T.lscalar("i")
    p, q = ifelse(T.gt(c, 0), [T.dot(A, x) * 2, x[i]], [x + 1, x.sum()])
    branchy = kg.function([c, A, x, i], [p, q], target="cuda")
    v = T.dvector("v")
    sums, _ = kg.scan(lambda e, acc: (acc + e, kg.scan_module.until(acc + e > 2.5)),
                      sequences=v, outputs_info=T.zeros_like(v[0]), name="upto")
    upto = kg.function([v], sums, target="cuda")

    def step(name):  # the kernel's place and role, without the plan's own name
        return re.search(r"_s\d+_\w+$", name).group(0)

    rng = np.random.default_rng(8)
    cases = [("branchy", branchy, (1.0, rng.standard_normal((3, 3)), rng.standard_normal(3), 1)),
             ("branchy", branchy, (-1.0, np.ones((300, 300)), rng.standard_normal(300), 9999)),
             ("upto", upto, (rng.uniform(0.2, 1.0, 12),))]
    for name, f, args in cases:
        before_pkg, before_fn = len(emu.launches), len(driver.launches)
        got = getattr(pkg, name)(*args)
        want = f(*args)
        for g, w in zip(got if name == "branchy" else [got], want if name == "branchy" else [want]):
            np.testing.assert_array_equal(g, w)
        ours = [(step(n), grid, block) for n, grid, block, _ in emu.launches[before_pkg:]]
        theirs = [(step(n), grid, block) for n, grid, block in driver.launches[before_fn:]]
        assert ours == theirs and ours, (name, ours, theirs)
