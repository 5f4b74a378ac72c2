"""Test-wide setup: a private kernel cache per test session, so runs never
read or pollute the user's ~/.cache/kgen (unless KGEN_CACHE_DIR is set)."""
import os
import tempfile

if not os.environ.get("KGEN_CACHE_DIR"):
    _cache = tempfile.mkdtemp(prefix="kgen-test-cache-")
    os.chmod(_cache, 0o700)
    os.environ["KGEN_CACHE_DIR"] = _cache


import pytest  # noqa: E402


@pytest.fixture
def spec_package(tmp_path, monkeypatch):
    """build(spec_text, name): the spec written to tmp_path/<name>_spec.py, built
    into tmp_path/out/<name> by kgen.package.build_package, and imported."""
    def build(text, name):
        import importlib
        from kgen.package import build_package, load_spec
        spec_file = tmp_path / f"{name}_spec.py"
        spec_file.write_text(text)
        spec = load_spec(spec_file)
        build_package(spec.kernels, tmp_path / "out", name, spec.path)
        monkeypatch.syspath_prepend(str(tmp_path / "out"))
        return importlib.import_module(name)
    return build
