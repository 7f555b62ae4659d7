"""Hostile-input limits of the leaderboard: what a submitted file and its text fields may hold.

- `load_json_limited(path)`: at most MAX_BYTES, valid UTF-8, nesting at most MAX_DEPTH, no NaN/Infinity (and no
  number that overflows to one), no lone surrogate in any string, no repeated key in an object. Each violation is
  one UserError; nothing is parsed recursively beyond the limit, so a deep file cannot exhaust the stack.
- `check_text(value, what)`: a submitter, method, profile or notes string: non-empty, short, NFKC-stable, free of
  control, format (bidi overrides, zero-width), private-use and unassigned characters, one script, and no web
  address; method names are plain ASCII (`METHOD_CHARS`), so no look-alike of another method can be written.
- `skeleton(text)`: the string as it reads (NFKC, case-folded, confusable characters folded to Latin and
  ASCII look-alikes such as rn/m, 1/l, 0/o folded): two names with one skeleton read the same.
Error lines show quoted text through errors.terminal_safe (control and format characters as escapes).
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Any

from ..errors import INVISIBLE_CATEGORIES, UserError, terminal_safe

MAX_BYTES = 5_000_000
MAX_DEPTH = 64
MAX_TEXT = {"method": 160, "submitter": 80, "profile": 80, "notes": 400}
METHOD_CHARS = re.compile(r"[A-Za-z0-9 ._+=(),-]+")
_FORBIDDEN_CATEGORIES = INVISIBLE_CATEGORIES  # no board text may hold them (see errors.terminal_safe)
_WEB = re.compile(r"(www\.|://|\bhttps?\b|@[a-z0-9-]+\.[a-z])", re.IGNORECASE)
# ASCII sequences that read as others (Unicode TR39 confusables within ASCII), applied after case folding.
_ASCII_LOOKALIKES = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("1", "l"), ("|", "l"), ("i", "l"), ("0", "o"),
                     ("5", "s"), ("_", "-"), (" ", ""))


def _depth_problem(text: str) -> str | None:
    """The first nesting deeper than MAX_DEPTH (brackets outside strings), or None: a linear scan, no recursion."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return f"nests deeper than {MAX_DEPTH} levels"
        elif ch in "]}":
            depth -= 1
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which is not a number JSON allows")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"repeats the key {terminal_safe(key)!r} in one object")
        out[key] = value
    return out


def _value_problem(value: Any, where: str) -> str | None:
    """A non-finite number or a string with a lone surrogate anywhere in a parsed document (iterative walk)."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"{at} is {item} (every number must be finite)"
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return f"{at} holds a lone surrogate (not valid Unicode text)"
        elif isinstance(item, dict):
            for k, v in item.items():
                try:
                    k.encode("utf-8")
                except UnicodeEncodeError:
                    return f"a key in {at} holds a lone surrogate (not valid Unicode text)"
                stack.append((v, f"{at}.{terminal_safe(k)[:40]}"))
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
    return None


def load_json_limited(path: str | Path) -> Any:
    """Parse a submitted JSON file within the limits above; one UserError per violation."""
    p = Path(path)
    fix = "submit the result JSON exactly as fednlp-bench wrote it"
    try:
        size = p.stat().st_size
    except OSError:
        raise UserError(f"submission file not found: {terminal_safe(str(p))}",
                        "pass the path of a result JSON written by fednlp-bench") from None
    if not p.is_file():
        raise UserError(f"{terminal_safe(str(p))} is not a file", "pass the path of a result JSON file")
    if size > MAX_BYTES:
        raise UserError(f"{terminal_safe(str(p))} is {size:,} bytes, over the {MAX_BYTES:,}-byte limit", fix)
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{terminal_safe(str(p))} is not valid UTF-8 (byte {exc.start})", fix) from None
    except OSError as exc:
        raise UserError(f"{terminal_safe(str(p))} cannot be read ({exc.strerror})", "check the file's permissions") \
            from None
    deep = _depth_problem(text)
    if deep:
        raise UserError(f"{terminal_safe(str(p))} {deep}", fix)
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)
    except ValueError as exc:  # JSONDecodeError is a ValueError; so are the hooks' refusals
        raise UserError(f"{terminal_safe(str(p))} is not valid JSON ({terminal_safe(str(exc))})", fix) from None
    except RecursionError:  # unreachable after the depth scan; kept as a guard
        raise UserError(f"{terminal_safe(str(p))} nests too deeply", fix) from None
    problem = _value_problem(doc, "the file")
    if problem:
        raise UserError(f"{terminal_safe(str(p))}: {problem}", fix)
    return doc


def _scripts(text: str) -> set[str]:
    from confusable_homoglyphs import categories

    out = set()
    for ch in text:
        alias = categories.alias(ch)
        if alias not in ("COMMON", "INHERITED", "UNKNOWN"):
            out.add(alias)
    return out


def check_text(value: Any, what: str) -> str:
    """A submitter / method / profile / notes string that is safe to store and show (see the module docstring);
    returns it stripped, or raises one UserError naming the problem."""
    fix = f"use plain text for --{what}"
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"the {what} is empty", f"pass --{what} with a short name")
    limit = MAX_TEXT.get(what, 80)
    if len(value) > limit:
        raise UserError(f"the {what} is {len(value)} characters long (at most {limit})", f"shorten --{what}")
    shown = terminal_safe(value)
    bad = sorted({unicodedata.name(ch, f"U+{ord(ch):04X}") for ch in value
                  if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES
                  or (unicodedata.category(ch).startswith("Z") and ch != " ")})
    if bad:
        raise UserError(f"the {what} '{shown}' holds invisible or control characters ({', '.join(bad[:3])})", fix)
    if unicodedata.normalize("NFKC", value) != value:
        raise UserError(f"the {what} '{shown}' changes under Unicode NFKC normalisation (compatibility or "
                        "look-alike characters)", f"write --{what} in plain characters")
    if what == "method" and not METHOD_CHARS.fullmatch(value):
        raise UserError(f"the method '{shown}' holds characters other than ASCII letters, digits, spaces and "
                        "._+=(),-", "name the method in plain ASCII, e.g. fedavg+mytrick(k=2)")
    if re.search(r"[<>`|\[\]{}*#!\\]", value):
        raise UserError(f"the {what} '{shown}' contains markup characters (< > ` | [ ] {{ }} * # ! \\)", fix)
    if _WEB.search(value):
        raise UserError(f"the {what} '{shown}' looks like a web or e-mail address", "the board shows no links; "
                        f"leave the address out of --{what}")
    if len(_scripts(value)) > 1:
        raise UserError(f"the {what} '{shown}' mixes scripts ({', '.join(sorted(_scripts(value)))}), which lets a "
                        "name pass for another", f"write --{what} in one script")
    return value.strip()


def skeleton(text: str) -> str:
    """How a name reads: NFKC, case-folded, non-Latin look-alikes folded to Latin, ASCII look-alikes folded."""
    from confusable_homoglyphs import confusables

    folded = unicodedata.normalize("NFKC", text).casefold()
    chars = []
    for ch in folded:
        if ord(ch) < 128:
            chars.append(ch)
            continue
        found = confusables.is_confusable(ch, preferred_aliases=["latin"], greedy=True) or []
        latin = [h["c"] for f in found for h in f["homoglyphs"] if h["c"].isascii()]
        base = unicodedata.normalize("NFKD", ch)
        chars.append(latin[0].casefold() if latin else "".join(c for c in base if not unicodedata.combining(c)))
    out = "".join(chars)
    for a, b in _ASCII_LOOKALIKES:
        out = out.replace(a, b)
    return out
