"""Theano programs that run unchanged under real Theano 1.0.5 and under kgen.

Each module is a complete training program written the way the classic
deeplearning.net tutorials write theirs (`import theano`, `theano.shared`,
`theano.function(..., updates=..., givens=...)`), on synthetic data drawn from
a seeded NumPy RandomState, with no random streams: so it is deterministic, and
`main()` returns the training curve it prints. `tools/theano_reference.py` runs
them under Theano and records the curves; tests/test_theano_curves.py runs them
under kgen, with `theano` resolving to `kgen`, and compares.
"""
PROGRAMS = ["logistic_sgd", "mlp", "lenet", "contractive_ae", "elman_rnn", "lstm"]
