"""Theano's `theano.sandbox` names that programs import (rng_mrg)."""
from . import rng_mrg  # noqa: F401,E402
