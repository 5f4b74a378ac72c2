"""A compiled kernel that travels to Dask workers, which need no compiler.

The client compiles (or loads from its disk cache) every chunk kernel. A
ShippedKernel pickles as the bytes of that built extension, its sha256 and
the kernel's signature; a worker writes the bytes once into a private
temporary folder, checks them against the sha256 and loads them with the
runtime every package uses (kgen/runtime/core.py). Each process loads a
module once.
"""
import hashlib
import os
import tempfile
import threading

from ..runtime import core

_modules = {}  # sha256 -> loaded extension, in this process
_lock = threading.Lock()
_folder = None


class ShippedKernel:
    """Calls one chunk kernel: `k(*arrays)` returns the list of its outputs."""

    def __init__(self, blob, sha256, modname, c_name, name, inputs, outputs, values):
        self.blob, self.sha256, self.modname = blob, sha256, modname
        self.c_name, self.name = c_name, name
        self.inputs, self.outputs, self.values = inputs, outputs, values
        self._kernel = None

    @classmethod
    def from_function(cls, f):
        """The kernel of a CFunction built on this machine."""
        module = f._module
        with open(module.__file__, "rb") as fh:
            blob = fh.read()
        sha = hashlib.sha256(blob).hexdigest()
        with _lock:
            _modules.setdefault(sha, module)
        plan = f.kernel.plan(f._optimize)
        outputs = [(p.name, p.dtype, p.ndim) for p in plan.params if p.role == "output"]
        inputs = [(v.name, v.dtype, v.type.shape) for v in f.kernel.inputs]
        return cls(blob, sha, module.__name__, plan.name, f.kernel.name, inputs, outputs,
                   tuple(f._values))

    def __reduce__(self):
        return ShippedKernel, (self.blob, self.sha256, self.modname, self.c_name, self.name,
                               self.inputs, self.outputs, self.values)

    def kernel(self):
        """The runtime's Kernel over the loaded module (loaded on first use)."""
        if self._kernel is None:
            self._kernel = core.Kernel(_load(self), self.c_name, self.name, self.inputs, (),
                                       self.outputs, (), single=False, values=self.values)
        return self._kernel

    def __call__(self, *arrays):
        return self.kernel()(*arrays)


def _load(shipped):
    with _lock:
        module = _modules.get(shipped.sha256)
        if module is None:
            module = _modules[shipped.sha256] = _load_bytes(shipped)
        return module


def _private_folder():
    """One folder per process, created 0700 by mkdtemp (a shared, predictable
    folder could hold someone else's library under the same name)."""
    global _folder
    if _folder is None:
        _folder = tempfile.mkdtemp(prefix="kgen-dask-")
    return _folder


def _load_bytes(shipped):
    """Write the extension into this process's private folder and import it."""
    from ..build.cache import load_extension
    if hashlib.sha256(shipped.blob).hexdigest() != shipped.sha256:
        raise ImportError(f"kgen.dask: the module of kernel {shipped.name!r} arrived damaged")
    path = os.path.join(_private_folder(), shipped.modname + ".so")
    with open(path, "wb") as fh:
        fh.write(shipped.blob)
    return load_extension(path, shipped.modname)
