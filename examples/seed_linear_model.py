"""The seed's training program on kgen: its imports changed
(`import theano` -> `import kgen as theano`, `theano.tensor` -> `kgen.tensor`),
plus one fix to its data. As printed, the seed passes the whole (100, 10)
matrix X_train to the vector input x and a (100,) y_train for a 10-vector
output: Theano rejects that, and so does kgen, with a TypeError naming the
input and both shapes (tests/test_seed.py runs the verbatim program and checks
that message). Here each step trains on one (x, y) pair of matching shapes."""
import kgen as theano
import kgen.tensor as T
import numpy as np

# Define symbol variables
x = T.vector('x')
y = T.vector('y')
# Define neural network model
W = theano.shared(np.random.randn(10, 10), name='W')
b = theano.shared(np.random.randn(10), name='b')
output = T.dot(W, x) + b
# Definition cost function
cost = T.mean(T.square(output - y))
# Seeking the gradient
dW, db = T.grad(cost, [W, b])
# Definition training function
learning_rate = 0.1
train = theano.function(inputs=[x, y], outputs=cost,
                        updates=[(W, W - learning_rate * dW),
                                 (b, b - learning_rate * db)])
#
X_train = np.random.randn(100, 10)
y_train = np.random.randn(100, 10)
# Idou training model
for epoch in range(1000):
    cost_value = train(X_train[epoch % 100], y_train[epoch % 100])
    if epoch % 100 == 0:
        print(f'Epoch {epoch}, Cost: {cost_value:.4f}')
# predict
X_test = np.random.randn(10, 10)
y_pred = np.dot(W.get_value(), X_test.T) + b.get_value()
print('Prediction:', y_pred)
