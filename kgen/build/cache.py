"""Content-addressed disk cache of compiled extensions, so a new process skips the compiler.

Layout of the cache directory:

    <key>/            one entry per key: kernel .c, cffi wrapper .c, the .so,
                      and meta.json (written last: the .so's sha256 and size)
    locks/<key>.lock  per-entry file locks
    failed/<key>/     sources that did not compile, kept for reading
    .tmp-*            entries being built; renamed into place when complete

An entry becomes visible only through `os.replace` of a finished directory, so
no reader sees a partial file; a reader still checks the .so against meta.json
and rebuilds anything that does not match rather than loading it.
"""
import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import re
import shutil
import stat
import sys
import sysconfig
import tempfile
from pathlib import Path

from kgen.build import compiler
from kgen.errors import CompileError, KgenError

log = logging.getLogger("kgen.build")

_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_loaded = {}  # key -> module: repeated builds in one process are free


def cache_dir():
    """$KGEN_CACHE_DIR, else $XDG_CACHE_HOME/kgen, else ~/.cache/kgen; created 0700.

    Raises KgenError for a directory that others could write to: anything in it
    would be loaded as code.
    """
    path = os.environ.get("KGEN_CACHE_DIR")
    if not path:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = os.path.join(xdg, "kgen") if xdg else os.path.join("~", ".cache", "kgen")
    path = Path(path).expanduser().absolute()
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise KgenError(f"kgen cannot create its cache directory {path}: {exc}") from exc
    _check_private(path)
    return path


def _check_private(path):
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise KgenError(f"kgen cache path {path} is not a directory; remove it or set KGEN_CACHE_DIR")
    if os.name != "posix":
        return
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise KgenError(
            f"kgen refuses to load compiled code from {path}: the directory is writable by "
            f"group or others (mode {stat.S_IMODE(st.st_mode):o}), so anyone could plant a "
            f"module there. Fix it with `chmod 700 {path}`, or set KGEN_CACHE_DIR to a private directory.")
    if st.st_uid != os.getuid():
        raise KgenError(
            f"kgen refuses to load compiled code from {path}: it belongs to uid {st.st_uid}, "
            f"not to you (uid {os.getuid()}). Set KGEN_CACHE_DIR to a directory you own.")


def cache_key(*parts):
    """sha256 hex over `parts` plus the Python ABI and the kgen version.

    Callers pass everything else the binary depends on: the generated source,
    the cdef, the compiler identity, the flags, the target.
    """
    h = hashlib.sha256()
    for part in (*parts, python_abi_tag(), kgen_version()):
        if isinstance(part, bytes):
            data = part
        elif isinstance(part, str):
            data = part.encode("utf-8")
        else:
            data = repr(part).encode("utf-8")
        # length prefixes: ("ab", "c") and ("a", "bc") must not collide
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def python_abi_tag():
    import _cffi_backend  # a C module, cheap; the wrapper must match its version

    return (f"{sys.implementation.cache_tag} {sysconfig.get_config_var('EXT_SUFFIX')} "
            f"cffi-{_cffi_backend.__version__}")


_version = None


def kgen_version():
    """`kgen.__version__`, else the installed distribution's version, else '0+dev'."""
    global _version
    version = getattr(sys.modules.get("kgen"), "__version__", None)
    if version:
        return version
    if _version is None:
        from importlib import metadata

        try:
            _version = metadata.version("kgen")
        except metadata.PackageNotFoundError:
            _version = "0+dev"
    return _version


def module_name(name_hint, key):
    """`_kg_<hint>_<16 hex of key>`: unique per key, readable in tracebacks and profilers."""
    hint = re.sub(r"[^0-9A-Za-z_]", "_", name_hint or "")[:32].strip("_")
    return f"_kg_{hint}_{key[:16]}" if hint else f"_kg_{key[:16]}"


def build_module(c_source, cdef, *, name_hint, extra_compile_args=(), libraries=(),
                 define_macros=(), native=True):
    """Compile (or load from the cache) a cffi module; returns `(module, from_cache)`.

    `module.ffi` and `module.lib` are cffi's; `lib` holds the functions in `cdef`.
    """
    cc = compiler.find_compiler()
    flags = compiler.compile_flags(native=native, limited_api=False,
                                   extra_compile_args=extra_compile_args,
                                   define_macros=define_macros)
    key = cache_key("c", c_source, cdef, name_hint, cc.identity, flags,
                    compiler.link_flags(libraries), compiler.target_id(native))
    module = _loaded.get(key)
    if module is not None:
        return module, True

    root = cache_dir()
    modname = module_name(name_hint, key)
    entry = root / key
    module = _load_entry(entry, modname)
    from_cache = module is not None
    if not from_cache:
        from filelock import FileLock  # deferred: only builders need it

        (root / "locks").mkdir(mode=0o700, exist_ok=True)
        with FileLock(str(root / "locks" / f"{key}.lock")):
            module = _load_entry(entry, modname)  # another process may have built it meanwhile
            from_cache = module is not None
            if not from_cache:
                _build_entry(root, key, modname, c_source, cdef, native=native,
                             extra_compile_args=extra_compile_args, libraries=libraries,
                             define_macros=define_macros)
                module = _load_entry(entry, modname, after_build=True)
    _loaded[key] = module
    return module, from_cache


def _build_entry(root, key, modname, c_source, cdef, **options):
    """Compile into a private temp dir, seal it with meta.json, rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        so_path = compiler.compile_extension(c_source, cdef, modname, tmp, limited_api=False,
                                             **options)
    except CompileError as exc:
        failed = root / "failed" / key
        failed.parent.mkdir(mode=0o700, exist_ok=True)
        _discard(failed)
        os.replace(tmp, failed)
        if exc.source_path:
            exc.source_path = str(failed / Path(exc.source_path).name)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # interrupted: nothing worth keeping
        raise
    data = so_path.read_bytes()
    meta = {"key": key, "module": modname, "so": so_path.name,
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "kgen_version": kgen_version()}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    entry = root / key
    _discard(entry)  # a corrupt entry: we hold the lock, nobody else replaces it now
    os.replace(tmp, entry)
    log.debug("cached %s in %s", modname, entry)


def _load_entry(entry, modname, after_build=False):
    """The entry's module if the entry is complete and its .so matches meta.json, else None."""
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        so_path = entry / meta["so"]
        ok = (meta["module"] == modname and so_path.stat().st_size == meta["size"]
              and hashlib.sha256(so_path.read_bytes()).hexdigest() == meta["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        if after_build:
            raise KgenError(f"kgen cache entry {entry} vanished or changed right after being built")
        if entry.exists():
            log.warning("kgen: cache entry %s is incomplete or corrupt; rebuilding it", entry)
        return None
    try:
        return load_extension(so_path, modname)
    except ImportError as exc:
        # Compiled but not loadable: usually a missing library (pass it in `libraries`).
        raise CompileError(f"built extension {so_path} failed to load: {exc}",
                           output=str(exc), source_path=str(so_path)) from exc


def load_extension(path, modname):
    """Import the extension at `path` as `modname`, without touching sys.path or the cwd."""
    path = str(path)
    loader = importlib.machinery.ExtensionFileLoader(modname, path)
    spec = importlib.util.spec_from_file_location(modname, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _discard(path):
    """Move `path` out of the way atomically, then delete it."""
    if not os.path.lexists(path):
        return
    trash = path.with_name(f".trash-{path.name}-{os.urandom(4).hex()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _entries(root):
    return [p for p in root.iterdir() if p.is_dir() and _KEY_RE.match(p.name)]


def cache_info():
    """{'dir', 'entries', 'failed', 'bytes'} for `python -m kgen cache info`."""
    root = cache_dir()
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    failed = root / "failed"
    n_failed = sum(1 for _ in failed.iterdir()) if failed.is_dir() else 0
    return {"dir": str(root), "entries": len(_entries(root)), "failed": n_failed, "bytes": total}


def cache_clear():
    """Delete every entry, failed source, leftover temp dir and lock; return the number of entries."""
    root = cache_dir()
    entries = _entries(root)
    for path in entries:
        _discard(path)
    for path in root.iterdir():
        if path.name in ("failed", "locks") or path.name.startswith((".tmp-", ".trash-")):
            shutil.rmtree(path, ignore_errors=True)
    _loaded.clear()
    return len(entries)
