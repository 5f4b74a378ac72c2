"""Record the training curves of tests/theano_programs under real Theano.

Run it in an environment with Theano 1.0.5 (it needs NumPy < 1.24), not in
kgen's: for instance

    python3 -m venv /tmp/theano-env
    /tmp/theano-env/bin/pip install "numpy<1.24" "scipy<1.11" theano==1.0.5
    THEANO_FLAGS='floatX=float64,blas.ldflags=' /tmp/theano-env/bin/python tools/theano_reference.py

(`blas.ldflags=` stops Theano 1.0.5 from reading a NumPy build setting that
NumPy 1.23 no longer has; Theano then uses its own NumPy C-API GEMM.) It
writes tests/data/theano_curves.json, which tests/test_theano_curves.py
compares kgen's run of the same programs against.
"""
import importlib
import json
import os
import sys

import numpy
import theano

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")


def main():
    sys.path.insert(0, TESTS)
    from theano_programs import PROGRAMS
    # Theano 1.0.5's compiled scan loop (Cython C) does not build against
    # Python 3.11's headers; with its module absent, scan runs the same inner
    # function from its Python loop, the fallback Theano itself takes.
    sys.modules["theano.scan_module.scan_perform_ext"] = None
    if theano.config.floatX != "float64":
        sys.exit("run with THEANO_FLAGS=floatX=float64")
    curves = {}
    for name in PROGRAMS:
        print("==", name)
        curves[name] = importlib.import_module("theano_programs." + name).main()
    record = {"theano": theano.__version__, "numpy": numpy.__version__,
              "python": sys.version.split()[0], "floatX": theano.config.floatX,
              "mode": str(theano.config.mode), "curves": curves}
    with open(os.path.join(TESTS, "data", "theano_curves.json"), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
