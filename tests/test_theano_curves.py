"""Unmodified Theano programs print Theano 1.0.5's training curves under kgen.

The programs in tests/theano_programs import `theano` and nothing of kgen.
Here `theano` and every `theano.X` module resolve to `kgen` and `kgen.X` (the
only change a user makes is `import kgen as theano`, which these programs
cannot make and stay runnable under Theano). The oracle is real Theano:
tests/data/theano_curves.json holds the curves Theano 1.0.5 printed for the
same programs, recorded by tools/theano_reference.py (which says how to rerun
it). Every program is deterministic (seeded NumPy data and initial weights,
no random streams), float64, so the curves must agree to rounding.
"""
import importlib
import importlib.abc
import importlib.util
import json
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "data", "theano_curves.json")) as _f:
    REFERENCE = json.load(_f)


class _TheanoIsKgen(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves `theano[.X]` to the already importable `kgen[.X]` module."""

    def find_spec(self, name, path=None, target=None):
        if name == "theano" or name.startswith("theano."):
            target_name = "kgen" + name[len("theano"):]
            if importlib.util.find_spec(target_name) is None:
                return None
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("kgen" + spec.name[len("theano"):])

    def exec_module(self, module):
        pass


@pytest.fixture
def theano_alias():
    finder = _TheanoIsKgen()
    before = set(sys.modules)
    sys.meta_path.insert(0, finder)
    sys.path.insert(0, HERE)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(HERE)
        for name in set(sys.modules) - before:
            if name == "theano" or name.startswith(("theano.", "theano_programs")):
                del sys.modules[name]


@pytest.mark.parametrize("program", sorted(REFERENCE["curves"]))
def test_program_prints_theanos_training_curve(theano_alias, program, capsys):
    import kgen
    assert kgen.config.floatX == "float64"
    module = importlib.import_module("theano_programs." + program)
    assert module.theano is kgen          # the program really ran on kgen
    curve = module.main()
    want = REFERENCE["curves"][program]
    assert len(curve) == len(want)
    np.testing.assert_allclose(curve, want, rtol=1e-9, atol=1e-12)
    assert "epoch 0" in capsys.readouterr().out


def test_every_program_has_a_reference_curve():
    sys.path.insert(0, HERE)
    try:
        from theano_programs import PROGRAMS
    finally:
        sys.path.remove(HERE)
    assert sorted(PROGRAMS) == sorted(REFERENCE["curves"])
    assert REFERENCE["theano"] == "1.0.5" and REFERENCE["floatX"] == "float64"
