"""Content-addressed disk cache of compiled extensions, so a new process skips the compiler.

Layout of the cache directory:

    <key>/              one entry per key: kernel .c, cffi wrapper .c, the .so,
                        and meta.json (written last: the .so's sha256 and size,
                        and the identity of the compiler that built it)
    locks/<key>.lock    per-entry file locks, held while the entry is built
    failed/<key>/       sources that did not compile, kept for reading
    .tmp-<key>-*        an entry being built (under its lock); renamed into place
    probes.json, jinja/ compiler probe answers, Jinja2 bytecode (kgen/build/flags.py,
                        kgen/codegen/render.py)
    blas/               kgen's copy of NumPy's OpenBLAS, its own instance
                        (kgen/build/blas.py)

An entry becomes visible only through `os.replace` of a finished directory, so
no reader sees a partial file; a reader still checks the .so against meta.json
and rebuilds anything that does not match rather than loading it.

The key of a C entry is computed without running the compiler: it covers the
source, the cdef, the flags, the target, the Python ABI, the kgen version and
the compiler *request* ($CC, else the default search), but not the compiler's
identity (its resolved path and `--version`), which is only known by running
it. So a cached function loads in a process that has no compiler at all. The
compiler is found, identified and run only to build a missing entry, and its
identity is recorded in meta.json.

`cache_clear` leaves in-progress work alone: it skips an entry, a temp folder
or a failed build whose lock another builder holds.

A cache folder that cannot be written (read-only, no permission, a full disk)
does not stop a build: the module is built in a private temporary folder
instead, with one warning (KgenCacheWarning) naming the folder and
KGEN_CACHE_DIR.
"""
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

from kgen.build import compiler
from kgen.build.compiler import log
from kgen.errors import CompileError, KgenError
from kgen.runtime.core import import_extension


def load_extension(path, modname):
    """The loader of the modules kgen builds: the runtime's, then kg_blas_bind for one
    on kgen's OpenBLAS (kgen/build/blas.py; Dask workers do the same, ShippedModule)."""
    module = import_extension(path, modname)
    from kgen.build.blas import binder
    bind = binder(module)
    if bind is not None:
        bind(module)
    return module


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
        raise KgenError(f"kgen cannot create its cache directory {path}: {exc}; set "
                        f"KGEN_CACHE_DIR to a directory you can write") from exc
    _check_private(path)
    return path


class KgenCacheWarning(UserWarning):
    """The disk cache could not be used; the build went to a private temporary folder."""


def _check_private(path):
    try:
        st = os.stat(path)
    except OSError as exc:
        raise KgenError(f"kgen cannot use its cache directory {path}: {exc}; set "
                        f"KGEN_CACHE_DIR to a directory you can write") from exc
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


def compiler_request():
    """What selects the C compiler, known without running anything: $CC, else
    the default search (sysconfig's CC, then cc, gcc, clang)."""
    env_cc = os.environ.get("CC", "")
    return f"$CC={env_cc}" if env_cc else f"default ({sysconfig.get_config_var('CC') or ''})"


def build_module(c_source, cdef, *, name_hint, extra_compile_args=(), libraries=(),
                 define_macros=(), native=True, kernel_units=1, wrapper_source=""):
    """Compile (or load from the cache) a cffi module; returns `(module, from_cache)`.

    `module.ffi` and `module.lib` are cffi's; `lib` holds the functions in `cdef`.
    `wrapper_source` is more C for cffi's wrapper (which has Python.h): the calls
    from Python of templates/c/fastcall.c.jinja.
    Loading a cached module runs no compiler (see the module docstring).
    """
    flags = compiler.compile_flags(native=native, limited_api=False,
                                   extra_compile_args=extra_compile_args,
                                   define_macros=define_macros)
    key = cache_key("c", c_source, cdef + wrapper_source, name_hint, compiler_request(), flags,
                    compiler.link_flags(libraries), compiler.target_id(native))
    module = _loaded.get(key)
    if module is not None:
        return module, True

    root = cache_dir()
    modname = module_name(name_hint, key)
    options = dict(native=native, extra_compile_args=extra_compile_args, libraries=libraries,
                   define_macros=define_macros, kernel_units=kernel_units,
                   wrapper_source=wrapper_source)
    try:
        module = _load_entry(root / key, modname)
        from_cache = module is not None
        if not from_cache:
            module, from_cache = _build_locked(root, key, modname, c_source, cdef, options)
    except OSError as exc:  # the cache folder cannot be written: read-only, no permission, full
        module, from_cache = _build_private(root, exc, modname, c_source, cdef, options), False
    _loaded[key] = module
    return module, from_cache


def _build_locked(root, key, modname, c_source, cdef, options):
    entry = root / key
    with entry_lock(root, key):
        module = _load_entry(entry, modname)  # another process may have built it meanwhile
        if module is not None:
            return module, True
        _build_entry(root, key, modname, c_source, cdef, **options)
        return _load_entry(entry, modname, after_build=True), False


_warned_roots = set()
_private_dirs = []


def _build_private(root, exc, modname, c_source, cdef, options):
    """Build into a private temporary folder, removed at exit: the cache is unusable."""
    if str(root) not in _warned_roots:
        _warned_roots.add(str(root))
        warnings.warn(
            f"kgen cannot write to its cache directory {root} ({exc}); building in a private "
            f"temporary folder instead, so built modules are not kept for the next process. "
            f"Set KGEN_CACHE_DIR to a writable directory.", KgenCacheWarning, stacklevel=4)
    log.info("kgen: building %s outside the cache (%s)", modname, exc)
    try:
        tmp = Path(tempfile.mkdtemp(prefix="kgen-private-"))
    except OSError as exc2:
        raise KgenError(f"kgen cannot write to its cache directory {root} ({exc}) nor to a "
                        f"temporary folder ({exc2}); set KGEN_CACHE_DIR to a writable "
                        f"directory") from exc2
    if not _private_dirs:
        import atexit
        atexit.register(lambda: [shutil.rmtree(d, ignore_errors=True) for d in _private_dirs])
    _private_dirs.append(tmp)
    try:
        so_path = compiler.compile_extension(c_source, cdef, modname, tmp, limited_api=False,
                                             **options)
    except OSError as exc2:
        raise KgenError(f"kgen cannot write to its cache directory {root} ({exc}) nor to the "
                        f"temporary folder {tmp} ({exc2}); set KGEN_CACHE_DIR to a writable "
                        f"directory") from exc2
    return _load_built(so_path, modname)


def private_subdir(root, name):
    """`root/name` as a 0700 directory; a regular file or link in its place is replaced."""
    path = root / name
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if path.is_symlink() or not path.is_dir():
            log.warning("kgen: %s is not a directory; replacing it", path)
            _discard(path)
            path.mkdir(mode=0o700, exist_ok=True)
    return path


class entry_lock:
    """The exclusive lock of one cache key (locks/<key>.lock), between processes and threads.

    `cache_clear` may delete a lock file that nobody holds; a holder re-checks
    after locking that its file is still the one at the path, so two builders
    never hold "the same" lock on two different files. `blocking=False` makes
    `acquire` return False instead of waiting.
    """

    def __init__(self, root, key, blocking=True):
        self.root, self.key, self.blocking = root, key, blocking
        self.path = root / "locks" / f"{key}.lock"
        self._fd = self._filelock = None

    def acquire(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: filelock's own portable lock
            return self._acquire_filelock()
        while True:
            private_subdir(self.root, "locks")
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:
                continue  # the locks folder was removed meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)  # the file was deleted (cache clear) while we waited: lock anew

    def _acquire_filelock(self):
        from filelock import FileLock, Timeout

        private_subdir(self.root, "locks")
        self._filelock = FileLock(str(self.path), timeout=-1 if self.blocking else 0)
        try:
            self._filelock.acquire()
        except Timeout:
            return False
        return True

    def release(self, delete=False):
        if delete:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._filelock is not None:
            self._filelock.release()
            self._filelock = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def new_temp_dir(root, key):
    """A private folder `.tmp-<key>-*` to build `key` in; only while holding its lock."""
    return Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))


def _build_entry(root, key, modname, c_source, cdef, **options):
    """Compile into a private temp dir, seal it with meta.json, rename it into place."""
    tmp = new_temp_dir(root, key)
    try:
        so_path = compiler.compile_extension(c_source, cdef, modname, tmp, limited_api=False,
                                             **options)
    except CompileError as exc:
        if "No space left on device" in (exc.output or ""):  # the compiler hit a full disk
            shutil.rmtree(tmp, ignore_errors=True)
            import errno

            raise OSError(errno.ENOSPC, f"no space left on device in {tmp}") from exc
        _keep_failed(root, key, tmp, exc)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # interrupted: nothing worth keeping
        raise
    data = so_path.read_bytes()
    meta = {"key": key, "module": modname, "so": so_path.name,
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "compiler": compiler.find_compiler().identity, "kgen_version": kgen_version()}
    try:
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        entry = root / key
        _discard(entry)  # a corrupt entry: we hold the lock, nobody else replaces it now
        os.replace(tmp, entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.debug("cached %s in %s", modname, entry)


def _keep_failed(root, key, tmp, exc):
    """Move a failed build's folder to failed/<key>, for reading; point `exc` at it."""
    try:
        failed = private_subdir(root, "failed") / key
        _discard(failed)
        os.replace(tmp, failed)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # keeping the source is a courtesy
        return
    if exc.source_path:
        exc.source_path = str(failed / Path(exc.source_path).name)


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
        if os.path.lexists(entry):
            log.warning("kgen: cache entry %s is incomplete or corrupt; rebuilding it", entry)
        return None
    return _load_built(so_path, modname)


def _load_built(so_path, modname):
    """A module kgen compiled; one that does not load is a CompileError."""
    try:
        return load_extension(so_path, modname)
    except ImportError as exc:
        # Compiled but not loadable: usually a missing library (pass it in `libraries`).
        raise CompileError(f"built extension {so_path} failed to load: {exc}",
                           output=str(exc), source_path=str(so_path)) from exc


def _discard(path):
    """Move `path` (a folder, file or link) out of the way atomically, then delete it."""
    if not os.path.lexists(path):
        return
    trash = path.with_name(f".trash-{path.name}-{os.urandom(4).hex()}")
    os.replace(path, trash)
    _remove(trash)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _entries(root):
    return [p for p in root.iterdir() if p.is_dir() and _KEY_RE.match(p.name)]


def cache_info():
    """{'dir', 'entries', 'failed', 'bytes'} for `python -m kgen cache info`."""
    root = cache_dir()
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    failed = root / "failed"
    n_failed = sum(1 for _ in failed.iterdir()) if failed.is_dir() else 0
    return {"dir": str(root), "entries": len(_entries(root)), "failed": n_failed, "bytes": total}


# what kgen keeps in its cache folder besides entries (see the module docstring)
_OWN_NAMES = ("failed", "locks", "jinja", "probes.json", "blas")
_OWN_PREFIXES = (".tmp-", ".trash-", ".probes.")


def _key_of_temp(name):
    key = name[len(".tmp-"):len(".tmp-") + 64]
    return key if _KEY_RE.match(key) else None


def cache_clear():
    """Delete everything kgen keeps in the cache folder; return the number of entries removed.

    Work in progress is left alone: an entry, temp folder or failed build whose
    key's lock another builder holds (it is being built right now). With no
    build running, the folder is left empty.
    """
    root = cache_dir()
    removed = 0

    def unless_locked(key, action):
        if key is None:
            action()
            return True
        lock = entry_lock(root, key, blocking=False) if (root / "locks").is_dir() else None
        if lock is not None and not lock.acquire():
            log.info("kgen: cache clear leaves %s alone: it is being built", key)
            return False
        try:
            action()
        finally:
            if lock is not None:
                lock.release()
        return True

    for path in sorted(root.iterdir()):
        name = path.name
        if _KEY_RE.match(name):
            is_entry = path.is_dir()
            if unless_locked(name, lambda p=path: _discard(p)) and is_entry:
                removed += 1
        elif name.startswith(".tmp-"):
            unless_locked(_key_of_temp(name), lambda p=path: _remove(p))
        elif name == "failed" and path.is_dir() and not path.is_symlink():
            for sub in path.iterdir():
                unless_locked(sub.name if _KEY_RE.match(sub.name) else None,
                              lambda p=sub: _remove(p))
            _rmdir_if_empty(path)
        elif name in _OWN_NAMES and name != "locks" or name.startswith(_OWN_PREFIXES):
            _remove(path)
    locks = root / "locks"
    if locks.is_dir() and not locks.is_symlink():
        for lock_file in locks.iterdir():
            key = lock_file.name[:-len(".lock")] if lock_file.name.endswith(".lock") else None
            if key is None or not _KEY_RE.match(key):
                _remove(lock_file)
                continue
            lock = entry_lock(root, key, blocking=False)
            if lock.acquire():
                lock.release(delete=True)  # holders re-check the file after locking
        _rmdir_if_empty(locks)
    elif os.path.lexists(locks):
        _remove(locks)
    _loaded.clear()
    return removed


def _rmdir_if_empty(path):
    try:
        path.rmdir()
    except OSError:
        pass
