"""From result files to one leaderboard table (pandas): seeds averaged, federated vs centralized, CSV + parquet.

One row per (task, family, model, profile, partition, method). Statistics over seeds: runs that share a seed
are averaged first, then `mean` is the mean over seeds and `std` the sample standard deviation over seeds
(ddof=1) when there are two seeds or more, 0.0 for a single seed.
"""
from __future__ import annotations

import io
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import yaml

from ..errors import UserError
from ..results import atomic_write
from .schema import as_submission, default_method, default_profile  # noqa: F401 (re-exported)

# Columns of the table, in order: name -> dtype.
COLUMNS: dict[str, str] = {
    "task": "str", "family": "str", "model": "str", "profile": "str", "partition": "str",
    "partition_digest": "str", "canonical": "bool", "method": "str", "algorithm": "str", "metric": "str",
    "n_seeds": "int64", "mean": "float64", "std": "float64", "centralized": "float64", "ratio": "float64",
    "gap": "float64", "rounds_to_90": "float64", "client_p10": "float64", "client_std": "float64",
    "upload_bytes_per_round": "int64", "submitter": "str",
}
GROUP_KEY = ("task", "family", "model", "profile", "partition", "method")
SORT_KEY = ["family", "task", "model", "profile", "partition", "method"]
CENTRALIZED_PARTITION = "all"  # the `partition` of centralized rows (they train on all the data)
TARGET_FRACTION = 0.9  # rounds_to_90: first round reaching this fraction of the centralized metric
_EPS = 1e-12  # tolerance of the rounds_to_90 comparison against float rounding of 0.9 * centralized
CSV_NAME, PARQUET_NAME = "results.csv", "results.parquet"


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def canonical_digests(root: str | Path | None = None) -> frozenset[str]:
    """The expected_digest of every canonical partition recipe (`*.yaml`) in the repo's partition/ folder.

    `root` is the repository root (its `partition/` is read) or the partition folder itself; None = this
    package's repository. A folder that does not exist gives an empty set.
    """
    folder = Path(root if root is not None else _repo_root())
    if (folder / "partition").is_dir():
        folder = folder / "partition"
    digests = set()
    for path in sorted(folder.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise UserError(f"canonical partition {path} is not valid YAML", "fix its syntax") from exc
        if isinstance(raw, dict) and isinstance(raw.get("expected_digest"), str):
            digests.add(raw["expected_digest"])
    return frozenset(digests)


def _result_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*.json") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"result path not found: {p}", "pass existing result files or folders")
    return files


def load_results(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Read and validate run JSONs / submissions from files and folders (recursively, `*.json`, sorted).

    Returns submissions in wrapper form (see schema.as_submission): {"submission": {...}, "result": run JSON}.
    A file that is not JSON or not a valid result raises UserError naming the file.
    """
    out = []
    for path in _result_files(paths):
        try:
            obj = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not valid JSON ({exc})", "pass the result JSON fednlp-bench wrote") from exc
        out.append(as_submission(obj, str(path)))
    return out


def _seed_stats(values: dict[int, list[float]]) -> tuple[float, float, int]:
    """(mean, std, n_seeds) over seeds; runs sharing a seed are averaged first; std ddof=1 if n > 1 else 0."""
    per_seed = np.array([np.mean(v) for _, v in sorted(values.items())], dtype=float)
    n = len(per_seed)
    if n == 0:
        return math.nan, math.nan, 0
    return float(per_seed.mean()), float(per_seed.std(ddof=1)) if n > 1 else 0.0, n


def _seed_mean(values: dict[int, list[float]]) -> float:
    return _seed_stats(values)[0] if values else math.nan


def _rounds_to_target(curve: list[dict[str, Any]], metric: str, target: float) -> float:
    """First curve round whose `metric` reaches `target`; NaN if none does (or target is NaN)."""
    if math.isnan(target):
        return math.nan
    for point in curve:
        if point["metrics"][metric] >= target - _EPS:
            return float(point["round"])
    return math.nan


def _facts(sub: dict[str, Any]) -> dict[str, Any]:
    """The fields of one submission that aggregation needs."""
    meta, r = sub["submission"], sub["result"]
    task, cfg, metric = r["task"], r["config"], r["task"]["primary_metric"]
    federated = r["kind"] == "federated"
    return {
        "task": task["name"], "family": task["family"], "model": task["model"], "profile": meta["profile"],
        "partition": r["partition"]["name"] if federated else CENTRALIZED_PARTITION, "method": meta["method"],
        "federated": federated, "digest": r["partition"]["digest"] if federated else "",
        "marked_canonical": meta.get("canonical") if isinstance(meta.get("canonical"), bool) else None,
        "algorithm": cfg["algorithm"], "metric": metric, "seed": r["seed"], "final": float(r["final"][metric]),
        "fingerprint": task["data_fingerprint"], "curve": r["curve"], "submitter": meta["submitter"],
        "client_p10": float(r["clients"][metric]["p10"]) if federated else math.nan,
        "client_std": float(r["clients"][metric]["std"]) if federated else math.nan,
        "upload": int(r["upload_bytes_per_client_per_round"]) * int(cfg["clients_per_round"]),
    }


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in COLUMNS.items()})


def aggregate(records: Iterable[dict[str, Any]], canonical: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per (task, family, model, profile, partition, method); columns exactly COLUMNS, sorted rows.

    `records`: submissions (wrapper form) or bare run JSONs, validated here. A run is canonical when its
    partition digest is in `canonical`; with `canonical` None, a submission's stored boolean
    submission.canonical (set by submit) decides, else the digests of canonical_digests() (this repository).
    A row is canonical when all its runs are; centralized rows always are.
    """
    facts = [_facts(as_submission(r, f"record {i}")) for i, r in enumerate(records)]
    canon = frozenset(canonical) if canonical is not None else None
    for f in facts:
        if not f["federated"]:
            f["canonical"] = True
        elif canon is None and f["marked_canonical"] is not None:
            f["canonical"] = f["marked_canonical"]  # as judged by submit against the board's partition/ recipes
        else:
            canon = canon if canon is not None else canonical_digests()
            f["canonical"] = f["digest"] in canon
    if not facts:
        return _empty_frame()

    # Centralized baselines: (task, model, data fingerprint, profile) -> {seed: [final primary metric]}.
    central: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for f in facts:
        if not f["federated"]:
            central[(f["task"], f["model"], f["fingerprint"], f["profile"])][f["seed"]].append(f["final"])

    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for f in facts:
        groups[tuple(f[k] for k in GROUP_KEY)].append(f)

    rows = []
    for key, members in groups.items():
        federated = members[0]["federated"]
        by_seed = lambda field: _by_seed(members, field)  # noqa: E731
        mean, std, n = _seed_stats(by_seed("final"))
        baseline: dict[int, list[float]] = defaultdict(list)
        for fp in sorted({m["fingerprint"] for m in members}):
            for seed, vals in central.get((key[0], key[2], fp, key[3]), {}).items():
                baseline[seed] += vals
        cen = _seed_mean(baseline)
        if federated:
            ratio = mean / cen if cen and not math.isnan(cen) else math.nan
            gap = cen - mean
        else:
            ratio, gap = 1.0, 0.0
        target = TARGET_FRACTION * cen
        reach = {s: [_rounds_to_target(m["curve"], m["metric"], target) for m in members if m["seed"] == s]
                 for s in {m["seed"] for m in members}}
        any_never = any(math.isnan(v) for vals in reach.values() for v in vals)
        digests = sorted({m["digest"] for m in members})
        rows.append({
            **dict(zip(GROUP_KEY, key)),
            "partition_digest": ",".join(digests),
            "canonical": all(m["canonical"] for m in members),
            "algorithm": ",".join(sorted({m["algorithm"] for m in members})),
            "metric": ",".join(sorted({m["metric"] for m in members})),
            "n_seeds": n, "mean": mean, "std": std, "centralized": cen, "ratio": ratio, "gap": gap,
            "rounds_to_90": math.nan if any_never else _seed_mean(reach),
            "client_p10": _seed_mean(by_seed("client_p10")), "client_std": _seed_mean(by_seed("client_std")),
            "upload_bytes_per_round": int(round(_seed_mean(by_seed("upload")))),
            "submitter": ", ".join(sorted({m["submitter"] for m in members})),
        })
    df = pd.DataFrame(rows, columns=list(COLUMNS)).astype(COLUMNS)
    return df.sort_values(SORT_KEY, kind="mergesort").reset_index(drop=True)


def _by_seed(members: list[dict[str, Any]], field: str) -> dict[int, list[float]]:
    out: dict[int, list[float]] = defaultdict(list)
    for m in members:
        out[m["seed"]].append(float(m[field]))
    return out


def write_table(df: pd.DataFrame, folder: str | Path) -> tuple[Path, Path]:
    """Write `<folder>/results.csv` and `<folder>/results.parquet` atomically; byte-identical for the same frame.

    Floats in the CSV use the shortest repr that round-trips; NaN is an empty field. Read back with read_table.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = out / CSV_NAME, out / PARQUET_NAME
    atomic_write(csv_path, df.to_csv(index=False, lineterminator="\n").encode())
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow")
    atomic_write(parquet_path, buf.getvalue())
    return csv_path, parquet_path


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by write_table (CSV or parquet) back with the columns' dtypes."""
    p = Path(path)
    if p.suffix == ".parquet":
        return pd.read_parquet(p, engine="pyarrow")
    floats = [c for c, t in COLUMNS.items() if t == "float64"]
    df = pd.read_csv(p, keep_default_na=False, na_values={c: [""] for c in floats}, dtype={c: t for c, t in COLUMNS.items() if t != "bool"})
    return df.astype({"canonical": "bool"})
