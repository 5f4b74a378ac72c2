"""What the benchmark scripts share: the median of timed calls, and optional
comparison libraries (a column is skipped where one is not installed)."""
import time


def median_time(fn, repeat=7, number=1, warmup=1, settle=0.0):
    """The median of `repeat` timings of `number` calls, after `warmup` calls
    and, with `settle`, untimed calls for at least that many seconds."""
    for _ in range(warmup):  # first-call costs, page faults, thread pools starting
        fn()
    t_end = time.perf_counter() + settle
    while time.perf_counter() < t_end:  # the previous tool's threads go idle, ours settle
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return sorted(times)[len(times) // 2]


def median_times(fns, repeat=7, number=1):
    """median_time of each of `fns`, timed in turns (one call of each per
    round), so that a machine whose load changes meanwhile weighs on all alike."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            ts.append((time.perf_counter() - t0) / number)
    return [sorted(ts)[len(ts) // 2] for ts in times]


def optional(name):
    try:
        return __import__(name)
    except Exception:
        return None
