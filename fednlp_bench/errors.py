"""Bad input and what the CLI shows of it: UserError and AlgorithmError (one line, exit 2), DataWarning (one warning
line), and terminal_safe for echoing user text."""
from __future__ import annotations

import unicodedata

# Characters never echoed raw to a terminal: controls (escape sequences), format characters (bidi overrides,
# zero-width), surrogates, private use, unassigned, line and paragraph separators.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def terminal_safe(text: str) -> str:
    """`text` with control, format and other invisible characters written as escapes (\\x1b, \\u202e)."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in INVISIBLE_CATEGORIES:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


class UserError(Exception):
    """Bad input from the user. The message names the problem and the fix, on one line, with any control or
    invisible character it quotes shown as an escape (a message never moves the terminal's cursor)."""

    def __init__(self, problem: str, fix: str = "") -> None:
        message = problem if not fix else f"{problem}; {fix}"
        super().__init__(terminal_safe(message.replace("\n", " ")))


class DataWarning(UserWarning):
    """Data that loads but not whole (e.g. QA examples skipped for a bad answer offset); the CLI prints one line."""


class AlgorithmError(ValueError):
    """A setting an FL algorithm cannot run with, or a broken promise of its class (fednlp_bench.algorithms); the CLI
    shows it as one line (exit 2)."""
