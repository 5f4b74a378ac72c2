"""Theano's function keywords (issue 11, item 6): In, allow_input_downcast,
on_unused_input, mode (FAST_RUN, FAST_COMPILE, DebugMode), profile, copy,
no_default_updates; and the config flags Theano programs set.

Oracles: NumPy in the test, and Theano's documented behaviour (its tutorial's
`In` and `copy` examples give the numbers below).
"""
import io
import pickle
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import kgen as theano
import kgen as kg
import kgen.tensor as T
from kgen.expr.op import REGISTRY


@pytest.fixture
def float32():
    old = kg.config.floatX
    kg.config.floatX = "float32"
    yield
    kg.config.floatX = old


# ---- In -------------------------------------------------------------------------------
def test_in_defaults_and_names_as_in_theanos_tutorial():
    # Theano's tutorial: z = (x + y) * w with defaults y=1, w=2 (named w_by_name)
    x, y, w = T.dscalars("x", "y", "w")
    z = (x + y) * w
    f = theano.function([x, theano.In(y, value=1), theano.In(w, value=2, name="w_by_name")], z)
    assert f(33) == 68.0
    assert f(33, 2) == 70.0
    assert f(33, 0, 1) == 33.0
    assert f(33, w_by_name=1) == 34.0
    assert f(33, w_by_name=1, y=0) == 33.0


def test_in_errors_name_the_problem():
    x, y = T.dscalars("x", "y")
    f = kg.function([x, kg.In(y, value=1.0)], x * y)
    with pytest.raises(TypeError, match=r"missing inputs \['x'\]"):
        f(y=2.0)
    with pytest.raises(TypeError, match="two values for 'x'"):
        f(1.0, x=2.0)
    with pytest.raises(TypeError, match="unexpected argument 'z'"):
        f(1.0, z=2.0)
    with pytest.raises(TypeError, match="takes 2 argument"):
        f(1.0, 2.0, 3.0)
    with pytest.raises(TypeError, match="default must be a value"):
        kg.function([kg.In(x, value=y)], x)
    with pytest.raises(TypeError, match="does not fit|expected int32"):
        kg.function([kg.In(T.iscalar("i"), value=0.5)], x)
    with pytest.raises(TypeError, match="name='x'.* another input too"):
        kg.function([x, kg.In(y, name="x")], x + y)
    with pytest.raises(TypeError, match="symbolic input"):
        kg.In(kg.shared(1.0))


def test_in_strict_and_per_input_downcast():
    x = T.dvector("x")
    f = kg.function([kg.In(x, strict=True)], x * 2)
    np.testing.assert_array_equal(f(np.ones(2)), [2.0, 2.0])
    with pytest.raises(TypeError, match="strict=True"):
        f(np.ones(2, "float32"))
    v = T.fvector("v")
    g = kg.function([kg.In(v, allow_downcast=True)], v + 1)
    assert g(np.array([0.5, 1.0])).dtype == np.float32


# ---- allow_input_downcast --------------------------------------------------------------
def test_allow_input_downcast_with_float32_floatx_and_float64_data(float32):
    X, y = T.matrix("X"), T.vector("y")
    w = kg.shared(np.zeros(3, "float32"), "w")
    err = T.dot(X, w) - y
    cost = (err ** 2).mean()
    step = kg.function([X, y], cost, updates=[(w, w - 0.1 * T.grad(cost, w))],
                       allow_input_downcast=True)
    rng = np.random.default_rng(0)
    Xd, yd = rng.standard_normal((8, 3)), rng.standard_normal(8)  # float64, as NumPy makes
    c = step(Xd, yd)
    assert c.dtype == np.float32
    X32, y32 = Xd.astype("float32"), yd.astype("float32")
    np.testing.assert_allclose(c, np.mean(y32 ** 2), rtol=1e-6)
    want_w = -0.1 * (2 / 8) * X32.T @ (-y32)
    np.testing.assert_allclose(w.get_value(), want_w, rtol=1e-5)
    # Python lists and scalars are cast too; ints into an int input are truncated
    i = T.iscalar("i")
    assert kg.function([i], i * 2, allow_input_downcast=True)(3.7) == 6
    # without it, the safe rule holds (and a failed call changes nothing)
    strict_step = kg.function([X, y], cost, updates=[(w, w * 0)])
    with pytest.raises(TypeError, match="float64"):
        strict_step(Xd, yd)
    np.testing.assert_allclose(w.get_value(), want_w, rtol=1e-5)


# ---- on_unused_input -------------------------------------------------------------------
def test_on_unused_input():
    x, y = T.dvectors("x", "y")
    with pytest.raises(kg.UnusedInputError, match=r"input 1 \('y'\).*on_unused_input='warn'"):
        kg.function([x, y], x * 2, on_unused_input="raise")
    with pytest.warns(UserWarning, match="no output or update uses"):
        f = kg.function([x, y], x * 2, on_unused_input="warn")
    np.testing.assert_array_equal(f(np.ones(2), np.zeros(5)), [2.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kg.function([x, y], x * 2, on_unused_input="ignore")
        kg.function([x, y], x * 2)  # kgen's default: accepted (API.md)
    # an input used only by an update counts as used
    s = kg.shared(np.zeros(2), "s")
    kg.function([x, y], x.sum(), updates={s: y}, on_unused_input="raise")
    # used before simplification is used (x - x simplifies to 0): Theano checks the graph
    kg.function([x, y], x + (y - y), on_unused_input="raise")
    with pytest.raises(ValueError, match="on_unused_input must be"):
        kg.function([x], x, on_unused_input="loud")


def test_config_on_unused_input_is_the_default():
    x, y = T.dvectors("x", "y")
    kg.config.on_unused_input = "raise"
    try:
        with pytest.raises(kg.UnusedInputError):
            kg.function([x, y], x)
        kg.function([x, y], x, on_unused_input="ignore")
    finally:
        kg.config.on_unused_input = None
    with pytest.raises(ValueError, match="on_unused_input"):
        kg.config.on_unused_input = "sometimes"


# ---- mode ------------------------------------------------------------------------------
def test_modes_fast_run_and_fast_compile():
    x = T.dvector("x")
    e = T.log(1 + T.exp(x)) * 1 + 0
    a = np.array([-1.0, 0.0, 2.0])
    fast = kg.function([x], e, mode="FAST_RUN")
    unopt = kg.function([x], e, mode="FAST_COMPILE")
    none = kg.function([x], e, mode=kg.Mode(optimizer=None))
    for f in (fast, unopt, none):
        np.testing.assert_allclose(f(a), np.log1p(np.exp(a)), rtol=1e-14)
    # FAST_COMPILE builds the graph as written
    assert unopt.source() == unopt.kernel.source("c", optimize=False) == none.source()
    assert fast.source() == fast.kernel.source("c") != unopt.source()
    with pytest.raises(TypeError, match="mode='SLOW' is not known"):
        kg.function([x], x, mode="SLOW")


def test_config_mode_and_optimizer_set_the_default():
    x = T.dvector("x")
    e = T.log(1 + x)
    unoptimized = kg.function([x], e, optimize=False).source()
    kg.config.mode = "FAST_COMPILE"
    try:
        assert kg.function([x], e).source() == unoptimized
    finally:
        kg.config.mode = "FAST_RUN"
    kg.config.optimizer = "None"
    try:
        assert kg.function([x], e).source() == unoptimized
    finally:
        kg.config.optimizer = "fast_run"
    assert kg.function([x], e).source() != unoptimized
    with pytest.raises(TypeError, match="not known"):
        kg.config.mode = "TURBO"


# ---- DebugMode -------------------------------------------------------------------------
def _sgd(mode):
    x = T.dvector("x")
    w = kg.shared(np.ones(3), "w")
    cost = (T.sin(x * w) ** 2).sum()
    return x, w, kg.function([x], cost, updates=[(w, w - 0.1 * T.grad(cost, w))], mode=mode)


def test_debugmode_passes_a_correct_function():
    a = np.array([0.0, 1.0, 2.0])
    for mode in ("DebugMode", "DEBUG_MODE"):
        _, w, f = _sgd(mode)
        assert np.isclose(f(a), np.sum(np.sin(a) ** 2), rtol=1e-14)
        # d/dw sum(sin(a w)^2) = 2 sin(a w) cos(a w) a, at w = 1
        np.testing.assert_allclose(w.get_value(), 1 - 0.1 * 2 * np.sin(a) * np.cos(a) * a,
                                   rtol=1e-14)
        f(a)  # a second call checks again


def test_debugmode_names_the_first_wrong_node(monkeypatch):
    # a deliberately wrong C expression for sin: both the probe and the real kernel
    # compute cos, and DebugMode names the sin node, not its users downstream
    monkeypatch.setattr(REGISTRY["sin"], "c", "cos{f}({0})")
    _, w, f = _sgd("DebugMode")
    a = np.array([0.0, 1.0, 2.0])
    with pytest.raises(kg.DebugModeError, match=r"node \d+ of \d+.*op sin: sin\(w \* x\)") as e:
        f(a)
    assert "compiled 1.0, reference 0.0" in str(e.value)  # cos(0) against sin(0)
    np.testing.assert_array_equal(w.get_value(), np.ones(3))  # nothing was written
    # the same build without DebugMode returns the wrong number silently
    _, _, plain = _sgd("FAST_RUN")
    assert np.isclose(plain(a), np.sum(np.cos(a) ** 2))


def test_debugmode_checks_the_real_kernels_results(monkeypatch):
    _, w, f = _sgd("DebugMode")
    inner = f._f
    good = inner._compute

    def off_by_one(arrays):
        outs = good(arrays)
        return [outs[0] + 1] + outs[1:]
    monkeypatch.setattr(inner, "_compute", off_by_one)
    with pytest.raises(kg.DebugModeError, match="output 0 .*differs"):
        f(np.ones(3))
    np.testing.assert_array_equal(w.get_value(), np.ones(3))  # the update was undone


def test_debugmode_tolerates_stability_rewrites():
    # log(1 + exp(x)) overflows to inf in the graph as written; kgen's softplus is finite
    x = T.dvector("x")
    f = kg.function([x], T.log(1 + T.exp(x)), mode="DebugMode")
    np.testing.assert_allclose(f(np.array([1000.0, 0.0])), [1000.0, np.log(2.0)])


# ---- profile ---------------------------------------------------------------------------
def test_profile_reports_the_phases():
    x = T.dvector("x")
    f = kg.function([x], T.exp(x).sum(), profile=True, name="profiled")
    a = np.arange(5.0)
    for _ in range(3):
        assert np.isclose(f(a), np.exp(a).sum())
    f(np.arange(2.0))
    p = f.profile
    assert p.calls == 4 and p.shape_runs == 2  # one per distinct input shape
    assert p.total > 0 and all(p.seconds[k] > 0 for k in p.PHASES)
    assert sum(p.seconds.values()) <= p.total
    out = io.StringIO()
    p.summary(file=out)
    text = out.getvalue()
    for word in ("profiled", "4 call(s)", "argument checks", "shape phase", "kernel"):
        assert word in text
    assert kg.function([x], x).profile is None  # as Theano's unprofiled functions


def test_profile_times_each_kernel_step():
    X = T.dmatrix("X")
    w = kg.shared(np.zeros(4), "w")
    cost = ((T.nnet.sigmoid(T.dot(X, w)) - 1) ** 2).mean()
    f = kg.function([X], cost, updates=[(w, w - 0.1 * T.grad(cost, w))], profile=True)
    plain = kg.function([X], cost)
    a = np.random.default_rng(1).random((300, 4))
    want = plain(a)
    assert np.isclose(f(a), want, rtol=1e-14)  # the timed build computes the same
    f(a)
    p = f.profile
    steps = p.step_seconds()
    assert len(steps) == len(p.steps) >= 3 and all(t >= 0 for t in steps)
    assert any(label.startswith("gemm: X @ w") for label in p.steps)
    assert 0 < sum(steps) <= p.seconds["kernel"]  # the steps run inside the kernel call
    out = io.StringIO()
    p.summary(file=out)
    assert "kernel steps:" in out.getvalue() and "gemm: X @ w" in out.getvalue()
    # the timers are in the profiled build only; the default build is unchanged
    assert "_step_seconds" in f.source() and "_step_seconds" not in plain.source()


# ---- copy ------------------------------------------------------------------------------
def test_copy_as_in_theanos_tutorial():
    state = kg.shared(0, "state")
    inc = T.iscalar("inc")
    accumulator = kg.function([inc], state, updates=[(state, state + inc)])
    accumulator(10)
    assert state.get_value() == 10
    new_state = kg.shared(0, "new_state")
    new_accumulator = accumulator.copy(swap={state: new_state})
    new_accumulator(100)
    assert new_state.get_value() == 100 and state.get_value() == 10
    null_accumulator = accumulator.copy(delete_updates=True)
    assert null_accumulator(9000) == 10 and state.get_value() == 10
    same = accumulator.copy(share_memory=True)
    same(1)
    assert state.get_value() == 11  # shared variables are shared by copies
    with pytest.raises(TypeError, match="types differ"):
        accumulator.copy(swap={state: kg.shared(np.zeros(2), "v")})


def test_copy_keeps_in_defaults_and_mode():
    x, y = T.dscalars("x", "y")
    f = kg.function([x, kg.In(y, value=3.0)], x * y, mode="DebugMode")
    g = f.copy(name="g")
    assert g(2.0) == 6.0 and g.__name__ == "g"
    assert isinstance(g, type(f))
    h = pickle.loads(pickle.dumps(f))  # unpickled, still DebugMode with its default
    assert isinstance(h, type(f)) and h(4.0) == 12.0


# ---- everything else -------------------------------------------------------------------
def test_updates_as_ordered_dict_and_pairs():
    a, b = kg.shared(np.array(1.0), "a"), kg.shared(np.array(2.0), "b")
    kg.function([], [], updates=OrderedDict([(a, a + b), (b, a * b)]))()
    assert a.get_value() == 3.0 and b.get_value() == 2.0
    kg.function([], [], updates=[[a, a - 1]])()
    assert a.get_value() == 2.0


def test_no_default_updates_is_accepted_and_stored():
    x = T.dvector("x")
    f = kg.function([x], x, no_default_updates=True)
    assert f.no_default_updates is True and f.kernel.no_default_updates is True
    assert kg.function([x], x).no_default_updates is False


def test_pickled_function_keeps_in_and_downcast(float32):
    x, y = T.vectors("x", "y")
    f = kg.function([x, kg.In(y, value=np.ones(2, "float32"), name="b")], x + y,
                    allow_input_downcast=True)
    g = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(g(np.zeros(2)), [1.0, 1.0])
    np.testing.assert_array_equal(g(np.zeros(2), b=np.full(2, 2.0)), [2.0, 2.0])


def test_config_flags_programs_set_are_accepted():
    cfg = theano.config
    cfg.warn.sum_div_dimshuffle_bug = False
    cfg.warn.anything_at_all = True
    assert cfg.warn.sum_div_dimshuffle_bug is False and cfg.warn.never_set is False
    for flag, value in (("warn_float64", "warn"), ("exception_verbosity", "high"),
                        ("compute_test_value", "off"), ("device", "cpu"), ("allow_gc", False),
                        ("openmp", True), ("cxx", "")):
        old = getattr(cfg, flag, None)
        setattr(cfg, flag, value)
        assert getattr(cfg, flag) == value
        setattr(cfg, flag, old)
    assert T.config is kg.config


def test_theano_compile_names():
    from kgen.compile.io import In
    assert In is kg.In and theano.compile.io.In is kg.In and theano.compile.mode.Mode is kg.Mode
    assert theano.compile.function is kg.function
    assert theano.compile.mode.get_mode("FAST_COMPILE") == "FAST_COMPILE"
    with pytest.raises(TypeError, match="not known"):
        theano.compile.mode.get_mode("NOPE")
