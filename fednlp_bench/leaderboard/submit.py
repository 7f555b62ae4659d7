"""Submissions: check a result, store it under leaderboard/submissions/ by content hash, re-check the stored ones
(validate) and rebuild the board from them."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..errors import UserError

SUBMISSIONS = "submissions"
TRACKS = ("official", "community")
MAX_LABEL = 80
MAX_METHOD_LABEL = 160  # default method names carry the run's non-default settings (schema.METHOD_NAME_FORMAT)


def content_hash(result: dict[str, Any]) -> str:
    """sha256 of the result's canonical JSON (sorted keys, no whitespace): equal results, equal hash."""
    return hashlib.sha256(json.dumps(result, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_label(value: Any, what: str) -> str:
    """A submitter / method / profile / notes string that is safe on the board (safety.check_text)."""
    from .safety import check_text

    return check_text(value, what)


def read_submission(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, run record) of a submission file: {"submission": {...}, "result": {...}} or a bare run JSON,
    read within the input limits (safety.load_json_limited: size, nesting, finite numbers, valid UTF-8)."""
    from .safety import load_json_limited

    raw = load_json_limited(path)
    p = Path(path)
    if not isinstance(raw, dict):
        raise UserError(f"{p} does not hold a JSON object", "submit a result JSON written by fednlp-bench")
    if "result" in raw and "submission" in raw:
        meta, result = raw["submission"], raw["result"]
        if not isinstance(meta, dict) or not isinstance(result, dict):
            raise UserError(f"{p}: 'submission' and 'result' must be objects", "fix the submission file")
        return dict(meta), result
    return {}, raw


def result_text_problems(result: dict[str, Any]) -> list[str]:
    """Text of a result that the board shows (task, model, partition names): held to the same rules as labels."""
    from .safety import check_text

    task = result.get("task") or {}
    fields = {"task name": task.get("name"), "model": task.get("model"), "metric": task.get("primary_metric")}
    if result.get("kind") == "federated":
        fields["partition name"] = (result.get("partition") or {}).get("name")
    problems = []
    for what, value in fields.items():
        try:
            check_text(value, "profile")  # the general text rules (any script, no markup, no address)
        except UserError as exc:
            problems.append(f"{what}: {str(exc).split(';')[0].replace('the profile', 'it')}")
    return problems


def _method_clash(method: str, existing: set[str]) -> str | None:
    """The board method (or built-in name) that `method` reads as without being it, if any."""
    from ..config import ALGORITHMS
    from .safety import skeleton
    from .schema import SAME_BUDGET_METHOD

    names = set(existing) | set(ALGORITHMS) | {"centralized", SAME_BUDGET_METHOD}
    mine = skeleton(method)
    for other in sorted(names):
        if other != method and skeleton(other) == mine:
            return other
    return None


def board_methods(root: str | Path) -> set[str]:
    """Method names of the stored submissions (unreadable files skipped: validate reports them)."""
    out = set()
    for p in stored_submissions(root):
        try:
            meta, _ = read_submission(p)
        except UserError:
            continue
        if isinstance(meta.get("method"), str):
            out.add(meta["method"])
    return out


def check_meta(meta: dict[str, Any], result: dict[str, Any], where: str) -> dict[str, Any]:
    """The submission metadata, checked: text fields, the track and what it reserves; raises one UserError."""
    from .official import MAINTAINERS, profile_name
    from .safety import skeleton
    from ..config import PROFILES

    track = meta.get("track", "official")  # submissions stored before tracks existed are reproduction's
    if track not in TRACKS:
        raise UserError(f"{where}: unknown track {track!r}", f"use one of: {', '.join(TRACKS)}")
    meta["track"] = track
    for key in ("submitter", "method", "profile"):
        meta[key] = check_label(meta.get(key), key)
    if meta.get("notes"):
        meta["notes"] = check_label(str(meta["notes"]), "notes")
    if track == "community":
        if skeleton(meta["submitter"]) == skeleton(MAINTAINERS):
            raise UserError(f"the submitter name '{meta['submitter']}' is reserved for the official rows made by "
                            "`fednlp-bench reproduce`", "submit under your own name")
        if meta["profile"] not in PROFILES:
            raise UserError(f"the profile '{meta['profile']}' of a community submission must be one of "
                            f"{', '.join(PROFILES)} (the board and the official reference it is compared with); "
                            "profile labels with details are reserved for reproduction",
                            f"pass --profile {' | '.join(PROFILES)}")
    elif profile_name(meta["profile"]) not in PROFILES:
        raise UserError(f"{where}: official profile label '{meta['profile']}' names no profile",
                        f"official rows carry a {'/'.join(PROFILES)} label from reproduction")
    return meta


def check_submission(meta: dict[str, Any], result: dict[str, Any], where: str, recipes: list, methods: set[str],
                     allow_non_canonical: bool = False) -> dict[str, Any]:
    """Every check a stored submission must pass (submit and validate share it): the schema and consistency of the
    result, its shown text, the metadata and its track (official: exactly what reproduction plans; community: a
    free method on a partition that is what it claims). Returns the metadata with `canonical` set."""
    from .official import official_problems, partition_status
    from .schema import PLUGIN_PREFIX, check_result, is_plugin_run

    check_result(result, where)
    text = result_text_problems(result)
    if text:
        raise UserError(f"{where}: {text[0]}", "submit the result as fednlp-bench wrote it")
    meta = check_meta(meta, result, where)
    plugin_name = meta["method"].startswith(PLUGIN_PREFIX)
    if is_plugin_run(result) and not plugin_name:
        raise UserError(f"{where}: a run of the plug-in algorithm '{result['config']['algorithm']}' is named "
                        f"'{meta['method']}'; plug-in rows are kept apart from the built-in ones",
                        f"name it {PLUGIN_PREFIX}...) (the default method name does)")
    if plugin_name and not is_plugin_run(result):
        raise UserError(f"{where}: the method '{meta['method']}' is a plug-in's name, but the run is of the built-in "
                        f"'{result['config'].get('algorithm')}'", "leave out --method or choose another name")
    clash = _method_clash(meta["method"], methods)
    if clash:
        raise UserError(f"the method '{meta['method']}' reads as the method '{clash}' on the board",
                        "choose a name that cannot be mistaken for another method")
    canonical = True
    if meta["track"] == "official":
        problems = official_problems(meta, result, recipes)
        if problems:
            raise UserError(f"{where}: not an official row: {problems[0]}",
                            "submit it as a community row (`fednlp-bench leaderboard submit`)")
    elif result.get("kind") == "federated":
        canonical, problem = partition_status(result, recipes)
        if problem:
            raise UserError(f"{where}: {problem}", "submit the result as fednlp-bench wrote it")
        if not canonical and not allow_non_canonical:
            digest = result["partition"]["digest"]
            raise UserError(
                f"partition digest {digest[:16]}... of {where} matches no canonical recipe in partition/",
                "use a canonical partition (fednlp-bench partition verify lists them) or pass --allow-non-canonical "
                "to submit it as a non-canonical row")
    meta["canonical"] = canonical
    return meta


def prepare_submission(
    path: str | Path,
    root: str | Path,
    recipes: str | Path | None = None,
    submitter: str | None = None,
    method: str | None = None,
    profile: str | None = None,
    allow_non_canonical: bool = False,
    notes: str | None = None,
    official: bool = False,
) -> tuple[str, dict[str, Any]]:
    """Every check of `submit`, nothing written: returns (content hash, the stored document).

    A submission is a community row unless `official` (set only by `fednlp-bench reproduce`); what a file says of
    its own track, canonical flag or hash is ignored. A community row is named by its submitter (required, not
    the maintainers' name) and says which profile's board and reference it belongs to (--profile, default the
    run's own --profile, else standard)."""
    from .official import canonical_recipes, planned_config_key
    from .schema import default_method

    from .schema import check_result

    meta, result = read_submission(path)
    where = str(path)
    check_result(result, where)  # the result's own problems first, then what the submitter says of it
    given = {"submitter": submitter, "method": method, "profile": profile, "notes": notes}
    meta = {k: v for k, v in meta.items() if k in ("submitter", "method", "profile", "notes")}
    meta.update({k: v for k, v in given.items() if v})
    meta["track"] = "official" if official else "community"
    if not official:
        if not meta.get("submitter"):
            raise UserError("a community submission needs a submitter", "pass --submitter 'Your Name or Lab'")
        cfg = result.get("config") if isinstance(result.get("config"), dict) else {}
        meta.setdefault("profile", cfg.get("profile") if isinstance(cfg.get("profile"), str) else "standard")
    if not meta.get("method"):
        meta["method"] = default_method(result)
    folder = Path(recipes) if recipes else Path(root).parent / "partition"
    meta = check_submission(meta, result, where, canonical_recipes(folder), board_methods(root), allow_non_canonical)
    h = content_hash(result)
    existing = Path(root) / SUBMISSIONS / f"{h[:16]}.json"
    if existing.exists():
        raise UserError(f"{path} is a duplicate of {existing} (same content hash {h[:16]})",
                        "submit a new result, not one already on the board")
    if official:
        key = planned_config_key(result)
        for p in stored_submissions(root):
            try:
                other_meta, other = read_submission(p)
            except UserError:
                continue
            if other_meta.get("track", "official") == "official" and planned_config_key(other) == key:
                raise UserError(f"the board already holds the official run {key} ({p.name})",
                                "an official run is on the board once; reproduction replaces superseded ones")
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
    """One problem line per stored submission that no longer passes every check `submit` makes (and that `build`
    relies on), plus official runs stored twice; an empty list means every submission is valid."""
    from .official import canonical_recipes, planned_config_key

    recipe_list = canonical_recipes(Path(recipes) if recipes else Path(root).parent / "partition")
    methods = board_methods(root)
    problems = []
    keys: dict[str, str] = {}
    for p in stored_submissions(root):
        try:
            meta, result = read_submission(p)
            if not meta:
                raise UserError("not a submission (no 'submission' block)", "store files through `leaderboard submit`")
            check_submission(dict(meta), result, p.name, recipe_list, methods, allow_non_canonical=True)
        except UserError as exc:
            problems.append(f"{p.name}: {exc}")
            continue
        if content_hash(result)[:16] != p.stem or meta.get("content_hash") != content_hash(result):
            problems.append(f"{p.name}: content hash does not match the file name (edited after submission?)")
        if meta.get("track", "official") == "official":
            key = planned_config_key(result) or ""
            if key in keys:
                problems.append(f"{p.name}: the official run {key} is also stored as {keys[key]}")
            keys[key] = p.name
        if result.get("kind") == "federated" and meta.get("canonical") is not True and meta.get("track") == "official":
            problems.append(f"{p.name}: an official row must be marked canonical")
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
    problems = validate_all(root)
    if problems:  # a stored file that fails a check could break the pages: nothing is rebuilt
        raise UserError(f"{len(problems)} stored submission(s) fail their checks, first: {problems[0]}",
                        f"fix or remove them (fednlp-bench leaderboard validate --root {root} lists them)")
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
