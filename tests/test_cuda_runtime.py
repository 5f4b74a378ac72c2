"""The CUDA runtime without a GPU: launch geometry and argument packing in plain
Python, the BackendUnavailableError paths, and the whole target='cuda' call
path run through tests/_cuda_emu.py, which compiles the generated kernels for
the CPU (blocks one at a time, threads as threads) and so checks what they
compute against the C backend.

What this cannot check - GPU math accuracy, real PyCUDA, memory traffic - is
in tests/gpu/, which runs where a GPU and PyCUDA exist.
"""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

import kgen as kg
import kgen.runtime.cuda as rt
from kgen.codegen.cuda import BLOCK, ERR_WORDS, cuda_kernels
from kgen.runtime.cuda_launch import (CHUNK_MIN, MAX_BLOCKS, MAX_GRID_YZ, MAX_SPLITS, Schedule,
                                      gemm_grid, grid_1d, lanes_for, reduce_launch)

import _cuda_emu
import op_table

needs_gxx = pytest.mark.skipif(not _cuda_emu.have_compiler(),
                               reason="the CUDA emulator needs g++ (no GPU needed)")


# ---- launch geometry -------------------------------------------------------------------
def test_grid_1d():
    assert grid_1d(0) is None and grid_1d(-1) is None
    assert grid_1d(1) == ((1, 1, 1), (BLOCK, 1, 1))
    assert grid_1d(BLOCK) == ((1, 1, 1), (BLOCK, 1, 1))
    assert grid_1d(BLOCK + 1)[0] == (2, 1, 1)
    assert grid_1d(10**7)[0] == (min(-(-10**7 // BLOCK), MAX_BLOCKS), 1, 1)
    assert grid_1d(10**12)[0][0] == MAX_BLOCKS  # grid-stride loops cover the rest


def test_reduce_launch_shapes():
    assert reduce_launch(0, 100) is None
    # many short rows: one thread per output, BLOCK outputs per block
    r = reduce_launch(10**5, 4)
    assert (r.lanes, r.splits, r.blocks) == (1, 1, -(-10**5 // BLOCK))
    # rows of a few hundred: a warp each
    r = reduce_launch(1000, 500)
    assert (r.lanes, r.splits, r.blocks) == (32, 1, -(-1000 // (BLOCK // 32)))
    # an empty reduction still writes every output (the identity)
    r = reduce_launch(7, 0)
    assert r.lanes == 1 and r.splits == 1 and r.blocks == 1
    # one long row: the whole block, split into chunks, and a second pass
    r = reduce_launch(1, 10**7)
    assert r.lanes == BLOCK and r.splits == MAX_SPLITS and r.blocks == MAX_SPLITS
    assert r.final_lanes == 32 and r.final_blocks == 1
    # chunks never get shorter than CHUNK_MIN
    r = reduce_launch(1, 5 * CHUNK_MIN)
    assert r.splits == 5
    # plenty of long rows: no split
    assert reduce_launch(5000, 10**5).splits == 1


def test_reduce_launch_depends_only_on_sizes():
    # the grouping decides the float rounding: it must not depend on the device
    assert reduce_launch(3, 123456) == reduce_launch(3, 123456)
    for nout, nred in [(1, 9), (2, 2049), (600, 70000), (1, 2**31)]:
        r = reduce_launch(nout, nred)
        assert r.blocks * (BLOCK // r.lanes) >= nout * r.splits
        assert r.splits == 1 or r.final_blocks * (BLOCK // r.final_lanes) >= nout


def test_lanes_for():
    assert [lanes_for(n) for n in (0, 1, 8, 9, 2048, 2049)] == [1, 1, 1, 32, 32, BLOCK]


def test_gemm_grid():
    assert gemm_grid(0, 5, 1) is None and gemm_grid(5, 0, 1) is None and gemm_grid(5, 5, 0) is None
    assert gemm_grid(256, 512, 1) == ((8, 4, 1), (BLOCK, 1, 1))
    assert gemm_grid(65, 1, 3)[0] == (1, 2, 3)
    assert gemm_grid(64 * 70000, 64, 10**6)[0] == (1, MAX_GRID_YZ, MAX_GRID_YZ)


# ---- kernel records and the per-call schedule ----------------------------------------------
def _plan(name, inputs, outputs, updates=None):
    return kg.kernel(name, inputs, outputs, updates).plan()


def test_kernel_records_match_their_format():
    x, M = kg.vector("x"), kg.matrix("M")
    i = kg.lvector("i")
    plan = _plan("rec", [x, M, i], [(M @ x).sum(), M.argmax(axis=0), M[i], kg.exp(x) + 1])
    kernels = cuda_kernels(plan)
    roles = [k.role for k in kernels]
    assert roles == ["gemm", "reduce", "reduce_final", "reduce", "reduce_final", "gather", "map"]
    for k in kernels:
        assert len(k.fmt) == len(k.args) and set(k.fmt) <= {"P", "q"}
        assert k.name.startswith("kgen_rec_s")
        names = [a.name for a in k.args]
        assert len(names) == len(set(names))
        written = [a for a in k.args if a.kind == "buffer" and "const" not in a.ctype]
        assert len(written) == 1  # every kernel writes one buffer
    arg = kernels[3]
    assert [a.ref for a in arg.args if a.kind == "extra"] == ["part", "part_at", "splits", "lanes"]
    assert kernels[5].args[-1].ref == "err"


def test_schedule_resolves_sizes_and_arguments():
    x, y = kg.vector("x"), kg.vector("y")
    plan = _plan("sch", [x, y], [((x - y) ** 2).sum(), x * 2])
    sched = Schedule(plan)
    ints = _ints(plan, [100000, 100000])
    call = sched.resolve(ints)
    assert [o[1:] for o in call.outputs] == [((), "float64"), ((100000,), "float64")]
    kinds = [lc.kernel.role for lc in call.launches]
    assert kinds == ["reduce", "reduce_final", "map"]
    red, fin, mp = call.launches
    r = reduce_launch(1, 100000)
    assert red.grid == (r.blocks, 1, 1) and fin.grid == (r.final_blocks, 1, 1)
    # the partial results of the split reduction are a temporary of the call
    part = [t for t in call.temps if t[0].startswith("kg_part")]
    assert part == [(f"kg_part{red.kernel.index}", (r.splits,), "float64")]
    extras = dict(zip([a.ref for a in red.kernel.args], red.args))
    assert extras["splits"] == ("int", r.splits) and extras["lanes"] == ("int", BLOCK)
    assert extras["part"] == ("buffer", part[0][0])
    # integer arguments carry this call's sizes
    for a, v in zip(mp.kernel.args, mp.args):
        if a.kind == "int":
            assert v == ("int", ints[plan.int_vars.index(a.ref)])
    assert mp.grid == grid_1d(100000)[0]
    # a small call: no split, no partials, no second pass
    call = sched.resolve(_ints(plan, [5, 5]))
    assert [lc.kernel.role for lc in call.launches] == ["reduce", "map"]
    assert not [t for t in call.temps if t[0].startswith("kg_part")]
    # zero-size work is not launched; the reduction still writes its identity
    call = sched.resolve(_ints(plan, [0, 0]))
    assert [lc.kernel.role for lc in call.launches] == ["reduce"]


def test_schedule_shape_errors_come_from_the_shape_phase():
    x, y = kg.vector("x"), kg.vector("y")
    plan = _plan("sche", [x, y], x + y)
    with pytest.raises(kg.ShapeError, match=r"\(3,\) and \(4,\)"):
        _ints(plan, [3, 4])


def _ints(plan, dims):
    """Run the plan's host shape phase (NAME_ints), as the runtime does."""
    from kgen.build import build_module
    from kgen.codegen.cuda import render_host, render_host_cdef
    from kgen.runtime.c import ERRLEN, raise_for
    mod, _ = build_module(render_host([plan]), render_host_cdef([plan]), name_hint="t_host")
    ints = mod.ffi.new("int64_t[]", max(1, len(plan.int_vars)))
    err = mod.ffi.new("char[]", ERRLEN)
    if getattr(mod.lib, plan.name + "_ints")(*dims, ints, err, ERRLEN):
        raise_for(1, mod.ffi.string(err).decode())
    return mod.ffi.unpack(ints, len(plan.int_vars))


# ---- without PyCUDA or a GPU ----------------------------------------------------------------
def test_unavailable_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(rt, "_DRIVER", None)
    monkeypatch.setattr(rt, "driver_problem", lambda: "no NVIDIA driver (libcuda.so.1 not found)")
    monkeypatch.setattr(rt.importlib.util, "find_spec", lambda name: None)
    x = kg.vector("x")
    with pytest.raises(kg.BackendUnavailableError) as info:
        kg.function([x], x + 1, target="cuda")
    text = str(info.value)
    assert "neither PyCUDA nor NVIDIA's cuda-python is installed" in text and "libcuda" in text
    assert "source('cuda')" in text
    # the source still renders
    assert "__global__" in kg.kernel("k", [x], x + 1).source("cuda")
    # only the GPU missing
    monkeypatch.setattr(rt.importlib.util, "find_spec", lambda name: object())
    with pytest.raises(kg.BackendUnavailableError) as info:
        kg.function([x], x + 1, target="cuda")
    assert "PyCUDA" not in str(info.value) and "libcuda" in str(info.value)


def test_this_machine_reports_its_own_reasons():
    if rt._DRIVER is not None:
        pytest.skip("a GPU is in use in this process")
    reasons = rt.missing()
    if not reasons:
        pytest.skip("PyCUDA and a GPU are present: tests/gpu covers this machine")
    with pytest.raises(kg.BackendUnavailableError, match="cannot run here"):
        kg.function([kg.vector("x")], 1.0, target="cuda")


def test_old_gpu_is_refused_before_building():
    class Old(rt.PyCudaDriver):
        def __init__(self):
            self.name, self.capability = "Old GPU", (7, 0)
    with pytest.raises(kg.BackendUnavailableError, match="compute capability 7.0"):
        Old().check_targets(("compute_80", "sm_80", "sm_90"))
    Old().check_targets(("compute_70", "sm_80"))


# ---- end to end on the CPU emulator -----------------------------------------------------
@pytest.fixture
def emu(monkeypatch):
    return _cuda_emu.emulate(monkeypatch)


def both(inputs, outputs, updates=None):
    """(C function, CUDA function) of the same kernel."""
    return (kg.function(inputs, outputs, updates=updates),
            kg.function(inputs, outputs, updates=updates, target="cuda"))


def assert_same(want, got, rtol=1e-12, atol=0.0, label=""):
    want = want if isinstance(want, list) else [want]
    got = got if isinstance(got, list) else [got]
    assert len(want) == len(got)
    for k, (w, g) in enumerate(zip(want, got)):
        w, g = np.asarray(w), np.asarray(g)
        assert w.dtype == g.dtype and w.shape == g.shape, (label, k, w.dtype, g.dtype, w.shape,
                                                           g.shape)
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True,
                                       err_msg=f"{label} output {k}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"{label} output {k}")


def _group(specs, dtype, shapes):
    """Inputs shared by every spec that builds on `shapes`, and their outputs."""
    xs = [kg.tensor.tensor(f"x{i}", dt, shape=(None,) * len(s))
          for i, (dt, s) in enumerate(zip([dtype] * len(shapes), shapes))]
    outs, names = [], []
    for s in specs:
        if dtype not in s.dtypes or s.arity != len(shapes) or s.arg_dtypes or s.static_only:
            continue
        try:
            outs.append(s.build(*xs))
        except (TypeError, ValueError):
            continue
        names.append(s.name)
    return xs, outs, names


ELEMENTWISE = [s for s in op_table.SPECS if s.kind == "elementwise"]


@needs_gxx
@pytest.mark.parametrize("dtype,arity,shapes", [
    ("float32", 1, [(3, 4)]),
    ("float64", 2, [(3, 1), (1, 4)]),
    ("int64", 2, [(2, 3), (3,)]),
    ("bool", 2, [(4,), (4,)]),
    ("float64", 3, [(2, 1, 3), (4, 1), ()]),
])
def test_elementwise_ops_match_c(emu, dtype, arity, shapes):
    xs, outs, names = _group(ELEMENTWISE, dtype, shapes)
    if arity == 3:  # where's condition is bool: not in the group
        outs.append(kg.where(xs[0] > 0.5, xs[1], xs[2]))
    assert len(outs) >= 2
    rng = np.random.default_rng(len(names))
    fc, fg = both(xs, outs)
    if dtype == "bool":
        args = [rng.random(s) < 0.5 for s in shapes]
    elif dtype.startswith("int"):  # positive: a valid divisor, exponent and index alike
        args = [rng.integers(1, 4, size=s).astype(dtype) for s in shapes]
    else:  # inside every op's domain (log, arcsin, sqrt...)
        args = [rng.uniform(0.1, 0.9, size=s).astype(dtype) for s in shapes]
    assert_same(fc(*args), fg(*args), rtol=1e-6 if dtype == "float32" else 1e-12,
                label=f"{dtype}: {names}")
    assert all(name.endswith("map") for name, _, _ in emu.launches)


REDUCE_SPECS = [s for s in op_table.SPECS if s.kind in ("reduce", "nnet") and s.arity == 1]


@needs_gxx
@pytest.mark.parametrize("dtype,shape", [("float64", (2, 3, 4)), ("int32", (3, 4, 5))])
def test_reductions_match_c(emu, dtype, shape):
    xs, outs, names = _group(REDUCE_SPECS, dtype, [shape])
    assert len(outs) > 10
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) if dtype == "float64" else rng.integers(-3, 4, size=shape)
    x = x.astype(dtype)
    if dtype == "float64":
        x[0, 1, 2] = x[1, 2, 3] = x.max()  # a tie: argmax takes the first
    fc, fg = both(xs, outs)
    assert_same(fc(x), fg(x), rtol=1e-12, atol=1e-15, label=str(names))


@needs_gxx
def test_long_reductions_split_and_stay_deterministic(emu):
    v, M = kg.vector("v"), kg.matrix("M")
    outs = [v.sum(), v.max(), v.argmin(), (v * v).mean(),
            M.sum(axis=0), M.max(axis=0), M.argmax(axis=0),   # strided rows, split
            M.T.sum(axis=1), kg.logsumexp(M.T, axis=1)]          # the same, as rows
    fc, fg = both([v, M], outs)
    rng = np.random.default_rng(2)
    a = rng.standard_normal(3 * CHUNK_MIN + 17)
    a[[5, 9000]] = a.min() - 1.0  # two equal minima: the first wins across chunks
    m = rng.standard_normal((2 * CHUNK_MIN + 3, 3))
    m[[100, 7000], 1] = 10.0
    got = fg(a, m)
    assert_same(fc(a, m), got, rtol=1e-12, atol=1e-12)
    assert got[2] == 5 and got[6][1] == 100
    roles = [name.rsplit("_", 1)[1] for name, _, _ in emu.launches]
    assert roles.count("final") >= 4  # the long rows were split
    again = fg(a, m)
    for g, h in zip(got, again):  # bit for bit
        assert np.array_equal(g, h)
    # NaN wins argmax/max as in NumPy, wherever it is
    a[12000] = np.nan
    got = fg(a, m)
    assert_same(fc(a, m), got)
    assert np.isnan(got[1]) and got[2] == 12000


@needs_gxx
def test_gemm_shapes_transposes_and_batches(emu):
    A, B = kg.matrix("A"), kg.matrix("B")
    v = kg.vector("v")
    C, D = kg.tensor3("C"), kg.tensor3("D")
    outs = [A @ B, A @ v, v @ B, A.T @ A, (A @ B).T @ A, C @ B, C @ D, kg.outer(v, v),
            v @ v, kg.dot(A[::2, 1:], B[1:, ::-1])]
    fc, fg = both([A, B, v, C, D], outs)
    rng = np.random.default_rng(3)
    args = [rng.standard_normal(s) for s in [(70, 37), (37, 65), (37,), (2, 5, 37), (2, 37, 3)]]
    assert_same(fc(*args), fg(*args), rtol=1e-12, atol=1e-12)
    # K = 0 writes zeros; empty outputs launch nothing
    args = [np.zeros((4, 0)), np.zeros((0, 3)), np.zeros(0), np.zeros((2, 5, 0)), np.zeros((2, 0, 3))]
    assert_same(fc(*args), fg(*args))


@needs_gxx
def test_int_matmul(emu):
    A, B = kg.imatrix("A"), kg.imatrix("B")
    fc, fg = both([A, B], [A @ B, A.T @ A, A[0] @ B])
    a = np.arange(-30, 40, dtype="int32").reshape(10, 7)
    b = np.arange(70, dtype="int32").reshape(7, 10)
    assert_same(fc(a, b), fg(a, b))


@needs_gxx
def test_views_concatenate_and_copies(emu):
    x = kg.tensor3("x")
    y = kg.matrix("y")
    outs = [x[:, ::-1, 1:], x.dimshuffle(2, "x", 0, 1) * 1.5, kg.concatenate([x[0], y], axis=0),
            kg.stack([y, y * 2], axis=-1), x.reshape((x.shape[0], -1)), x[1, 2, :] + y[0],
            kg.transpose(x, (1, 0, 2)).reshape((-1,)), kg.arange(x.shape[1]) * y[0, 0],
            kg.zeros_like(y) + 3, x.flatten()[::3]]
    fc, fg = both([x, y], outs)
    rng = np.random.default_rng(4)
    args = [rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4))]
    assert_same(fc(*args), fg(*args))


@needs_gxx
def test_gather_scatter_and_index_errors(emu):
    p = kg.matrix("p")
    y = kg.lvector("y")
    W = kg.shared(np.ones((4, 3)), name="W")
    nll = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
    g = kg.grad(nll + (W * W).sum(), [p, W])
    outs = [nll, g[0], p[y], W[y, 1:] * 2]
    fc, fg = both([p, y], outs, updates=[(W, W - 0.5 * g[1])])
    rng = np.random.default_rng(5)
    pv = rng.uniform(0.1, 1.0, (4, 3))
    yv = np.array([2, -1, 0, 2])  # negative indices wrap, repeated ones accumulate
    W0 = W.get_value()
    want = fc(pv, yv)
    w_c = W.get_value()
    W.set_value(W0)
    assert_same(want, fg(pv, yv))
    np.testing.assert_allclose(W.get_value(), w_c)
    # an index out of range: an IndexError naming it, and no update
    W.set_value(W0)
    before = len(emu.launches)
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 1 with size 3"):
        fg(pv, np.array([0, 3, 1, 1]))
    assert len(emu.launches) > before  # found on the device, after the launches
    np.testing.assert_array_equal(W.get_value(), W0)
    with pytest.raises(IndexError):
        fc(pv, np.array([0, 3, 1, 1]))


@needs_gxx
def test_scatter_add_primitive(emu):
    from kgen.expr.op import REGISTRY
    x, g = kg.matrix("x"), kg.matrix("g")
    i = kg.lvector("i")
    fc, fg = both([x, g, i], REGISTRY["scatter_add"](x, g, i))
    rng = np.random.default_rng(6)
    args = [rng.standard_normal((5, 3)), rng.standard_normal((6, 3)), np.array([0, 4, -1, 0, 2, 0])]
    assert_same(fc(*args), fg(*args))


# ---- training: shared variables on the device ----------------------------------------------
def _seed_model(rng):
    x, y = kg.vector("x"), kg.vector("y")
    W = kg.shared(rng.standard_normal((10, 10)), name="W")
    b = kg.shared(rng.standard_normal(10), name="b")
    cost = kg.mean(kg.square(kg.dot(W, x) + b - y))
    dW, db = kg.grad(cost, [W, b])
    return [x, y], cost, [(W, W - 0.1 * dW), (b, b - 0.1 * db)], (W, b)


@needs_gxx
def test_seed_training_loop_matches_c(emu):
    rng = np.random.default_rng(7)
    inputs, cost, updates, (W, b) = _seed_model(rng)
    W0, b0 = W.get_value(), b.get_value()
    data = [(rng.standard_normal(10), rng.standard_normal(10)) for _ in range(20)]
    train_c = kg.function(inputs, cost, updates=updates)
    costs_c = [float(train_c(xv, yv)) for xv, yv in data]
    Wc, bc = W.get_value(), b.get_value()
    W.set_value(W0)
    b.set_value(b0)
    train_g = kg.function(inputs, cost, updates=updates, target="cuda")
    uploads = emu.uploads
    costs_g = [float(train_g(xv, yv)) for xv, yv in data]
    # W and b were uploaded once, then stayed on the device (only x and y travel)
    assert emu.uploads - uploads == 2 + 2 * len(data)
    assert isinstance(W._device, rt.DeviceValue) and W._device.device_newer
    np.testing.assert_allclose(costs_g, costs_c, rtol=1e-10)
    np.testing.assert_allclose(W.get_value(), Wc, rtol=1e-10)
    np.testing.assert_allclose(b.get_value(), bc, rtol=1e-10)
    assert costs_g[-1] < costs_g[0]


@needs_gxx
def test_mlp_step_matches_c(emu):
    rng = np.random.default_rng(8)
    X, y = kg.fmatrix("X"), kg.ivector("y")
    params = [kg.shared((rng.standard_normal(s) * 0.1).astype("float32"), name=n)
              for n, s in [("W1", (20, 16)), ("b1", (16,)), ("W2", (16, 10)), ("b2", (10,))]]
    W1, b1, W2, b2 = params
    p = kg.softmax(kg.tanh(X @ W1 + b1) @ W2 + b2)
    cost = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
    grads = kg.grad(cost, params)
    updates = [(q, q - np.float32(0.1) * g) for q, g in zip(params, grads)]
    init = [q.get_value() for q in params]
    fc, fg = both([X, y], [cost, p.argmax(axis=1)], updates=updates)
    Xv = rng.standard_normal((32, 20)).astype("float32")
    yv = rng.integers(0, 10, 32).astype("int32")
    want = [fc(Xv, yv) for _ in range(3)]
    after_c = [q.get_value() for q in params]
    for q, v in zip(params, init):
        q.set_value(v)
    got = [fg(Xv, yv) for _ in range(3)]
    for w, g in zip(want, got):
        assert_same(w, g, rtol=1e-5, atol=1e-6)
    for q, v in zip(params, after_c):
        np.testing.assert_allclose(q.get_value(), v, rtol=1e-4, atol=1e-6)


@needs_gxx
def test_shared_values_move_between_host_and_device(emu):
    s = kg.shared(np.arange(3.0), name="s")
    x = kg.vector("x")
    step_g = kg.function([x], s.sum(), updates=[(s, s + x)], target="cuda")
    step_c = kg.function([x], s.sum(), updates=[(s, s * 10)])
    assert step_g(np.ones(3)) == 3.0            # uploads s, updates it on the device
    assert step_c(np.ones(3)) == 6.0            # the C backend reads the device value
    np.testing.assert_array_equal(s.get_value(), [10.0, 20.0, 30.0])
    assert step_g(np.ones(3)) == 60.0           # the host value (newer) is uploaded
    s.set_value(np.array([1, 2, 3]))            # int64 -> float64: a safe cast
    assert step_g(np.zeros(3)) == 6.0
    s.set_value(np.zeros(5))                    # the shape may change
    assert step_g(np.ones(5)) == 0.0
    np.testing.assert_array_equal(s.get_value(), np.ones(5))
    v = s.get_value()
    v[0] = 99.0                                 # get_value is a copy
    assert s.get_value()[0] == 1.0


@needs_gxx
def test_device_array_inputs_and_outputs(emu):
    x, y = kg.vector("x"), kg.fvector("y")
    f = kg.function([x, y], [x * 2, y.sum()], target="cuda")
    a = np.arange(4.0)
    dev = emu.upload(a)
    n = emu.uploads
    out = f(dev, np.ones(4, "float32"))
    assert emu.uploads == n + 1   # only y was uploaded
    np.testing.assert_array_equal(out[0], a * 2)
    # a safe cast happens (through the host); an unsafe one is refused
    out = f(emu.upload(np.arange(4, dtype="int32")), emu.upload(np.ones(4, "float32")))
    np.testing.assert_array_equal(out[0], a * 2)
    with pytest.raises(TypeError, match="expected dtype float32"):
        f(dev, emu.upload(np.ones(4)))
    with pytest.raises(TypeError, match="expected a 1-d array"):
        f(emu.upload(np.ones((2, 2))), np.ones(4, "float32"))
    # a strided device view is made contiguous
    view = _cuda_emu.EmuArray(np.arange(8.0)[::2])
    np.testing.assert_array_equal(f(view, np.ones(4, "float32"))[0], a * 4)
    # outputs can stay on the device
    f.device_outputs = True
    out = f(dev, np.ones(4, "float32"))
    assert emu.is_device_array(out[0]) and np.array_equal(out[0].get(), a * 2)
    # static shapes are checked like NumPy inputs
    z = kg.tensor.tensor("z", shape=(3,))
    g = kg.function([z], z + 1, target="cuda")
    with pytest.raises(ValueError, match=r"expected shape \(3,\)"):
        g(emu.upload(np.ones(4)))


@needs_gxx
def test_errors_before_launch_and_driver_errors(emu):
    x, y = kg.vector("x"), kg.vector("y")
    s = kg.shared(np.zeros(3), name="s")
    f = kg.function([x, y], (x + y).sum(), updates=[(s, s + 1)], target="cuda")
    before = len(emu.launches)
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        f(np.ones(3), np.ones(4))
    assert len(emu.launches) == before  # nothing was launched
    with pytest.raises(TypeError):
        f(np.ones(3))
    # a driver error becomes a kgen error, and no update is kept
    emu.fail_next_launch = _cuda_emu.EmuError("an illegal memory access was encountered")
    with pytest.raises(rt.CudaError, match="illegal memory access"):
        f(np.ones(3), np.ones(3))
    np.testing.assert_array_equal(s.get_value(), np.zeros(3))
    assert f(np.ones(3), np.ones(3)) == 6.0
    np.testing.assert_array_equal(s.get_value(), np.ones(3))
    assert isinstance(rt.CudaError("x"), kg.KgenError)


@needs_gxx
def test_zero_size_and_scalar_inputs(emu):
    x, c = kg.matrix("x"), kg.scalar("c")
    fc, fg = both([x, c], [x * c, x.sum(axis=1), x.sum(), c * 2])
    for shape in [(0, 3), (3, 0), (1, 1)]:
        args = [np.ones(shape), 2.5]
        assert_same(fc(*args), fg(*args))


def test_err_record_words():
    assert ERR_WORDS == 5  # kg_cuda.h writes flag, step, axis, index, size


@needs_gxx
@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("KGEN_EMULATE_ALL_OPS"),
                    reason="minutes on the CPU emulator; set KGEN_EMULATE_ALL_OPS=1 to run "
                           "(tests/gpu runs the same cases on a GPU)")
def test_every_op_table_case_on_the_emulator(emu):
    """tests/gpu/test_gpu_ops.py's batches - every op, dtype and shape of the op
    table, CUDA against C and NumPy - with the emulator standing in for the GPU."""
    path = Path(__file__).resolve().parent / "gpu" / "test_gpu_ops.py"
    spec = importlib.util.spec_from_file_location("_gpu_ops_on_emulator", path)
    gpu_ops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_ops)
    for b in range(len(gpu_ops.BATCHES)):
        kernels = {b: gpu_ops._kernel(b)}
        gpu_ops.test_ops_on_gpu_match_c_and_numpy(kernels, b)


@needs_gxx
def test_scans_sorts_and_specify_shape_match_c(emu):
    x, i = kg.dmatrix("x"), kg.ivector("i")
    outs = [kg.cumsum(x, axis=1), kg.cumprod(x.T, axis=0), kg.cumsum(i), kg.sort(x),
            kg.argsort(x, axis=0), kg.sort(x, axis=None), kg.argsort(i),
            kg.specify_shape(x, (3, None)) * 2]
    c_fn, cuda_fn = both([x, i], outs)
    value = np.random.default_rng(5).uniform(-1, 1, (3, 4))
    value[1, 2], value[0, :2] = np.nan, 0.5
    ints = np.array([3, 1, 3, 2, 1], "int32")
    for a, b in zip(c_fn(value, ints), cuda_fn(value, ints)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(kg.ShapeError, match="specify_shape"):
        cuda_fn(np.ones((2, 4)), ints)
