"""`function(..., profile=True)`: where a compiled function's time goes.

Each call is timed in its phases: the argument checks (binding, casting,
static shapes), the C shape phase (run only for input shapes not seen before;
later calls reuse its answer), the kernel itself, and the rest (allocating
outputs, writing updates, Python). The kernel is one C call, so its steps
(loops, GEMMs, reductions) are not timed separately. `f.profile.summary()`
prints the table; like Theano, kgen prints it at exit for every profiled
function that was called.
"""
import atexit
import sys
import time
import weakref

from .function_modes import FunctionWrapper

_profiles = weakref.WeakSet()


class ProfileStats:
    """Call counts and seconds per phase of one function's calls."""

    PHASES = ("argument checks", "shape phase", "kernel")

    def __init__(self, name):
        self.name = name
        self.calls = 0
        self.total = 0.0
        self.seconds = dict.fromkeys(self.PHASES, 0.0)
        self.shape_runs = 0
        _profiles.add(self)

    def summary(self, file=None):
        """Print the table (to sys.stdout unless `file` is given)."""
        file = file or sys.stdout
        total = self.total
        print(f"Function profile: {self.name}", file=file)
        print(f"  {self.calls} call(s), {total:.6f} s in calls"
              + (f" ({1e6 * total / self.calls:.1f} us per call)" if self.calls else ""),
              file=file)
        rest = total - sum(self.seconds.values())
        rows = list(self.seconds.items()) + [("other (outputs, updates, Python)", max(rest, 0))]
        for phase, sec in rows:
            share = 100 * sec / total if total else 0.0
            note = ""
            if phase == "shape phase":
                note = f"  (run {self.shape_runs} time(s); other calls reused its result)"
            print(f"  {phase:<34} {sec:.6f} s {share:5.1f}%{note}", file=file)


def _timed(function, stats, phase, count=False):
    clock = time.perf_counter

    def timed(*args):
        start = clock()
        try:
            return function(*args)
        finally:
            stats.seconds[phase] += clock() - start
            if count:
                stats.shape_runs += 1
    return timed


class ProfiledFunction(FunctionWrapper):
    """A function whose calls are timed into `self.profile` (a ProfileStats)."""

    def __init__(self, function):
        super().__init__(function)
        self.profile = stats = ProfileStats(function.__name__)
        inner = getattr(function, "_f", function)  # the compiled one (under DebugMode)
        sig = inner.signature
        sig.bind = _timed(sig.bind, stats, "argument checks")
        if hasattr(inner, "_run"):
            inner._run = _timed(inner._run, stats, "kernel")
            inner._shapes = _timed(inner._shapes, stats, "shape phase", count=True)

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._f(*args, **kwargs)
        finally:
            self.profile.total += time.perf_counter() - start
            self.profile.calls += 1


@atexit.register
def _print_profiles():
    for stats in list(_profiles):
        if stats.calls:
            stats.summary(sys.stderr)
