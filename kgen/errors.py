"""kgen's exception classes: one base, so callers can catch everything kgen raises."""


# The four a call can raise are defined by the runtime, the module that packages carry
# verbatim, so that kg.function and the runtime's own checks raise one set of classes.
from .runtime.core import KgenError, KgenIndexError, KgenTypeError, ShapeError  # noqa: F401


class DisconnectedInputError(KgenError, ValueError):
    """A `wrt` variable that the cost does not depend on."""


class CompileError(KgenError):
    """The C or CUDA compiler rejected generated source.

    `output` is the compiler's stderr/stdout, `source_path` the kept source.
    """

    def __init__(self, message, output="", source_path=None):
        super().__init__(message)
        self.output = output
        self.source_path = source_path

    def __str__(self):
        text = super().__str__()
        if self.source_path:
            text += f"\n  source kept at: {self.source_path}"
        if self.output:
            text += "\n  compiler output:\n" + self.output.rstrip()
        return text


class CompilerNotFoundError(CompileError):
    """No usable compiler (cc / nvcc) on this machine."""


# GPU packages raise it too, from their copy of kgen/runtime/device.py: one class
from .runtime.device import BackendUnavailableError  # noqa: E402,F401
