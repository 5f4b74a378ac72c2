"""What a package holds, as data: its kernels (lowered plans and their
arguments) and the shared variables they use, checked for the names a Python
module and a C header need. Templates render this; nothing here writes files.
"""
import keyword
from dataclasses import dataclass, field

import numpy as np

from ..dask.stages import package_stages
from ..errors import KgenError
from ..lower.names import KernelNames
from ..lower.plan import trims

# Names the package's __init__.py defines itself (internals start with "_"), and, for
# the C symbols <package>_cuda_init... of the GPU launcher, its helpers' names.
RESERVED = {"KgenError", "KgenIndexError", "KgenTypeError", "ShapeError", "device",
            "DeviceArray", "BackendUnavailableError", "cuda", "cuda_init", "cuda_device",
            "cuda_alloc", "cuda_free", "cuda_upload", "cuda_download"}


class PackageError(KgenError):
    """The kernels cannot become a package (an unnamed shared variable, a name clash...)."""


@dataclass
class KernelModel:
    name: str                 # the module attribute: the user's name folded (kgen.lower.names)
    kernel: object            # kg.Kernel
    plan: object              # kgen.lower.plan.Plan
    inputs: list              # Params, role input
    shared: list              # Params, role shared (read by the kernel, in C argument order)
    outputs: list             # Params, role output
    updates: list             # Params, role update
    update_targets: list      # the shared variable's name for each update
    dask: dict = None         # its split for Dask arrays (kgen/runtime/dask_exec.py's
                              # description), or {"unsplittable": why}
    dask_plans: list = field(default_factory=list)  # the split's chunk and tail kernels

    @property
    def single(self):
        return self.kernel.single

    @property
    def lengths(self):
        """Params, role length: outputs' lengths known only after the run (until())."""
        return [p for p in self.plan.params if p.role == "length"]

    @property
    def trims(self):
        """(output index, length index) pairs: core.Kernel's `trims`."""
        return trims(self.plan)

    @property
    def label(self):
        """What the user named the kernel."""
        return self.kernel.label

    @property
    def symbol(self):
        """The C function's name: `<package>_<name>` (and `<symbol>_shapes`)."""
        return self.plan.name

    @property
    def out_shape_len(self):
        return sum(p.ndim for p in self.outputs + self.updates)

    def input_names(self):
        return [p.var.name for p in self.inputs]


@dataclass
class SharedModel:
    name: str
    var: object               # kg.shared variable
    value: np.ndarray = field(repr=False)

    @property
    def dtype(self):
        return self.value.dtype.name

    @property
    def ndim(self):
        return self.value.ndim

    @property
    def filename(self):
        return f"shared/{self.name}.npy"


@dataclass
class PackageModel:
    name: str
    spec_file: str            # the spec's file name (never a path: builds are relocatable)
    version: str              # kgen's
    kernels: list
    shared: list

    @property
    def plans(self):
        return [k.plan for k in self.kernels]

    @property
    def c_plans(self):
        """Every entry point of the C extension: the kernels, then their Dask stage kernels."""
        return self.plans + [p for k in self.kernels for p in k.dask_plans]


def check_package_name(name):
    """A package name must be importable and is the C namespace of its kernels
    (`NAME_kernel`); returns the message, or None when it is fine."""
    if not (name.isascii() and name.isidentifier()) or keyword.iskeyword(name):
        return (f"{name!r} is not a valid package name (use ASCII letters, digits and _, "
                f"starting with a letter)")
    if name.startswith("_") or name.lower() == "kg" or name.startswith(("Py", "PY")):
        return (f"{name!r} cannot be a package name: its kernels' C functions are named "
                f"{name}_KERNEL, and names starting with _, kg_/KG_ or Py/PY belong to the C "
                f"implementation, kgen and Python's C API")
    return None


def build_model(name, spec_file, kernels, version, optimize=True, on_kernel=None):
    """Lower every kernel and collect the package's names; raises PackageError.

    `on_kernel(kernel_name, seconds)` is called after each kernel is lowered.
    """
    import time
    problem = check_package_name(name)
    if problem:
        raise PackageError(problem)
    models, shared, by_name, labels = [], {}, {}, {}
    names = KernelNames(name, reserved=sorted(RESERVED))
    for kernel in kernels:
        if kernel.label in labels:
            raise PackageError(f"two kernels are named {kernel.label!r}; rename one of them")
        labels[kernel.label] = kernel
        start = time.perf_counter()
        attr, symbol = names.claim(kernel.label)
        plan = kernel.plan(optimize, symbol=symbol)
        model = _kernel_model(attr, kernel, plan)
        model.dask, model.dask_plans = package_stages(kernel, symbol, optimize)
        for p in model.shared:
            var = p.var
            if not var.name:
                raise PackageError(
                    f"kernel {kernel.label!r}: it uses an unnamed shared variable ({var.ndim}-d "
                    f"{var.dtype}); a package exposes shared variables by name, so give it one: "
                    f"kg.shared(value, name='...')")
            other = by_name.setdefault(var.name, var)
            if other is not var:
                raise PackageError(f"two different shared variables are named {var.name!r}; "
                                   f"rename one of them")
            if id(var) not in shared:
                shared[id(var)] = SharedModel(var.name, var, np.asarray(var.get_value()))
        models.append(model)
        if on_kernel:
            on_kernel(kernel.label, time.perf_counter() - start)
    # module attributes in the order the spec created them (not the order some
    # kernel happens to read them in)
    ordered = sorted(shared.values(), key=lambda s: s.var.uid)
    _check_names(models, ordered)
    return PackageModel(name, spec_file, version, models, ordered)


def _kernel_model(attr, kernel, plan):
    params = {role: [p for p in plan.params if p.role == role]
              for role in ("input", "shared", "output", "update")}
    targets = [s.name for s, _ in kernel.updates]
    return KernelModel(attr, kernel, plan, params["input"], params["shared"],
                       params["output"], params["update"], targets)


def _check_names(kernels, shared):
    """Module attributes (kernels, shared variables) must not collide. Kernel
    names are already apart (KernelNames), and so are their C symbols."""
    attrs = {k.name: f"kernel {k.label!r}" for k in kernels}
    for s in shared:
        if not s.name.isidentifier() or keyword.iskeyword(s.name) or s.name.startswith("_") \
                or s.name in RESERVED:
            raise PackageError(f"shared variable {s.name!r}: the name cannot be a module "
                               f"attribute; use a Python identifier without a leading _ "
                               f"(and not one of {sorted(RESERVED)})")
        if s.name in attrs:
            raise PackageError(f"shared variable {s.name!r} and {attrs[s.name]} would both be "
                               f"the package's attribute {s.name!r}; rename one of them")
        attrs[s.name] = f"shared variable {s.name!r}"
