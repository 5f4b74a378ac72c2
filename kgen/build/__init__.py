"""The build layer: C source in, loaded cffi extension module out, with a disk cache.

Independent of the IR: the C backend hands it source text and a cdef; the
ahead-of-time packager uses `compile_extension` directly.
"""
from kgen.build.cache import (build_module, cache_clear, cache_dir, cache_info, cache_key,
                              load_extension, module_name)
from kgen.build.compiler import compile_extension, find_compiler

__all__ = ["build_module", "cache_clear", "cache_dir", "cache_info", "cache_key",
           "compile_extension", "find_compiler", "load_extension", "module_name"]
