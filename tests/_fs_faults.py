"""Filesystem faults for tests: a folder that cannot be written (or read), or a full disk.

`chmod` is the real thing, but root ignores permission bits. So `deny(folder,
...)` chmods the folder and, where the process can still write there (root),
also makes the OS calls this process uses fail for paths inside it, with the
errno the kernel would give (EACCES for permissions, ENOSPC for a full disk).
Child processes (the compiler) are unaffected: they write in other folders.
"""
import builtins
import errno
import io
import os
from pathlib import Path

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def writes_blocked_by_chmod(folder):
    """Whether this process really cannot create a file in `folder` (False as root)."""
    probe = Path(folder, ".kgen-write-probe")
    try:
        probe.write_text("")
    except OSError:
        return True
    probe.unlink()
    return False


def deny(monkeypatch, folder, mode=0o500, err=errno.EACCES):
    """Make `folder` unwritable (mode 0o500), unreadable (0o000) or full (err=ENOSPC).

    Returns a list of the paths whose access was refused by the simulation (empty
    where chmod alone did it). Call `restore(folder)` (or let tmp_path go) after.
    """
    folder = Path(folder).absolute()
    refused = []
    if err == errno.EACCES:
        os.chmod(folder, mode)
        if writes_blocked_by_chmod(folder):
            return refused
    reads_too = err == errno.EACCES and not mode & 0o400

    def inside(path):
        try:
            p = Path(os.fsdecode(path)).absolute()
        except TypeError:  # a file descriptor
            return False
        return p == folder and err == errno.EACCES or folder in p.parents

    def fail(path):
        refused.append(str(path))
        raise OSError(err, os.strerror(err), os.fsdecode(path))

    real_open, real_io_open = builtins.open, io.open
    real_os_open, real_mkdir = os.open, os.mkdir
    real_replace, real_rename = os.replace, os.rename
    real_stat, real_scandir, real_listdir = os.stat, os.scandir, os.listdir

    def os_open(path, flags, *a, **k):
        if inside(path) and (flags & _WRITE_FLAGS or reads_too):
            fail(path)
        return real_os_open(path, flags, *a, **k)

    def make_open(real):
        def opener(file, mode="r", *a, **k):
            if inside(file) and (any(c in mode for c in "wax+") or reads_too):
                fail(file)
            return real(file, mode, *a, **k)
        return opener

    def mkdir(path, *a, **k):
        if inside(path) and err == errno.EACCES and not os.path.lexists(path):
            fail(path)
        return real_mkdir(path, *a, **k)

    def moved(real):
        def move(src, dst, *a, **k):
            if inside(src) or inside(dst):
                fail(dst)
            return real(src, dst, *a, **k)
        return move

    def stat(path, *a, **k):
        if reads_too and inside(path) and Path(os.fsdecode(path)).absolute() != folder:
            fail(path)
        return real_stat(path, *a, **k)

    def scandir(path="."):
        if reads_too and inside(path):
            fail(path)
        return real_scandir(path)

    monkeypatch.setattr(builtins, "open", make_open(real_open))
    monkeypatch.setattr(io, "open", make_open(real_io_open))
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    if err == errno.EACCES:
        monkeypatch.setattr(os, "replace", moved(real_replace))
        monkeypatch.setattr(os, "rename", moved(real_rename))
    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "scandir", scandir)

    def listdir(path="."):
        if reads_too and inside(path):
            fail(path)
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    return refused


def restore(folder):
    os.chmod(folder, 0o700)
