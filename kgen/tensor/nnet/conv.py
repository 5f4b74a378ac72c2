"""Theano's old `theano.tensor.nnet.conv.conv2d`: the same convolution, with the
hints spelled image_shape/filter_shape."""
from .abstract_conv import conv2d as _conv2d


def conv2d(input, filters, image_shape=None, filter_shape=None, border_mode="valid",
           subsample=(1, 1), **kwargs):
    """A true convolution (filters flipped), 'valid' or 'full' (any conv2d border_mode)."""
    return _conv2d(input, filters, input_shape=image_shape, filter_shape=filter_shape,
                   border_mode=border_mode, subsample=subsample, **kwargs)


__all__ = ["conv2d"]
