"""All primitives (registered in op.REGISTRY on import) and the public functions."""
from . import (conditional, conv, elementwise, linalg, pool, random, reduce, scan,  # noqa: F401
               sequence, shape)  # (registers the ops)
from .api import *  # noqa: F401,F403
from .api import sum, max, min, abs, round  # noqa: F401  (shadowed builtins, exported explicitly)
from .everyday import *  # noqa: F401,F403
from .everyday import all, any, pow  # noqa: F401  (shadowed builtins, exported explicitly)
