"""Packages built by `python -m kgen build`: their layout and manifest, running them
with NumPy and cffi only (kgen blocked, no compiler on PATH), the same argument
checks as kg.function, and byte-identical output from two builds.

The example specs are built once for the module, by the command that
refreshes generated/ (into a temporary folder here).
"""
import hashlib
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "examples" / "specs").glob("*.py"))
NAMES = [spec.stem for spec in SPECS]
TEXT_SUFFIXES = {".c", ".h", ".py", ".json", ".cu"}


def run_kgen(*args, cwd, env_extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "kgen", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`python -m kgen build examples/specs/*.py -o OUT`, run from the repository."""
    out = tmp_path_factory.mktemp("packages")
    proc = run_kgen("build", *[s.relative_to(REPO) for s in SPECS], "-o", out, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def files_of(pkg):
    return sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def test_build_summary_and_progress(built):
    out, proc = built
    for spec in SPECS:
        assert f"kgen: built {spec.stem}: " in proc.stdout
        assert f"-> {out / spec.stem}" in proc.stdout
    assert "kgen: built mlp: 3 kernels (train, predict, probabilities) in " in proc.stdout
    # these builds take over a second each: a line per kernel, and the compile
    assert "kgen: kernel probabilities: lowered in " in proc.stderr
    assert "kgen: compiled mlp.c -> _mlp" in proc.stderr


@pytest.mark.parametrize("name", NAMES)
def test_layout(built, name):
    out, _ = built
    pkg = out / name
    manifest = json.loads((pkg / "manifest.json").read_text())
    ext = manifest["build"]["extension"]
    expected = {"__init__.py", "_runtime.py", "_dask_exec.py", f"{name}.c", f"{name}.h",
                "manifest.json", ext, f"{ext}.sha256"}
    expected |= {s["file"] for s in manifest["shared"]}
    assert set(files_of(pkg)) == expected       # cffi's wrapper is not left behind
    assert ext.startswith(f"_{name}.") and ext.endswith((".abi3.so", ".pyd"))
    # the manifest describes the package, and hashes what was written
    assert manifest["package"] == name and manifest["spec"]["file"] == f"{name}.py"
    assert manifest["targets"] == ["c"]
    for filename, entry in manifest["files"].items():
        assert hashlib.sha256((pkg / filename).read_bytes()).hexdigest() == entry["sha256"]
    assert set(manifest["files"]) == {"__init__.py", "_runtime.py", "_dask_exec.py", f"{name}.c",
                                      f"{name}.h"}
    build = manifest["build"]
    assert not any("native" in f for f in build["flags"])   # portable unless --native
    assert not any(f.startswith("-I") for f in build["flags"])
    assert "-fopenmp" not in build["flags"]
    header = (pkg / f"{name}.h").read_text()
    source = (pkg / f"{name}.c").read_text()
    for kernel in manifest["kernels"]:
        for signature in kernel["c_functions"].values():
            assert signature + ";" in header
        assert f"#define {name.upper()}_{kernel['name'].upper()}_OUT_SHAPE_LEN " \
               f"{kernel['out_shape_len']}" in header
    assert "Python.h" not in source and "Python.h" not in header
    # relocatable: no absolute paths anywhere in the sources
    for filename in manifest["files"]:
        text = (pkg / filename).read_text()
        assert str(out) not in text and str(REPO) not in text and os.path.expanduser("~") \
            not in text.replace("~/", "")


def test_manifest_lists_kernels_and_shared(built):
    out, _ = built
    manifest = json.loads((out / "linear_model" / "manifest.json").read_text())
    train, predict = manifest["kernels"]
    assert train["name"] == "train" and predict["name"] == "predict"
    assert train["python_name"] == "train" and train["c_name"] == "linear_model_train"
    assert train["c_functions"]["run"].startswith("int linear_model_train(")
    assert [i["name"] for i in train["inputs"]] == ["x", "y"]
    assert train["inputs"][0] == {"name": "x", "c_name": "in_x", "dtype": "float64",
                                  "shape": [None], "c_dims": ["in_x_d0"]}
    assert {u["shared"] for u in train["updates"]} == {"W", "b"}
    assert train["outputs"] == [{"name": "out", "c_name": "out", "dtype": "float64", "ndim": 0}]
    assert sorted(s["name"] for s in manifest["shared"]) == ["W", "b"]
    assert {"name": "W", "dtype": "float64", "shape": [10, 10], "file": "shared/W.npy"} \
        in manifest["shared"]
    assert manifest["kgen_version"]


def test_runs_with_numpy_and_cffi_only(built, tmp_path):
    """Every example package in a process where kgen cannot be imported and no
    compiler is on PATH: kernels against NumPy, training updates, argument checks."""
    out, _ = built
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {"PATH": str(empty_bin), "HOME": str(tmp_path), "PYTHONNOUSERSITE": "1"}
    if "SYSTEMROOT" in os.environ:
        env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "_package_check.py"), str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in ("linear_model: ok", "logistic_regression: ok", "mlp: ok", "particles: ok",
                 "copied package: ok", "kgen never imported: ok"):
        assert line in proc.stdout


def test_same_argument_checks_as_kg_function(tmp_path, monkeypatch):
    """The package's copy of the checks gives kg.function's exception types and messages
    (both built here from the same kernel objects)."""
    from kgen.package import build_package, load_spec
    from kgen.runtime.c import CFunction
    spec = load_spec(REPO / "examples" / "specs" / "particles.py")
    build_package(spec.kernels, tmp_path, "particles_same", spec.path)
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg = importlib.import_module("particles_same")
    ours, theirs = pkg.step, CFunction(spec.kernels[0])
    v = np.ones(4)
    bad_calls = [
        ((v, v, v), {}),                                   # too few
        ((v, v, v, v, 0.1, 0.2), {}),                      # too many
        ((v, v, v, v), {"dt": 0.1, "x": v}),               # twice
        ((v, v, v, v), {"when": 0.1}),                     # unknown name
        ((v, v, v), {"dt": 0.1}),                          # missing vy
        ((v, v, v, v.reshape(2, 2), 0.1), {}),             # ndim
        ((v, v, v, v.astype(np.complex128), 0.1), {}),     # dtype that does not cast
        ((v, v, v, v, "fast"), {}),                        # not numbers
        ((v, v, v, v, np.ones(3)), {}),                    # 1-d for a scalar
        ((v, v, v, np.ones(5), 0.1), {}),                  # shapes do not broadcast
        ((v, v, v, v, 10 ** 400), {}),                     # an int too big for float64
    ]
    for args, kwargs in bad_calls:
        with pytest.raises(Exception) as want:
            theirs(*args, **kwargs)
        with pytest.raises(Exception) as got:
            ours(*args, **kwargs)
        assert type(got.value).__name__ == type(want.value).__name__, (args, kwargs)
        assert str(got.value) == str(want.value), (args, kwargs)
        for base in (TypeError, ValueError, IndexError):
            assert isinstance(got.value, base) == isinstance(want.value, base)
    # and the same results for good calls, strided and cast inputs included
    # (to rounding: kg.function builds with -march=native, a package portably)
    x = np.arange(12.0)[::3]
    for got, want in zip(ours(x, x.astype(np.int32), x, x, 0.5),
                         theirs(x, x.astype(np.int32), x, x, 0.5)):
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_two_builds_are_byte_identical(built, tmp_path):
    """Another build, from another folder, into another folder, with another hash
    seed: every file (binaries aside) is byte for byte the same."""
    out, _ = built
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    for name in ("logistic_regression",):
        spec = REPO / "examples" / "specs" / f"{name}.py"
        proc = run_kgen("build", os.path.relpath(spec, elsewhere), "-o", "again", "-q",
                        cwd=elsewhere, env_extra={"PYTHONHASHSEED": "12345"})
        assert proc.returncode == 0, proc.stderr
        first, second = out / name, elsewhere / "again" / name
        assert files_of(first) == files_of(second)
        for rel in files_of(first):
            if rel.endswith((".so", ".pyd")):
                continue
            assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_sources_only_package_explains_the_missing_extension(tmp_path, monkeypatch):
    proc = run_kgen("build", REPO / "examples" / "specs" / "particles.py", "-o", tmp_path,
                    "--name", "particles_src", "--sources-only", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="cannot load its compiled kernels _particles_src"):
        importlib.import_module("particles_src")


# another cffi release installed: the backend and the package report it alike
FAKE_CFFI = ("import sys, _cffi_backend, cffi; "
             "_cffi_backend.__version__ = cffi.__version__ = sys.argv.pop(1); "
             "from kgen.cli import main; sys.exit(main(sys.argv[1:]))")


def test_manifest_does_not_record_the_installed_cffi(tmp_path):
    """The main job (build linear_model, train) must leave git status clean on a
    machine with another cffi release: the manifest records the wrapper's ABI
    and the cffi range, never the installed version."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    spec = REPO / "examples" / "specs" / "linear_model.py"
    manifests = []
    for fake in ("1.15.1", "97.3.0"):
        out = tmp_path / fake
        proc = subprocess.run([sys.executable, "-c", FAKE_CFFI, fake, "build", str(spec),
                               "-o", str(out), "-q"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        text = (out / "linear_model" / "manifest.json").read_text()
        assert fake not in text
        manifests.append(text)
    assert manifests[0] == manifests[1]
    build = json.loads(manifests[0])["build"]
    assert build["cffi"] == {"wrapper_abi": "0x2601", "requires": "cffi>=1.15"}
    # what the tracked manifest holds: the same build section (the compiler line
    # is the machine's own, so it is compared only where it is the same compiler)
    tracked = json.loads((REPO / "generated" / "linear_model" / "manifest.json").read_text())
    if tracked["build"]["compiler"] == build["compiler"]:
        assert manifests[0] == (REPO / "generated" / "linear_model" / "manifest.json").read_text()
    else:
        assert {**tracked["build"], "compiler": None} == {**build, "compiler": None}
