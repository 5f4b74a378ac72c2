"""Loading a spec file: run it like a script and collect its module-level kernels.

A spec is an ordinary Python file that declares kernels with `kg.kernel(...)`.
It runs under the module name `__kgen_spec__`, so an `if __name__ ==
"__main__":` demo block in it is skipped. The kernels are the module-level
`kg.Kernel` values, in the order their names were first assigned (a kernel
bound to two names counts once).
"""
import runpy
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..errors import KgenError
from ..function import Kernel


class SpecError(KgenError):
    """Base of the errors about a spec file itself (not about building it)."""


class SpecNotFoundError(SpecError):
    """The spec path does not name a readable file."""


class SpecRaisedError(SpecError):
    """Running the spec raised; `traceback_text` holds the spec's part of the traceback."""

    def __init__(self, message, traceback_text):
        super().__init__(message)
        self.traceback_text = traceback_text


class NoKernelsError(SpecError):
    """The spec ran but defines no module-level kernel."""


@dataclass
class Spec:
    path: Path          # as given (may be relative): messages only, never written out
    kernels: list       # kg.Kernel, in definition order

    @property
    def filename(self):
        return self.path.name

    @property
    def stem(self):
        return self.path.stem


def load_spec(path):
    """Run the spec at `path` and return its kernels; raises a SpecError subclass."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a spec file" if path.is_dir() else "does not exist"
        raise SpecNotFoundError(f"spec file {str(path)!r} {what}")
    try:
        namespace = runpy.run_path(str(path), run_name="__kgen_spec__")
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from a spec is a spec failure too
        raise SpecRaisedError(f"the spec {str(path)!r} raised {type(exc).__name__}: {exc}",
                              _spec_traceback(exc, path)) from exc
    kernels, seen = [], set()
    for value in namespace.values():
        if isinstance(value, Kernel) and id(value) not in seen:
            seen.add(id(value))
            kernels.append(value)
    if not kernels:
        raise NoKernelsError(_no_kernels_message(path, namespace))
    return Spec(path, kernels)


def _spec_traceback(exc, path):
    """The traceback from the spec's first frame on: the runpy and kgen frames above
    it only say how the spec was started."""
    tb_exc = traceback.TracebackException.from_exception(exc)
    frames = tb_exc.stack
    target = str(path.resolve())
    for k, frame in enumerate(frames):
        if _same_file(frame.filename, target):
            del frames[:k]
            break
    return "".join(tb_exc.format())


def _same_file(a, b):
    try:
        return str(Path(a).resolve()) == b
    except OSError:
        return False


def _no_kernels_message(path, namespace):
    message = (f"no kernels found in {str(path)!r}: declare them at module level with "
               f"kg.kernel(name, inputs, outputs, updates)")
    functions = [name for name, v in namespace.items()
                 if type(v).__name__.endswith("Function") and hasattr(v, "kernel")]
    if functions:
        message += (f" (it defines kg.function objects - {', '.join(functions)} - which "
                    f"are built for this process only; a spec declares kg.kernel instead)")
    return message
