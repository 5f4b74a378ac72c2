"""Scalar expression printers: a fused node -> one C (or CUDA) expression.

Composes each op record's expression template (`op.c`, or `op.cuda` where
CUDA differs) with its operands; the tables below hold C types, literal
spellings and dtype tags, as SymPy's C printer does. The CUDA printer
overrides only what differs.
"""
import math

import numpy as np

C_TYPES = {"bool": "bool", "int32": "int32_t", "int64": "int64_t",
           "float32": "float", "float64": "double"}
TAGS = {"bool": "b", "int32": "i32", "int64": "i64", "float32": "f32", "float64": "f64"}


def _literal_value(operand):
    """The float value of a literal operand (a Leaf), else None."""
    if isinstance(operand, str):
        return None
    try:
        return float(operand.value)
    except (TypeError, ValueError):
        return None


class CPrinter:
    target = "c"

    def ctype(self, dtype):
        return C_TYPES[dtype]

    def literal(self, value, dtype):
        """`value` spelled as a C constant of `dtype`."""
        if dtype == "bool":
            return "true" if bool(value) else "false"
        if dtype in ("int32", "int64"):
            v = int(value)
            if dtype == "int32":
                return {-2**31: "INT32_MIN", 2**31 - 1: "INT32_MAX"}.get(v, str(v))
            return {-2**63: "INT64_MIN", 2**63 - 1: "INT64_MAX"}.get(v, f"INT64_C({v})")
        v = float(np.float32(value)) if dtype == "float32" else float(value)
        if math.isnan(v):
            return "NAN" if dtype == "float32" else "((double)NAN)"
        if math.isinf(v):
            inf = "INFINITY" if dtype == "float32" else "((double)INFINITY)"
            return inf if v > 0 else f"(-{inf})"
        text = str(np.float32(v)) if dtype == "float32" else repr(v)
        if "e" not in text and "." not in text:
            text += ".0"
        return f"{text}f" if dtype == "float32" else text

    def cast(self, text, src, dst):
        return text if src == dst else f"(({self.ctype(dst)}){text})"

    def operand(self, operand, src_dtype, dst_dtype):
        """A loop operand (a var name, or a literal Leaf) as `dst_dtype`."""
        if not isinstance(operand, str):  # a literal leaf: spell it in the loop dtype
            return self.literal(operand.value, dst_dtype)
        return self.cast(operand, src_dtype, dst_dtype)

    def template(self, op):
        return op.c

    def expr(self, local, at=None, group=None):
        """The local's expression; `at` is the element's flat index (C text),
        which indexed ops (random draws) read as `{k}`. `group`: in a loop over
        groups of GROUP elements, this element's place j in its group; a draw
        whose blocks serve several elements then reads the block computed once
        per group (`blocks`) as `{b}`, from its first word `{o}`."""
        node = local.node
        per = self.per_block(local) if group is not None else 1
        if per > 1:
            op = node.op
            in_dtypes, _ = op.loop_dtypes(list(node.inputs))
            args = [self.operand(o, i.dtype, want)
                    for o, i, want in zip(local.operands, node.inputs, in_dtypes)]
            if group == "chunk":  # the element's words in its chunk's buffer (`words`)
                return op.c_w.format(*args, t=self.ctype(node.dtype), k=at, o=0,
                                     b=f"kg_philox_at({local.var}_w + ({at} - {local.var}_r0)"
                                       f" * {4 // per})")
            return op.c_w.format(*args, t=self.ctype(node.dtype), k=at,
                                 b=f"{local.var}_b{group // per}",
                                 o=(group % per) * (4 // per))
        op = node.op
        in_dtypes, _ = op.loop_dtypes(list(node.inputs))
        args = [self.operand(o, i.dtype, want)
                for o, i, want in zip(local.operands, node.inputs, in_dtypes)]
        key = in_dtypes[-1] if in_dtypes else node.dtype
        fmt = op.c_by_input.get(key) or self.template(op)
        if key in ("float32", "float64"):
            for pos, operand in enumerate(local.operands):
                special = getattr(op, "c_by_literal", {}).get((pos, _literal_value(operand)))
                if special:
                    fmt = special
                    break
        return fmt.format(*args, f="f" if key == "float32" else "", t=self.ctype(node.dtype),
                          s=TAGS[key], k=at)


    def per_block(self, local):
        """How many consecutive elements one Philox block of this local's draw
        serves (1: not a draw, or one block per element)."""
        if local.index is None:
            return 1
        per = getattr(local.node.op, "per_block", None)
        return per(local.node.dtype) if per else 1

    def grouped(self, locals_):
        """The locals of a flat loop whose blocks serve several elements."""
        return [l for l in locals_ if self.per_block(l) > 1]

    def blocks(self, local, g):
        """(var, C expression) of each block a group of GROUP elements starting
        at element GROUP * g reads for this draw (`g`: C text)."""
        per = self.per_block(local)
        key, ctr = (self.operand(o, "int64", "int64") for o in local.operands[1:3])
        n = GROUP // per
        return [(f"{local.var}_b{q}",
                 f"kg_philox_block({key}, {ctr}, {g if n == 1 else f'{n} * {g} + {q}'}, 0)")
                for q in range(n)]


    def words(self, local):
        """For a loop over chunks of this draw's elements (kernel.c.jinja):
        (its word buffer, the buffer's size, the call that fills it with the
        blocks from the one whose first element is VAR_r0 on, elements per
        block)."""
        per = self.per_block(local)
        key, ctr = (self.operand(o, "int64", "int64") for o in local.operands[1:3])
        v, buf = local.var, f"{local.var}_w"
        count = f"({v}_r - {v}_r0 + kg_m + {per - 1}) / {per} + 1"
        return (buf, f"4 * (KG_PHILOX_CHUNK / {per}) + 12",
                f"kg_philox_fill({key}, {ctr}, {v}_r0 / {per}, {count}, {buf})", per)


GROUP = 4   # elements per iteration of a flat loop with such draws (one block: 4 words)


class CudaPrinter(CPrinter):
    """CUDA C++: the same expressions; only what differs is overridden."""

    target = "cuda"

    def template(self, op):
        return getattr(op, "cuda", None) or op.c

    def literal(self, value, dtype):
        text = super().literal(value, dtype)
        # math_constants.h spellings are not needed: CUDA has INFINITY/NAN via math.h
        return text


PRINTERS = {"c": CPrinter(), "cuda": CudaPrinter()}
