"""Theano's old `theano.tensor.signal.downsample.max_pool_2d`."""
from .pool import pool_2d


def max_pool_2d(input, ds, ignore_border=None, st=None, padding=(0, 0), mode="max"):
    """pool_2d with the old names; ignore_border=None is False, as in Theano 0.8."""
    return pool_2d(input, ws=ds, ignore_border=bool(ignore_border), stride=st, pad=padding,
                   mode=mode)


__all__ = ["max_pool_2d"]
