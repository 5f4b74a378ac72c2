"""Global settings, read once from the environment (Theano's `config`)."""
import os

_FLOAT_DTYPES = ("float32", "float64")


class _Config:
    def __init__(self):
        self._floatX = "float64"
        self.floatX = os.environ.get("KGEN_FLOATX", "float64")

    @property
    def floatX(self):
        return self._floatX

    @floatX.setter
    def floatX(self, value):
        if value not in _FLOAT_DTYPES:
            raise ValueError(f"config.floatX must be one of {_FLOAT_DTYPES}, got {value!r}")
        self._floatX = value

    @property
    def debug(self):
        return os.environ.get("KGEN_DEBUG", "") not in ("", "0")


config = _Config()
