"""`function(..., profile=True)`: where a compiled function's time goes.

Each call is timed in its phases: the argument checks (binding, casting,
static shapes), the C shape phase (run only for input shapes not seen before;
later calls reuse its answer), the kernel itself, and the rest (allocating
outputs, writing updates, Python). Inside the kernel, each step (a fused
loop, a reduction, a GEMM, a copy) is timed by the C code itself: a
profile=True function is built from source with a clock read around every
step (kgen/templates/c/kernel.c.jinja) and a NAME_step_seconds() to read the
sums. `f.profile.summary()` prints the table; like Theano, kgen prints it (to
stderr) at exit for every profiled function that was called.
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

    def __init__(self, name, steps=()):
        self.name = name
        self.steps = [f"{st.kind}: {st.comment}" for st in steps]
        self.step_totals = [0.0] * len(self.steps)
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
        if self.steps:
            print("  kernel steps:", file=file)
            for k, (label, sec) in enumerate(zip(self.steps, self.step_seconds())):
                share = 100 * sec / total if total else 0.0
                label = label if len(label) <= 70 else label[:67] + "..."
                print(f"    {k:>3} {sec:.6f} s {share:5.1f}%  {label}", file=file)

    def step_seconds(self):
        """Seconds spent in each kernel step, summed over the calls so far."""
        return list(self.step_totals)


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
        inner = getattr(function, "_f", function)  # the compiled one (under DebugMode)
        self._reader = reader = getattr(inner, "_step_seconds", None)
        steps = getattr(inner, "steps", ()) if reader else ()
        self.profile = stats = ProfileStats(function.__name__, steps)
        # the C timers are per module (functions built from the same source share
        # one): each call takes what its kernel added and zeroes them
        self._buf = inner._ffi.new("double[]", max(1, len(steps)))
        if reader:
            reader(self._buf, 1)
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
            stats = self.profile
            stats.total += time.perf_counter() - start
            stats.calls += 1
            if self._reader:
                self._reader(self._buf, 1)
                totals = stats.step_totals
                for k in range(len(totals)):
                    totals[k] += self._buf[k]


@atexit.register
def _print_profiles():
    for stats in list(_profiles):
        if stats.calls:
            stats.summary(sys.stderr)
