"""Test-wide setup: a private kernel cache per test session, so runs never
read or pollute the user's ~/.cache/kgen (unless KGEN_CACHE_DIR is set)."""
import os
import tempfile

if not os.environ.get("KGEN_CACHE_DIR"):
    _cache = tempfile.mkdtemp(prefix="kgen-test-cache-")
    os.chmod(_cache, 0o700)
    os.environ["KGEN_CACHE_DIR"] = _cache
