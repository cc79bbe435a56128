"""Guard for what a user types to gdb: refuse anything that could change the target.

Pure functions, no gdb involved: they run before a request is built, so a refused text never
reaches a debugger attached to the engine. Read-only is the default. ``allow_writes=True`` (an
explicit opt-in) lets assignments and ``set var`` through; inferior function calls, ``jump``,
``signal``, ``return``, ``kill``, shell and Python escapes stay refused even then: they run code
in (or send signals to) the engine, or run code in the inspector.

The check is deliberately conservative: when in doubt it refuses, and says why in one line.
"""

from __future__ import annotations

import re

from hftmem_tui.errors import SourceError

__all__ = ["ForbiddenExpression", "check_expression", "check_command", "READ_ONLY_COMMANDS"]

_MAX_TEXT = 1024


class ForbiddenExpression(SourceError, ValueError):
    """A gdb expression or command the read-only session refuses (message says why)."""


# Keywords that look like calls but are evaluated by gdb without running target code.
_CALL_LIKE_KEYWORDS = {"sizeof", "alignof", "_Alignof", "typeof", "__typeof__", "__typeof", "decltype",
                       "TYPEOF"}  # fmt: skip

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?')  # a string literal (unterminated counts too)
_CHAR = re.compile(r"'(?:[^'\\]|\\.)*'?")
_COMPOUND = re.compile(r"(?:<<|>>|[-+*/%&|^])=")
_ASSIGN = re.compile(r"(?<![=!<>])=(?!=)")
_INCDEC = re.compile(r"\+\+|--")
_CALL = re.compile(r"([$A-Za-z_][$\w]*)\s*\(")
_CALL_THROUGH = re.compile(r"[)\]]\s*\(")


def _without_char_literals(text: str) -> str:
    # 'x' is a character; 'file.c'::var a scope: neither can call or write, blank them out.
    return _CHAR.sub(lambda m: " " * len(m.group(0)), text)


def check_expression(text: str, *, allow_writes: bool = False) -> str:
    """Return ``text`` stripped if gdb may evaluate it without changing the target.

    Refused (ForbiddenExpression, one-line reason): assignments and compound assignments
    (``x = 1``, ``$rax = 0``, ``a += 2``), ``++``/``--``, function calls (``f(1)``, ``(*fp)()``,
    ``$_strlen(s)``), string literals (gdb may allocate them in the target by calling its
    malloc), several statements, and control characters. ``allow_writes`` lets assignments
    and ``++``/``--`` through; calls stay refused.
    """
    if not isinstance(text, str) or not text.strip():
        raise ForbiddenExpression("empty expression")
    s = text.strip()
    if len(s) > _MAX_TEXT:
        raise ForbiddenExpression(f"expression longer than {_MAX_TEXT} characters")
    if any(ord(c) < 32 for c in s) or ";" in s:
        raise ForbiddenExpression(f"refused {s!r}: one expression only (no newlines, control characters or ';')")
    if _STRING.search(s):
        raise ForbiddenExpression(f"refused {s!r}: string literals are not allowed (gdb may allocate them in the "
                                  "target's memory by calling its malloc)")
    bare = _without_char_literals(s)
    if not allow_writes:
        if _COMPOUND.search(bare) or _ASSIGN.search(bare):
            raise ForbiddenExpression(f"refused {s!r}: assignments write to the target (hftmem only reads: "
                                      "it offers no way to write to the engine)")
        if _INCDEC.search(bare):
            raise ForbiddenExpression(f"refused {s!r}: ++ and -- write to the target (read-only session)")
    for m in _CALL.finditer(bare):
        if m.group(1) not in _CALL_LIKE_KEYWORDS:
            raise ForbiddenExpression(f"refused {s!r}: {m.group(1)}(...) is a function call, which runs code "
                                      "inside the engine (never allowed)")
    if _CALL_THROUGH.search(bare):
        raise ForbiddenExpression(f"refused {s!r}: '(...)(...)' calls through a pointer, which runs code inside "
                                  "the engine (to cast a parenthesised expression, drop its parentheses)")
    return s


# Read-only gdb commands (with their abbreviations) and how their argument is checked.
_READ_ONLY = {
    "print": "expr", "p": "expr", "inspect": "expr", "output": "expr", "x": "expr",
    "ptype": "expr", "whatis": "expr", "info": "none", "i": "none",
    "backtrace": "none", "bt": "none", "where": "none", "frame": "none", "f": "none",
    "up": "none", "down": "none", "list": "none", "l": "none", "disassemble": "none",
    "thread": "thread", "echo": "none", "pwd": "none", "show": "none",
}  # fmt: skip
READ_ONLY_COMMANDS = tuple(sorted(_READ_ONLY))

_WHY = {
    "call": "it calls a function inside the engine",
    "jump": "it moves the engine's program counter",
    "signal": "it sends a signal to the engine", "queue-signal": "it sends a signal to the engine",
    "return": "it pops a frame of the engine and changes its registers",
    "kill": "it kills the engine", "k": "it kills the engine",
    "shell": "it runs a shell command", "!": "it runs a shell command", "pipe": "it runs a shell command",
    "|": "it runs a shell command", "make": "it runs a shell command",
    "python": "it runs Python inside gdb", "py": "it runs Python inside gdb", "pi": "it runs Python inside gdb",
    "python-interactive": "it runs Python inside gdb", "guile": "it runs Guile inside gdb",
    "gu": "it runs Guile inside gdb", "source": "it runs a script", "compile": "it injects code into the engine",
    "expression": "it injects code into the engine", "checkpoint": "it forks the engine",
    "gcore": "it stops the engine for as long as it takes to dump its memory",
    "generate-core-file": "it stops the engine for as long as it takes to dump its memory",
    "restore": "it writes a file into the engine's memory",
    "define": "it defines new commands", "document": "it defines new commands",
    "run": "the session controls the target itself", "r": "the session controls the target itself",
    "start": "the session controls the target itself", "starti": "the session controls the target itself",
    "attach": "the session controls the target itself", "detach": "the session controls the target itself",
    "target": "the session controls the target itself", "continue": "the session controls the target itself",
    "c": "the session controls the target itself", "step": "the session controls the target itself",
    "s": "the session controls the target itself", "next": "the session controls the target itself",
    "n": "the session controls the target itself", "stepi": "the session controls the target itself",
    "si": "the session controls the target itself", "nexti": "the session controls the target itself",
    "ni": "the session controls the target itself", "finish": "the session controls the target itself",
    "until": "the session controls the target itself", "advance": "the session controls the target itself",
    "interrupt": "the session controls the target itself",
}  # fmt: skip

_FIRST_WORD = re.compile(r"^\s*([!|]|[A-Za-z][\w-]*)")
_FORMAT = re.compile(r"^/\w*\s*")


def check_command(text: str, *, allow_writes: bool = False) -> str:
    """Return the gdb CLI command ``text`` stripped if it only reads; else ForbiddenExpression.

    Allowed: print/p/output/x/ptype/whatis (their expression checked by check_expression), info,
    bt, frame, up, down, list, disassemble, thread (``thread apply`` checks its command), echo,
    show. ``set var`` and ``set $x =`` only with ``allow_writes``. Everything else is refused with
    the reason (``call``, ``jump``, ``signal``, ``return``, ``kill``, ``shell``/``!``, ``python``...).
    """
    if not isinstance(text, str) or not text.strip():
        raise ForbiddenExpression("empty command")
    s = text.strip()
    if any(ord(c) < 32 for c in s):
        raise ForbiddenExpression(f"refused {s!r}: one command only (no newlines or control characters)")
    m = _FIRST_WORD.match(s)
    if not m:
        raise ForbiddenExpression(f"refused {s!r}: not a gdb command")
    word, rest = m.group(1), s[m.end():].strip()
    if word in _WHY:
        raise ForbiddenExpression(f"refused {s!r}: '{word}' is never allowed here, {_WHY[word]}")
    if word == "set":
        return _check_set(s, rest, allow_writes)
    kind = _READ_ONLY.get(word)
    if kind is None:
        raise ForbiddenExpression(f"refused {s!r}: only read-only commands are allowed "
                                  f"({', '.join(READ_ONLY_COMMANDS)})")
    if kind == "expr":
        expr = _FORMAT.sub("", rest) if rest.startswith("/") else rest
        if expr:
            check_expression(expr, allow_writes=allow_writes)
    elif kind == "thread":
        sub = rest.split(None, 1)
        if sub and sub[0] in ("apply", "app"):
            # thread apply all|ID... [-flags] CMD: check the command it applies
            tokens = rest.split()[1:]
            while tokens and (tokens[0] in ("all", "-ascending") or re.fullmatch(r"[\d.\-*]+|-[qcs]", tokens[0])):
                tokens.pop(0)
            if not tokens:
                raise ForbiddenExpression(f"refused {s!r}: 'thread apply' needs a command")
            check_command(" ".join(tokens), allow_writes=allow_writes)
        elif sub and sub[0] not in ("find", "name") and not re.fullmatch(r"\d+(\.\d+)?", sub[0]):
            raise ForbiddenExpression(f"refused {s!r}: 'thread' selects a thread by number or applies a command")
    return s


def _check_set(s: str, rest: str, allow_writes: bool) -> str:
    word = rest.split(None, 1)[0] if rest else ""
    if word in ("var", "variable") or s.startswith("set $") or (word and _ASSIGN.search(_without_char_literals(rest))
                                                                 and word not in ("print", "p", "pr")):
        if not allow_writes:
            raise ForbiddenExpression(f"refused {s!r}: 'set var' writes to the target (hftmem only reads: "
                                      "it offers no way to write to the engine)")
        expr = rest.split(None, 1)[1] if word in ("var", "variable") and " " in rest else rest
        check_expression(expr, allow_writes=True)
        return s
    if word in ("print", "p", "pr"):
        return s  # display options only
    raise ForbiddenExpression(f"refused {s!r}: only 'set print ...' is allowed (other settings change how "
                              "gdb controls the engine)")
