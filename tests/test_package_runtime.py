"""A built package runs on kgen's own runtime: its _runtime.py is the very file kgen
imports, so it checks arguments, keeps shared values and handles threads as
kg.function does; and it refuses to load a damaged extension or shared value,
with a message naming the file, instead of crashing the interpreter.
"""
import importlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kgen as kg
from kgen.runtime import core

SPEC = textwrap.dedent("""
    import numpy as np
    import kgen as kg

    x = kg.fvector("x")
    dt = kg.fscalar("dt")
    grid = kg.dmatrix("grid")
    c = kg.shared(np.float64(0.0), name="c")
    w = kg.shared(np.arange(6.0).reshape(2, 3), name="w")

    scale = kg.kernel("scale", [x, dt], x * dt)
    total = kg.kernel("total", [grid], grid.sum())
    count = kg.kernel("count", [], c, updates=[(c, c + 1.0)])
    rows = kg.kernel("rows", [], w.sum(axis=1))
""")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """The spec above built into OUT/rtpkg (once), and its folder."""
    from kgen.package import build_package, load_spec
    out = tmp_path_factory.mktemp("rtpkg")
    spec_path = out / "rtpkg.py"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    build_package(spec.kernels, out / "build", "rtpkg", spec.path)
    return out / "build"


@pytest.fixture(scope="module")
def pkg(package):
    sys.path.insert(0, str(package))
    try:
        yield importlib.import_module("rtpkg")
    finally:
        sys.path.remove(str(package))


def test_runtime_file_is_kgens_own_byte_for_byte(package):
    with open(core.__file__, "rb") as f:
        ours = f.read()
    assert (package / "rtpkg" / "_runtime.py").read_bytes() == ours
    assert b"import kgen" not in ours and b"from kgen" not in ours and b"from ." not in ours
    from kgen.runtime import dask_exec   # and the one that runs kernels over Dask arrays
    with open(dask_exec.__file__, "rb") as f:
        ours = f.read()
    assert (package / "rtpkg" / "_dask_exec.py").read_bytes() == ours
    assert b"import kgen" not in ours and b"from kgen" not in ours
    assert b"\nimport dask" not in ours and b"\nfrom dask" not in ours   # only when called so
    from kgen.runtime.c import CFunction
    assert issubclass(CFunction, core.Kernel)   # kg.function calls through the same class


def test_float32_input_takes_a_list_of_python_floats(pkg):
    """The drift repro: the package used to refuse k([0.5, 1.5], ...)."""
    out = pkg.scale([0.5, 1.5], 2.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.float32([1.0, 3.0]))


def test_arguments_that_do_not_fit(pkg):
    ok = np.ones(2, np.float32)
    with pytest.raises(TypeError, match=r"input 'dt'.*1e\+300.*float32") as err:
        pkg.scale(ok, 1e300)
    assert isinstance(err.value, pkg.KgenTypeError)
    with pytest.raises(pkg.KgenTypeError, match=r"input 'x'.*float32"):
        pkg.scale([1.0, 1e300], 1.0)
    with pytest.raises(pkg.KgenTypeError, match=r"input 'dt'.*int of 2001 bits"):
        pkg.scale(ok, 2 ** 2000)
    with pytest.raises(pkg.KgenTypeError, match="input 'grid'"):
        pkg.total([[1.0, 2.0], [3.0]])
    assert pkg.total([[1.0, 2.0], [3.0, 4.0]]) == 10.0


def test_shared_values_in_other_layouts(pkg):
    base = np.arange(12.0).reshape(3, 4) - 5
    for value in (np.asfortranarray(base), base.astype(">f8"), base.T.copy().T,
                  np.repeat(base, 2, axis=0)[::2]):
        pkg.w.set_value(value)
        np.testing.assert_array_equal(pkg.rows(), base.sum(axis=1))
        assert pkg.w.get_value().flags.c_contiguous and pkg.w.get_value().dtype.isnative


def _on_threads(work, n=8):
    import threading
    errors = []

    def body(k):
        try:
            work(k)
        except BaseException as exc:  # noqa: BLE001  (re-raised below)
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_updates_from_eight_threads_are_atomic(pkg):
    pkg.c.set_value(0.0)
    _on_threads(lambda k: [pkg.count() for _ in range(2000)])
    assert pkg.c.get_value() == 16000


def test_calls_with_changing_shapes_from_eight_threads(pkg):
    def work(k):
        rng = np.random.default_rng(k)
        for _ in range(1000):
            v = rng.standard_normal(int(rng.integers(1, 4000))).astype(np.float32)
            np.testing.assert_array_equal(pkg.scale(v, 0.5), v * np.float32(0.5))

    _on_threads(work)


def test_the_extension_hash_is_recorded_beside_it_not_in_the_manifest(package):
    """The tracked manifest must not change with the machine's binary (cffi, gcc)."""
    import hashlib
    manifest = json.loads((package / "rtpkg" / "manifest.json").read_text())
    ext = package / "rtpkg" / manifest["build"]["extension"]
    recorded = (ext.parent / (ext.name + ".sha256")).read_text().strip()
    assert hashlib.sha256(ext.read_bytes()).hexdigest() == recorded
    assert "extension_sha256" not in manifest["build"]


# ---- damaged packages, imported in a subprocess -----------------------------------------
def _copy(package, tmp_path):
    import shutil
    shutil.copytree(package / "rtpkg", tmp_path / "rtpkg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "rtpkg"


def _import(folder):
    env = dict(os.environ, PYTHONPATH=str(folder))
    return subprocess.run([sys.executable, "-c", "import rtpkg; print('imported')"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_truncated_extension_is_an_import_error_not_a_crash(package, tmp_path):
    copy = _copy(package, tmp_path)
    ext = copy / json.loads((copy / "manifest.json").read_text())["build"]["extension"]
    data = ext.read_bytes()
    ext.write_bytes(data[:len(data) // 3])
    proc = _import(tmp_path)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)   # not killed by a signal
    assert "ImportError" in proc.stderr and str(ext) in proc.stderr
    assert "damaged" in proc.stderr and "imported" not in proc.stdout


def test_corrupt_shared_value_names_the_file_and_the_variable(package, tmp_path):
    copy = _copy(package, tmp_path)
    npy = copy / "shared" / "w.npy"
    npy.write_bytes(npy.read_bytes()[:-10])
    proc = _import(tmp_path)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError") and str(npy) in last and "'w'" in last, last
    npy.write_bytes(b"")
    proc = _import(tmp_path)
    assert proc.returncode == 1 and "'w'" in proc.stderr and str(npy) in proc.stderr


def test_big_endian_stored_value_loads_right(package, tmp_path):
    copy = _copy(package, tmp_path)
    np.save(copy / "shared" / "w.npy", (np.arange(6.0).reshape(2, 3) * 2).astype(">f8"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", "import rtpkg; print(rtpkg.rows().tolist())"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str([6.0, 24.0])


def test_kg_function_and_package_raise_kgens_classes():
    """Inside kgen the runtime's error classes are kgen's: one `except` catches both."""
    assert kg.ShapeError is core.ShapeError and kg.KgenTypeError is core.KgenTypeError
    assert kg.KgenError is core.KgenError and issubclass(kg.ShapeError, ValueError)


def test_a_package_kernel_takes_dask_arrays(pkg):
    """(More in tests/test_dask.py: on a cluster, and without kgen.)"""
    da = pytest.importorskip("dask.array", reason="kgen[dask] (dask[array]) is not installed")
    grid = np.arange(12.0).reshape(4, 3)
    total = pkg.total(da.from_array(grid, chunks=(1, 3)))
    assert isinstance(total, da.Array)
    assert total.compute(scheduler="synchronous") == grid.sum()
