"""tests/gpu runs only where the CUDA backend can: PyCUDA, an NVIDIA GPU and its
driver, and nvcc. Elsewhere every test here is skipped, with the reason.

    python -m pytest tests/gpu          # on a GPU machine: pip install 'kgen[cuda]'
"""
import sys
from pathlib import Path

import pytest

# the shared test helpers (op_table.py, ...) live one folder up
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _missing():
    import kgen.runtime.cuda as rt
    reasons = rt.missing()
    if not reasons:
        from kgen.build import nvcc
        try:
            nvcc.find_nvcc()
        except Exception as exc:  # CompilerNotFoundError
            reasons.append(str(exc))
    return "; ".join(reasons)


REASON = _missing()
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.gpu)
            if REASON:
                item.add_marker(pytest.mark.skip(reason=f"needs a CUDA GPU: {REASON}"))


@pytest.fixture(scope="session")
def gpu():
    """The PyCUDA driver kgen uses (its device's name and compute capability)."""
    import kgen.runtime.cuda as rt
    return rt.default_driver()
