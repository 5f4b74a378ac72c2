"""T.nnet.conv2d and signal.pool.pool_2d: values against NumPy references
written here from the definitions, errors, gradients against central finite
differences, a small LeNet trained against a NumPy implementation, the old
aliases, the CUDA emulator and a shipped package with a conv net."""
import importlib
import itertools
import sys
import textwrap

import numpy as np
import pytest

import kgen as kg
import kgen.tensor as T
from kgen.errors import KgenTypeError, ShapeError
from kgen.expr.graph import toposort
from kgen.tensor.signal import downsample, pool

from _gradcheck import check_grad, check_second_order


# ---- references, from the definitions ---------------------------------------------------
def conv_ref(x, w, pad=(0, 0), stride=(1, 1), dil=(1, 1), flip=True, groups=1):
    """out[b, o, i, j] = sum_{c, p, q} xpad[b, g*Cg + c, i*s + p*d, j*s + q*d] * w'[o, c, p, q],
    w' the filters flipped in both spatial axes when flip (a true convolution)."""
    if flip:
        w = w[:, :, ::-1, ::-1]
    b, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - (kh - 1) * dil[0] - 1) // stride[0] + 1
    ow = (wd + 2 * pad[1] - (kw - 1) * dil[1] - 1) // stride[1] + 1
    out = np.zeros((b, o, oh, ow))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                r, c = i * stride[0], j * stride[1]
                win = xp[:, g * cg:(g + 1) * cg, r:r + (kh - 1) * dil[0] + 1:dil[0],
                         c:c + (kw - 1) * dil[1] + 1:dil[1]]
                out[:, oc, i, j] = np.einsum("bcpq,cpq->b", win, w[oc])
    return out


def pool_len(n, ws, st, pad, ignore_border):
    if ignore_border:
        return (n + 2 * pad - ws) // st + 1
    if st >= ws:
        return (n - 1) // st + 1
    return max(0, (n - 1 - ws + st) // st) + 1


def pool_ref(x, ws, ignore_border, stride, pad, mode):
    """Theano's Pool.perform: window (i, j) covers padded rows i*st .. i*st+ws, clipped
    to the padded image; max/sum/average_exc_pad use only the input's elements in it,
    average_inc_pad divides by the clipped window's size (padding counts)."""
    st = stride or ws
    h, w = x.shape[-2:]
    oh, ow = (pool_len(h, ws[0], st[0], pad[0], ignore_border),
              pool_len(w, ws[1], st[1], pad[1], ignore_border))
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * st[0] - pad[0], j * st[1] - pad[1]
            r1, c1 = r0 + ws[0], c0 + ws[1]
            win = x[..., max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
            if mode == "max":
                out[..., i, j] = win.max(axis=(-1, -2))
            elif mode == "sum":
                out[..., i, j] = win.sum(axis=(-1, -2))
            elif mode == "average_exc_pad":
                out[..., i, j] = win.mean(axis=(-1, -2))
            else:
                n = (min(r1, h + pad[0]) - r0) * (min(c1, w + pad[1]) - c0)
                out[..., i, j] = win.sum(axis=(-1, -2)) / n
    return out


BORDERS = [("valid", (0, 0)), ("full", None), ("half", None), (1, (1, 1)), ((2, 1), (2, 1))]


def pads_of(border, filt, dil):
    kh, kw = (filt[2] - 1) * dil[0] + 1, (filt[3] - 1) * dil[1] + 1
    if border == "full":
        return kh - 1, kw - 1
    if border == "half":
        return kh // 2, kw // 2
    return dict(BORDERS)[border] if not isinstance(border, tuple) else border


CONV_CASES = list(itertools.product(BORDERS, [(1, 1), (2, 1)], [(1, 1), (2, 2)], [True, False],
                                    [1, 2]))


@pytest.mark.parametrize("static", [False, True])
def test_conv2d_every_form_matches_the_definition(static):
    """Every border_mode x subsample x dilation x flip x groups, compiled (one
    kernel with all of them as outputs) and in the NumPy reference evaluator;
    with unknown spatial sizes (strided tap views) and known ones (one gather)."""
    rng = np.random.default_rng(0)
    x = T.tensor("x", "float64", shape=(None, 4, 7, 6) if static else (None,) * 4)
    w = T.tensor4("w")
    xv = rng.standard_normal((2, 4, 7, 6))
    wv = rng.standard_normal((6, 2, 3, 2))
    outs, wants = [], []
    for (border, _), sub, dil, flip, groups in CONV_CASES:
        wg = wv if groups == 2 else np.concatenate([wv, wv], axis=1)
        filt = (6, 4 // groups, 3, 2)
        outs.append(T.nnet.conv2d(x, w if groups == 2 else T.concatenate([w, w], axis=1),
                                  filter_shape=filt, border_mode=border, subsample=sub,
                                  filter_flip=flip, filter_dilation=dil, num_groups=groups))
        wants.append(conv_ref(xv, wg, pads_of(border, filt, dil), sub, dil, flip, groups))
    got = kg.function([x, w], outs)(xv, wv)
    for case, y, g, want in zip(CONV_CASES, outs, got, wants):
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12, err_msg=str(case))
    for case, y, want in list(zip(CONV_CASES, outs, wants))[::7]:
        np.testing.assert_allclose(y.eval({x: xv, w: wv}), want, rtol=1e-10, atol=1e-12,
                                   err_msg=str(case))


@pytest.mark.parametrize("sub,flip", [((1, 1), True), ((2, 3), False)])
def test_conv2d_pointwise_filters(sub, flip):
    """1x1 filters are one GEMM batched over the images (no im2col)."""
    rng = np.random.default_rng(13)
    x, w = T.tensor4("x"), T.tensor4("w")
    xv, wv = rng.standard_normal((2, 3, 5, 7)), rng.standard_normal((4, 3, 1, 1))
    y = T.nnet.conv2d(x, w, filter_shape=(4, 3, 1, 1), subsample=sub, filter_flip=flip)
    want = conv_ref(xv, wv, stride=sub, flip=flip)
    np.testing.assert_allclose(kg.function([x, w], y)(xv, wv), want, rtol=1e-12)
    check_grad(y, {x: xv[:1, :, :3, :4], w: wv}, [x, w])


def test_conv2d_float32_hints_and_shared_filters():
    rng = np.random.default_rng(1)
    x = T.ftensor4("x")
    wv = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    w = kg.shared(wv, name="w")          # rows/cols from the shared value, checked at run time
    y = T.nnet.conv2d(x, w, input_shape=(None, 2, 5, 6), border_mode="half")
    assert y.type.shape[1] == 3
    xv = rng.standard_normal((2, 2, 5, 6)).astype(np.float32)
    got = kg.function([x], y)(xv)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, conv_ref(xv, wv, (1, 1)), rtol=1e-5, atol=1e-5)


def test_conv2d_shape_errors_name_conv2d_and_both_shapes():
    x, w = T.tensor4("x"), T.tensor4("w")
    f = kg.function([x, w], T.nnet.conv2d(x, w, input_shape=(2, 3, 5, 5),
                                          filter_shape=(4, 3, 2, 2)))
    xv, wv = np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 2, 2))
    assert f(xv, wv).shape == (2, 4, 4, 4)
    with pytest.raises(ShapeError, match=r"conv2d.*input.*\(2, 3, 5, 5\).*\(2, 3, 6, 5\)|"
                                         r"conv2d.*input.*\(2, 3, 6, 5\).*\(2, 3, 5, 5\)"):
        f(np.zeros((2, 3, 6, 5)), wv)
    with pytest.raises(ShapeError, match=r"conv2d.*filters"):
        f(xv, np.zeros((4, 3, 3, 2)))
    g = kg.function([x, w], T.nnet.conv2d(x, w, filter_shape=(4, 3, 2, 2)))
    with pytest.raises(ShapeError, match=r"conv2d.*channels.*\(2, 2, 5, 5\)"):
        g(np.zeros((2, 2, 5, 5)), wv)
    with pytest.raises(ShapeError, match="conv2d"):   # the NumPy evaluator says the same
        T.nnet.conv2d(x, w, filter_shape=(4, 3, 2, 2)).eval({x: np.zeros((2, 2, 5, 5)),
                                                             w: wv})


def test_conv2d_filters_larger_than_the_padded_input_are_a_shape_error():
    x, w = T.tensor4("x"), T.tensor4("w")
    f = kg.function([x, w], T.nnet.conv2d(x, w, filter_shape=(3, 2, 2, 2), border_mode=(0, 1)))
    with pytest.raises(ShapeError, match=r"conv2d.*\(1, 2, 1, 5\).*\(3, 2, 2, 2\)"):
        f(np.zeros((1, 2, 1, 5)), np.ones((3, 2, 2, 2)))
    assert f(np.zeros((1, 2, 2, 1)), np.ones((3, 2, 2, 2))).shape == (1, 3, 1, 2)
    with pytest.raises(ShapeError, match=r"conv2d.*\(3, 2, 2, 2\).*\(1, 2, 1, 5\)"):
        T.nnet.conv2d(x, w, filter_shape=(3, 2, 2, 2), input_shape=(1, 2, 1, 5))


@pytest.mark.parametrize("kwargs", [
    dict(border_mode="same"), dict(border_mode=(1,)), dict(border_mode=-1),
    dict(subsample=(0, 1)), dict(subsample=(1, 1, 1)), dict(subsample="2"),
    dict(filter_dilation=(0, 1)), dict(num_groups=0), dict(num_groups=4),
    dict(input_shape=(1, 2)),
])
def test_conv2d_bad_arguments_are_type_errors_at_build_time(kwargs):
    x, w = T.tensor4("x"), T.tensor4("w")
    with pytest.raises(KgenTypeError, match="conv2d"):
        T.nnet.conv2d(x, w, filter_shape=(6, 2, 3, 3), **kwargs)


def test_conv2d_needs_the_filter_size():
    x, w = T.tensor4("x"), T.tensor4("w")
    with pytest.raises(KgenTypeError, match="filter_shape"):
        T.nnet.conv2d(x, w)
    with pytest.raises(KgenTypeError, match="4-d"):
        T.nnet.conv2d(T.matrix("m"), w, filter_shape=(1, 1, 1, 1))


GRAD_CASES = [  # every value of every option, on small shapes
    ("valid", (1, 1), (1, 1), True, 1), ("full", (2, 1), (1, 1), False, 1),
    ("half", (1, 2), (2, 1), True, 2), (1, (2, 2), (1, 2), False, 2),
    ((2, 1), (1, 1), (2, 2), True, 1), ("valid", (2, 2), (2, 1), False, 2),
    ("full", (1, 1), (1, 2), True, 2), ("half", (2, 1), (1, 1), False, 1),
]


@pytest.mark.parametrize("border,sub,dil,flip,groups", GRAD_CASES)
def test_conv2d_gradients_match_finite_differences(border, sub, dil, flip, groups):
    rng = np.random.default_rng(2)
    x, w = T.tensor4("x"), T.tensor4("w")
    filt = (2, 2 // groups, 2, 2)
    y = T.nnet.conv2d(x, w, filter_shape=filt, border_mode=border, subsample=sub,
                      filter_flip=flip, filter_dilation=dil, num_groups=groups)
    values = {x: rng.standard_normal((1, 2, 5, 4)), w: rng.standard_normal(filt)}
    check_grad(y, values, [x, w], compiled=groups == 1 and border in ("valid", "half"))
    ys = T.nnet.conv2d(x, w, input_shape=(1, 2, 5, 4), filter_shape=filt, border_mode=border,
                       subsample=sub, filter_flip=flip, filter_dilation=dil, num_groups=groups)
    check_grad(ys, values, [x, w], compiled=groups == 2)     # the gather form


def test_conv2d_second_derivatives():
    rng = np.random.default_rng(3)
    x, w = T.tensor4("x"), T.tensor4("w")
    y = T.tanh(T.nnet.conv2d(x, w, filter_shape=(2, 1, 2, 2), border_mode="half",
                             subsample=(2, 1)))
    check_second_order(y, {x: rng.standard_normal((1, 1, 4, 3)),
                           w: rng.standard_normal((2, 1, 2, 2))}, [x, w])


# ---- the dedicated conv step: panels, the fused epilogue, its gradients ---------------------
def _conv_steps(f):
    return [s for s in f.kernel.plan().steps if s.kind == "conv"]


def test_conv_step_spans_several_panels_and_fuses_bias_and_tanh():
    """A convolution bigger than one im2col panel (the panels cut across the
    images), with tanh(conv + b) and 1 - tanh^2 computed in the conv's store:
    against the definition, and gradients (through the panels) against finite
    differences on a small copy of the graph."""
    rng = np.random.default_rng(21)
    x = T.tensor("x", "float64", shape=(2, 16, 18, 18))
    w, b = T.tensor4("w"), T.vector("b")
    xv, wv, bv = (rng.standard_normal((2, 16, 18, 18)), rng.standard_normal((8, 16, 3, 3)),
                  rng.standard_normal(8))
    a = T.tanh(T.nnet.conv2d(x, w, filter_shape=(8, 16, 3, 3), border_mode="half")
               + b.dimshuffle("x", 0, "x", "x"))
    f = kg.function([x, w, b], [a, 1 - a ** 2])
    (step,) = _conv_steps(f)
    assert step.args["P"] < 2 * 18 * 18                    # more than one panel
    assert step.args["epilogue"] is not None              # no separate tanh loop
    assert not [s for s in f.kernel.plan().steps if s.kind == "map"]
    want = np.tanh(conv_ref(xv, wv, (1, 1)) + bv[None, :, None, None])
    got = f(xv, wv, bv)
    np.testing.assert_allclose(got[0], want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[1], 1 - want ** 2, rtol=1e-10, atol=1e-12)
    xs = T.tensor4("xs")
    small = T.tanh(T.nnet.conv2d(xs, w, filter_shape=(3, 2, 2, 2), subsample=(2, 1),
                                 border_mode=1) + b.dimshuffle("x", 0, "x", "x"))
    check_grad(small, {xs: rng.standard_normal((2, 2, 4, 5)), w: rng.standard_normal((3, 2, 2, 2)),
                       b: rng.standard_normal(3)}, [xs, w, b], compiled=True)


def test_conv_gradient_ops_are_each_others_derivatives():
    """grad of conv2d is conv2d_grad_input / conv2d_grad_filters, and their own
    gradients are conv ops again (no composition), compiled against the NumPy
    evaluator and against finite differences of the first gradient."""
    rng = np.random.default_rng(22)
    x, w = T.tensor4("x"), T.tensor4("w")
    y = T.nnet.conv2d(x, w, filter_shape=(4, 1, 2, 3), subsample=(2, 1), filter_dilation=(1, 2),
                      border_mode="full", num_groups=2)
    gx, gw = T.grad((y ** 2).sum(), [x, w])
    ops = {n.op.name for n in toposort([gx, gw]) if n.op is not None}
    assert {"conv2d_grad_input", "conv2d_grad_filters"} <= ops
    assert not ops & {"matmul", "gather", "scatter_add"}
    values = {x: rng.standard_normal((2, 2, 5, 6)), w: rng.standard_normal((4, 1, 2, 3))}
    got = kg.function([x, w], [gx, gw])(values[x], values[w])
    for g, e in zip(got, (gx, gw)):
        np.testing.assert_allclose(g, e.eval(values), rtol=1e-10, atol=1e-12)
    check_grad(gx, values, [x, w], compiled=True)
    check_grad(gw, values, [x, w], compiled=True)


def filters_grad_ref(x, g, wshape, pad, stride, dil, flip, groups):
    """d sum(conv2d(x, w) * g) / dw from the definition: dw'[o, c, p, q] = sum over
    (b, i, j) of g[b, o, i, j] * xpad[b, grp*Cg + c, i*s + p*d, j*s + q*d] (w' = w
    flipped when flip)."""
    o, cg, kh, kw = wshape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh, ow = g.shape[2:]
    og = o // groups
    dw = np.zeros(wshape)
    for oc in range(o):
        grp = oc // og
        for p in range(kh):
            for q in range(kw):
                r, c = p * dil[0], q * dil[1]
                win = xp[:, grp * cg:(grp + 1) * cg, r:r + (oh - 1) * stride[0] + 1:stride[0],
                         c:c + (ow - 1) * stride[1] + 1:stride[1]]
                dw[oc, :, p, q] = np.einsum("bcij,bij->c", win, g[:, oc])
    return dw[:, :, ::-1, ::-1] if flip else dw


FILTERS_GRAD_CASES = [  # (in place?, x shape, filters, border, sub, dil, flip, groups)
    # at least G_INPLACE_HW output positions per image: g read in place, per image;
    # the first: chunks of several images, cut into panels that end inside an image
    (True, (17, 4, 40, 40), (4, 4, 3, 3), "half", (1, 1), (1, 1), True, 1),
    (True, (5, 4, 17, 19), (6, 2, 3, 2), 1, (2, 1), (1, 2), False, 2),
    (True, (6, 3, 9, 40), (5, 3, 1, 4), "full", (1, 3), (2, 1), True, 1),
    # fewer: g copied into a tile (many images per panel)
    (False, (40, 2, 6, 5), (4, 2, 2, 2), "valid", (1, 1), (1, 1), True, 1),
    (False, (9, 4, 7, 6), (6, 2, 3, 3), "half", (2, 2), (1, 1), False, 2),
    (False, (30, 1, 5, 9), (3, 1, 2, 3), (1, 0), (1, 2), (2, 1), True, 1),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("inplace,xs,filt,border,sub,dil,flip,groups", FILTERS_GRAD_CASES)
def test_conv_filters_gradient_both_routes_match_the_definition(inplace, xs, filt, border, sub,
                                                                dil, flip, groups, dtype):
    """The filters' gradient (a transposed im2col panel and a GEMM) reads g in
    place when an image has at least G_INPLACE_HW output positions, and copies
    it into a tile below that: both routes, against the definition."""
    from kgen.lower.conv import G_INPLACE_HW
    rng = np.random.default_rng(23)
    x = T.tensor("x", dtype, shape=xs)
    w, gy = T.tensor("w", dtype, shape=filt), T.tensor4("gy", dtype)
    y = T.nnet.conv2d(x, w, filter_shape=filt, border_mode=border, subsample=sub,
                      filter_dilation=dil, filter_flip=flip, num_groups=groups)
    f = kg.function([x, w, gy], T.grad(T.sum(y * gy), w))
    (step,) = [s for s in _conv_steps(f) if s.args["role"] == "filters"]
    hw, panel, chunks = step.args["HW"], step.args["P"], step.args["chunks"]
    assert (hw >= G_INPLACE_HW) == inplace
    if inplace and xs[0] > chunks:    # a chunk of several images, a panel ending in one
        assert -(-xs[0] // chunks) * hw > panel and panel % hw
    if not inplace:
        assert panel >= 2 * hw                    # a panel holds several images
    xv, wv = rng.standard_normal(xs).astype(dtype), rng.standard_normal(filt).astype(dtype)
    pad = pads_of(border, filt, dil)
    oshape = [(n + 2 * pd - (k - 1) * d - 1) // st + 1
              for n, pd, k, d, st in zip(xs[2:], pad, filt[2:], dil, sub)]
    assert oshape[0] * oshape[1] == hw
    gv = rng.standard_normal((xs[0], filt[0], *oshape)).astype(dtype)
    want = filters_grad_ref(xv.astype(np.float64), gv.astype(np.float64), filt, pad, sub, dil,
                            flip, groups)
    got = f(xv, wv, gv)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == "float64" else dict(rtol=2e-4, atol=2e-3)
    np.testing.assert_allclose(got, want, **tol)


# ---- pooling ---------------------------------------------------------------------------
POOL_CASES = [((2, 2), None, (0, 0)), ((3, 2), (1, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)),
              ((2, 3), (3, 1), (1, 2)), ((1, 1), None, (0, 0)), ((2, 2), (3, 3), (0, 0))]


def test_pool_2d_every_mode_matches_the_definition():
    rng = np.random.default_rng(4)
    x = T.tensor4("x")
    xv = rng.standard_normal((2, 3, 7, 6))
    outs, wants = [], []
    for mode in pool.MODES:
        for ib in (True, False):
            for ws, st, pad in POOL_CASES:
                if not ib and pad != (0, 0):
                    continue
                outs.append(pool.pool_2d(x, ws, ib, st, pad, mode))
                wants.append(((mode, ib, ws, st, pad), pool_ref(xv, ws, ib, st, pad, mode)))
    got = kg.function([x], outs)(xv)
    for y, g, (case, want) in zip(outs, got, wants):
        assert g.shape == want.shape, case
        np.testing.assert_allclose(g, want, rtol=1e-12, err_msg=str(case))
        np.testing.assert_allclose(y.eval({x: xv}), want, rtol=1e-12, err_msg=str(case))


def test_pool_2d_any_leading_axes_and_float32():
    rng = np.random.default_rng(5)
    for x, shape in [(T.fmatrix("m"), (5, 7)), (T.ftensor3("t"), (2, 4, 4)),
                     (T.tensor("t5", "float32", shape=(None,) * 5), (2, 1, 2, 5, 4))]:
        xv = rng.standard_normal(shape).astype(np.float32)
        got = kg.function([x], pool.pool_2d(x, (2, 2), ignore_border=False))(xv)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, pool_ref(xv, (2, 2), False, None, (0, 0), "max"))


@pytest.mark.parametrize("mode", pool.MODES)
@pytest.mark.parametrize("ib,ws,st,pad", [(True, (2, 2), None, (0, 0)),
                                          (True, (3, 2), (2, 1), (1, 1)),
                                          (False, (2, 3), (2, 2), (0, 0))])
def test_pool_2d_gradients_match_finite_differences(mode, ib, ws, st, pad):
    rng = np.random.default_rng(6)
    x = T.tensor4("x")
    check_grad(pool.pool_2d(x, ws, ib, st, pad, mode), {x: rng.standard_normal((1, 2, 5, 4))},
               [x], compiled=mode == "max" and ib)


def test_max_pool_gradient_goes_to_every_tied_maximum_as_theano():
    """Theano's MaxPoolGrad adds the output gradient at every position equal
    to the window's maximum; overlapping windows add up."""
    x = T.matrix("x")
    xv = np.array([[1.0, 3.0, 3.0], [0.0, 3.0, 2.0]])
    y = pool.pool_2d(x, (2, 2), ignore_border=True, stride=(1, 1))   # two windows, max 3
    g = kg.grad(y.sum(), x)
    want = np.array([[0.0, 2.0, 1.0], [0.0, 2.0, 0.0]])   # (0, 1), (1, 1): in both windows
    np.testing.assert_array_equal(kg.function([x], g)(xv), want)
    np.testing.assert_array_equal(g.eval({x: xv}), want)


def test_dedicated_max_pool_gradient_of_wide_rows_and_strided_inputs():
    """The C gradient walks a row's windows in blocks (KG_POOL_BLOCK, 256):
    rows of more windows than a block, a partial last window, a transposed
    (strided) input and ties, against the definition written with NumPy."""
    rng = np.random.default_rng(5)
    x, gy = T.tensor3("x"), T.tensor3("gy")
    for shape, ws, transposed in [((2, 5, 901), (2, 3), False), ((3, 7, 1030), (3, 2), True)]:
        xv = rng.integers(0, 4, size=shape).astype(np.float64)     # many ties
        xin = np.ascontiguousarray(np.swapaxes(xv, 1, 2)) if transposed else xv
        xs = x.dimshuffle(0, 2, 1) if transposed else x
        r, c = shape[1] // ws[0], shape[2] // ws[1]
        gv = rng.standard_normal((shape[0], r, c))
        g = kg.grad((pool.pool_2d(xs, ws, ignore_border=True) * gy).sum(), x)
        assert "max_pool_2d_grad" in {n.op.name for n in toposort([g]) if n.op is not None}
        got = kg.function([x, gy], g)(xin, gv)
        win = xv[:, :r * ws[0], :c * ws[1]].reshape(shape[0], r, ws[0], c, ws[1])
        hit = win == win.max(axis=(2, 4), keepdims=True)
        want = np.zeros_like(xv)
        want[:, :r * ws[0], :c * ws[1]] = (hit * gv[:, :, None, :, None]).reshape(
            shape[0], r * ws[0], c * ws[1])
        np.testing.assert_array_equal(got, np.swapaxes(want, 1, 2) if transposed else want)


def test_dedicated_max_pool_ties_leading_axes_and_second_derivatives():
    """Non-overlapping max pooling is the op max_pool_2d (one pass; its gradient
    and that gradient's adjoint are ops too): a partial last window dropped, ties
    all getting the gradient, NaN propagating, any leading axes, float32, and
    second derivatives against finite differences."""
    x = T.tensor3("x")
    xv = np.array([[[1.0, 3.0, 3.0, 0.0, 9.0], [0.0, 3.0, 2.0, 5.0, 9.0],
                    [7.0, 7.0, 7.0, 7.0, 7.0]],
                   [[np.nan, 1.0, 4.0, 4.0, 0.0], [2.0, 2.0, 4.0, 4.0, 0.0],
                    [0.0, 0.0, 0.0, 0.0, 0.0]]])
    y = pool.pool_2d(x, (2, 2))
    g = kg.grad((y * T.constant(np.array([[[1.0, 2.0]], [[3.0, 4.0]]]))).sum(), x)
    ops = {n.op.name for n in toposort([y, g]) if n.op is not None}
    assert {"max_pool_2d", "max_pool_2d_grad"} <= ops
    want_y = np.array([[[3.0, 5.0]], [[np.nan, 4.0]]])
    want_g = np.zeros_like(xv)
    want_g[0, 0, 1] = want_g[0, 1, 1] = 1.0                # two tied maxima: each gets 1
    want_g[0, 1, 3] = 2.0
    want_g[1, :2, 2:4] = 4.0                           # four tied maxima: each the whole 4
    f = kg.function([x], [y, g])
    for got, ref in zip(f(xv), (want_y, want_g)):
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(y.eval({x: xv}), want_y)
    x5 = T.tensor("x5", "float32", shape=(None,) * 5)
    v5 = np.random.default_rng(24).standard_normal((2, 1, 3, 4, 7)).astype(np.float32)
    got = kg.function([x5], pool.pool_2d(x5, (2, 3)))(v5)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, pool_ref(v5, (2, 3), True, None, (0, 0), "max"))
    x4 = T.tensor4("x4")
    check_second_order(T.tanh(pool.pool_2d(x4, (2, 2))) ** 2,
                       {x4: np.random.default_rng(25).standard_normal((1, 2, 4, 5))}, [x4])


def test_average_pool_gradient_spreads_evenly():
    x = T.matrix("x")
    g = kg.grad(pool.pool_2d(x, (2, 2), mode="average_inc_pad").sum(), x)
    np.testing.assert_allclose(kg.function([x], g)(np.zeros((4, 4))), np.full((4, 4), 0.25))


@pytest.mark.parametrize("kwargs", [
    dict(ws=(0, 2)), dict(ws=2), dict(stride=(1, 0)), dict(stride=(1,)), dict(mode="min"),
    dict(pad=(2, 0)), dict(pad=(1, 1), ignore_border=False), dict(ignore_border="yes"),
])
def test_pool_2d_bad_arguments_are_type_errors(kwargs):
    with pytest.raises(KgenTypeError, match="pool_2d"):
        pool.pool_2d(T.tensor4("x"), **kwargs)


def test_old_aliases():
    rng = np.random.default_rng(7)
    x, w = T.tensor4("x"), T.tensor4("w")
    xv, wv = rng.standard_normal((1, 2, 6, 5)), rng.standard_normal((3, 2, 2, 3))
    y = T.nnet.conv.conv2d(x, w, image_shape=(1, 2, 6, 5), filter_shape=(3, 2, 2, 3),
                           border_mode="full", subsample=(1, 2))
    p = downsample.max_pool_2d(x, (2, 2))            # ignore_border=None: partial windows kept
    p2 = T.signal.downsample.max_pool_2d(x, ds=(3, 2), ignore_border=True, st=(1, 1),
                                         mode="average_exc_pad")
    p3 = pool.pool_2d(x, ds=(3, 2), st=(1, 1), mode="average_exc_pad")   # the older names
    got = kg.function([x, w], [y, p, p2, p3])(xv, wv)
    np.testing.assert_array_equal(got[3], got[2])
    np.testing.assert_allclose(got[0], conv_ref(xv, wv, (1, 2), (1, 2)), rtol=1e-12)
    np.testing.assert_allclose(got[1], pool_ref(xv, (2, 2), False, None, (0, 0), "max"))
    np.testing.assert_allclose(got[2], pool_ref(xv, (3, 2), True, (1, 1), (0, 0),
                                                "average_exc_pad"))
    assert T.nnet.sigmoid is kg.sigmoid and T.nnet.softmax is not None   # still there


# ---- a LeNet, trained against NumPy ---------------------------------------------------------
def np_conv_valid(x, wf):
    """A true valid convolution and the windows it read (B, C, OH, OW, kh, kw)."""
    kh, kw = wf.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return np.einsum("bcijpq,ocpq->boij", win, wf[:, :, ::-1, ::-1]), win


def np_conv_valid_back(x, wf, win, g):
    kh, kw = wf.shape[2:]
    dwflip = np.einsum("bcijpq,boij->ocpq", win, g)
    wfl = wf[:, :, ::-1, ::-1]
    dx = np.zeros_like(x)
    oh, ow = g.shape[2:]
    for p in range(kh):
        for q in range(kw):
            dx[:, :, p:p + oh, q:q + ow] += np.einsum("boij,oc->bcij", g, wfl[:, :, p, q])
    return dx, dwflip[:, :, ::-1, ::-1]


def np_pool2(a):
    b, c, h, w = a.shape
    m = a.reshape(b, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    return m


def np_pool2_back(a, m, g):
    up = np.repeat(np.repeat(m, 2, axis=2), 2, axis=3)
    return (a == up) * np.repeat(np.repeat(g, 2, axis=2), 2, axis=3)


def lenet_numpy_step(params, xv, yv, lr):
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    c1, win1 = np_conv_valid(xv, w1)
    a1 = np.tanh(c1 + b1[None, :, None, None])
    p1 = np_pool2(a1)
    c2, win2 = np_conv_valid(p1, w2)
    a2 = np.tanh(c2 + b2[None, :, None, None])
    p2 = np_pool2(a2)
    f = p2.reshape(p2.shape[0], -1)
    h = np.tanh(f @ w3 + b3)
    z = h @ w4 + b4
    e = np.exp(z - z.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    n = xv.shape[0]
    cost = -np.mean(np.log(prob[np.arange(n), yv]))
    dz = prob.copy()
    dz[np.arange(n), yv] -= 1
    dz /= n
    dw4, db4 = h.T @ dz, dz.sum(0)
    dh = dz @ w4.T * (1 - h ** 2)
    dw3, db3 = f.T @ dh, dh.sum(0)
    dp2 = (dh @ w3.T).reshape(p2.shape)
    dc2 = np_pool2_back(a2, p2, dp2) * (1 - a2 ** 2)
    dp1, dw2 = np_conv_valid_back(p1, w2, win2, dc2)
    db2 = dc2.sum(axis=(0, 2, 3))
    dc1 = np_pool2_back(a1, p1, dp1) * (1 - a1 ** 2)
    _, dw1 = np_conv_valid_back(xv, w1, win1, dc1)
    db1 = dc1.sum(axis=(0, 2, 3))
    grads = [dw1, db1, dw2, db2, dw3, db3, dw4, db4]
    return cost, [p - lr * g for p, g in zip(params, grads)]


def lenet_params(rng, dtype="float64"):
    shapes = [(3, 1, 3, 3), (3,), (4, 3, 2, 2), (4,), (16, 10), (10,), (10, 3), (3,)]
    return [(rng.standard_normal(s) * 0.5).astype(dtype) for s in shapes]


def lenet_graph(x, y, params, lr):
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    a1 = T.tanh(T.nnet.conv2d(x, w1, filter_shape=(3, 1, 3, 3)) + b1.dimshuffle("x", 0, "x", "x"))
    p1 = pool.pool_2d(a1, (2, 2), ignore_border=True)
    a2 = T.tanh(T.nnet.conv2d(p1, w2, filter_shape=(4, 3, 2, 2))
                + b2.dimshuffle("x", 0, "x", "x"))
    p2 = pool.pool_2d(a2, (2, 2), ignore_border=True)
    h = T.tanh(T.dot(p2.flatten(2), w3) + b3)
    prob = T.nnet.softmax(T.dot(h, w4) + b4)
    cost = -T.mean(T.log(prob)[T.arange(y.shape[0]), y])
    grads = T.grad(cost, params)
    return cost, [(p, p - lr * g) for p, g in zip(params, grads)]


def test_lenet_trains_as_numpy():
    rng = np.random.default_rng(8)
    start = lenet_params(rng)
    params = [kg.shared(v.copy(), name=f"p{i}") for i, v in enumerate(start)]
    x, y = T.tensor4("x"), T.lvector("y")
    cost, updates = lenet_graph(x, y, params, 0.1)
    train = kg.function([x, y], cost, updates=updates)
    mine = [v.copy() for v in start]
    for step in range(3):
        xv = rng.standard_normal((4, 1, 12, 12))
        yv = rng.integers(0, 3, size=4)
        want, mine = lenet_numpy_step(mine, xv, yv, 0.1)
        np.testing.assert_allclose(train(xv, yv), want, rtol=1e-10)
        for p, v in zip(params, mine):
            np.testing.assert_allclose(p.get_value(), v, rtol=1e-9, atol=1e-12)


# ---- CUDA (the CPU emulator) and a shipped package ------------------------------------------
def test_conv_and_pool_through_the_cuda_emulator(monkeypatch):
    import shutil
    if shutil.which("g++") is None:
        pytest.skip("the CUDA emulator needs g++")
    import _cuda_emu
    emu = _cuda_emu.emulate(monkeypatch)
    rng = np.random.default_rng(9)
    x, w = T.tensor4("x"), T.tensor4("w")
    y = pool.pool_2d(T.tanh(T.nnet.conv2d(x, w, filter_shape=(3, 2, 2, 2), border_mode="half",
                                          subsample=(1, 2))), (2, 2), ignore_border=False)
    y2 = T.nnet.conv2d(x, w, input_shape=(2, 2, 5, 6), filter_shape=(3, 2, 2, 2),
                       border_mode="full", filter_dilation=(2, 1))    # the gather form
    g = T.grad(y.sum() + (y2 ** 2).sum(), [x, w])
    xv, wv = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 2, 2))
    want = kg.function([x, w], [y, y2] + g)(xv, wv)
    got = kg.function([x, w], [y, y2] + g, target="cuda")(xv, wv)
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    assert emu.launches


def test_conv_kernels_with_groups_and_a_fused_epilogue_through_the_cuda_emulator(monkeypatch):
    """The implicit-GEMM kernel in its three roles, grouped and strided, with
    tanh(conv + b) fused into the forward kernel's store, then the max-pool
    kernels (forward and gradient)."""
    import shutil
    if shutil.which("g++") is None:
        pytest.skip("the CUDA emulator needs g++")
    import _cuda_emu
    _cuda_emu.emulate(monkeypatch)
    rng = np.random.default_rng(23)
    x, w, b = T.tensor4("x"), T.tensor4("w"), T.vector("b")
    a = T.tanh(T.nnet.conv2d(x, w, filter_shape=(6, 2, 3, 2), border_mode="half",
                             subsample=(2, 1), num_groups=2) + b.dimshuffle("x", 0, "x", "x"))
    p = pool.pool_2d(a, (2, 2))                        # the dedicated max pooling
    outs = [a, p] + T.grad((a ** 2).sum() + (p ** 3).sum(), [x, w, b])
    xv, wv, bv = (rng.standard_normal((3, 4, 9, 7)), rng.standard_normal((6, 2, 3, 2)),
                  rng.standard_normal(6))
    f = kg.function([x, w, b], outs, target="cuda")
    assert "then tanh" in f.source()
    want = [np.tanh(conv_ref(xv, wv, (1, 1), (2, 1), groups=2) + bv[None, :, None, None])]
    want += [e.eval({x: xv, w: wv, b: bv}) for e in outs[1:]]
    np.testing.assert_allclose(want[1], pool_ref(want[0], (2, 2), True, None, (0, 0), "max"))
    for got, ref in zip(f(xv, wv, bv), want):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


CONV_SPEC = textwrap.dedent("""
    import numpy as np
    import kgen as kg
    import kgen.tensor as T
    from kgen.tensor.signal import pool

    rng = np.random.default_rng(0)
    x = T.ftensor4("x")
    y = T.ivector("y")
    w1 = kg.shared((rng.standard_normal((4, 1, 3, 3)) * 0.3).astype(np.float32), name="w1")
    b1 = kg.shared(np.zeros(4, np.float32), name="b1")
    w2 = kg.shared((rng.standard_normal((16, 3)) * 0.3).astype(np.float32), name="w2")
    a1 = T.tanh(T.nnet.conv2d(x, w1, input_shape=(None, 1, 6, 6), filter_shape=(4, 1, 3, 3))
                + b1.dimshuffle("x", 0, "x", "x"))
    p1 = pool.pool_2d(a1, (2, 2))
    prob = T.nnet.softmax(T.dot(p1.flatten(2), w2))
    cost = -T.mean(T.log(prob)[T.arange(y.shape[0]), y])
    params = [w1, b1, w2]
    train = kg.kernel("train", [x, y], cost,
                      updates=[(p, p - 0.1 * g) for p, g in zip(params, T.grad(cost, params))])
    predict = kg.kernel("predict", [x], prob)
""")


def test_a_shipped_package_runs_a_conv_net(tmp_path):
    """`python -m kgen build convnet.py -o build`, then the package imported and run."""
    import os
    import subprocess
    from pathlib import Path
    spec_path = tmp_path / "convnet.py"
    spec_path.write_text(CONV_SPEC)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                         env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "kgen", "build", str(spec_path), "-o",
                           str(tmp_path / "build")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "kgen: built convnet: 2 kernels" in proc.stdout
    namespace = {}
    exec(compile(CONV_SPEC, "convnet", "exec"), namespace)   # the same graph, as kg.function
    predict = kg.function([namespace["x"]], namespace["prob"])
    rng = np.random.default_rng(10)
    xv = rng.standard_normal((5, 1, 6, 6)).astype(np.float32)
    sys.path.insert(0, str(tmp_path / "build"))
    try:
        pkg = importlib.import_module("convnet")
        np.testing.assert_allclose(pkg.predict(xv), predict(xv), rtol=1e-5, atol=1e-6)
        before = pkg.w1.get_value().copy()
        c0 = pkg.train(xv, np.array([0, 1, 2, 0, 1], np.int32))
        assert np.isfinite(c0) and not np.array_equal(pkg.w1.get_value(), before)
        with pytest.raises(ValueError, match=r"conv2d.*input_shape.*\(5, 1, 7, 6\)"):
            pkg.predict(np.zeros((5, 1, 7, 6), np.float32))
    finally:
        sys.path.remove(str(tmp_path / "build"))
        sys.modules.pop("convnet", None)


def test_get_conv_output_shape_agrees_with_conv2d():
    from kgen.tensor.nnet.abstract_conv import get_conv_output_shape
    rng = np.random.default_rng(11)
    x, w = T.tensor4("x"), T.tensor4("w")
    xv, wv = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 2))
    for border, sub, dil in [("valid", (1, 1), (1, 1)), ("full", (2, 3), (1, 2)),
                             ("half", (1, 2), (2, 1)), ((1, 2), (3, 1), (1, 1))]:
        y = T.nnet.conv2d(x, w, filter_shape=wv.shape, border_mode=border, subsample=sub,
                          filter_dilation=dil)
        assert y.eval({x: xv, w: wv}).shape == get_conv_output_shape(xv.shape, wv.shape, border,
                                                                     sub, dil)


@pytest.mark.parametrize("mode", ["max", "average_exc_pad"])
def test_pool_2d_second_derivatives(mode):
    rng = np.random.default_rng(12)
    x = T.tensor4("x")
    y = T.tanh(pool.pool_2d(x, (2, 2), ignore_border=False, stride=(1, 2), mode=mode))
    check_second_order(y, {x: rng.standard_normal((1, 1, 3, 5))}, [x])
