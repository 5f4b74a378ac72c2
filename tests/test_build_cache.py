"""The build layer and its disk cache, with tiny hand-written C kernels."""
import hashlib
import json
import os
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kgen.build import (build_module, cache, cache_clear, cache_dir, cache_info, cache_key,
                        compile_extension, find_compiler, load_extension, module_name)
from kgen.build.compiler import abi3_available
from kgen.errors import CompileError, CompilerNotFoundError, KgenError

REPO = Path(__file__).resolve().parents[1]
ADD_C = "int add(int a, int b) { return a + b + OFFSET; }\n"
ADD_CDEF = "int add(int a, int b);"

# A child process that builds ADD_C (with OFFSET=$SALT) and reports what it got.
CHILD = """
import json, sys, time
from kgen.build import build_module
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))  # line the builders up so they really race
m, from_cache = build_module({src!r}, {cdef!r}, name_hint="add",
                             define_macros=[("OFFSET", sys.argv[2])])
print(json.dumps({{"from_cache": from_cache, "sum": m.lib.add(2, 3), "file": m.__file__}}))
"""


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("KGEN_CACHE_DIR", str(root))
    monkeypatch.setattr(cache, "_loaded", {})
    return root


def build_add(offset=0, **kw):
    return build_module(ADD_C, ADD_CDEF, name_hint="add", define_macros=[("OFFSET", str(offset))],
                        **kw)


def run_child(env_extra, *args):
    env = {**os.environ, **env_extra,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    code = CHILD.format(src=ADD_C, cdef=ADD_CDEF)
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def child_result(proc):
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def entry_is_sealed(entry):
    meta = json.loads((entry / "meta.json").read_text())
    data = (entry / meta["so"]).read_bytes()
    return hashlib.sha256(data).hexdigest() == meta["sha256"] and len(data) == meta["size"]


def test_build_call_and_in_process_cache(cache_env):
    m, from_cache = build_add(offset=10)
    assert not from_cache
    assert m.lib.add(2, 3) == 15
    assert hasattr(m, "ffi")
    m2, from_cache2 = build_add(offset=10)
    assert from_cache2 and m2 is m
    # the module name comes from the key, and the entry is sealed by meta.json
    entry = Path(m.__file__).parent
    assert entry.parent == cache_env and len(entry.name) == 64
    assert m.__name__ == module_name("add", entry.name)
    assert entry_is_sealed(entry)
    assert any(p.name.endswith("_kernel.c") and p.read_text() == ADD_C for p in entry.iterdir())


def test_new_process_loads_from_cache_without_compiling(cache_env, tmp_path, monkeypatch):
    # The compiler's identity is part of the key, so the child must see the same $CC:
    # a wrapper that answers --version but fails (and logs) any real compile.
    real = shlex.join(find_compiler().argv)
    log = tmp_path / "cc.log"
    wrapper = tmp_path / "cc-wrapper"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {shlex.quote(str(log))}\n'
        'if [ "$1" != "--version" ] && [ -n "$KGEN_TEST_FORBID_COMPILE" ]; then\n'
        '  echo "kgen test: the compiler must not run" >&2; exit 99\n'
        "fi\n"
        f'exec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    m, from_cache = build_add(offset=1)
    assert not from_cache and m.lib.add(2, 3) == 6

    log.write_text("")
    got = child_result(run_child({"KGEN_TEST_FORBID_COMPILE": "1"}, 0, 1))
    assert got == {"from_cache": True, "sum": 6, "file": m.__file__}
    assert [line for line in log.read_text().splitlines() if line != "--version"] == []


def replace_file(path, data):
    # A new inode: writing into the .so this process has mapped would crash it (SIGBUS).
    path.unlink()
    path.write_bytes(data)


@pytest.mark.parametrize("damage", ["truncate_so", "flip_byte", "delete_so", "garbage_meta",
                                    "no_meta", "wrong_hash"])
def test_corrupt_entry_is_rebuilt(cache_env, damage):
    m, _ = build_add(offset=2)
    entry = Path(m.__file__).parent
    so = Path(m.__file__)
    meta_path = entry / "meta.json"
    if damage == "truncate_so":
        replace_file(so, so.read_bytes()[:100])
    elif damage == "flip_byte":
        data = bytearray(so.read_bytes())
        data[len(data) // 2] ^= 0xFF
        replace_file(so, bytes(data))
    elif damage == "delete_so":
        so.unlink()
    elif damage == "garbage_meta":
        meta_path.write_text("{not json")
    elif damage == "no_meta":
        meta_path.unlink()
    elif damage == "wrong_hash":
        meta = json.loads(meta_path.read_text())
        meta["sha256"] = "0" * 64
        meta_path.write_text(json.dumps(meta))
    cache._loaded.clear()  # as if in a new process

    m2, from_cache = build_add(offset=2)
    assert not from_cache
    assert m2.lib.add(2, 3) == 7
    assert entry_is_sealed(entry)


def test_concurrent_cold_builders_agree(cache_env):
    start = time.time() + 1.0
    procs = [run_child({}, start, 3) for _ in range(4)]
    results = [child_result(p) for p in procs]
    assert {r["sum"] for r in results} == {8}
    assert len({r["file"] for r in results}) == 1
    # the lock lets exactly one of them compile; the others load its entry
    assert sorted(r["from_cache"] for r in results) == [False, True, True, True]
    assert entry_is_sealed(Path(results[0]["file"]).parent)
    assert not [p for p in cache_env.iterdir() if p.name.startswith((".tmp-", ".trash-"))]


def test_cache_dir_is_private(cache_env):
    root = cache_dir()
    assert root == cache_env
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_cache_dir_location_fallbacks(tmp_path, monkeypatch):
    monkeypatch.delenv("KGEN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "kgen"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "kgen"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_world_writable_cache_dir_is_refused(cache_env):
    cache_env.mkdir(mode=0o700)
    os.chmod(cache_env, 0o777)
    with pytest.raises(KgenError, match="chmod 700"):
        cache_dir()
    with pytest.raises(KgenError, match="writable by group or others"):
        build_add(offset=4)


def test_compile_error_shows_compiler_output_and_kept_source(cache_env):
    bad = "int add(int a, int b) { return a + ; }\n"
    with pytest.raises(CompileError) as info:
        build_module(bad, ADD_CDEF, name_hint="bad")
    err = info.value
    text = str(err)
    assert "error" in text.lower() and "return a + ;" in text  # the compiler's own report
    assert err.source_path and err.source_path in text
    kept = Path(err.source_path)
    assert kept.read_text() == bad
    assert kept.parent.parent == cache_env / "failed"
    assert not [p for p in cache_env.iterdir() if len(p.name) == 64]  # nothing cached


def test_missing_compiler(cache_env, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(CompilerNotFoundError) as info:
        build_add(offset=5)
    text = str(info.value)
    assert "/nonexistent/cc" in text
    assert "apt install gcc" in text and "xcode-select --install" in text and "CC" in text


def test_compile_extension_abi3_for_packages(tmp_path):
    out = tmp_path / "pkg"
    so = compile_extension(ADD_C, ADD_CDEF, "_mypkg", out, define_macros=[("OFFSET", "6")],
                           kernel_filename="mypkg.c")
    if abi3_available():
        assert so.name == "_mypkg.abi3.so"
    assert (out / "mypkg.c").read_text() == ADD_C
    wrapper = (out / "_mypkg.c").read_text()
    # the kernel is its own translation unit: the wrapper holds its prototypes only
    assert ADD_CDEF.strip() in wrapper and "mypkg.c" in wrapper and str(tmp_path) not in wrapper
    assert '#include "mypkg.c"' not in wrapper
    assert not list(out.glob("*.o")) and not list(out.glob(".*.o"))  # no objects left behind
    assert load_extension(so, "_mypkg").lib.add(1, 1) == 8


def test_cache_key_covers_every_part():
    base = cache_key("c", "src", "cdef", ["-O3"])
    assert base == cache_key("c", "src", "cdef", ["-O3"])
    assert len(base) == 64
    assert base != cache_key("c", "src2", "cdef", ["-O3"])
    assert base != cache_key("c", "src", "cdef", ["-O2"])
    assert cache_key("ab", "c") != cache_key("a", "bc")


def test_cache_info_and_clear(cache_env):
    build_add(offset=7)
    with pytest.raises(CompileError):
        build_module("syntax error here", ADD_CDEF, name_hint="bad")
    info = cache_info()
    assert info["dir"] == str(cache_env)
    assert info["entries"] == 1 and info["failed"] == 1 and info["bytes"] > 0
    assert cache_clear() == 1
    assert cache_info()["entries"] == 0 and cache_info()["bytes"] == 0
    m, from_cache = build_add(offset=7)
    assert not from_cache and m.lib.add(0, 0) == 7


# ---- faults around the cache ------------------------------------------------------

SLOW_CC = """#!/bin/sh
# a compiler that waits, mid-build, until the test says go (after its `cache clear`)
if [ "$1" != "--version" ]; then
  touch {started}
  i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
fi
exec {real} "$@"
"""


def test_cache_clear_leaves_a_build_in_progress_alone(cache_env, tmp_path):
    """Repro: `python -m kgen cache clear` while another process builds made that
    build fail with FileNotFoundError (its .tmp folder was deleted)."""
    started, go = tmp_path / "started", tmp_path / "go"
    slow = tmp_path / "slow-cc"
    slow.write_text(SLOW_CC.format(started=shlex.quote(str(started)), go=shlex.quote(str(go)),
                                   real=shlex.join(find_compiler().argv)))
    slow.chmod(0o755)
    build_add(offset=1)  # an entry nobody is building: clear removes it
    builder = run_child({"CC": str(slow)}, 0, 2)
    deadline = time.time() + 60
    while not started.exists():
        assert time.time() < deadline and builder.poll() is None, builder.communicate()
        time.sleep(0.05)
    temps = [p.name for p in cache_env.iterdir() if p.name.startswith(".tmp-")]
    assert len(temps) == 1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    clear = subprocess.run([sys.executable, "-m", "kgen", "cache", "clear"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert clear.returncode == 0, clear.stderr
    assert "removed 1 cache entry" in clear.stdout
    assert builder.poll() is None, "the build should still be running"
    assert (cache_env / temps[0]).is_dir()        # the work in progress is still there
    go.touch()
    got = child_result(builder)
    assert got["from_cache"] is False and got["sum"] == 7
    assert Path(got["file"]).is_file() and entry_is_sealed(Path(got["file"]).parent)


def test_cache_clear_mid_build_in_the_same_process(cache_env, monkeypatch):
    """The same, with clear run from inside the build (it holds the entry's lock)."""
    real = cache.compiler.compile_extension
    seen = {}

    def compile_then_clear(c_source, cdef, modname, outdir, **kw):
        so = real(c_source, cdef, modname, outdir, **kw)
        seen["removed"] = cache_clear()
        seen["tmp_kept"] = Path(outdir).is_dir()
        return so

    monkeypatch.setattr(cache.compiler, "compile_extension", compile_then_clear)
    m, from_cache = build_add(offset=3)
    assert not from_cache and m.lib.add(1, 1) == 5
    assert seen == {"removed": 0, "tmp_kept": True}
    assert entry_is_sealed(Path(m.__file__).parent)


def test_cache_clear_removes_stale_temps_and_leaves_the_folder_empty(cache_env):
    """Repro: clear left probes.json and the Jinja bytecode cache behind. A stale
    temp folder (its builder died: nobody holds its lock) goes too."""
    import numpy as np

    import kgen as kg
    from kgen.build import flags
    from kgen.codegen import render

    render.environment.cache_clear()  # its bytecode cache is in this test's cache folder
    flags._probe.cache_clear()  # probe answers are memoized per process: write them here
    try:
        x = kg.vector("x")
        f = kg.function([x], kg.exp(x) * 3.25 + 1)
        np.testing.assert_allclose(f(np.arange(3.0)), np.exp(np.arange(3.0)) * 3.25 + 1)
        with pytest.raises(CompileError):
            build_module("syntax error here", ADD_CDEF, name_hint="bad")
        (cache_env / f".tmp-{'ab' * 32}-dead").mkdir()
        (cache_env / ".tmp-legacy").mkdir()
        names = {p.name for p in cache_env.iterdir()}
        assert {"probes.json", "jinja", "locks", "failed"} <= names
        assert cache_clear() >= 1
        assert list(cache_env.iterdir()) == []
        # and everything still works after it, in this process too
        g = kg.function([x], kg.sin(x) * 1.75)
        np.testing.assert_allclose(g(np.arange(3.0)), np.sin(np.arange(3.0)) * 1.75)
    finally:
        render.environment.cache_clear()


@pytest.mark.parametrize("what", ["locks", "failed", "entry"])
def test_a_file_where_the_cache_keeps_a_folder(cache_env, what):
    """Repro: a regular file named `locks` made every build fail with FileExistsError."""
    cache_env.mkdir()
    if what == "entry":
        m, _ = build_add(offset=4)
        entry = Path(m.__file__).parent
        cache._loaded.clear()
        _discard_dir(entry)
        entry.write_text("not an entry")
    else:
        (cache_env / what).write_text("not a folder")
    if what == "failed":
        with pytest.raises(CompileError):
            build_module("syntax error here", ADD_CDEF, name_hint="bad")
        assert (cache_env / "failed").is_dir()
    m, from_cache = build_add(offset=4)
    assert not from_cache and m.lib.add(1, 2) == 7
    assert (cache_env / "locks").is_dir()
    assert entry_is_sealed(Path(m.__file__).parent)


def _discard_dir(path):
    import shutil
    shutil.rmtree(path)


@pytest.mark.parametrize("fault", ["read-only 0500", "no permission 0000", "full disk"])
def test_unwritable_cache_builds_privately_with_one_warning(cache_env, monkeypatch, fault):
    """Repro: a read-only cache folder, one without permission, or a full disk made
    kg.function raise a bare OSError. It builds in a private temporary folder and
    warns once, naming the folder and KGEN_CACHE_DIR."""
    import errno
    import warnings

    import numpy as np

    import _fs_faults
    import kgen as kg

    cache_env.mkdir(mode=0o700)
    x = kg.vector("x")
    offset = {"read-only 0500": 11.5, "no permission 0000": 12.5, "full disk": 13.5}[fault]
    try:
        if fault == "full disk":
            refused = _fs_faults.deny(monkeypatch, cache_env, err=errno.ENOSPC)
        else:
            refused = _fs_faults.deny(monkeypatch, cache_env,
                                      mode=0o500 if "0500" in fault else 0o000)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f = kg.function([x], x * 2 + offset)
            m, from_cache = build_add(offset=int(offset))  # a second build: no second warning
        np.testing.assert_allclose(f(np.arange(4.0)), np.arange(4.0) * 2 + offset)
        assert not from_cache and m.lib.add(1, 1) == 2 + int(offset)
        kgen_warnings = [w for w in caught if issubclass(w.category, cache.KgenCacheWarning)]
        assert len(kgen_warnings) == 1, [str(w.message) for w in caught]
        text = str(kgen_warnings[0].message)
        assert str(cache_env) in text and "KGEN_CACHE_DIR" in text
        assert not Path(m.__file__).is_relative_to(cache_env)
        if fault == "full disk" or os.geteuid() == 0:  # chmod does not stop root
            assert refused, "the simulated fault was never hit"
    finally:
        monkeypatch.undo()
        os.chmod(cache_env, 0o700)
    assert not [p for p in cache_env.iterdir() if p.name.startswith(".tmp-")]  # nothing left over


def test_unusable_temp_folder_too_is_a_clear_error(cache_env, monkeypatch):
    import errno
    import tempfile

    import _fs_faults

    cache_env.mkdir(mode=0o700)
    _fs_faults.deny(monkeypatch, cache_env, err=errno.ENOSPC)
    real = tempfile.mkdtemp

    def mkdtemp(*a, **k):
        if k.get("dir") is None:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    with pytest.warns(cache.KgenCacheWarning):
        with pytest.raises(KgenError) as info:
            build_add(offset=21)
    assert str(cache_env) in str(info.value) and "KGEN_CACHE_DIR" in str(info.value)


LOAD_CHILD = """
import json, sys
import numpy as np
import kgen as kg
x = kg.vector('x')
A = kg.matrix('A')
f = kg.function([A, x], kg.exp(kg.dot(A, x)) * 0.5 + kg.sum(x * x))
a = np.arange(6.0).reshape(2, 3) / 10
v = np.array([1.0, -2.0, 0.5])
print(json.dumps({"from_cache": f.from_cache, "out": f(a, v).tolist()}))
"""


def test_cached_function_loads_without_a_compiler(cache_env, tmp_path):
    """Repro: a function already in the cache failed to load, with
    CompilerNotFoundError, in a process whose PATH has no C compiler (the cache
    key needed the compiler's identity). It loads, computes, and compiles nothing."""
    import numpy as np

    env = {k: v for k, v in os.environ.items() if k != "CC"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env["KGEN_CACHE_DIR"] = str(cache_env)

    def run(env):
        proc = subprocess.run([sys.executable, "-c", LOAD_CHILD], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    built = run(env)
    assert built["from_cache"] is False
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    bare = {**env, "PATH": str(empty_bin)}
    check = subprocess.run([sys.executable, "-c",
                            "import shutil, sysconfig; from kgen.build import find_compiler\n"
                            "assert not any(shutil.which(c) for c in ('cc', 'gcc', 'clang'))\n"
                            "try: find_compiler()\n"
                            "except Exception as e: print(type(e).__name__)"],
                           env=bare, capture_output=True, text=True, timeout=60)
    assert check.stdout.strip() == "CompilerNotFoundError", check.stderr
    loaded = run(bare)
    assert loaded["from_cache"] is True
    a = np.arange(6.0).reshape(2, 3) / 10
    v = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(loaded["out"], np.exp(a @ v) * 0.5 + np.sum(v * v), rtol=1e-12)
    assert loaded["out"] == built["out"]


def test_entry_records_the_compiler_that_built_it(cache_env):
    m, _ = build_add(offset=8)
    meta = json.loads((Path(m.__file__).parent / "meta.json").read_text())
    assert meta["compiler"] == find_compiler().identity
