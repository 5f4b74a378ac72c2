"""tests/gpu runs only where the CUDA backend can: an NVIDIA GPU and its driver,
nvcc, and (for kg.function) PyCUDA or cuda-python. Elsewhere every test here
is skipped, with the reason. test_gpu_package*.py need no Python bindings: a
package's launcher uses the driver alone.

    python -m pytest tests/gpu          # on a GPU machine; tools/gpu_check.sh runs it all
"""
import sys
from pathlib import Path

import pytest

# the shared test helpers (op_table.py, ...) live one folder up
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _missing(driver_only=False):
    import kgen.runtime.cuda as rt
    reasons = [rt.driver_problem()] if driver_only else rt.missing()
    reasons = [r for r in reasons if r]
    if not reasons:
        from kgen.build import nvcc
        try:
            nvcc.find_nvcc()
        except Exception as exc:  # CompilerNotFoundError
            reasons.append(str(exc))
    return "; ".join(reasons)


REASON = _missing()
DRIVER_REASON = _missing(driver_only=True)
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.gpu)
            # test_gpu_package*.py: a package's launcher, which needs the driver alone
            reason = DRIVER_REASON if Path(str(item.fspath)).name.startswith("test_gpu_package") \
                else REASON
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"needs a CUDA GPU: {reason}"))


@pytest.fixture(scope="session")
def gpu():
    """The PyCUDA driver kgen uses (its device's name and compute capability)."""
    import kgen.runtime.cuda as rt
    return rt.default_driver()
