"""The dedicated 2-D convolution ops: forward, and its two gradients.

All three share one geometry (attrs `pad`, `stride`, `dil`, `groups`), read
NCHW images and (out, in/groups, rows, cols) filters, and are correlations
(abstract_conv flips the filters with a view for a true convolution):

  conv2d(x, w)                  y[b, o, i, j] = sum_{c,p,q} w[o, c, p, q] *
                                    x[b, gC + c, i*s - pad + p*d, j*s - pad + q*d]
  conv2d_grad_input(g, w, x)    the adjoint of conv2d in x (x only lends its shape)
  conv2d_grad_filters(x, g, w)  the adjoint of conv2d in w (w only lends its shape)

Each is linear in each operand it reads, and each one's derivative is another
of the three, so gradients of any order stay dedicated ops:
  <gx, gi(g, w)> = <conv(gx, w), g>   and   <gw, gf(x, g)> = <conv(x, gw), g>.
The C lowering is kgen/lower/conv.py with kgen/templates/c/conv.c.jinja.
"""
import numpy as np

from ...errors import KgenTypeError, ShapeError
from ..op import Op
from ..types import TensorType, format_shape


def out_len(n, k, pad, dil, stride):
    """Output length of one spatial axis (None when n is unknown)."""
    return None if n is None else (n + 2 * pad - (k - 1) * dil - 1) // stride + 1


def _windows(xp, kh, kw, dil, stride, oh, ow):
    """(B, C, kh, kw, OH, OW) view of padded images xp: the im2col columns."""
    b, c = xp.shape[:2]
    sb, sc, sr, sq = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, (b, c, kh, kw, oh, ow),
        (sb, sc, sr * dil[0], sq * dil[1], sr * stride[0], sq * stride[1]), writeable=False)


def _grouped(a, groups, axis):
    """a split along `axis` into (groups, a.shape[axis] // groups)."""
    shape = a.shape[:axis] + (groups, a.shape[axis] // groups) + a.shape[axis + 1:]
    return a.reshape(shape)


class Conv(Op):
    """One of the three conv ops. `role` says which operand positions hold the
    images, the filters and the output gradient, and whose shape the result has."""
    role = None   # "forward" | "input" | "filters"

    def infer(self, inputs, attrs):
        for v in inputs:
            if v.ndim != 4:
                raise KgenTypeError(f"conv2d: operands must be 4-d, got {v.ndim}-d")
        dtypes = {v.dtype for v in inputs[:2]}
        if len(dtypes) != 1 or not inputs[0].dtype.startswith("float"):
            raise KgenTypeError(f"conv2d: needs float operands of one dtype, got "
                                f"{sorted(dtypes)}")
        dtype = inputs[0].dtype
        if self.role == "input":
            return TensorType(dtype, inputs[2].type.shape)
        if self.role == "filters":
            return TensorType(dtype, inputs[2].type.shape)
        x, w = inputs
        (ph, pw), (sh, sw), (dh, dw) = attrs["pad"], attrs["stride"], attrs["dil"]
        b, c, h, wd = x.type.shape
        o, cg, kh, kw = w.type.shape
        groups = attrs["groups"]
        if c is not None and cg is not None and c != cg * groups:
            raise ShapeError(f"conv2d: input of shape {format_shape(x.type.shape)} does not fit "
                             f"filters of shape {format_shape(w.type.shape)} with "
                             f"num_groups={groups}")
        oh, ow = out_len(h, kh or 1, ph, dh, sh), out_len(wd, kw or 1, pw, dw, sw)
        if kh is None:
            oh = None
        if kw is None:
            ow = None
        if (oh is not None and oh < 1) or (ow is not None and ow < 1):
            raise ShapeError(f"conv2d: filters of shape {format_shape(w.type.shape)} (dilation "
                             f"{(dh, dw)}) do not fit an input of shape "
                             f"{format_shape(x.type.shape)} padded by {(ph, pw)}")
        return TensorType(dtype, (b, o, oh, ow))

    # ---- the NumPy reference (im2col by strides, one einsum per group) ----
    def impl(self, arrays, attrs):
        return getattr(self, f"_impl_{self.role}")(*[np.asarray(a) for a in arrays], attrs)

    @staticmethod
    def _geometry(x_shape, w_shape, attrs):
        (ph, pw), stride, dil = attrs["pad"], attrs["stride"], attrs["dil"]
        kh, kw = w_shape[2:]
        oh = out_len(x_shape[2], kh, ph, dil[0], stride[0])
        ow = out_len(x_shape[3], kw, pw, dil[1], stride[1])
        return (ph, pw), stride, dil, oh, ow

    def _check(self, x_shape, w_shape, attrs):
        groups = attrs["groups"]
        if x_shape[1] != w_shape[1] * groups:
            raise ShapeError(f"conv2d: input of shape {tuple(x_shape)} does not fit filters of "
                             f"shape {tuple(w_shape)} with num_groups={groups}")
        pad, stride, dil, oh, ow = self._geometry(x_shape, w_shape, attrs)
        if oh < 1 or ow < 1:
            raise ShapeError(f"conv2d: filters of shape {tuple(w_shape)} do not fit an input of "
                             f"shape {tuple(x_shape)} padded by {pad}")
        return pad, stride, dil, oh, ow

    def _impl_forward(self, x, w, attrs):
        (ph, pw), stride, dil, oh, ow = self._check(x.shape, w.shape, attrs)
        groups = attrs["groups"]
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        cols = _grouped(_windows(xp, *w.shape[2:], dil, stride, oh, ow), groups, 1)
        y = np.einsum("bgcpqij,gocpq->bgoij", cols, _grouped(w, groups, 0))
        return np.ascontiguousarray(y.reshape(x.shape[0], w.shape[0], oh, ow), dtype=x.dtype)

    def _impl_input(self, g, w, x, attrs):
        (ph, pw), stride, dil, oh, ow = self._check(x.shape, w.shape, attrs)
        groups, (kh, kw) = attrs["groups"], w.shape[2:]
        dcols = np.einsum("bgoij,gocpq->bgcpqij", _grouped(g, groups, 1), _grouped(w, groups, 0))
        dcols = dcols.reshape(x.shape[0], x.shape[1], kh, kw, oh, ow)
        dxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw),
                       dtype=g.dtype)
        for p in range(kh):     # col2im: each tap adds back where it read
            for q in range(kw):
                r, c = p * dil[0], q * dil[1]
                dxp[:, :, r:r + (oh - 1) * stride[0] + 1:stride[0],
                    c:c + (ow - 1) * stride[1] + 1:stride[1]] += dcols[:, :, p, q]
        return np.ascontiguousarray(dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]])

    def _impl_filters(self, x, g, w, attrs):
        (ph, pw), stride, dil, oh, ow = self._check(x.shape, w.shape, attrs)
        groups = attrs["groups"]
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        cols = _grouped(_windows(xp, *w.shape[2:], dil, stride, oh, ow), groups, 1)
        dw = np.einsum("bgcpqij,bgoij->gocpq", cols, _grouped(g, groups, 1))
        return np.ascontiguousarray(dw.reshape(w.shape), dtype=x.dtype)


def _forward_grad(n, g):
    x, w = n.inputs
    attrs = dict(n.attrs)
    return [conv2d_grad_input(g, w, x, **attrs), conv2d_grad_filters(x, g, w, **attrs)]


def _input_grad(n, gx):
    g, w, x = n.inputs
    attrs = dict(n.attrs)
    return [conv2d(gx, w, **attrs), conv2d_grad_filters(gx, g, w, **attrs), None]


def _filters_grad(n, gw):
    x, g, w = n.inputs
    attrs = dict(n.attrs)
    return [conv2d_grad_input(g, gw, x, **attrs), conv2d(x, gw, **attrs), None]


conv2d = Conv("conv2d", role="forward", vjp_rule=_forward_grad)
conv2d_grad_input = Conv("conv2d_grad_input", role="input", vjp_rule=_input_grad, reads=(0, 1))
conv2d_grad_filters = Conv("conv2d_grad_filters", role="filters", vjp_rule=_filters_grad,
                           reads=(0, 1))
