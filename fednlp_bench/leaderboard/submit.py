"""Submissions: check a result, store it under leaderboard/submissions/ by content hash, rebuild the board."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..errors import UserError

SUBMISSIONS = "submissions"
MAX_LABEL = 80
MAX_METHOD_LABEL = 160  # default method names carry the run's non-default settings (schema.METHOD_NAME_FORMAT)
_BAD_LABEL = re.compile(r"[<>\x00-\x1f\x7f]")


def content_hash(result: dict[str, Any]) -> str:
    """sha256 of the result's canonical JSON (sorted keys, no whitespace): equal results, equal hash."""
    return hashlib.sha256(json.dumps(result, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_label(value: Any, what: str) -> str:
    """A submitter/method/profile string: non-empty, at most 80 characters (a method 160), no markup or control
    characters."""
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"the {what} is empty", f"pass --{what} with a short name")
    limit = MAX_METHOD_LABEL if what == "method" else MAX_LABEL
    if len(value) > limit:
        raise UserError(f"the {what} is {len(value)} characters long (at most {limit})", f"shorten --{what}")
    if _BAD_LABEL.search(value):
        raise UserError(f"the {what} {value!r} contains '<', '>' or a control character",
                        f"use plain text for --{what}")
    return value.strip()


def read_submission(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, run record) of a submission file: {"submission": {...}, "result": {...}} or a bare run JSON."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"submission file not found: {p}", "pass the path of a result JSON written by fednlp-bench")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{p} is not valid JSON ({exc})", "submit the result JSON exactly as fednlp-bench wrote it") \
            from exc
    if not isinstance(raw, dict):
        raise UserError(f"{p} does not hold a JSON object", "submit a result JSON written by fednlp-bench")
    if "result" in raw and "submission" in raw:
        meta, result = raw["submission"], raw["result"]
        if not isinstance(meta, dict) or not isinstance(result, dict):
            raise UserError(f"{p}: 'submission' and 'result' must be objects", "fix the submission file")
        return dict(meta), result
    return {}, raw


def prepare_submission(
    path: str | Path,
    root: str | Path,
    recipes: str | Path | None = None,
    submitter: str | None = None,
    method: str | None = None,
    profile: str | None = None,
    allow_non_canonical: bool = False,
) -> tuple[str, dict[str, Any]]:
    """Every check of `submit`, nothing written: returns (content hash, the stored document)."""
    from .aggregate import canonical_digests
    from .schema import DEFAULT_SUBMITTER, check_result, default_method, default_profile

    meta, result = read_submission(path)
    check_result(result, str(path))
    meta = {**meta, **{k: v for k, v in {"submitter": submitter, "method": method, "profile": profile}.items() if v}}
    meta["submitter"] = check_label(meta.get("submitter", DEFAULT_SUBMITTER), "submitter")
    meta["method"] = check_label(meta.get("method") or default_method(result), "method")
    meta["profile"] = check_label(meta.get("profile") or default_profile(result), "profile")
    if "notes" in meta:
        meta["notes"] = check_label(str(meta["notes"]), "notes") if meta["notes"] else ""
    canonical = True
    if result.get("kind") == "federated":
        digest = result["partition"]["digest"]
        canonical = digest in canonical_digests(Path(recipes) if recipes else Path(root).parent / "partition")
        if not canonical and not allow_non_canonical:
            raise UserError(
                f"partition digest {digest[:16]}... of {path} matches no canonical recipe in partition/",
                "use a canonical partition (fednlp-bench partition verify lists them) or pass --allow-non-canonical "
                "to submit it as a non-canonical row")
    meta["canonical"] = canonical
    h = content_hash(result)
    existing = Path(root) / SUBMISSIONS / f"{h[:16]}.json"
    if existing.exists():
        raise UserError(f"{path} is a duplicate of {existing} (same content hash {h[:16]})",
                        "submit a new result, not one already on the board")
    meta["content_hash"] = h
    return h, {"submission": dict(sorted(meta.items())), "result": result}


def _atomic_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def submit(path: str | Path, root: str | Path = "leaderboard", **kwargs: Any) -> Path:
    """Check a result and store it as leaderboard/submissions/<hash16>.json; a rejection writes nothing."""
    h, doc = prepare_submission(path, root, **kwargs)
    out = Path(root) / SUBMISSIONS / f"{h[:16]}.json"
    _atomic_json(out, doc)
    return out


def stored_submissions(root: str | Path) -> list[Path]:
    folder = Path(root) / SUBMISSIONS
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def validate_all(root: str | Path = "leaderboard", recipes: str | Path | None = None) -> list[str]:
    """One problem line per stored submission that no longer passes its checks (empty list = all good)."""
    from .aggregate import canonical_digests
    from .schema import validate_result

    digests = canonical_digests(Path(recipes) if recipes else Path(root).parent / "partition")
    problems = []
    for p in stored_submissions(root):
        try:
            meta, result = read_submission(p)
        except UserError as exc:
            problems.append(str(exc))
            continue
        for msg in validate_result(result):
            problems.append(f"{p.name}: {msg}")
        if content_hash(result)[:16] != p.stem or meta.get("content_hash") != content_hash(result):
            problems.append(f"{p.name}: content hash does not match the file name (edited after submission?)")
        for key in ("submitter", "method", "profile"):
            try:
                check_label(meta.get(key), key)
            except UserError as exc:
                problems.append(f"{p.name}: {exc}")
        if result.get("kind") == "federated" and meta.get("canonical") and result["partition"]["digest"] not in digests:
            problems.append(f"{p.name}: marked canonical but its partition digest matches no recipe in partition/")
    return problems


def load_board_records(root: str | Path) -> list[dict[str, Any]]:
    """Every stored submission as {"submission": meta, "result": record}, in file-name order."""
    out = []
    for p in stored_submissions(root):
        meta, result = read_submission(p)
        out.append({"submission": meta, "result": result})
    return out


def build(root: str | Path = "leaderboard") -> list[Path]:
    """Regenerate the board (README.md, index.html, plots, results.csv/.parquet) from the stored submissions."""
    from .aggregate import aggregate, write_table
    from .render import build_board

    root = Path(root)
    docs = load_board_records(root)
    if not docs:
        raise UserError(f"no submissions under {root / SUBMISSIONS}", "submit a result first: fednlp-bench leaderboard submit")
    df = aggregate(docs)
    staging = root.parent / f".{root.name}.build-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        written = [Path(p) for p in write_table(df, staging)] + [Path(p) for p in build_board(df, docs, staging)]
        final = []
        for p in written:
            target = root / p.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, target)
            final.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    remove_stale_outputs(root, set(final))
    return sorted(final)


def remove_stale_outputs(root: Path, kept: set[Path]) -> list[Path]:
    """Delete the generated files of the board (plots, profile pages) that this build did not write."""
    from .render import _PLOT_NAME, PAGES, PLOTS_DIR

    removed = []
    for page in PAGES:
        folder = root / page if page else root
        candidates = [folder / "README.md", folder / "index.html"] if page else []
        if (folder / PLOTS_DIR).is_dir():
            candidates += [p for p in sorted((folder / PLOTS_DIR).iterdir()) if _PLOT_NAME.match(p.name)]
        for path in candidates:
            if path.is_file() and path not in kept:
                path.unlink()
                removed.append(path)
    return removed
