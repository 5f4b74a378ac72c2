"""The CUDA source: what `source('cuda')` renders for every op of tests/op_table.py,
the seed model, an MLP step and the example specs, and that nvcc compiles it
(cubins for sm_90 through ptxas, PTX for every dtype, the runtime's fatbin).
No GPU is needed; the nvcc tests skip where nvcc is absent.

nvcc costs a second or more per invocation, so the cases are compiled as a few
large modules (one kernel per case, all in one .cu), concurrently.
"""
import concurrent.futures
import re
import runpy
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

import kgen as kg
from kgen.codegen.cuda import cuda_kernels
from kgen.codegen.render import render_module

import op_table
from _cuda_emu import kernel_signatures

REPO = Path(__file__).resolve().parents[1]


def _nvcc_present():
    from kgen.build import nvcc
    try:
        nvcc.find_nvcc()
        return True
    except kg.CompilerNotFoundError:
        return False


needs_nvcc = pytest.mark.skipif(not _nvcc_present(), reason="nvcc (the CUDA toolkit) not found")


# ---- the cases --------------------------------------------------------------------------
def _widest(spec):
    return max(spec.shapes, key=lambda sh: (sum(len(s) for s in sh), sum(map(sum, sh))))


def op_plans(dtypes="first"):
    """(label, plan) for each op-table spec: its widest case, in one dtype (float32 where
    it applies) or, with dtypes="rest", in each of its other dtypes - for the specs whose
    code depends on the dtype: elementwise ops, products, and one variant of each
    reduction (the axis variants differ in indexing, not in types)."""
    out, seen_api = [], set()
    for s in op_table.SPECS:
        if not s.dtypes:
            continue
        if dtypes == "rest":
            if s.kind in ("reduce", "nnet"):
                if s.api in seen_api:
                    continue
                seen_api.add(s.api)
            elif s.kind not in ("elementwise", "linalg"):
                continue
        first = "float32" if "float32" in s.dtypes else s.dtypes[0]
        chosen = [first] if dtypes == "first" else [d for d in s.dtypes if d != first]
        for dt in chosen:
            xs = s.inputs(dt, _widest(s), static=s.static_only)
            try:
                out_expr = s.build(*xs)
                plan = kg.kernel(f"op{len(out)}", xs, out_expr).plan()
            except kg.KgenTypeError as exc:
                if "depends on the value of input" in str(exc):
                    continue  # a lowering limit, shared with C (e.g. arange of an input value)
                raise
            out.append((f"{s.name} [{dt}]", plan))
    return out


def model_kernels():
    """The seed model, a softmax, the MLP step of benchmarks/bench_gpu.py, and the example specs."""
    rng = np.random.default_rng(0)
    x, y = kg.vector("x"), kg.vector("y")
    W = kg.shared(rng.standard_normal((10, 10)), name="W")
    b = kg.shared(rng.standard_normal(10), name="b")
    cost = kg.mean(kg.square(kg.dot(W, x) + b - y))
    dW, db = kg.grad(cost, [W, b])
    kernels = [kg.kernel("seed_train", [x, y], cost,
                         updates=[(W, W - 0.1 * dW), (b, b - 0.1 * db)])]
    M = kg.fmatrix("M")
    kernels.append(kg.kernel("softmax_rows", [M], kg.softmax(M)))
    kernels.append(mlp_step_kernel())
    kernels.append(lenet_step_kernel())
    for path in sorted((REPO / "examples" / "specs").glob("*.py")):
        for k in runpy.run_path(str(path)).values():
            if isinstance(k, kg.Kernel):
                kernels.append(kg.kernel(f"{path.stem}_{k.name}", k.inputs,
                                         k.outputs[0] if k.single else k.outputs, k.updates))
    return kernels


def lenet_step_kernel():
    """A small LeNet step: conv (the gather form), tanh, max-pool, conv (strided
    views), overlapping average pool, dense softmax, SGD."""
    import kgen.tensor as T
    from kgen.tensor.signal import pool
    rng = np.random.default_rng(2)
    shapes = [("w1", (4, 1, 3, 3)), ("b1", (4,)), ("w2", (6, 2, 2, 2)), ("W", (24, 3))]
    params = [kg.shared((rng.standard_normal(s) * 0.1).astype("float32"), name=n)
              for n, s in shapes]
    w1, b1, w2, W = params
    x, y = T.tensor("x", "float32", shape=(None, 1, 10, 10)), kg.ivector("y")
    a1 = T.tanh(T.nnet.conv2d(x, w1, filter_shape=(4, 1, 3, 3)) + b1.dimshuffle("x", 0, "x", "x"))
    p1 = T.specify_shape(pool.pool_2d(a1, (2, 2)), (None, 4, None, None))
    a2 = T.nnet.conv2d(p1, w2, filter_shape=(6, 2, 2, 2), border_mode="half", subsample=(2, 2),
                       num_groups=2, filter_flip=False)
    p2 = pool.pool_2d(a2, (2, 2), stride=(1, 1), ignore_border=False, mode="average_exc_pad")
    prob = kg.softmax(T.dot(p2.flatten(2), W))
    cost = -kg.mean(kg.log(prob[kg.arange(y.shape[0]), y]))
    grads = kg.grad(cost, params)
    return kg.kernel("lenet_step", [x, y], cost,
                     updates=[(q, q - np.float32(0.1) * g) for q, g in zip(params, grads)])


def mlp_step_kernel(batch=None, sizes=(784, 512, 10)):
    rng = np.random.default_rng(1)
    X, y = kg.fmatrix("X"), kg.ivector("y")
    n_in, n_hidden, n_out = sizes
    params = [kg.shared((rng.standard_normal(s) * 0.05).astype("float32"), name=n)
              for n, s in [("W1", (n_in, n_hidden)), ("b1", (n_hidden,)),
                           ("W2", (n_hidden, n_out)), ("b2", (n_out,))]]
    W1, b1, W2, b2 = params
    p = kg.softmax(kg.tanh(X @ W1 + b1) @ W2 + b2)
    cost = -kg.mean(kg.log(p[kg.arange(y.shape[0]), y]))
    grads = kg.grad(cost, params)
    return kg.kernel("mlp_step", [X, y], cost,
                     updates=[(q, q - np.float32(0.1) * g) for q, g in zip(params, grads)])


@pytest.fixture(scope="module")
def first_plans():
    return op_plans("first")


# ---- rendering ---------------------------------------------------------------------------
def test_every_op_renders_with_matching_signatures(first_plans):
    assert len(first_plans) > 200
    plans = [p for _, p in first_plans]
    source = render_module(plans, "cuda", "0")
    sigs = kernel_signatures(source)
    names = [k.name for p in plans for k in cuda_kernels(p)]
    assert sorted(sigs) == sorted(names)
    for p in plans:
        for k in cuda_kernels(p):
            # the C signature and PyCUDA's prepared format come from one record
            assert len(sigs[k.name]) == len(k.fmt)
            assert all((c == "P") == ("*" in t) for c, t in zip(k.fmt, sigs[k.name]))
    assert "{{" not in source and "{%" not in source


def test_dtype_variants_render():
    for label, plan in op_plans("rest"):
        text = render_module([plan], "cuda", "0")
        assert f"{plan.name}_s0" in text, label


def test_elementwise_kernel_is_a_fused_grid_stride_loop():
    x, y, z = kg.vector("x"), kg.vector("y"), kg.vector("z")
    k = kg.kernel("w1", [x, y, z], kg.exp(-x * x) * kg.sin(y) + kg.log1p(z * z))
    cu, c = k.source("cuda"), k.source("c")
    steps = k.plan().steps
    assert all(st.kind == "map" for st in steps)
    assert cu.count("__global__ void") == len(steps)  # one kernel per fused loop
    assert "i += kg_stride" in cu and "(int64_t)gridDim.x * blockDim.x" in cu
    # the per-element expressions are the C backend's, line for line
    body = lambda text: [l.strip() for l in text.splitlines() if re.match(r"\s*const double t\d+ =", l)]  # noqa: E731
    assert body(cu) and set(body(cu)) <= set(body(c))
    assert "Generated by kgen" in cu and "extern \"C\"" in cu


def test_float32_kernels_use_float_math():
    x = kg.fvector("x")
    cu = kg.kernel("f32", [x], kg.exp(x) * 0.5 + kg.sqrt(kg.abs(x))).source("cuda")
    assert "expf(" in cu and "sqrtf(" in cu and "0.5f" in cu
    code = re.sub(r"/\*.*?\*/", "", cu[cu.index("extern \"C\" __global__"):], flags=re.S)
    assert not re.search(r"\b(exp|sqrt)\(", code)  # no double-precision calls


def test_reduction_and_gemm_kernels():
    M = kg.matrix("M")
    cu = kg.kernel("rg", [M], [kg.softmax(M), M @ M.T, M.argmax(axis=0)]).source("cuda")
    assert "__shfl_down_sync" in cu or "kg_shfl_down(" in cu
    assert "_final(" in cu and "kg_splits" in cu          # the deterministic second pass
    assert "__shared__ double kg_As[KG_GEMM_BK][KG_GEMM_BM + 1]" in cu
    assert "kg_argtake_max_f64" in cu
    assert "atomicAdd" not in cu                           # no order-dependent sums


def test_models_render(tmp_path):
    for k in model_kernels():
        text = k.source("cuda")
        assert f"{k.name}_s0" in text


def test_host_shape_phase_is_the_c_one():
    from kgen.codegen.cuda import render_host, render_host_cdef
    x, y = kg.vector("x"), kg.vector("y")
    plan = kg.kernel("hs", [x, y], x + y).plan()
    host = render_host([plan])
    c = kg.kernel("hs", [x, y], x + y).source("c")
    for line in host.splitlines():
        if "KG_FAIL" in line:
            assert line in c  # the same checks and messages
    assert "int kgen_hs_ints(int64_t in_x_d0, int64_t in_y_d0, int64_t *ints" in render_host_cdef([plan])


# ---- nvcc --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compiled(first_plans, tmp_path_factory):
    """Compile three modules at once: every op (cubin, sm_90), every other dtype (PTX),
    and the models (the runtime's fatbin, through the build cache)."""
    from kgen.build import nvcc
    out = tmp_path_factory.mktemp("nvcc")
    ops = render_module([p for _, p in first_plans], "cuda", "0")
    rest = render_module([p for _, p in op_plans("rest")], "cuda", "0")
    models = render_module([k.plan() for k in model_kernels()], "cuda", "0")
    jobs = {
        "ops": lambda: nvcc.compile_cuda(ops, "ops", out / "ops", output="cubin",
                                         names=("sm_90",)),
        "rest": lambda: nvcc.compile_cuda(rest, "rest", out / "rest", output="ptx"),
        "models": lambda: nvcc.compile_cuda(models, "models", out / "models", output="cubin",
                                            names=("sm_90",)),
    }
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(fn) for name, fn in jobs.items()}
        return {name: f.result() for name, f in futures.items()}, models


@needs_nvcc
def test_every_op_compiles_for_sm_90(compiled):
    path = compiled[0]["ops"]
    data = Path(path).read_bytes()
    assert data[:4] == b"\x7fELF" and len(data) > 10000  # ptxas wrote a cubin


@needs_nvcc
def test_every_dtype_compiles_to_ptx(compiled):
    text = Path(compiled[0]["rest"]).read_text()
    assert ".target sm_80" in text and ".visible .entry" in text


@needs_nvcc
def test_models_compile_for_sm_90(compiled):
    assert Path(compiled[0]["models"]).read_bytes()[:4] == b"\x7fELF"


@needs_nvcc
def test_the_runtime_fatbin_holds_every_target(tmp_path, monkeypatch):
    """What CudaFunction loads: PTX for compute_80 plus cubins for sm_80 and sm_90."""
    from kgen.build import nvcc
    monkeypatch.setenv("KGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(nvcc, "_built", {})
    monkeypatch.delenv("KGEN_CUDA_TARGETS", raising=False)
    M = kg.matrix("M")
    source = kg.kernel("fat", [M], [kg.softmax(M), M @ M]).source("cuda")
    image, hit = nvcc.build_cuda(source, "fat")
    assert not hit
    assert fatbin_entries(image) == {("ptx", 80), ("cubin", 80), ("cubin", 90)}
    assert nvcc.build_cuda(source, "fat") == (image, True)


def fatbin_entries(data):
    """{(kind, arch)} of a fatbin's images (the layout cuobjdump reads: a 16-byte
    header, then entries of kind 1 = PTX, 2 = ELF with their arch at byte 28)."""
    magic, _, header, size = struct.unpack_from("<IHHQ", data, 0)
    assert magic == 0xBA55ED50
    entries, off = set(), header
    while off < header + size:
        kind, _, entry_header, entry_size = struct.unpack_from("<HHIQ", data, off)
        entries.add(({1: "ptx", 2: "cubin"}[kind], struct.unpack_from("<I", data, off + 28)[0]))
        off += entry_header + entry_size
    return entries


@needs_nvcc
def test_disk_cache_and_integrity(tmp_path, monkeypatch):
    from kgen.build import nvcc
    monkeypatch.setenv("KGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(nvcc, "_built", {})
    x = kg.vector("x")
    source = kg.kernel("cache_probe", [x], x * 3).source("cuda")
    names = ("compute_90",)
    image, hit = nvcc.build_cuda(source, "probe", output="ptx", names=names)
    assert not hit and b".entry kgen_cache_probe_s0_map" in image
    monkeypatch.setattr(nvcc, "_built", {})  # a new process: from the disk
    assert nvcc.build_cuda(source, "probe", output="ptx", names=names) == (image, True)
    entry = next(p for p in (tmp_path / "cache").iterdir() if len(p.name) == 64)
    ptx = next(entry.glob("*.ptx"))
    ptx.write_bytes(b"corrupt")
    monkeypatch.setattr(nvcc, "_built", {})
    assert nvcc.build_cuda(source, "probe", output="ptx", names=names) == (image, False)


@needs_nvcc
def test_nvcc_errors_are_compile_errors(tmp_path, monkeypatch):
    from kgen.build import nvcc
    monkeypatch.setenv("KGEN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(kg.CompileError) as info:
        nvcc.build_cuda('extern "C" __global__ void f() { undefined_thing(); }', "bad",
                        output="ptx", names=("compute_90",))
    err = info.value
    assert "undefined_thing" in err.output and "nvcc failed" in str(err)
    assert Path(err.source_path).is_file() and "failed" in err.source_path


def test_missing_nvcc_is_a_clear_error(monkeypatch, tmp_path):
    from kgen.build import nvcc
    monkeypatch.setenv("KGEN_NVCC", str(tmp_path / "no-such-nvcc"))
    with pytest.raises(kg.CompilerNotFoundError, match="CUDA toolkit"):
        nvcc.find_nvcc()


def test_targets_are_named_never_detected(monkeypatch):
    from kgen.build import nvcc
    monkeypatch.delenv("KGEN_CUDA_TARGETS", raising=False)
    assert nvcc.targets() == ("compute_80", "sm_80", "sm_90")
    flags = nvcc.output_flags("fatbin", nvcc.targets())
    assert flags == ["--fatbin", "--threads=0", "-gencode=arch=compute_80,code=compute_80",
                     "-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90"]
    assert nvcc.output_flags("ptx", nvcc.targets()) == ["--ptx", "-arch=compute_80"]
    monkeypatch.setenv("KGEN_CUDA_TARGETS", "compute_75, sm_75,sm_90a")
    assert nvcc.targets() == ("compute_75", "sm_75", "sm_90a")
    monkeypatch.setenv("KGEN_CUDA_TARGETS", "native")
    with pytest.raises(kg.KgenError, match="not compute_NN or sm_NN"):
        nvcc.targets()
    assert "--use_fast_math" not in nvcc.FLAGS


def test_no_gpu_needed_for_source(monkeypatch):
    import kgen.runtime.cuda as rt
    monkeypatch.setattr(rt, "default_driver", lambda: (_ for _ in ()).throw(AssertionError))
    x = kg.vector("x")
    assert "__global__" in kg.kernel("src_only", [x], x.sum()).source("cuda")


def test_shutil_which_is_not_fooled_by_a_directory(tmp_path, monkeypatch):
    from kgen.build import nvcc
    (tmp_path / "nvcc").mkdir()
    monkeypatch.setenv("KGEN_NVCC", str(tmp_path / "nvcc"))
    with pytest.raises(kg.CompilerNotFoundError):
        nvcc.find_nvcc()
    assert shutil.which(str(tmp_path / "nvcc")) is None


def test_host_program_decides_each_ifelse_before_its_branches_and_guards_whole_loops():
    """cuda_launch.host_program, which the package launcher renders and kg.function
    runs: an ifelse is decided after the kernels that compute its condition and
    before any kernel of its branches; a scan in a branch is one guarded loop."""
    import kgen.tensor as T
    from kgen.ifelse import ifelse
    from kgen.runtime.cuda_launch import host_program
    c, x = T.dscalar("c"), T.dvector("x")
    squash = kg.scan(lambda e, acc: T.tanh(acc + e), sequences=x,
                     outputs_info=T.zeros_like(x[0]), name="squash")[0][-1]
    plan = kg.kernel("branchy_loop", [c, x], ifelse(T.gt(c, 0), squash, T.exp(x).sum())).plan()
    program = host_program(plan)
    kinds = [h.kind for h in program]
    decide = kinds.index("decide")
    assert kinds.count("decide") == 1 and kinds[:decide] == ["launch"] * decide
    assert all(not h.guards for h in program[:decide + 1])
    side = program[decide].index
    loop, end = kinds.index("loop"), kinds.index("end_loop")
    assert decide < loop < end and program[loop].guards == ((side, 0),)
    inside = program[loop + 1:end]
    assert inside and all(h.kind == "launch" and not h.guards and h.kernel.scan is not None
                          for h in inside)
    others = [h for h in program[end + 1:] if h.kind == "launch"]
    assert {h.guards for h in others} >= {((side, 1),)}  # the else branch's kernels
    names = [h.kernel.name for h in program if h.kind == "launch"]
    assert names == [k.name for k in cuda_kernels(plan)]  # the launcher's function table
