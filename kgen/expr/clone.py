"""Graph substitution: Theano's `clone(output, replace=...)` and the `givens`
of kg.function. Iterative (no recursion, so deep chains are fine) and through
make_apply, so the rebuilt graph is hash-consed like any other: rebuilding a
node whose inputs did not change gives back the very same node."""
from ..errors import KgenTypeError
from .graph import toposort
from .node import Variable, as_variable, make_apply


def replacement_pairs(replace, what="replace", target=Variable, noun="replacement",
                      verb="replaced"):
    """[(variable, replacement)] from a dict or a list of pairs, each checked:
    a `target` (a variable; updates: a shared variable), named once, and a
    replacement of its dtype and ndim (TypeError otherwise). One rule for
    givens, clone(replace=) and updates."""
    if replace is None:
        return []
    pairs = list(replace.items()) if isinstance(replace, dict) else list(replace)
    kind = "a symbolic variable" if target is Variable else f"a {target.__name__.lower()} variable"
    out, seen = [], set()
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise KgenTypeError(f"{what}: expected (variable, expression) pairs, got {pair!r}")
        var, new = pair
        if not isinstance(var, target):
            raise KgenTypeError(f"{what}: {var!r} is not {kind}")
        new = as_variable(new)
        label = var.name or repr(var)
        if new.dtype != var.dtype or new.ndim != var.ndim:
            raise KgenTypeError(
                f"{what}: {label} is {var.ndim}-d {var.dtype}, but its {noun} is "
                f"{new.ndim}-d {new.dtype}; cast it (e.g. .astype('{var.dtype}'))")
        if id(var) in seen:
            raise KgenTypeError(f"{what}: {label} is {verb} twice")
        seen.add(id(var))
        out.append((var, new))
    return out


def substitute(exprs, pairs):
    """`exprs` (a list) with every variable of `pairs` replaced at once (the
    replacements themselves are not searched)."""
    if not pairs:
        return list(exprs)
    new = {id(v): r for v, r in pairs}
    for node in toposort([e for e in exprs if id(e) not in new]):
        if id(node) in new or node.op is None:
            continue
        inputs = [new.get(id(i), i) for i in node.inputs]
        if all(a is b for a, b in zip(inputs, node.inputs)):
            continue
        rebuilt = make_apply(node.op, inputs, node.attrs, node.op.infer(inputs, dict(node.attrs)))
        if rebuilt.name is None and node.name is not None:
            rebuilt.name = node.name
        new[id(node)] = rebuilt
    return [new.get(id(e), e) for e in exprs]


def clone(output, replace=None, strict=True, share_inputs=True):
    """theano.clone: `output` (a variable or a list of them) with the variables
    of `replace` (a dict or (variable, expression) pairs) replaced. kgen graphs
    are immutable and hash-consed, so nodes that do not depend on a replaced
    variable are shared, not copied (share_inputs is accepted for Theano's
    signature). The replacements must have the replaced variables' dtype and ndim."""
    single = not isinstance(output, (list, tuple))
    outs = [as_variable(o) for o in ([output] if single else output)]
    got = substitute(outs, replacement_pairs(replace, "clone"))
    return got[0] if single else type(output)(got) if isinstance(output, tuple) else got
