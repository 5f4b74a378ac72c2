"""All primitives (registered in op.REGISTRY on import) and the public functions."""
from . import (conv, elementwise, linalg, pool, random, reduce, sequence,  # noqa: F401
               shape)  # (registers the ops)
from .api import *  # noqa: F401,F403
from .api import sum, max, min, abs, round  # noqa: F401  (shadowed builtins, exported explicitly)
from .everyday import *  # noqa: F401,F403
from .everyday import all, any, pow  # noqa: F401  (shadowed builtins, exported explicitly)
