"""Shape-phase integer arithmetic: statements with folding of known values.

Every run-time dimension, stride and offset is an Int: a Python int when it is
known while generating code, else the name of an int64_t variable set by one
Stmt. Folding keeps the generated shape phase short.

Sizes never wrap: a product, sum or difference outside int64 is a ShapeError,
at generation time when both operands are known, else at run time (the
statement checks, as NumPy refuses an array too big for its index type).
The message names `where`, the op whose shape is being computed.
"""
from ..errors import ShapeError
from .names import Names
from .plan import Stmt

INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1


class IntBuilder:
    def __init__(self, names=None):
        self.stmts, self.vars = [], []
        self._names = names or Names()  # the kernel's table of C identifiers
        self._memo = {}
        self.where = None   # the op whose shape the next statements compute
        self._parent = {}   # union-find over dims related by broadcasting
        self._covers = {}   # bcast result -> the dims it is known to cover
        self._same = {}     # dim -> a dim a passed check proved equal (require_eq)
        self.guard = None   # the ifelse branch the next statements belong to (Stmt.guard)

    def canon(self, v):
        """The name that stands for dim `v`: after require_eq(a, b) has checked
        a == b (unguarded, so before any step runs), b is written as a, so
        later shapes, loop layouts and size products see one dim, not two."""
        while not isinstance(v, int) and v in self._same:
            v = self._same[v]
        return v

    def cls(self, v):
        """The broadcast class of a dim: dims in one class are equal at run time
        unless one of them is 1 (ints known at generation time are their own)."""
        v = self.canon(v)
        if isinstance(v, int):
            return v
        root = v
        while self._parent.get(root, root) != root:
            root = self._parent[root]
        return root

    def _union(self, a, b):
        if isinstance(a, int) or isinstance(b, int):
            return
        ra, rb = self.cls(a), self.cls(b)
        if ra != rb:
            self._parent[rb] = ra

    def covers(self, a, b):
        """Whether dim `a` is a broadcast result known to include `b`."""
        a, b = self.canon(a), self.canon(b)
        return a == b or b == 1 or b in {self.canon(c) for c in self._covers.get(a, ())}

    def fresh(self, hint):
        base = hint if hint and hint[0].isalpha() else "n" + (hint or "")
        name = self._names.fresh(base)
        self.vars.append(name)
        return name

    def emit(self, kind, hint, *args, msg=""):
        if kind != "load":
            args = tuple(self.canon(a) if isinstance(a, str) else a for a in args)
        key = (kind, args) if kind != "load" else None
        if key is not None:
            for k in (key + (None,), key + (self.guard,)):  # an unguarded twin serves any branch
                if k in self._memo:
                    return self._memo[k]
        dst = self.fresh(hint)
        self.stmts.append(Stmt(kind, dst, args, msg, self.guard))
        if key is not None:
            self._memo[key + (self.guard,)] = dst
        return dst

    def check(self, kind, *args, msg=""):
        self.stmts.append(Stmt(kind, None, args, msg, self.guard))

    def load(self, param, k, hint):
        return self.emit("load", hint, param, k)

    def _fits(self, value, text):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ShapeError(f"{self.where or 'shape'}: the size {text} = {value} does not "
                             f"fit in int64")
        return value

    def _arith(self, kind, hint, a, b):
        """A checked statement: fails at run time where the result leaves int64."""
        return self.emit(kind, hint, a, b, msg=self.where or "shape")

    def mul(self, a, b, hint="n"):
        if isinstance(a, int) and isinstance(b, int):
            return self._fits(a * b, f"{a} * {b}")
        if a == 1 or b == 0:
            return b
        if b == 1 or a == 0:
            return a
        return self._arith("mul", hint, *sorted((a, b), key=str))

    def add(self, a, b, hint="n"):
        if isinstance(a, int) and isinstance(b, int):
            return self._fits(a + b, f"{a} + {b}")
        if a == 0:
            return b
        if b == 0:
            return a
        return self._arith("add", hint, a, b)

    def sub(self, a, b, hint="n"):
        if isinstance(a, int) and isinstance(b, int):
            return self._fits(a - b, f"{a} - {b}")
        if b == 0:
            return a
        return self._arith("sub", hint, a, b)

    def pow(self, a, k, hint="n"):
        """a ** k for a constant int k >= 0, by squaring (each step checked)."""
        out, base = 1, a
        while k:
            if k & 1:
                out = self.mul(out, base, hint)
            k >>= 1
            if k:
                base = self.mul(base, base, hint)
        return out

    def product(self, values, hint="size"):
        out = 1
        for v in values:
            out = self.mul(out, v, hint)
        return out

    def floordiv(self, a, b, hint="n"):
        """a // b rounded toward -inf (Python, NumPy); b == 0 fails the shape phase."""
        if isinstance(b, int) and b == 0:
            raise ShapeError(f"{self.where or 'shape'}: integer division by zero in a size")
        if isinstance(a, int) and isinstance(b, int):
            return self._fits(a // b, f"{a} // {b}")
        if b == 1:
            return a
        return self.emit("floordiv", hint, a, b, msg=self.where or "shape")

    def mod(self, a, b, hint="n"):
        """a % b with the sign of b (Python, NumPy); b == 0 fails the shape phase."""
        if isinstance(b, int) and b == 0:
            raise ShapeError(f"{self.where or 'shape'}: integer modulo by zero in a size")
        if isinstance(a, int) and isinstance(b, int):
            return a % b
        if b == 1 or b == -1:
            return 0
        return self.emit("mod", hint, a, b, msg=self.where or "shape")

    def minimum(self, a, b, hint="n"):
        if isinstance(a, int) and isinstance(b, int):
            return min(a, b)
        a, b = self.canon(a), self.canon(b)
        if a == b:
            return a
        return self.emit("min", hint, a, b)

    def maximum(self, a, b, hint="n"):
        if isinstance(a, int) and isinstance(b, int):
            return max(a, b)
        a, b = self.canon(a), self.canon(b)
        if a == b:
            return a
        return self.emit("max", hint, a, b)

    def bcast(self, a, b, hint, msg):
        """The broadcast of two dims; the statement fails at run time if neither is 1."""
        a, b = self.canon(a), self.canon(b)
        if self.covers(a, b):
            return a
        if self.covers(b, a):
            return b
        r = self.emit("bcast", hint, a, b, msg=msg)
        self._covers[r] = {a, b} | self._covers.get(a, set()) | self._covers.get(b, set())
        self._union(a, b)
        self._union(a, r)
        return r

    def bstride(self, dim, stride, hint):
        """0 where a dim of length 1 broadcasts, else the stride."""
        if dim == 1 or stride == 0:
            return 0
        if isinstance(dim, int):
            return stride
        return self.emit("bstride", hint, dim, stride)

    def require_eq(self, a, b, msg):
        ca, cb = self.canon(a), self.canon(b)
        if isinstance(ca, int) and isinstance(cb, int) or ca == cb:
            return
        self.check("eq", ca, cb, msg=msg)
        if self.guard is None:  # a branch's check runs only with its branch
            if isinstance(cb, int) or not isinstance(ca, int) and ca > cb:
                ca, cb = cb, ca  # a known size wins, else the lesser name (deterministic)
            self._same[cb] = ca
            if not isinstance(ca, int):
                self._covers.setdefault(ca, set()).update(self._covers.get(cb, ()))
                self._union(ca, cb)

    def contiguous_strides(self, dims, hint):
        strides, acc = [], 1
        for k in reversed(range(len(dims))):
            strides.append(acc)
            acc = self.mul(acc, dims[k], f"{hint}_s{k}")
        return list(reversed(strides))
