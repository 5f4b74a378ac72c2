"""`theano.compile.mode`: Mode, and the mode names kg.function accepts."""
from ..function_modes import MODES, Mode  # noqa: F401


def get_mode(name):
    """Theano's get_mode: the mode named `name` (checked), or `name` if it is a Mode."""
    from ..function_modes import resolve_mode
    resolve_mode(name)
    return name


def get_default_mode():
    from ..config import config
    return config.mode
