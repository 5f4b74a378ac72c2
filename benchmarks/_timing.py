"""What the benchmark scripts share: the median of timed calls, and optional
comparison libraries (a column is skipped where one is not installed)."""
import time


def median_time(fn, repeat=7, number=1):
    fn()  # warm up (first-call costs, page faults)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return sorted(times)[len(times) // 2]


def optional(name):
    try:
        return __import__(name)
    except Exception:
        return None
