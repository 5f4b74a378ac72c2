"""examples/c/: a C program that includes a generated header and calls kernels,
compiled with cc and checked against NumPy; and every generated header and
source compiled as plain C99, without Python headers."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kgen.package import build_package, load_spec

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "examples" / "specs").glob("*.py"))
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler")


def sources(spec, outdir):
    """The package's sources, written without compiling (the C program needs no extension)."""
    spec = load_spec(spec)
    return build_package(spec.kernels, outdir, spec.stem, spec.path, compile=False).path


def particles_reference(n, steps, dt=0.01, g=9.81, k=0.05):
    """What examples/c/particles_demo.c computes, in NumPy."""
    angle = np.pi / 2 * np.arange(1, n + 1) / (n + 1)
    x, y = np.zeros(n), np.zeros(n)
    vx, vy = 30.0 * np.cos(angle), 30.0 * np.sin(angle)
    for _ in range(steps):
        speed = np.sqrt(vx ** 2 + vy ** 2)
        vx, vy = vx - dt * k * speed * vx, vy - dt * (g + k * speed * vy)
        x, y = x + dt * vx, y + dt * vy
    return np.stack([x, y, vx, vy, 0.5 * (vx ** 2 + vy ** 2) + g * y], axis=1)


def test_c_program_calls_the_generated_kernels(tmp_path):
    pkg = sources(REPO / "examples" / "specs" / "particles.py", tmp_path)
    exe = tmp_path / "particles_demo"
    # as the Makefile does: plain C99, libm only
    subprocess.run([CC, "-std=c99", "-O2", "-Wall", f"-I{pkg}",
                    str(REPO / "examples" / "c" / "particles_demo.c"), str(pkg / "particles.c"),
                    "-o", str(exe), "-lm"], check=True, capture_output=True, text=True)
    for n, steps in [(5, 100), (1, 0), (64, 250)]:
        run = subprocess.run([str(exe), str(n), str(steps)], check=True, capture_output=True,
                             text=True)
        got = np.array([[float(v) for v in line.split()] for line in run.stdout.splitlines()])
        np.testing.assert_allclose(got, particles_reference(n, steps), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_header_and_source_are_plain_c99(spec, tmp_path):
    pkg = sources(spec, tmp_path)
    name = spec.stem
    main = tmp_path / "main.c"
    main.write_text(f'#include "{name}.h"\n#include "{name}.h"\n'   # include guard
                    "int main(void) { return KG_OK; }\n")
    strict = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", f"-I{pkg}"]
    subprocess.run([CC, *strict, "-fsyntax-only", str(main)], check=True, capture_output=True)
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx:  # the header is usable from C++ too
        cpp = tmp_path / "main.cpp"
        cpp.write_text(main.read_text())
        subprocess.run([cxx, "-Wall", "-Werror", f"-I{pkg}", "-fsyntax-only", str(cpp)],
                       check=True, capture_output=True)
    # the source: C99 with nothing but the C library (the header's declarations match it)
    both = tmp_path / "both.c"
    both.write_text(f'#include "{name}.h"\n#include "{name}.c"\n')
    proc = subprocess.run([CC, "-std=c99", f"-I{pkg}", "-fsyntax-only", str(both)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
