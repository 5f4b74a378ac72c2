"""nvcc: generated CUDA source -> a fatbin for PyCUDA, or PTX for a package.

The GPU architectures are named, never taken from whatever device is present,
so a build is the same on every machine and a cached binary never depends on
the GPU that happened to be there: PTX for a baseline virtual architecture
(newer GPUs JIT-compile it) plus cubins for the architectures kgen knows.
`KGEN_CUDA_TARGETS` (e.g. "compute_75,sm_75,sm_90") replaces the list.
`KGEN_NVCC` names the nvcc to run, with extra options if needed (e.g.
"nvcc -ccbin g++-12" where the default host compiler is too new for it).

Builds are cached like the C side's (kgen/build/cache.py): the key covers the
source, nvcc's identity, the flags and the targets; an entry is a directory
`<key>/` holding the .cu, the output and meta.json (its sha256), written in a
temporary directory and renamed into place under a per-key file lock.
"""
import functools
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from kgen.build import cache
from kgen.errors import CompileError, CompilerNotFoundError, KgenError

log = logging.getLogger("kgen.build")

# PTX for the baseline (Ampere, compute capability 8.0) plus cubins for A100 and H100/H200
DEFAULT_TARGETS = ("compute_80", "sm_80", "sm_90")
# -O3 for the host side nvcc compiles too; --fmad=true (nvcc's default, stated)
# lets a * b + c contract to one correctly rounded FMA. No --use_fast_math:
# it flushes denormals and approximates division, sqrt and the libm functions.
FLAGS = ("-std=c++17", "-O3", "--fmad=true")
OUTPUTS = {"fatbin": ".fatbin", "ptx": ".ptx", "cubin": ".cubin"}

_HOW_TO_GET_ONE = (
    "Install the CUDA toolkit (https://developer.nvidia.com/cuda-downloads, or "
    "`conda install -c nvidia cuda-nvcc`) and put nvcc on PATH, or set $KGEN_NVCC "
    "or $CUDA_HOME. Building CUDA needs nvcc but no GPU.")

_built = {}  # key -> bytes: repeated builds in one process are free


class Nvcc:
    """A resolved nvcc: the argv prefix to run and a line that identifies it."""

    def __init__(self, argv, identity):
        self.argv = tuple(argv)
        self.identity = identity

    def __repr__(self):
        return f"Nvcc({' '.join(self.argv)!r})"


def find_nvcc():
    """$KGEN_NVCC, else nvcc on PATH, else $CUDA_HOME/$CUDA_PATH/bin, else /usr/local/cuda/bin."""
    return _find_nvcc(os.environ.get("KGEN_NVCC", ""), os.environ.get("PATH", ""),
                      os.environ.get("CUDA_HOME", ""), os.environ.get("CUDA_PATH", ""))


@functools.lru_cache(maxsize=None)
def _find_nvcc(env_nvcc, path, cuda_home, cuda_path):
    if env_nvcc:
        candidates = [shlex.split(env_nvcc)]  # explicit: never second-guessed
    else:
        candidates = [["nvcc"]] + [[os.path.join(root, "bin", "nvcc")]
                                   for root in (cuda_home, cuda_path, "/usr/local/cuda") if root]
    for argv in candidates:
        found = shutil.which(argv[0], path=path) if argv else None
        if found:
            return Nvcc([found, *argv[1:]], _identity([found, *argv[1:]]))
    looked = ", ".join(repr(" ".join(a)) for a in candidates)
    raise CompilerNotFoundError(f"nvcc not found (looked for {looked}). {_HOW_TO_GET_ONE}")


def _identity(argv):
    try:
        proc = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CompilerNotFoundError(f"nvcc {argv[0]!r} cannot be run ({exc}). {_HOW_TO_GET_ONE}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    version = " | ".join(lines[-2:]) if lines else f"unknown (exit {proc.returncode})"
    return f"{os.path.realpath(argv[0])} {' '.join(argv[1:])} | {version}"


def targets():
    """The architectures to build for: $KGEN_CUDA_TARGETS, else DEFAULT_TARGETS."""
    text = os.environ.get("KGEN_CUDA_TARGETS", "").strip()
    if not text:
        return DEFAULT_TARGETS
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    for t in names:
        if not (t.startswith(("compute_", "sm_")) and t.split("_", 1)[1].rstrip("af").isdigit()):
            raise KgenError(f"KGEN_CUDA_TARGETS: {t!r} is not compute_NN or sm_NN")
    return names


def gencode_flags(names):
    """-gencode options: compute_NN embeds PTX, sm_NN a cubin."""
    flags = []
    for t in names:
        arch = "compute_" + t.split("_", 1)[1]
        flags.append(f"-gencode=arch={arch},code={t}")
    return flags


def ptx_target(names):
    """The virtual architecture a package's PTX is built for: the first compute_NN."""
    ptx = [t for t in names if t.startswith("compute_")]
    return ptx[0] if ptx else "compute_" + names[0].split("_")[1]


def output_flags(output, names):
    """The options that choose what nvcc writes."""
    if output == "fatbin":  # --threads: the architectures are compiled in parallel
        return ["--fatbin", "--threads=0", *gencode_flags(names)]
    if output == "ptx":  # one virtual architecture: the baseline's PTX
        return ["--ptx", f"-arch={ptx_target(names)}"]
    if output == "cubin":  # one real architecture
        sm = [t for t in names if t.startswith("sm_")]
        if len(sm) != 1:
            raise KgenError(f"a cubin is built for exactly one sm_NN target, got {names}")
        return ["--cubin", f"-arch={sm[0]}"]
    raise KgenError(f"unknown nvcc output {output!r}; use one of {sorted(OUTPUTS)}")


def compile_cuda(source, stem, outdir, *, output="fatbin", names=None, extra_flags=()):
    """Write `<stem>.cu` into `outdir` and compile it there; returns the output's path.

    Raises CompileError (nvcc's message, the .cu's path) or CompilerNotFoundError.
    """
    nvcc = find_nvcc()
    names = tuple(names or targets())
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    cu = outdir / f"{stem}.cu"
    cu.write_text(source, encoding="utf-8")
    out_name = stem + OUTPUTS[output]
    partial = f".{out_name}.partial"
    cmd = [*nvcc.argv, *FLAGS, *extra_flags, *output_flags(output, names), cu.name, "-o", partial]
    log.debug("nvcc in %s: %s", outdir, shlex.join(cmd))
    try:  # cwd= and relative names: no absolute paths in messages or outputs
        proc = subprocess.run(cmd, cwd=outdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace")
    except OSError as exc:
        raise CompilerNotFoundError(f"nvcc {nvcc.argv[0]!r} cannot be run ({exc}). "
                                    f"{_HOW_TO_GET_ONE}", source_path=str(cu)) from exc
    if proc.returncode != 0:
        raise CompileError(f"nvcc failed (exit {proc.returncode}) compiling {cu.name}\n"
                           f"  command (run next to the source): {shlex.join(cmd)}",
                           output=proc.stdout, source_path=str(cu))
    if proc.stdout.strip():
        log.info("nvcc said, compiling %s:\n%s", cu.name, proc.stdout.rstrip())
    os.replace(outdir / partial, outdir / out_name)
    return outdir / out_name


def build_cuda(source, name_hint, *, output="fatbin", names=None, extra_flags=()):
    """Compile (or load from the disk cache); returns `(bytes, from_cache)`.

    "fatbin" is what the runtime hands to PyCUDA's module_from_buffer; "ptx"
    is the portable text a built package ships.
    """
    nvcc = find_nvcc()
    names = tuple(names or targets())
    flags = [*FLAGS, *extra_flags, *output_flags(output, names)]
    key = cache.cache_key("cuda", output, source, nvcc.identity, flags, names)
    data = _built.get(key)
    if data is not None:
        return data, True
    root = cache.cache_dir()
    entry = root / key
    stem = _stem(name_hint)
    data = _load_entry(entry)
    from_cache = data is not None
    if not from_cache:
        with cache.entry_lock(root, key):  # `cache clear` leaves a locked build alone
            data = _load_entry(entry)  # another process may have built it meanwhile
            from_cache = data is not None
            if not from_cache:
                _build_entry(root, key, source, stem, output, names, extra_flags)
                data = _load_entry(entry)
                if data is None:
                    raise KgenError(f"kgen cache entry {entry} vanished or changed right "
                                    f"after being built")
    _built[key] = data
    return data, from_cache


def _stem(name_hint):
    import re
    return re.sub(r"[^0-9A-Za-z_]", "_", name_hint or "")[:40].strip("_") or "kernel"


def _build_entry(root, key, source, stem, output, names, extra_flags):
    tmp = cache.new_temp_dir(root, key)
    try:
        path = compile_cuda(source, stem, tmp, output=output, names=names, extra_flags=extra_flags)
    except CompileError as exc:
        cache._keep_failed(root, key, tmp, exc)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    data = path.read_bytes()
    meta = {"key": key, "file": path.name, "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data), "kgen_version": cache.kgen_version()}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    cache._discard(root / key)  # a corrupt entry: we hold the lock
    os.replace(tmp, root / key)
    log.debug("cached %s in %s", path.name, root / key)


def _load_entry(entry):
    """The entry's output if it is complete and matches its meta.json, else None."""
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        data = (entry / meta["file"]).read_bytes()
        ok = len(data) == meta["size"] and hashlib.sha256(data).hexdigest() == meta["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        if entry.exists():
            log.warning("kgen: cache entry %s is incomplete or corrupt; rebuilding it", entry)
        return None
    return data
