"""theano.sandbox.rng_mrg: `MRG_RandomStreams(seed)`.

Theano's MRG31k3p streams exist to draw on the GPU; kgen draws every stream
inside the kernel with Philox4x32-10 on CPU and GPU alike, so this is the same
generator as kgen.tensor.shared_randomstreams with MRG's argument order
(`binomial(size, p, n)`) and its default seed. The numbers are kgen's, not
MRG31k3p's.
"""
from ..tensor.shared_randomstreams import RandomStreams


class MRG_RandomStreams(RandomStreams):  # noqa: N801  (Theano's name)
    def __init__(self, seed=12345):
        super().__init__(seed)

    def binomial(self, size=None, p=0.5, n=1, ndim=None, dtype="int64", nstreams=None, prob=None):
        return super().binomial(size, n=n, p=p, ndim=ndim, dtype=dtype, prob=prob)

    def normal(self, size, avg=0.0, std=1.0, ndim=None, dtype=None, nstreams=None,
               truncate=False):
        if truncate:
            raise NotImplementedError("MRG_RandomStreams.normal(truncate=True) is not supported")
        return super().normal(size, avg, std, ndim, dtype)
