"""What a global looks like: symbol expressions, and type layouts parsed from gdb's ``ptype/o``.

Pure: no gdb and no file here. :class:`~hftmem_tui.sources.symbols.SymbolTable` runs gdb on
the executable file and hands its text to :func:`parse_ptype_o`; what the user types is
checked by :func:`check_symbol_expr` before gdb sees it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from hftmem_tui.errors import SourceError, SymbolNotFound
from hftmem_tui.textsafe import visible

__all__ = [
    "InvalidExpression", "Symbol", "Field", "Layout", "ResolvedExpr", "check_symbol_expr",
    "parse_ptype_o", "split_dims", "type_with_dims",
]


class InvalidExpression(SourceError, ValueError):
    """A user-typed symbol expression uses something other than names, '.', '::', '[N]'."""


ADDRESS_MAX = (1 << 64) - 1
_NUMBER_RE = re.compile(r"0[xX]([0-9a-fA-F]{1,16})|(0|[1-9][0-9]{0,19})", re.ASCII)


def parse_number(text: str, what: str = "address", limit: int = ADDRESS_MAX) -> int:
    """An unsigned number as gdb writes it: ``0x`` hex or decimal without a leading zero (gdb
    reads that as octal: refused rather than guessed), at most ``limit``. Used by the CLI and the
    TUI alike. Raises InvalidExpression with the reason, the text quoted short and escaped."""
    t = text.strip()
    m = _NUMBER_RE.fullmatch(t)
    if m is None:
        if re.fullmatch(r"0[0-7]+", t, re.ASCII):
            why = f"a leading zero is octal to gdb: write 0x{int(t, 8):x} or {int(t, 8)}"
        elif re.fullmatch(r"0[0-9]+", t, re.ASCII):
            why = "a leading zero means octal to gdb, and 8 and 9 are not octal digits"
        elif re.fullmatch(r"0[xX][0-9a-fA-F]+|[1-9][0-9]*", t, re.ASCII):
            why = f"more than 64 bits (at most {limit:#x})"
        else:
            why = "use 0x hex or decimal"
        raise InvalidExpression(f"not a valid {what}: '{quoted_short(text)}' ({why})")
    v = int(m.group(1), 16) if m.group(1) is not None else int(m.group(2), 10)
    if v > limit:
        raise InvalidExpression(f"{what} out of range: '{quoted_short(text)}' (at most {limit:#x})")
    return v


def quoted_short(text: str) -> str:
    """User text for a one-line refusal: control characters as escapes, a 5000-digit argument quoted by its ends."""
    text = visible(text)
    return text if len(text) <= 40 else f"{text[:16]}...{text[-8:]} ({len(text)} characters)"


# ------------------------------------------------------------------ data


@dataclass(frozen=True)
class Symbol:
    """A global as linked: ``address`` is the link-time address (add the load base for PIE)."""

    name: str
    address: int
    size: int
    type_name: str | None  # None: no debug info, only the ELF symbol table knows it

    @property
    def has_debug_info(self) -> bool:
        return self.type_name is not None


@dataclass(frozen=True)
class Field:
    """One member of a layout; nested members have dotted paths (``last.in.c``)."""

    path: str
    offset: int  # bytes from the start of the layout
    size: int  # bytes (for a bitfield: its storage unit as gdb reports it)
    type_name: str  # as declared, with array dims: "char [8]", "uint64_t [64]"
    elem_type: str  # type without array dims: "char", "uint64_t"
    dims: tuple[int, ...] = ()  # array dimensions, () for a scalar/struct
    bit_offset: int | None = None  # bit position within the byte at ``offset``
    bit_size: int | None = None
    is_struct: bool = False  # a struct/union/class whose members follow, flattened

    @property
    def count(self) -> int:
        """Number of elements (1 for a non-array)."""
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def elem_size(self) -> int:
        return self.size // self.count if self.count else 0

    @property
    def is_bitfield(self) -> bool:
        return self.bit_size is not None

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Layout:
    """A type's members, flattened, in declaration order."""

    type_name: str
    size: int
    fields: tuple[Field, ...] = ()

    def field(self, path: str) -> Field:
        """The member at ``path``; raises SymbolNotFound."""
        for f in self.fields:
            if f.path == path:
                return f
        raise SymbolNotFound(f"no field '{path}' in {self.type_name}")

    def get(self, path: str) -> Field | None:
        for f in self.fields:
            if f.path == path:
                return f
        return None

    def to_json(self) -> dict:
        return {"type_name": self.type_name, "size": self.size, "fields": [asdict(f) for f in self.fields]}

    @classmethod
    def from_json(cls, d: dict) -> Layout:
        fields = tuple(Field(**{**f, "dims": tuple(f["dims"])}) for f in d["fields"])
        return cls(d["type_name"], d["size"], fields)


@dataclass(frozen=True)
class ResolvedExpr:
    """Where ``expr`` lives: link-time ``address`` (see SymbolTable.runtime_address)."""

    expr: str
    address: int
    size: int
    type_name: str | None
    symbol: Symbol = field(compare=False)
    offset: int = 0  # bytes from the symbol's start
    member: Field | None = field(default=None, compare=False)  # the last field named, if any


# ------------------------------------------------------------------ expression guard

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_BASE_RE = re.compile(rf"(?:::)?{_IDENT}(?:::{_IDENT})*")
_STEP_RE = re.compile(rf"\.({_IDENT})|\[\s*(0[xX][0-9a-fA-F]+|\d+)\s*\]")
_MAX_EXPR = 512

_REFUSALS = [
    (re.compile(r"\+\+|--"), "increments and decrements are not allowed"),
    (re.compile(r"(?<![=!<>])=(?!=)|[-+*/%&|^]=|<<=|>>="), "assignments are not allowed (read-only)"),
    (re.compile(r"\$"), "registers and gdb convenience variables ($...) are not allowed"),
    (re.compile(r"\("), "function calls and casts are not allowed"),
    (re.compile(r"->|\*|&"), "pointer dereference and address-of are not supported; dump the pointer's target by address"),
    (re.compile(r"[;,'\"`{}\\]"), "only a symbol name, '::', '.field' and '[N]' are allowed"),
]


def check_symbol_expr(text: str) -> tuple[str, tuple[tuple[str, str | int], ...]]:
    """Accept ``name``, ``ns::name``, ``name.field.sub``, ``name.arr[3]`` and nothing else.

    Returns ``(base_symbol, steps)`` with steps ``("field", name)`` / ``("index", n)``.
    Raises InvalidExpression with a one-line reason (calls, assignments, ``$``...).
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidExpression("empty symbol expression")
    if len(text) > _MAX_EXPR:
        raise InvalidExpression(f"symbol expression longer than {_MAX_EXPR} characters")
    s = text.strip()
    for pattern, reason in _REFUSALS:
        if pattern.search(s):
            raise InvalidExpression(f"refused expression {s!r}: {reason}")
    m = _BASE_RE.match(s)
    if not m:
        raise InvalidExpression(f"refused expression {s!r}: it must start with a symbol name")
    base = m.group(0)
    pos = m.end()
    steps: list[tuple[str, str | int]] = []
    while pos < len(s):
        step = _STEP_RE.match(s, pos)
        if not step:
            raise InvalidExpression(
                f"refused expression {s!r} at {s[pos:pos + 10]!r}: only a symbol name, '::', '.field' and '[N]' are allowed"
            )
        if step.group(1) is not None:
            steps.append(("field", step.group(1)))
        else:
            steps.append(("index", int(step.group(2), 0)))
        pos = step.end()
    return base, tuple(steps)


# ------------------------------------------------------------------ ptype/o parser

_MEMBER_RE = re.compile(r"^/\*\s*(\d+)(?::\s*(\d+))?\s*\|\s*(\d+)\s*\*/\s?(.*)$")
_UNION_MEMBER_RE = re.compile(r"^/\*\s+(\d+)\s*\*/\s?(.*)$")
# gdb omits the offset/size banner for some classes (templates that open with an access label).
_HEADER_RE = re.compile(r"^(?:/\*\s*offset\s*\|\s*size\s*\*/\s*)?type\s*=\s*(.*\{)\s*$")
_TOTAL_RE = re.compile(r"/\*\s*total size \(bytes\):\s*(\d+)\s*\*/")
_CLOSE_RE = re.compile(r"^\}\s*(.*?);?\s*$")
_DIMS_RE = re.compile(r"((?:\[\d+\])+)\s*$")
_FNPTR_RE = re.compile(rf"\(\s*\*\s*(?:const\s+)?({_IDENT})\s*\)")


def split_dims(text: str) -> tuple[str, tuple[int, ...]]:
    """``"uint64_t [4][2]"`` -> ``("uint64_t", (4, 2))``; no dims -> ``(text, ())``."""
    m = _DIMS_RE.search(text)
    if not m:
        return text.strip(), ()
    return text[: m.start()].strip(), tuple(int(d) for d in re.findall(r"\[(\d+)\]", m.group(1)))


def _parse_decl(decl: str) -> tuple[str, str, tuple[int, ...], int | None]:
    """``uint64_t hist[64];`` -> (elem type, name, dims, bit size)."""
    decl = decl.strip().rstrip(";").strip()
    bits = None
    bm = re.search(r"\s:\s*(\d+)$", decl)
    if bm:
        bits = int(bm.group(1))
        decl = decl[: bm.start()].strip()
    fn = _FNPTR_RE.search(decl)
    if fn:  # function pointer: void (*fn)(int)
        return decl[: fn.start(1)] + decl[fn.end(1):], fn.group(1), (), bits
    decl, dims = split_dims(decl)
    nm = re.search(rf"({_IDENT})$", decl)
    if not nm:
        return decl, "", dims, bits
    elem = decl[: nm.start()].strip()
    return elem or decl, nm.group(1), dims, bits


def _clean_struct_type(header: str) -> str:
    """``struct std::atomic<unsigned long> [with _Tp = ...] : public B {`` -> ``struct std::atomic<unsigned long>``."""
    t = header.rstrip().rstrip("{").strip()
    t = re.sub(r"\s*\[with [^\]]*\]", "", t)
    depth = 0
    for i, ch in enumerate(t):  # cut the base-class list at a top-level ':' (not '::')
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == ":" and depth == 0 and t[i - 1 : i] != ":" and t[i + 1 : i + 2] != ":":
            return t[:i].strip()
    return t


def type_with_dims(elem: str, dims: tuple[int, ...]) -> str:
    """The inverse of split_dims: ``("char", (8,))`` -> ``"char [8]"``."""
    return elem + (" " + "".join(f"[{d}]" for d in dims) if dims else "")


def _root_header(lines: list[str]) -> tuple[str, int] | None:
    """(root type, index of its first member line), or None for a scalar or array type."""
    for i, line in enumerate(lines):
        hm = _HEADER_RE.match(line.strip())
        if hm:
            return _clean_struct_type(hm.group(1)), i + 1
    return None


def _member(frame: dict, stack: list[dict], m: re.Match | None, um: re.Match | None) -> None:
    """One member line: a scalar/array field of ``frame``, or the opening of a nested type."""
    if m:
        off, bit, size, decl = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
    else:  # a union member: gdb prints no offset, it is the union's
        off, bit, size, decl = frame["offset"], None, int(um.group(1)), um.group(2)
    if decl.rstrip().endswith("{"):
        stack.append({
            "type": _clean_struct_type(decl), "offset": off, "size": size, "fields": [],
            "union": decl.lstrip().startswith("union"),
        })  # fmt: skip
        return
    elem, name, dims, bits = _parse_decl(decl)
    if not name:
        return
    frame["fields"].append(Field(
        path=name, offset=off, size=size, type_name=type_with_dims(elem, dims), elem_type=elem,
        dims=dims, bit_offset=int(bit) if bit is not None else None, bit_size=bits,
    ))  # fmt: skip


def _close(stack: list[dict], closing: str) -> None:
    """The ``} name;`` closing a nested type: it becomes a field of its parent, members flattened."""
    done = stack.pop()
    parent = stack[-1]
    name_part, dims = split_dims(closing.strip())
    name = name_part.strip()
    size = done["size"] or 0
    if name:
        parent["fields"].append(Field(
            path=name, offset=done["offset"], size=size, type_name=type_with_dims(done["type"], dims),
            elem_type=done["type"], dims=dims, is_struct=not dims,
        ))  # fmt: skip
    if not dims:  # members of an array of structs are not expanded by path
        prefix = f"{name}." if name else ""  # anonymous union/struct: members join the parent
        for f in done["fields"]:
            parent["fields"].append(Field(**{**asdict(f), "path": prefix + f.path, "dims": f.dims}))


def parse_ptype_o(text: str) -> Layout | None:
    """Parse gdb's ``ptype/o`` output into a flattened Layout.

    Returns None when the output is not a struct/union/class layout (a scalar or an
    array type: ``type = unsigned long [16]``). Pure: no gdb here.
    """
    lines = text.splitlines()
    found = _root_header(lines)
    if found is None:
        return None
    root_type, start = found
    # Frame: (type, offset, size, fields collected with paths relative to the frame)
    stack: list[dict] = [{"type": root_type, "offset": 0, "size": None, "fields": [], "union": root_type.startswith("union")}]
    total_size: int | None = None
    for raw in lines[start:]:
        line = raw.strip()
        if not line:
            continue
        frame = stack[-1]
        m = _MEMBER_RE.match(line)
        um = None if m else _UNION_MEMBER_RE.match(line)
        if m or um:
            _member(frame, stack, m, um)
            continue
        tm = _TOTAL_RE.search(line)
        if tm:
            if len(stack) == 1:
                total_size = int(tm.group(1))
            elif frame["size"] is None:
                frame["size"] = int(tm.group(1))
            continue
        cm = _CLOSE_RE.match(line)
        if cm:
            if len(stack) == 1:
                break  # end of the root type
            _close(stack, cm.group(1))
            continue
        # static members, methods, access labels, XXX holes: not part of the byte layout
    root = stack[0]
    if total_size is None:
        total_size = max((f.offset + f.size for f in root["fields"]), default=0)
    return Layout(root_type, total_size, tuple(root["fields"]))
