"""How big gradients get, and how long they take to build.

For a chain of 1k and 10k ops and for reuse-heavy DAGs, prints the forward
graph's size (op nodes), the gradient's, their ratio, and the time kg.grad
takes. The DAGs reuse every value three times, so a naive tree walk would
build an exponential number of nodes (the "tree" column: the forward graph
unfolded into a tree); the gradient must stay linear in the forward graph.

    python benchmarks/bench_grad.py
"""
import time

import kgen as kg

CHAIN_OPS = [kg.sin, lambda y: y * 1.0001, kg.tanh, lambda y: y + 0.5, kg.sigmoid]


def chain(n):
    x = kg.vector("x")
    y = x
    for i in range(n):
        y = CHAIN_OPS[i % len(CHAIN_OPS)](y)
    return kg.sum(y), x


def reuse_dag(levels):
    """y <- y * y * 0.1 + sin(y), each level using y three times."""
    x = kg.vector("x")
    y = x
    for _ in range(levels):
        y = y * y * 0.1 + kg.sin(y)
    return kg.sum(y), x


def mlp(layers):
    """A dense tanh network with a softmax cross-entropy: the usual shape of a cost."""
    x, labels = kg.matrix("x"), kg.lvector("y")
    h, params = x, []
    for k in range(layers):
        W, b = kg.matrix(f"W{k}"), kg.vector(f"b{k}")
        params += [W, b]
        h = kg.tanh(kg.dot(h, W) + b)
    p = kg.softmax(h)
    return kg.mean(kg.tensor.nnet.categorical_crossentropy(p, labels)), params


def tree_size(expr):
    """Op nodes in the forward graph unfolded into a tree (every path counted)."""
    size = {}
    for node in kg.toposort([expr]):
        size[node] = (node.op is not None) + sum(size[i] for i in node.inputs)
    return size[expr]


def measure(name, cost, wrt):
    start = time.perf_counter()
    g = kg.grad(cost, wrt)
    seconds = time.perf_counter() - start
    forward, backward = kg.graph_size(cost), kg.graph_size(g)
    tree = tree_size(cost)
    tree = f"{tree:.3g}" if tree < 10 ** 300 else f"~1e{len(str(tree)) - 1}"
    print(f"{name:<22} {forward:>8} {tree:>10} {backward:>9} {backward / forward:>7.2f} "
          f"{seconds * 1e3:>9.1f}")
    return backward / forward


def main():
    print(f"{'graph':<22} {'forward':>8} {'tree':>10} {'gradient':>9} {'ratio':>7} "
          f"{'build ms':>9}")
    measure("chain 1k", *chain(1_000))
    measure("chain 10k", *chain(10_000))
    measure("reuse DAG 100 levels", *reuse_dag(100))
    measure("reuse DAG 1000 levels", *reuse_dag(1_000))
    measure("mlp 10 layers", *mlp(10))
    cost, x = chain(1_000)
    start = time.perf_counter()
    g2 = kg.grad(kg.sum(kg.grad(cost, x)), x)
    seconds = time.perf_counter() - start
    print(f"{'chain 1k, 2nd order':<22} {kg.graph_size(cost):>8} {'':>10} "
          f"{kg.graph_size(g2):>9} {kg.graph_size(g2) / kg.graph_size(cost):>7.2f} "
          f"{seconds * 1e3:>9.1f}")


if __name__ == "__main__":
    main()
