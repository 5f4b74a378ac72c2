"""C identifiers and C text derived from user names: safe by construction.

User text (variable and kernel names, expressions in comments, messages) reaches
generated C and CUDA only through this module:

* `Names` hands out every identifier of one kernel. A name derived from user
  text is a role prefix (`in_`, `sh_`, `out_`, `upd_`, `v_`) plus the text folded
  to ASCII letters, digits and `_`. No C keyword, libc/libm/OpenMP/Python/CUDA
  name, macro or template local starts with those prefixes (tests/test_names.py
  checks this against what the included headers declare), so no block list is
  needed. Every name, the kernel's internal ones included, comes from one
  table, so two names can never collide: a repeat gets `_2`, `_3`...
* kernel symbols: `kgen_<name>` for kg.function, `<package>_<name>` in
  packages (`KernelNames` keeps a package's kernels apart, and apart from the
  names derived from them: `K_shapes`, `K_ints`, `K_const`, `K_s3_map`, and
  the Dask stage kernels `K_chunk0`, `K_tail` and theirs).
* `c_string` turns any str into one valid C string literal (it is only ever
  passed as an argument, e.g. to a "%s" of KG_FAIL, never used as a format);
  `comment` makes text safe inside /* */ and // comments.
"""
import keyword
import re
import unicodedata

# role -> (prefix for a user name, stem for an unnamed one: in0, sh1, out, upd0)
ROLES = {"input": ("in_", "in"), "shared": ("sh_", "sh"), "output": ("out_", "out"),
         "update": ("upd_", "upd"), "leaf": ("v_", "v")}
KERNEL_PREFIX = "kgen_"     # kg.function's kernels (one per module)
MAX_FOLDED = 48             # folded text is cut here: C99 guarantees 63 significant chars

# What the templates declare themselves (locals, parameters, labels): kgen's
# own names, reserved so that an internal hint (a shape variable "n") is never
# one of them. User text cannot reach these: it always carries a role prefix.
TEMPLATE_LOCALS = frozenset("""
    i j k n o q r s c t a d at acc best best_at part nt lo hi src dst rc err errlen
    out_shape ints fail size main
""".split())
_TEMPLATE_PATTERN = re.compile(r"^[ircq]\d+$")   # loop counters i0, i1, r0, c0...
_NOT_OURS = re.compile(r"^(?:kg_|KG_|_)")            # kgen's headers, the C implementation

# the suffixes the templates and the CUDA backend append to a kernel symbol, and
# those of a package kernel's chunk and tail kernels for Dask (kgen/dask/stages.py),
# with theirs
_SUFFIX = r"(?:shapes|ints|cuda|prof|step_seconds|fast(?:_\w+)?|const\d*|const_\d+|s\d+_\w+|kg_labels)"
DERIVED_SUFFIX = re.compile(rf"^(?:{_SUFFIX}|(?:chunk\d+|tail)(?:_{_SUFFIX})?)$")


def fold(text, limit=MAX_FOLDED):
    """`text` as [A-Za-z0-9_]*: accents dropped (é -> e), other characters
    outside ASCII as u<hex> (π -> u3c0), ASCII punctuation and spaces as `_`.
    May be empty or start with a digit; callers add a prefix."""
    out = []
    for ch in str(text):
        if ch.isascii():
            out.append(ch if ch.isalnum() or ch == "_" else "_")
            continue
        base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        base = "".join(b for b in base if b.isalnum())
        out.append(base or f"u{ord(ch):x}")
    return "".join(out)[:limit]


class Names:
    """The identifiers of one kernel: each handed out once."""

    def __init__(self):
        self.used = set(TEMPLATE_LOCALS)

    def taken(self, name):
        return name in self.used or bool(_TEMPLATE_PATTERN.match(name))

    def fresh(self, hint):
        """`hint` itself (an identifier kgen chose), or `hint_2`, `hint_3`...
        when it is taken."""
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", hint) and not _NOT_OURS.match(hint), hint
        name, k = hint, 1
        while self.taken(name):
            k += 1
            name = f"{hint}_{k}"
        self.used.add(name)
        return name

    def user(self, role, text, fallback=""):
        """The identifier of a user-named thing: `in_x` for input `x`; `in0`
        (stem + fallback) when the name is empty or folds to nothing."""
        prefix, stem = ROLES[role]
        folded = fold(text) if text else ""
        return self.fresh(prefix + folded if folded else stem + str(fallback))


class KernelNames:
    """A package's kernels: Python attribute names and C symbols.

    Each kernel's name is folded (`my-kernel` -> `my_kernel`; a Python keyword
    gets a `_`; a leading digit or `_` gets a `k`). A kernel then owns its
    symbol `<package>_<name>` and every `<symbol>_<derived suffix>`; a name
    that would clash with another kernel's, or with one derived from it, gets
    a counter instead."""

    def __init__(self, package, reserved=()):
        self.package = package
        self.taken = list(reserved)  # attribute names the package defines itself

    def _clash(self, a, b):
        # case-blind: the header also defines <SYMBOL>_OUT_SHAPE_LEN
        a, b = a.lower(), b.lower()
        if a == b:
            return True
        for x, y in ((a, b), (b, a)):
            if y.startswith(x + "_") and DERIVED_SUFFIX.match(y[len(x) + 1:]):
                return True
        return False

    def claim(self, text):
        """(python attribute, C symbol) for the kernel named `text`."""
        name = fold(text) or "kernel"
        if not name[0].isalpha():
            name = "k" + name
        if keyword.iskeyword(name):
            name += "_"
        base, k = name, 1
        while any(self._clash(name, t) for t in self.taken):
            k += 1
            name = f"{base}{k}" if base[-1].isalpha() else f"{base}_{k}"
        self.taken.append(name)
        return name, f"{self.package}_{name}"


def function_symbol(text):
    """The C symbol of a kg.function kernel (one per module): `kgen_<folded name>`
    (`kgen_fn` stays `kgen_fn`)."""
    name = fold(text) or "fn"
    return name if name.startswith(KERNEL_PREFIX) else KERNEL_PREFIX + name


# ---- text inside C ------------------------------------------------------------
_PLAIN = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"\\", '"', "?"}


def c_string(text):
    """Any str as one C string literal: printable ASCII as itself (but \\, " and
    ?, which could start a trigraph), everything else as 3-digit octal escapes of
    its UTF-8 bytes (an octal escape is never longer than 3 digits, so the
    next character cannot extend it)."""
    out = ['"']
    for ch in str(text):
        if ch in _PLAIN:
            out.append(ch)
        elif ch in '\\"?':
            out.append("\\" + ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8", "backslashreplace"))
    out.append('"')
    return "".join(out)


def comment(text, limit=None):
    """Text that is safe inside a /* */ or // comment and stays on its line:
    no `*/` or `/*`, no line breaks or other control characters (shown as \\n,
    \\x07...), no backslash (or space) at the end, no `??` (trigraphs), no
    unpaired surrogates. Printable Unicode stays readable."""
    out = []
    for ch in str(text):
        cat = unicodedata.category(ch)
        if ch == "\n":
            out.append("\\n")
        elif cat[0] in "C" or cat in ("Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    s = "".join(out)
    while "*/" in s or "/*" in s or "??" in s:
        s = s.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")
    if limit is not None and len(s) > limit:
        s = s[:limit - 3] + "..."
    s = s.rstrip()
    if s.endswith("\\"):  # would continue a // comment onto the next line
        s = s[:-1] + "\\x5c"
    return s
