"""Global settings, read once from the environment (Theano's `config`).

Besides kgen's own settings, the flags Theano programs set are accepted so
those programs run unchanged. Honoured: `floatX`, `mode` (kg.function's
default mode), `on_unused_input` (its default; None means kgen's rule:
accept), `profile` (its default). Accepted and stored, with no effect:
`warn.<anything>` (e.g. `warn.sum_div_dimshuffle_bug`), `warn_float64`,
`optimizer` ('None' makes the default mode FAST_COMPILE), `allow_gc` (kgen
frees a call's temporaries when the call returns), `device`,
`exception_verbosity`, `compute_test_value`, `cxx`, `openmp`, and any other
attribute a program sets.
"""
import os

_FLOAT_DTYPES = ("float32", "float64")


class _Section:
    """A group of flags such as `config.warn`: any attribute may be set; unset ones
    read as False (Theano's warn.* flags are booleans)."""

    def __init__(self, name):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        return False

    def __repr__(self):
        flags = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return f"<config.{self._name} {flags}>"


class _Config:
    def __init__(self):
        self._floatX = "float64"
        self.floatX = os.environ.get("KGEN_FLOATX", "float64")
        self._mode = "FAST_RUN"
        self._on_unused_input = None
        self.profile = False
        self.allow_gc = True
        self.optimizer = "fast_run"
        self.warn_float64 = "ignore"
        self.exception_verbosity = "low"
        self.compute_test_value = "off"
        self.device = "cpu"
        self.cast_policy = "custom"
        self.warn = _Section("warn")
        self.gpuarray = _Section("gpuarray")
        self.dnn = _Section("dnn")
        self.lib = _Section("lib")

    @property
    def floatX(self):
        return self._floatX

    @floatX.setter
    def floatX(self, value):
        if value not in _FLOAT_DTYPES:
            raise ValueError(f"config.floatX must be one of {_FLOAT_DTYPES}, got {value!r}")
        self._floatX = value

    @property
    def mode(self):
        """kg.function's default mode; config.optimizer='None' turns FAST_RUN into
        FAST_COMPILE, as in Theano."""
        if self._mode == "FAST_RUN" and self.optimizer in (None, "None"):
            return "FAST_COMPILE"
        return self._mode

    @mode.setter
    def mode(self, value):
        from .function_modes import resolve_mode
        resolve_mode(value)  # a clear error for an unknown mode, here and not later
        self._mode = value

    @property
    def on_unused_input(self):
        return self._on_unused_input

    @on_unused_input.setter
    def on_unused_input(self, value):
        if value not in (None, "raise", "warn", "ignore"):
            raise ValueError(f"config.on_unused_input must be 'raise', 'warn' or 'ignore', "
                             f"got {value!r}")
        self._on_unused_input = value

    @property
    def debug(self):
        return os.environ.get("KGEN_DEBUG", "") not in ("", "0")


config = _Config()
