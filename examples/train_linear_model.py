"""Train the seed's linear model with the package `python -m kgen build` made of
examples/specs/linear_model.py. It imports NumPy and the built package only:
no kgen, no compiler.

    python -m kgen build examples/specs/linear_model.py     (writes generated/linear_model/)
    python examples/train_linear_model.py [OUTDIR]          (OUTDIR: default ./generated)
"""
import sys

import numpy as np

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "generated")
import linear_model  # noqa: E402  (the built package)

rng = np.random.default_rng(0)
X_train = rng.standard_normal((100, 10))
y_train = rng.standard_normal((100, 10))
for epoch in range(1000):
    cost_value = linear_model.train(X_train[epoch % 100], y_train[epoch % 100])
    if epoch % 100 == 0:
        print(f'Epoch {epoch}, Cost: {cost_value:.4f}')
# predict
X_test = rng.standard_normal((10, 10))
print('Prediction:', linear_model.predict(X_test))
print('W, b after training:', linear_model.W.get_value().shape, linear_model.b.get_value().shape)
