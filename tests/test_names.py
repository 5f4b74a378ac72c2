"""User names in generated C and CUDA (kgen/lower/names.py): any name works.

Every identifier derived from a user's name carries a role prefix that no
header, macro or template local uses (checked here against what the headers
really declare), user text reaches C only as an escaped string literal passed
to "%s", and comments cannot be closed or continued from inside. The oracles
are independent of kgen: NumPy for results, a C compiler for what a string
literal means and for -Wall -Wextra -Werror, gcc -E for what headers declare.
"""
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kgen as kg
from kgen.lower.names import (KERNEL_PREFIX, ROLES, TEMPLATE_LOCALS, KernelNames, Names,
                              c_string, comment, fold, function_symbol)

REPO = Path(__file__).resolve().parents[1]
CC = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler")
WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror"]

# C and C++ keywords, libc/libm/OpenMP names and macros, the templates' own
# locals, printf directives, quotes, comment and trigraph text, Unicode...
NASTY = [
    "errno", "INFINITY", "NULL", "NAN", "int64_t", "size_t", "EOF", "stdout", "main", "exp",
    "omp_get_num_threads", "malloc", "free", "printf", "KG_FAIL", "KG_ESHAPE", "kg_exp_f64",
    "__LINE__", "_Bool", "__restrict__", "restrict", "double", "int", "class", "new",
    "template", "err", "errlen", "rc", "i", "i0", "n", "k", "size", "tmp0", "t1", "v", "acc",
    "best", "out_shape", "fail", "ints", "%s%n", "%n%s%s%s", "a\"b", "'", "back\\slash", "end\\",
    "new\nline", "cr\rlf", "tab\there", "*/", "/*", "//", "??=", "??/", "x??/\ny", "ünïcödé",
    "π", "λ", "日本", "x y", "1x", "_", "__", "", "in_x", "x_d0", "x", "X", "sh_W", "out",
    "\x00nul", "\ud800", "\u2028", "e\u0301", "a" * 300,
]


def cc(source, tmp_path, *flags, run=False, name="t"):
    """Compile (and maybe run) a C program; returns the run's stdout bytes."""
    src, exe = tmp_path / f"{name}.c", tmp_path / name
    src.write_text(source, encoding="utf-8")
    r = subprocess.run([CC, *WARN, *flags, str(src), "-o", str(exe), "-lm"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:3000]
    return subprocess.run([str(exe)], capture_output=True, check=True).stdout if run else None


# ---- the scheme itself ------------------------------------------------------------

def test_folding_and_prefixes_are_readable():
    assert fold("x") == "x" and fold("my-kernel") == "my_kernel" and fold("ünï") == "uni"
    assert fold("π") == "u3c0" and fold("a b.c") == "a_b_c" and fold("") == ""
    names = Names()
    assert [names.user("input", "x"), names.user("shared", "W"), names.user("output", "cost"),
            names.user("update", "W"), names.user("leaf", "x")] \
        == ["in_x", "sh_W", "out_cost", "upd_W", "v_x"]
    assert names.user("input", "", 2) == "in2" and names.user("output", None) == "out"


def test_a_table_never_hands_out_a_name_twice():
    names = Names()
    got = [names.user("input", t) for t in ["x", "x", "x_2", "x-2", "x 2"]]
    assert got == ["in_x", "in_x_2", "in_x_2_2", "in_x_2_3", "in_x_2_4"]
    # internal hints never take a template local
    assert names.fresh("n") == "n_2" and names.fresh("i0") == "i0_2"


def test_kernel_names_in_a_package():
    kn = KernelNames("pkg", reserved=["KgenError"])
    assert kn.claim("my-kernel") == ("my_kernel", "pkg_my_kernel")
    assert kn.claim("my_kernel") == ("my_kernel2", "pkg_my_kernel2")      # folded alike
    assert kn.claim("exp") == ("exp", "pkg_exp") and kn.claim("main") == ("main", "pkg_main")
    assert kn.claim("EXP") == ("EXP2", "pkg_EXP2")      # the header's EXP_OUT_SHAPE_LEN
    assert kn.claim("exp_shapes")[0] == "exp_shapes2"   # pkg_exp_shapes is exp's
    assert kn.claim("lambda") == ("lambda_", "pkg_lambda_")
    assert kn.claim("2x") == ("k2x", "pkg_k2x") and kn.claim("_p") == ("k_p", "pkg_k_p")
    assert kn.claim("KgenError")[0] == "KgenError2"
    assert function_symbol("train") == "kgen_train" and function_symbol("kgen_fn") == "kgen_fn"


@needs_cc
def test_prefixes_are_unused_by_every_header_a_kernel_sees(tmp_path):
    """No identifier or macro of the C library, libm, OpenMP, Python.h (cffi
    compiles the kernels inside its module) or kgen's own headers starts with a
    role prefix: so no block list is needed."""
    prelude = REPO / "kgen" / "templates" / "c"
    headers = ["stdint.h", "stddef.h", "stdbool.h", "stdio.h", "stdlib.h", "string.h",
               "math.h", "omp.h", "Python.h"]
    text = "".join(f"#include <{h}>\n" for h in headers)
    for h in ["kg_math.h", "kg_ops.h", "kg_gemm.h", "prelude.h"]:
        text += f'#include "{prelude / h}"\n'
    (tmp_path / "h.c").write_text(text)
    args = [CC, "-fopenmp", f"-I{sysconfig.get_paths()['include']}", "-E", "-dD",
            str(tmp_path / "h.c")]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    idents = set(re.findall(r"\b[A-Za-z_]\w*\b", out))
    assert len(idents) > 3000 and "omp_get_num_threads" in idents and "PyObject" in idents
    prefixes = tuple(p for p, _ in ROLES.values()) + (KERNEL_PREFIX,)
    assert sorted(i for i in idents if i.startswith(prefixes)) == []
    # the templates themselves: only the locals the table reserves
    for path in (REPO / "kgen" / "templates").rglob("*"):
        if path.is_file():
            src = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|/\*.*?\*/|//[^\n]*", " ",
                         path.read_text(), flags=re.S)
            used = set(re.findall(r"\b[A-Za-z_]\w*\b", src))
            assert {i for i in used if i.startswith(prefixes)} <= TEMPLATE_LOCALS, path


# ---- string literals and comments, as a C compiler reads them ------------------------

@needs_cc
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.text(max_size=20), min_size=1, max_size=40))
def test_c_string_means_the_text(tmp_path_factory, texts):
    texts = texts + NASTY
    tmp = tmp_path_factory.mktemp("lit")
    body = "".join(f"    {{ static const char s[] = {c_string(t)}; fwrite(s, 1, sizeof s - 1, "
                   f"stdout); putchar(0); }}\n" for t in texts)
    # -trigraphs: "??=" must stay text even where trigraphs are on
    got = cc(f"#include <stdio.h>\nint main(void)\n{{\n{body}    return 0;\n}}\n", tmp,
             "-trigraphs", run=True)
    want = b"".join(t.encode("utf-8", "backslashreplace") + b"\0" for t in texts)
    assert got == want


@needs_cc
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.text(max_size=30), min_size=1, max_size=40))
def test_comments_cannot_be_closed_or_continued(tmp_path_factory, texts):
    texts = texts + NASTY
    tmp = tmp_path_factory.mktemp("com")
    lines = []
    for k, t in enumerate(texts):
        c = comment(t)
        assert "\n" not in c and "*/" not in c and "/*" not in c and "??" not in c
        lines.append(f"/* {c} */ static const int a{k} = {k};\n"
                     f"// {c}\nstatic const int b{k} = {k};\n")
    uses = " + ".join(f"a{k} + b{k}" for k in range(len(texts)))
    got = cc("#include <stdio.h>\n" + "".join(lines) +
             f'int main(void) {{ printf("%d", {uses}); return 0; }}\n', tmp, "-trigraphs",
             run=True)
    assert int(got) == 2 * sum(range(len(texts)))


# ---- the repros, through kg.function -------------------------------------------------

def test_errno_and_infinity_inputs_and_shared_variables():
    x, y = kg.vector("errno"), kg.vector("INFINITY")
    s = kg.shared(np.array([1.0, 2.0, 3.0]), name="errno")
    f = kg.function([x, y], x * y + s, updates=[(s, s + x)])
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    np.testing.assert_array_equal(f(a, b), a * b + [1, 2, 3])
    np.testing.assert_array_equal(s.get_value(), [2.0, 4.0, 6.0])


def test_every_nasty_name_at_once_gives_numpys_answer():
    xs = [kg.vector(n) for n in NASTY]
    shared = [kg.shared(np.full(2, float(k)), name=n) for k, n in enumerate(NASTY[:20])]
    total = sum((k + 1) * v for k, v in enumerate(xs)) + sum(shared)
    f = kg.function(xs, [total, total.sum()], name="main",
                    updates=[(s, s + xs[k]) for k, s in enumerate(shared)])
    args = [np.array([k, -k], dtype=float) for k in range(len(xs))]
    want = sum((k + 1) * a for k, a in enumerate(args)) + sum(np.full(2, float(k))
                                                                for k in range(20))
    got, got_sum = f(*args)
    np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(got_sum, want.sum())
    for k, s in enumerate(shared):
        np.testing.assert_array_equal(s.get_value(), k + args[k])


@pytest.mark.parametrize("name", ["%s%n", "x%n", "a\"b\\", "new\nline", "π"])
def test_shape_errors_name_the_input(name):
    x = kg.tensor.tensor(name, shape=(3,))
    y = kg.vector("y")
    f = kg.function([x, y], x + y, name=name)
    with pytest.raises(ValueError) as exc:
        f(np.ones(4), np.ones(4))
    assert repr(name) in str(exc.value) or name in str(exc.value)
    with pytest.raises(ValueError):
        f(np.ones(3), np.ones(2))          # broadcast error, from the C shape phase
    np.testing.assert_array_equal(f(np.ones(3), np.ones(3)), 2 * np.ones(3))


@needs_cc
def test_c_messages_carry_user_text_as_arguments(tmp_path):
    """The C shape phase itself, called from C: the message holds the name verbatim."""
    name = '%s%n%s"\\??= x'
    x = kg.tensor.tensor(name, shape=(3,))
    k = kg.kernel(name, [x], x * 2.0)
    plan = k.plan()
    src = k.source("c")
    got = cc(src + textwrap.dedent(f"""
        int main(void)
        {{
            char err[256] = "";
            int64_t shape[1];
            int rc = {plan.name}_shapes(4, shape, err, sizeof err);
            printf("%d|%s", rc, err);
            return 0;
        }}
        """), tmp_path, run=True)
    assert got.decode() == f"1|{name}: expected axis 0 of length 3, got 4"


@needs_cc
@pytest.mark.parametrize("extra", [[], ["-fopenmp"]], ids=["plain", "openmp"])
def test_nasty_names_compile_warning_free(extra, tmp_path):
    xs = [kg.matrix(n) for n in NASTY]
    W = kg.shared(np.ones((2, 2)), name="__LINE__")
    outs = [kg.dot(xs[0], W).sum(axis=0), (xs[1] * xs[2]).max(), kg.softmax(xs[3] + xs[4])]
    outs += [v[:, ::-1] * k + 1 for k, v in enumerate(xs)]
    outs += xs[6:12]   # outputs named by the user: out_<name>
    src = kg.kernel("\n*/ main %n", xs, outs, updates=[(W, W + xs[5])]).source("c")
    (tmp_path / "k.c").write_text(src, encoding="utf-8")
    r = subprocess.run([CC, *WARN, "-trigraphs", "-O1", *extra, "-c", str(tmp_path / "k.c"),
                        "-o", str(tmp_path / "k.o")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:4000]


# ---- packages: python -m kgen build ----------------------------------------------------

def _spec(kernels, shared=()):
    """A spec that declares `kernels` [(kernel name, [input names])], each computing
    sum((j + 1) * input_j) + every shared variable, `shared` [(name, value)]."""
    lines = ["import numpy as np", "import kgen as kg"]
    for k, (name, _) in enumerate(shared):
        lines.append(f"s{k} = kg.shared(np.arange(3.0) + {k}, name={name!r})")
    for k, (kname, inputs) in enumerate(kernels):
        xs = ", ".join(f"kg.vector({n!r})" for n in inputs)
        lines.append(f"_x{k} = [{xs}]")
        expr = " + ".join([f"{j + 1} * _x{k}[{j}]" for j in range(len(inputs))] +
                          [f"s{j}" for j in range(len(shared))]) or "kg.constant(1.0)"
        lines.append(f"k{k} = kg.kernel({kname!r}, _x{k}, {expr})")
    return "\n".join(lines) + "\n"


def _build(tmp_path, text, *options, stem="pkg"):
    spec = tmp_path / f"{stem}.py"
    spec.write_text(text, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "kgen", "build", str(spec), "-o",
                           str(tmp_path / "out"), *options], capture_output=True, text=True,
                          cwd=tmp_path)


def test_two_kernels_with_one_name_report_the_users_name(tmp_path):
    r = _build(tmp_path, _spec([("k", ["x"]), ("k", ["y"])]), "--sources-only")
    assert r.returncode != 0
    assert "two kernels are named 'k'" in r.stderr and "k_" not in r.stderr


def test_renames_are_in_the_header_and_the_manifest(tmp_path):
    r = _build(tmp_path, _spec([("my-kernel", ["x"]), ("exp", ["y"])]), "--sources-only")
    assert r.returncode == 0, r.stderr
    pkg = tmp_path / "out" / "pkg"
    header = (pkg / "pkg.h").read_text()
    assert "the spec's kernel 'my-kernel', renamed for C and Python; pkg.my_kernel" in header
    assert "int pkg_my_kernel(const double *in_x, int64_t in_x_d0, double *out" in header
    assert "int pkg_exp(" in header and "PKG_MY_KERNEL_OUT_SHAPE_LEN" in header
    kernels = json.loads((pkg / "manifest.json").read_text())["kernels"]
    assert [(k["name"], k["python_name"], k["c_name"]) for k in kernels] \
        == [("my-kernel", "my_kernel", "pkg_my_kernel"), ("exp", "exp", "pkg_exp")]


def test_package_names_must_be_a_c_namespace(tmp_path):
    for bad in ["kg", "PyList", "_x"]:
        r = _build(tmp_path, _spec([("k", ["x"])]), "--sources-only", "--name", bad)
        assert r.returncode != 0 and "package name" in r.stderr, (bad, r.stderr)


@needs_cc
def test_a_real_package_with_nasty_names(tmp_path):
    inputs = [n for n in NASTY if n not in ("\ud800",)][:40] + ["\ud800"]
    shared = [("errno", 0), ("INFINITY", 0), ("NULL", 0), ("free", 0), ("θ", 0)]
    kernels = [("main", inputs[:20]), ("exp", inputs[20:]), ("%s%n", ["%s%n"]),
               ("my-kernel", ["x"]), ("my_kernel", ["y"]), ("stdout", [])]
    r = _build(tmp_path, _spec(kernels, shared))
    assert r.returncode == 0, r.stderr
    pkg = tmp_path / "out" / "pkg"
    check = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        sys.path.insert(0, {str(tmp_path / 'out')!r})
        import pkg
        s = sum(np.arange(3.0) + k for k in range(5))
        for attr, n in [("main", 20), ("exp", {len(inputs) - 20}), ("k_s_n", 1),
                        ("my_kernel", 1), ("my_kernel2", 1), ("stdout", 0)]:
            args = [np.full(3, float(j)) for j in range(n)]
            got = getattr(pkg, attr)(*args)
            want = sum((j + 1) * a for j, a in enumerate(args)) + s
            assert np.array_equal(got, want), (attr, got, want)
        assert np.array_equal(pkg.θ.get_value(), np.arange(3.0) + 4)
        try:
            pkg.k_s_n(np.ones(3), np.ones(3))
        except TypeError as exc:
            assert "%s%n" in str(exc), exc
        else:
            raise AssertionError("no error")
        print("ok")
        """)
    run = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         cwd=tmp_path)
    assert run.stdout.strip() == "ok", run.stderr[-3000:]
    src = (pkg / "pkg.c").read_text(encoding="utf-8")
    r = subprocess.run([CC, *WARN, "-trigraphs", "-O1", "-c", str(pkg / "pkg.c"), "-o",
                        str(tmp_path / "pkg.o")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:3000]
    assert "KG_EXPORT int pkg_main(" in src and "KG_EXPORT int pkg_stdout(" in src


# ---- the property test: random names, through kg.function and `kgen build` -------------

_names = st.one_of(st.sampled_from(NASTY), st.text(max_size=12))
_idents = st.one_of(st.sampled_from(["errno", "INFINITY", "NULL", "main", "exp", "size_t",
                                     "stdout", "EOF", "θ", "rc", "err", "n", "tmp0", "i0"]),
                    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True))


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(inputs=st.lists(_names, min_size=1, max_size=5), shared=st.lists(_names, max_size=3),
       kname=_names, bad=st.integers(0, 4))
def test_random_names_through_kg_function(inputs, shared, kname, bad):
    xs = [kg.tensor.tensor(n, shape=(3,)) if k == bad else kg.vector(n)
          for k, n in enumerate(inputs)]
    ss = [kg.shared(np.arange(3.0) * (k + 1), name=n) for k, n in enumerate(shared)]
    expr = sum(((k + 1) * x for k, x in enumerate(xs)), kg.constant(0.5))
    expr = expr + sum(ss, kg.constant(0.0))
    f = kg.function(xs, [expr, expr.max()], name=kname or None)
    args = [np.array([1.0, -2.0, 3.0]) * (k + 1) for k in range(len(xs))]
    want = sum((k + 1) * a for k, a in enumerate(args)) + 0.5
    want = want + sum(np.arange(3.0) * (k + 1) for k in range(len(ss)))
    got, top = f(*args)
    np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(top, want.max())
    if bad < len(xs):
        wrong = list(args)
        wrong[bad] = np.ones(5)
        with pytest.raises(ValueError) as exc:
            f(*wrong)
        assert repr(inputs[bad]) in str(exc.value) or inputs[bad] in str(exc.value)


@needs_cc
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(kernels=st.lists(st.tuples(_names.filter(bool), st.lists(_names, max_size=4)), min_size=1,
                        max_size=3, unique_by=lambda k: k[0]),
       shared=st.lists(_idents, max_size=3, unique=True))
def test_random_names_through_kgen_build(tmp_path_factory, kernels, shared):
    from kgen import cli
    tmp = tmp_path_factory.mktemp("spec")
    spec = tmp / "pkg.py"
    spec.write_text(_spec(kernels, [(s, 0) for s in shared]), encoding="utf-8")
    names = KernelNames("pkg", reserved=["KgenError", "KgenIndexError", "KgenTypeError",
                                         "ShapeError"])
    attrs = {names.claim(k)[0] for k, _ in kernels}
    if set(shared) & (attrs | {"KgenError", "KgenIndexError", "KgenTypeError", "ShapeError"}):
        return  # a shared variable and a kernel both claiming one attribute: an error
    assert cli.main(["build", str(spec), "-o", str(tmp / "out"), "--sources-only", "-q"]) == 0
    pkg = tmp / "out" / "pkg"
    for f in ["pkg.c", "pkg.h"]:
        r = subprocess.run([CC, *WARN, "-trigraphs", "-c", str(pkg / f), "-o", str(tmp / "x.o")]
                           if f.endswith(".c") else
                           [CC, *WARN, "-trigraphs", "-fsyntax-only", "-x", "c", str(pkg / f)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[:3000]
    compile((pkg / "__init__.py").read_text(encoding="utf-8"), "__init__.py", "exec")
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert [k["name"] for k in manifest["kernels"]] == [k for k, _ in kernels]
    c_names = [k["c_name"] for k in manifest["kernels"]]
    assert len(set(n.lower() for n in c_names)) == len(c_names)
    assert all(re.fullmatch(r"pkg_[A-Za-z]\w*", n) for n in c_names)


# ---- CUDA: the same scheme ------------------------------------------------------------

def _cuda_kernel():
    """Inputs and shared variables named like CUDA's and C++'s own words too."""
    names = NASTY + ["threadIdx", "blockIdx", "__syncthreads", "warpSize", "atomicAdd",
                     "operator", "this", "nullptr", "kg_err", "kg_part"]
    xs = [kg.vector(n) for n in names]
    W = kg.shared(np.arange(4.0), name="blockDim")
    total = sum((k + 1) * x for k, x in enumerate(xs)) * W
    return names, xs, W, total


def test_cuda_source_uses_the_scheme():
    names, xs, W, total = _cuda_kernel()
    src = kg.kernel("threadIdx", xs, [total, total.sum()], updates=[(W, W + xs[0])]) \
        .source("cuda")
    assert "kgen_threadIdx_s0_" in src and "in_errno" in src and "sh_blockDim" in src
    assert "%n" not in re.sub(r"/\*.*?\*/", "", src, flags=re.S)   # only in comments


def test_cuda_runs_with_nasty_names_on_the_emulator(monkeypatch):
    import _cuda_emu
    if shutil.which("g++") is None:
        pytest.skip("the CUDA emulator needs g++")
    _cuda_emu.emulate(monkeypatch)
    names, xs, W, total = _cuda_kernel()
    f = kg.function(xs, [total, total.sum()], updates=[(W, W + xs[0])], target="cuda",
                    name="threadIdx")
    args = [np.arange(4.0) * (k % 5) for k in range(len(xs))]
    want = sum((k + 1) * a for k, a in enumerate(args)) * np.arange(4.0)
    got, got_sum = f(*args)
    np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(got_sum, want.sum())
    np.testing.assert_array_equal(W.get_value(), np.arange(4.0) + args[0])


def test_cuda_nasty_names_compile_with_nvcc(tmp_path):
    from kgen.build import nvcc
    try:
        nvcc.find_nvcc()
    except kg.CompilerNotFoundError:
        pytest.skip("nvcc (the CUDA toolkit) not found")
    names, xs, W, total = _cuda_kernel()
    k = kg.kernel("threadIdx", xs, [total, total.sum(), kg.softmax(xs[1])],
                  updates=[(W, W + xs[0])])
    nvcc.compile_cuda(k.source("cuda"), "nasty", tmp_path, output="ptx",
                      extra_flags=["-Xcompiler", "-Wall", "-Werror", "all-warnings"])


@needs_cc
def test_a_shipped_package_reports_static_shapes_by_name(tmp_path):
    """The repro: `%s%n` in a name, and the static-shape check failing, in the
    Python layer and in the extension's own C shape phase."""
    text = textwrap.dedent("""
        import kgen as kg
        x = kg.tensor.tensor('%s%n', shape=(3,))
        k = kg.kernel('%s%n', [x], x * 2.0)
        """)
    r = _build(tmp_path, text, stem="shp")
    assert r.returncode == 0, r.stderr
    check = textwrap.dedent(f"""
        import importlib, sys
        import numpy as np
        sys.path.insert(0, {str(tmp_path / 'out')!r})
        import shp
        assert np.array_equal(shp.k_s_n(np.ones(3)), 2 * np.ones(3))
        try:
            shp.k_s_n(np.ones(4))
        except ValueError as exc:
            assert "'%s%n'" in str(exc), exc
        else:
            raise AssertionError("no error")
        ext = importlib.import_module("shp._shp")
        err = ext.ffi.new("char[]", 256)
        out = ext.ffi.new("int64_t[]", 1)
        rc = ext.lib.shp_k_s_n_shapes(4, out, err, 256)
        print(rc, ext.ffi.string(err).decode())
        """)
    run = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "1 %s%n: expected axis 0 of length 3, got 4"
