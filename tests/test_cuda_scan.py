"""kgen.scan on the CUDA backend: the source compiles with nvcc, and the host
loop of launches (kgen/runtime/cuda.py) runs the real kernels through the CPU
emulator (tests/_cuda_emu.py), checked against NumPy loops written here."""
import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T

import _cuda_emu

RNG = np.random.default_rng(12)

needs_gxx = pytest.mark.skipif(not _cuda_emu.have_compiler(),
                               reason="the CUDA emulator needs g++ (no GPU needed)")


def tanh_rnn(xv, wv, hv):
    out, h = [], hv
    for x_t in xv:
        h = np.tanh(wv * h + x_t)
        out.append(h)
    return np.array(out)


def _rnn():
    x, w, h0 = T.vector("x"), T.scalar("w"), T.scalar("h0")
    h, _ = kg.scan(lambda x_t, h_tm1, w: T.tanh(w * h_tm1 + x_t), sequences=x,
                   outputs_info=h0, non_sequences=w, name="rnn")
    return [x, w, h0], [h, h[-1], kg.grad(h.sum(), w), kg.grad(h[-1], x)]


def _taps_backwards():
    X, H0, W = T.matrix("X"), T.matrix("H0"), T.matrix("W")
    hs, _ = kg.scan(lambda x_t, h_tm2, h_tm1, W: T.tanh(T.dot(h_tm1, W) + 0.3 * h_tm2 + x_t),
                    sequences=X, outputs_info=dict(initial=H0, taps=[-2, -1]),
                    non_sequences=W, go_backwards=True, name="taps")
    return [X, H0, W], [hs, kg.grad(hs[-1].sum(), W)]


def _until():
    x = T.vector("x")
    out, _ = kg.scan(lambda v, acc: (acc + v, kg.scan_module.until(acc + v > 2.5)),
                     sequences=x, outputs_info=T.zeros_like(x[0]), name="upto")
    return [x], [out]


def _until_last():
    x = T.vector("x")
    out, _ = kg.scan(lambda v, acc: (acc + v, kg.scan_module.until(acc + v > 2.5)),
                     sequences=x, outputs_info=T.zeros_like(x[0]), name="upto")
    return [x], [out[-1]]


def test_cuda_source_compiles_with_nvcc(tmp_path):
    from pathlib import Path
    from kgen.build import nvcc
    try:
        nvcc.find_nvcc()
    except kg.CompilerNotFoundError:
        pytest.skip("nvcc (the CUDA toolkit) not found")
    ins, outs = _rnn()
    taps_ins, taps_outs = _taps_backwards()
    until_ins, until_outs = _until_last()
    kernel = kg.kernel("loops", ins + taps_ins + until_ins, outs + taps_outs + until_outs)
    source = kernel.source("cuda")
    assert "/* scan rnn: step t's values */" in source and "const int64_t t)" in source
    assert "_last0(" in source  # until(): the rolling buffer's last row, after the loop
    path = nvcc.compile_cuda(source, "loops", tmp_path / "b", output="ptx", names=("sm_80",))
    assert ".visible .entry" in Path(path).read_text()


@pytest.fixture
def emu(monkeypatch):
    if not _cuda_emu.have_compiler():
        pytest.skip("the CUDA emulator needs g++ (no GPU needed)")
    return _cuda_emu.emulate(monkeypatch)


def test_rnn_and_its_bptt_gradient_on_the_emulator(emu):
    f = kg.function(*_rnn(), target="cuda")
    xv, wv, hv = RNG.uniform(-1, 1, 6), 0.7, 0.2
    h, last, gw, gx = f(xv, wv, hv)
    want = tanh_rnn(xv, wv, hv)
    np.testing.assert_allclose(h, want, rtol=1e-12)
    assert float(last) == pytest.approx(want[-1], rel=1e-12)
    eps = 1e-6
    num_w = (tanh_rnn(xv, wv + eps, hv).sum() - tanh_rnn(xv, wv - eps, hv).sum()) / (2 * eps)
    np.testing.assert_allclose(gw, num_w, rtol=1e-6)
    num_x = [(tanh_rnn(xv + eps * e, wv, hv)[-1] - tanh_rnn(xv - eps * e, wv, hv)[-1]) / (2 * eps)
             for e in np.eye(6)]
    np.testing.assert_allclose(gx, num_x, rtol=1e-6, atol=1e-12)
    # a host loop of launches: the body's kernel once per step, forward and reverse
    body = {k.name for k in f._schedule.kernels if k.scan is not None}
    assert len([n for n, _, _ in emu.launches if n in body]) % 6 == 0 and len(body) >= 2
    np.testing.assert_allclose(f(xv[:2], wv, hv)[0], want[:2], rtol=1e-12)  # other lengths


def test_taps_and_go_backwards_on_the_emulator(emu):
    f = kg.function(*_taps_backwards(), target="cuda")
    Xv, H0v, Wv = (RNG.uniform(-1, 1, (5, 3)), RNG.uniform(-1, 1, (2, 3)),
                   RNG.uniform(-0.5, 0.5, (3, 3)))

    def forward(Wm):
        hist, out = [H0v[0], H0v[1]], []
        for x_t in Xv[::-1]:
            hist.append(np.tanh(hist[-1] @ Wm + 0.3 * hist[-2] + x_t))
            out.append(hist[-1])
        return np.array(out)

    hs, gW = f(Xv, H0v, Wv)
    np.testing.assert_allclose(hs, forward(Wv), rtol=1e-12)
    eps, num = 1e-6, np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            d = np.zeros((3, 3))
            d[i, j] = eps
            num[i, j] = (forward(Wv + d)[-1].sum() - forward(Wv - d)[-1].sum()) / (2 * eps)
    np.testing.assert_allclose(gW, num, rtol=1e-6, atol=1e-10)


def test_until_stops_the_host_loop(emu):
    (x,), (out,) = _until()
    whole = kg.function([x], out, target="cuda")
    (x,), (out_last,) = _until_last()
    last = kg.function([x], out_last, target="cuda")
    xv = RNG.uniform(0.2, 1.0, 9)
    stop = np.argmax(np.cumsum(xv) > 2.5) + 1
    before = len(emu.launches)
    np.testing.assert_allclose(whole(xv), np.cumsum(xv)[:stop])  # cut to the steps taken
    body = {k.name for k in whole._schedule.kernels if k.scan is not None}
    launched = [n for n, _, _ in emu.launches[before:] if n in body]
    assert len(launched) == stop * len(body)   # none after the stop flag was set
    assert float(last(xv)) == pytest.approx(np.cumsum(xv)[stop - 1])
    assert any("_last" in n for n, _, _ in emu.launches)
    np.testing.assert_allclose(whole(np.full(3, 0.1)), [0.1, 0.2, 0.3])  # never stops
    assert float(last(np.full(3, 0.1))) == pytest.approx(0.3)


def test_random_draws_match_the_c_backend_bit_for_bit(emu):
    def build(target):
        srng = kg.RandomStreams(seed=5)
        u = srng.uniform((3,))
        n = srng.normal((2,))
        draws, updates = kg.scan(lambda: [u * 1.0, n + 0.0], n_steps=4)
        return kg.function([], draws, updates=updates, target=target)
    gpu, cpu = build("cuda"), build("c")
    for _ in range(2):  # the updates advance both streams alike
        got, want = gpu(), cpu()
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
        assert len({tuple(r) for r in got[0]}) == 4   # a new draw at each step


def test_scan_inside_a_scan_is_refused_clearly():
    from kgen.codegen.cuda import cuda_kernels
    X = T.matrix("X")
    rows, _ = kg.scan(lambda r: kg.scan(lambda v, a: a + v, sequences=r,
                                        outputs_info=T.zeros_like(r[0]))[0][-1],
                      sequences=X, name="outer")
    plan = kg.kernel("nested", [X], rows).plan()
    with pytest.raises(kg.BackendUnavailableError, match="inside a scan"):
        cuda_kernels(plan)
