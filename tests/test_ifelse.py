"""theano.ifelse.ifelse is lazy: only the branch taken is computed, in the
NumPy evaluator and in compiled kernels; gradients go to the taken branch.
Oracles: NumPy written here and central finite differences (_gradcheck)."""
from pathlib import Path

import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T
from kgen.ifelse import ifelse

from _gradcheck import numeric_grad


@pytest.fixture(scope="module")
def indexed():
    """ifelse(i < len(x), 2 * x[i] + sum(x), -1): x[i] is out of range when not taken."""
    x, i = T.dvector("x"), T.lscalar("i")
    out = ifelse(T.lt(i, x.shape[0]), 2 * x[i] + x.sum(), T.constant(-1.0))
    return x, i, out, kg.function([x, i], out)


def test_values_of_both_branches(indexed):
    x, i, out, f = indexed
    xv = np.array([1.0, 2.0, 5.0])
    assert f(xv, 2) == 2 * xv[2] + xv.sum()
    assert f(xv, -1) == 2 * xv[-1] + xv.sum()
    assert f(xv, 3) == -1.0                      # x[3] is never computed
    assert out.eval({x: xv, i: 7}) == -1.0       # nor by the reference evaluator


def test_untaken_index_error_is_lazy_but_taken_one_raises():
    x, i = T.dvector("x"), T.lscalar("i")
    out = ifelse(T.gt(i, 100), T.constant(0.0), x[i])       # x[i] taken when i <= 100
    f = kg.function([x, i], out)
    assert f(np.arange(3.0), 500) == 0.0
    with pytest.raises(IndexError):
        f(np.arange(3.0), 5)
    with pytest.raises((IndexError, ValueError)):
        out.eval({x: np.arange(3.0), i: 5})
    # a constant index past the end, and a gather with integer indices
    idx = T.lvector("idx")
    g = ifelse(T.lt(idx.max(), x.shape[0]), x[idx].sum() + x[4], T.constant(0.0))
    fg = kg.function([x, idx], g)
    xv = np.arange(6.0)
    assert fg(xv, np.array([1, 2])) == xv[[1, 2]].sum() + xv[4]
    assert fg(xv[:3], np.array([0, 9])) == 0.0
    with pytest.raises(IndexError):
        kg.function([x, idx], ifelse(T.lt(idx.max(), 100), x[idx].sum(), T.constant(0.0)))(
            xv[:3], np.array([0, 9]))


def test_list_branches_share_one_branch_step():
    a, x, y = T.dscalar("a"), T.dmatrix("x"), T.dmatrix("y")
    s = T.exp(x) * 2  # used by both then-values: computed once, in the branch
    p, q = ifelse(T.gt(a, 0), [s + 1, s.sum(axis=0)], [y * a, y[0]])
    f = kg.function([a, x, y], [p, q])
    xv, yv = np.arange(6.0).reshape(2, 3) / 5, np.ones((2, 3))
    for av in (1.5, -2.0):
        got = f(av, xv, yv)
        want = ([np.exp(xv) * 2 + 1, (np.exp(xv) * 2).sum(axis=0)] if av > 0
                else [yv * av, yv[0]])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w)
    assert f.source().count("only the branch taken runs") == 1


def test_condition_dtypes_and_nested():
    c, x = T.dscalar("c"), T.dvector("x")
    k = T.iscalar("k")
    inner = ifelse(k, x * 3, x - 1)
    out = ifelse(c, inner.sum(), x.max())
    f = kg.function([c, k, x], out)
    xv = np.array([0.5, -2.0, 4.0])
    for cv, kv in [(1.0, 1), (1.0, 0), (0.0, 1), (np.nan, 0)]:
        want = ((xv * 3) if kv else (xv - 1)).sum() if cv else xv.max()  # NaN is true
        assert f(cv, kv, xv) == pytest.approx(want)
        assert out.eval({c: cv, k: kv, x: xv}) == pytest.approx(want)


def test_gradient_goes_to_the_taken_branch_and_is_lazy():
    a, x, W = T.dscalar("a"), T.dvector("x"), T.dmatrix("W")
    i = T.lscalar("i")
    cost = ifelse(T.gt(a, 0), (T.tanh(T.dot(W, x)) ** 2).sum() * a + x[i],
                  (x * a).sum() + T.sqr(W).sum())
    gW, gx, ga = kg.grad(cost, [W, x, a])
    f = kg.function([a, x, W, i], [gW, gx, ga])
    rng = np.random.default_rng(0)
    vals = {x: rng.normal(size=3), W: rng.normal(size=(2, 3))}
    for av in (0.7, -0.4):
        for var, got in zip((W, x, a), f(av, vals[x], vals[W], 1)):
            vv = {**vals, a: np.array(av), i: np.array(1)}
            want = numeric_grad(lambda v: cost.eval(v), vv, var)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # the else-branch's gradient never reads x[i]: no index error with i out of range
    got = f(-0.4, vals[x], vals[W], 10)
    np.testing.assert_allclose(got[0], 2 * vals[W])
    with pytest.raises(IndexError):
        f(0.7, vals[x], vals[W], 10)


def test_second_derivative_through_ifelse():
    a, x = T.dscalar("a"), T.dvector("x")
    cost = ifelse(T.gt(a.sum(), 0), (T.sin(x) * a ** 3).sum(), (x ** 3).sum() * a)
    hx = kg.grad(kg.grad(cost, x).sum(), [x, a])
    f = kg.function([a, x], hx)
    xv = np.array([0.3, -1.2])
    for av in (1.3, -0.6):
        first = lambda v: kg.grad(cost, x).sum().eval(v)  # noqa: E731
        for var, got in zip((x, a), f(av, xv)):
            want = numeric_grad(first, {a: np.array(av), x: xv}, var)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_ifelse_inside_an_expression_with_shared_updates():
    w = kg.shared(np.array([1.0, 2.0]), name="w")
    steps = kg.shared(np.int64(0), name="steps")
    x = T.dvector("x")
    grow = T.lt(steps, 2)
    new_w = ifelse(grow, w * 2, w - x)
    f = kg.function([x], (new_w + 1).sum(), updates=[(w, new_w), (steps, steps + 1)])
    ref_w = np.array([1.0, 2.0])
    for k in range(4):
        xv = np.array([0.5, 0.25])
        ref_w = ref_w * 2 if k < 2 else ref_w - xv
        assert f(xv) == pytest.approx((ref_w + 1).sum())
        np.testing.assert_allclose(w.get_value(), ref_w)


def test_different_branch_shapes_are_a_shape_error_when_compiled():
    c, x, y = T.dscalar("c"), T.dvector("x"), T.dvector("y")
    f = kg.function([c, x, y], ifelse(c, x, y))
    np.testing.assert_array_equal(f(0.0, np.ones(2), np.zeros(2)), np.zeros(2))
    with pytest.raises(ValueError, match="same shape"):
        f(1.0, np.ones(2), np.zeros(3))


def test_bad_inputs_are_clear_type_errors():
    c, x, m = T.dscalar("c"), T.dvector("x"), T.dmatrix("m")
    with pytest.raises(TypeError, match="scalar"):
        ifelse(x, c, c)
    with pytest.raises(TypeError, match="two types"):
        ifelse(c, x, m)
    with pytest.raises(TypeError, match="two types"):
        ifelse(c, x, T.lvector("k"))
    with pytest.raises(TypeError, match="branches"):
        ifelse(c, [x, x], [x])


SPEC = '''
import kgen as kg
import kgen.tensor as T
from kgen.ifelse import ifelse

x, i = T.dvector("x"), T.lscalar("i")
w = kg.shared([1.0, 2.0, 3.0], name="w")
pick = kg.kernel("pick", [x, i], ifelse(T.lt(i, x.shape[0]), x[i] * w.sum(), T.constant(-1.0)))
'''


def test_package_carries_ifelse_and_its_c_is_warning_free(tmp_path, spec_package):
    import shutil
    import subprocess
    branchy = spec_package(SPEC, "branchy")
    pkg_dir = tmp_path / "out" / "branchy"
    xv = np.array([1.0, 4.0])
    assert branchy.pick(xv, 1) == 4.0 * 6.0
    assert branchy.pick(xv, 2) == -1.0               # x[2] not computed
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:  # the branch's repeated checks and quiet shape phase: no warning
        subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{pkg_dir}",
                        "-fsyntax-only", str(pkg_dir / "branchy.c")], check=True,
                       capture_output=True)


def _branchy_cuda_kernel():
    c, A, x, i = T.dscalar("c"), T.dmatrix("A"), T.dvector("x"), T.lscalar("i")
    p, q = ifelse(T.gt(c, 0), [T.dot(A, x) * 2, x[i]], [x + 1, x.sum()])
    return [c, A, x, i], [p, q]


def test_cuda_source_compiles_with_nvcc(tmp_path):
    from kgen.build import nvcc
    try:
        nvcc.find_nvcc()
    except kg.CompilerNotFoundError:
        pytest.skip("nvcc (the CUDA toolkit) not found")
    from kgen.codegen.cuda import render_host
    plan = kg.kernel("branchy", *_branchy_cuda_kernel()).plan()
    source = kg.kernel("branchy", *_branchy_cuda_kernel()).source("cuda")
    path = nvcc.compile_cuda(source, "branchy", tmp_path / "b", output="ptx", names=("sm_80",))
    assert ".visible .entry" in Path(path).read_text()
    assert "_then_checks(" in render_host([plan])  # the taken branch's checks, on the host


def test_cuda_emulator_runs_only_the_taken_branch(monkeypatch):
    import _cuda_emu
    if not _cuda_emu.have_compiler():
        pytest.skip("the CUDA emulator needs g++ (no GPU needed)")
    emu = _cuda_emu.emulate(monkeypatch)
    f = kg.function(*_branchy_cuda_kernel(), target="cuda")
    av, xv = np.arange(6.0).reshape(2, 3), np.array([1.0, -2.0])
    before = len(emu.launches)
    got = f(-1.0, np.ones((2, 2)), xv, 99)         # x[99] is never looked at
    np.testing.assert_allclose(got[0], xv + 1)
    assert got[1] == xv.sum()
    assert not any("gemm" in name for name, _, _ in emu.launches[before:])
    got = f(1.0, av[:, :2], xv, 1)
    np.testing.assert_allclose(got[0], av[:, :2] @ xv * 2)
    assert got[1] == xv[1]
    assert any("gemm" in name for name, _, _ in emu.launches)
    with pytest.raises(IndexError):                 # the taken branch's check, on the host
        f(1.0, av[:, :2], xv, 99)


def test_guarded_checks_of_other_kinds_and_an_inner_wrt():
    x, n = T.dvector("x"), T.lscalar("n")
    # max of an empty vector, a negative size and a broadcast that does not fit,
    # each in the branch not taken
    empty_ok = kg.function([x], ifelse(T.gt(x.shape[0], 0), x.max(), T.constant(0.0)))
    assert empty_ok(np.zeros(0)) == 0.0 and empty_ok(np.array([3.0, 1.0])) == 3.0
    sized = kg.function([x, n], ifelse(T.ge(n, 0), T.zeros((n,)).sum() + x.sum(), x[0]))
    assert sized(np.array([2.0, 5.0]), -3) == 2.0
    assert sized(np.array([2.0, 5.0]), 4) == 7.0
    y = T.dvector("y")
    bc = kg.function([x, y], ifelse(T.eq(x.shape[0], y.shape[0]), (x * y).sum(), x.sum()))
    assert bc(np.ones(2), np.ones(3)) == 2.0
    with pytest.raises(ValueError):
        kg.function([x, y], ifelse(T.lt(x.shape[0], 5), (x * y).sum(), x.sum()))(
            np.ones(2), np.ones(3))
    # grad with respect to a value computed inside a branch
    a = T.dscalar("a")
    h = T.exp(x) * 3
    gh = kg.function([a, x], kg.grad(ifelse(T.gt(a, 0), (h ** 2).sum(), x.sum()), h))
    xv = np.array([0.0, 0.5])
    np.testing.assert_allclose(gh(1.0, xv), 2 * np.exp(xv) * 3)
    np.testing.assert_array_equal(gh(-1.0, xv), 0.0)
