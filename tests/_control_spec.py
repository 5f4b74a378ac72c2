"""A package spec with ifelse and until() in its kernels, for the GPU package
tests: tests/test_cuda_launcher_control.py (the stand-in driver) and
tests/gpu/test_gpu_package_control.py (a real GPU)."""

SPEC = '''
import kgen as kg
import kgen.tensor as T
from kgen.ifelse import ifelse

c, d, A, x, i = T.dscalar("c"), T.dscalar("d"), T.dmatrix("A"), T.dvector("x"), T.lscalar("i")
# then: a GEMV and x[i] (i may be out of range when not taken); else: a map and a sum
p, q = ifelse(T.gt(c, 0), [T.dot(A, x) * 2, x[i]], [x + 1, x.sum()])
branchy = kg.kernel("branchy", [c, A, x, i], [p, q])
# an ifelse inside a branch: two conditions, the inner one read only when reached
nested = kg.kernel("nested", [c, d, x], ifelse(T.gt(c, 0), ifelse(T.gt(d, 0), x * 3, x - 1),
                                               T.exp(x)))
# conditions on sizes: the then branch's broadcast is checked only when it is
# taken; a size itself as the condition is known on the host (no copy back)
y = T.dvector("y")
same = kg.kernel("same", [x, y], ifelse(T.eq(x.shape[0], y.shape[0]), (x * y).sum(), x.sum()))
short = kg.kernel("short", [x, y], ifelse(T.lt(x.shape[0], 5), (x * y).sum(), x.sum()))
empty = kg.kernel("empty", [x, y], ifelse(x.shape[0], (x * y).sum(), y.sum()))
# until(): the running sum up to the step where it passes 2.5
v = T.dvector("v")
sums, _ = kg.scan(lambda e, acc: (acc + e, kg.scan_module.until(acc + e > 2.5)),
                  sequences=v, outputs_info=T.zeros_like(v[0]), name="upto")
upto = kg.kernel("upto", [v], sums)
last, _ = kg.scan(lambda e, acc: (acc + e, kg.scan_module.until(acc + e > 2.5)),
                  sequences=v, outputs_info=T.zeros_like(v[0]), name="upto_last")
upto_last = kg.kernel("upto_last", [v], last[-1] * 2)
# a scan inside a branch: its whole loop runs only when the branch is taken
loop_in_branch = kg.kernel("loop_in_branch", [c, v],
                           ifelse(T.gt(c, 0), kg.scan(lambda e, acc: T.tanh(acc + e), sequences=v,
                                                      outputs_info=T.zeros_like(v[0]),
                                                      name="squash")[0][-1],
                                  v.sum()))
'''
