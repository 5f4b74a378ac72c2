"""Runtimes: calling built kernels from Python (C through cffi, CUDA through PyCUDA)."""
