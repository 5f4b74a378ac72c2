"""generated/ holds the build output of every spec in examples/specs/ (sources,
headers, package code, manifests; no binaries). This test fails when it is out
of date with the templates, the lowering or the specs. Refresh it with

    python -m kgen build examples/specs/*.py

(run from the repository root; it needs a C compiler, and its binaries are
ignored by git).
"""
import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GENERATED = REPO / "generated"
SPECS = sorted((REPO / "examples" / "specs").glob("*.py"))
REFRESH = "python -m kgen build examples/specs/*.py"
# what generated/ keeps in git: text only (binaries and initial values are ignored)
TRACKED = {".c", ".h", ".py", ".json", ".cu"}


def tracked_files(pkg):
    return sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*")
                  if p.is_file() and p.suffix in TRACKED and "__pycache__" not in p.parts)


def without_build(manifest_text):
    """The manifest minus its "build" section (the compiler and flags of the machine
    that refreshed generated/, which a sources-only build here does not fill in)."""
    data = json.loads(manifest_text)
    data.pop("build")
    return json.dumps(data, indent=2) + "\n"


def test_every_spec_has_its_package():
    assert SPECS, "no example specs"
    packages = sorted(p.name for p in GENERATED.iterdir() if (p / "manifest.json").is_file())
    assert packages == [s.stem for s in SPECS], f"generated/ is stale: run `{REFRESH}`"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The refresh command's sources, written (no compiler) into a temporary folder."""
    out = tmp_path_factory.mktemp("fresh")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.pop("KGEN_FLOATX", None)
    proc = subprocess.run([sys.executable, "-m", "kgen", "build", *map(str, SPECS), "-o", str(out),
                           "--sources-only", "-q"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_generated_is_up_to_date(spec, fresh):
    fresh, committed = fresh / spec.stem, GENERATED / spec.stem
    assert tracked_files(committed) == tracked_files(fresh), f"generated/ is stale: run `{REFRESH}`"
    for rel in tracked_files(fresh):
        want, got = (fresh / rel).read_text(), (committed / rel).read_text()
        if rel == "manifest.json":
            assert json.loads(got)["build"], "generated/ comes from a full build, with its flags"
            want, got = without_build(want), without_build(got)
        if want != got:
            diff = "".join(list(difflib.unified_diff(
                got.splitlines(True), want.splitlines(True), f"generated/{spec.stem}/{rel}",
                "freshly generated"))[:60])
            pytest.fail(f"generated/{spec.stem}/{rel} is stale: run `{REFRESH}`\n{diff}")
