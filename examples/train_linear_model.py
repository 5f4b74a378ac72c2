"""Train the seed's linear model with the package `python -m kgen build` made of
examples/specs/linear_model.py. It imports NumPy and the built package only:
no kgen, no compiler.

    python -m kgen build examples/specs/linear_model.py     (writes generated/linear_model/)
    python examples/train_linear_model.py [OUTDIR]          (OUTDIR: default ./generated)

The data has a signal to learn: y = W_true @ x + b_true plus a little noise,
so the printed cost falls towards the noise floor (0.01**2 = 1e-4) and the
weights approach W_true and b_true.
"""
import sys

import numpy as np

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "generated")
import linear_model  # noqa: E402  (the built package)

rng = np.random.default_rng(0)
W_true = rng.standard_normal((10, 10))
b_true = rng.standard_normal(10)
noise = 0.01
X_train = rng.standard_normal((100, 10))
y_train = X_train @ W_true.T + b_true + noise * rng.standard_normal((100, 10))
for epoch in range(1000):
    cost_value = linear_model.train(X_train[epoch % 100], y_train[epoch % 100])
    if epoch % 100 == 0:
        print(f'Epoch {epoch}, Cost: {cost_value:.6f}')
# predict
X_test = rng.standard_normal((10, 10))
prediction = linear_model.predict(X_test)
print('Prediction error (max |predict - true|):',
      f'{np.max(np.abs(prediction - (X_test @ W_true.T + b_true))):.4f}')
W, b = linear_model.W.get_value(), linear_model.b.get_value()
print('W, b after training:', W.shape, b.shape)
print(f'max |W - W_true|: {np.max(np.abs(W - W_true)):.4f}, '
      f'max |b - b_true|: {np.max(np.abs(b - b_true)):.4f}')
