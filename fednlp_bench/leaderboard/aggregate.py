"""From result files to one leaderboard table (pandas): seeds averaged, federated vs centralized, CSV + parquet.

One row per (task, family, model, profile, partition, method). Statistics over seeds: runs that share a seed
are averaged first, then `mean` is the mean over seeds, `std` the sample standard deviation over seeds
(ddof=1) when there are two seeds or more, 0.0 for a single seed, and `ci95` the half-width of the 95%
t-interval of the mean (t(0.975, n-1) * std / sqrt(n); NaN for a single seed).

`last20` / `last20_ci95` is a second, separately named statistic of federated rows: per seed, the mean of the
evaluations in the last 20% of rounds (rounds > 0.8 x the last evaluated round), then mean and 95% t-interval over
seeds. Under strong skew the global model oscillates from round to round, and one final evaluation is a noisy
estimate of where a run has plateaued; this is the window the standard profile's plateau criterion reads. It is
NaN for centralized rows (their metric is already the best epoch's). Ratio, gap and the flag use `mean`.

`track` is "official" (rows made by `fednlp-bench reproduce`) or "community" (`leaderboard submit`); community
rows are kept apart per submitter and never change an official row or a reference. The centralized reference
(`centralized`) of a row is the seed mean of the official converged centralized runs (early stopping on a held-out
validation split: config.max_epochs set) of the same task, model, data and profile (its name: a community row of
profile "standard" is compared with the official "standard: ..." reference), or,
where there is none, of the same-budget centralized runs (a fixed number of passes); `reference` names which
("converged" or "same budget"). `above_reference` flags a row (other than the reference itself) whose mean is
better than the reference by more than its ci95 (by anything at all for a single seed): a federated result
that beats its upper bound says the bound is not one.

Runs that train differently (client selection, continual data, differential privacy; schema.run_settings) are
never averaged together: the default method name carries those settings, and rows are also kept apart by them
when a submitter's own method name does not. The trustworthy-FL columns: `selection`, `data` (static or
continual), `dp` (none, client, example), `epsilon` (the privacy accountant's epsilon, seed mean; NaN without
DP) and `mia_auc` (membership-inference attack AUC, seed mean; NaN without --mia). The robustness columns:
`attack` ("none", or the simulated attack and its strength, e.g. "sign_flip(s=4.0)") and `attack_fraction` (the
share of attacking clients, 0.0 without).

Metric direction (schema.higher_is_better): for a lower-is-better metric such as perplexity, ratio =
centralized / mean (1.0 = as good as centralized, < 1 worse), gap = mean - centralized (positive = worse) and
rounds_to_90 is the first round whose metric <= centralized / 0.9; for every other metric ratio = mean /
centralized, gap = centralized - mean and the target is 0.9 x centralized.
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
from .official import profile_name
from .schema import as_submission, default_method, default_profile, higher_is_better, run_settings

__all__ = ["COLUMNS", "GROUP_KEY", "SORT_KEY", "aggregate", "canonical_digests", "default_method", "default_profile",
           "load_results", "read_table", "write_table"]  # default_method, default_profile: re-exported from schema

# Columns of the table, in order: name -> dtype.
COLUMNS: dict[str, str] = {
    "task": "str", "family": "str", "model": "str", "profile": "str", "partition": "str",
    "partition_digest": "str", "canonical": "bool", "method": "str", "algorithm": "str", "metric": "str",
    "n_seeds": "int64", "mean": "float64", "std": "float64", "ci95": "float64", "last20": "float64",
    "last20_ci95": "float64", "centralized": "float64",
    "reference": "str", "above_reference": "bool", "ratio": "float64", "gap": "float64", "rounds_to_90": "float64", "client_p10": "float64", "client_std": "float64",
    "upload_bytes_per_round": "int64", "submitter": "str", "track": "str",
    "selection": "str", "data": "str", "dp": "str", "epsilon": "float64", "mia_auc": "float64",
    "attack": "str", "attack_fraction": "float64",
}
GROUP_KEY = ("task", "family", "model", "profile", "partition", "method")
# Runs are grouped by GROUP_KEY and their training settings (the settings' method-name tags included).
_SETTINGS_KEY = ("selection", "data", "dp", "settings")
SORT_KEY = ["family", "task", "model", "profile", "partition", "method", "selection", "data", "dp"]
CENTRALIZED_PARTITION = "all"  # the `partition` of centralized rows (they train on all the data)
LAST_FRACTION = 0.2  # last20: the window of the last 20% of rounds
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


def ci95_half_width(std: float, n: int) -> float:
    """Half-width of the 95% t-interval of a mean over n seeds (NaN for n < 2)."""
    from scipy.stats import t

    if n < 2 or math.isnan(std):
        return math.nan
    return float(t.ppf(0.975, n - 1) * std / math.sqrt(n))


def _seed_mean(values: dict[int, list[float]]) -> float:
    return _seed_stats(values)[0] if values else math.nan


def _rounds_to_target(curve: list[dict[str, Any]], metric: str, target: float, higher: bool = True) -> float:
    """First curve round whose `metric` reaches `target` (>= it, or <= it when lower is better); NaN if none
    does (or target is NaN)."""
    if math.isnan(target):
        return math.nan
    for point in curve:
        value = point["metrics"][metric]
        if (value >= target - _EPS) if higher else (value <= target + _EPS):
            return float(point["round"])
    return math.nan


def last_window_mean(curve: list[dict[str, Any]], metric: str, fraction: float = LAST_FRACTION) -> float:
    """Mean of `metric` over the curve points in the last `fraction` of rounds (round > (1 - fraction) x the last
    point's round; the last point alone when no other falls in the window); NaN for an empty curve."""
    if not curve:
        return math.nan
    start = (1.0 - fraction) * float(curve[-1]["round"])
    window = [float(p["metrics"][metric]) for p in curve if float(p["round"]) > start + _EPS] or [
        float(curve[-1]["metrics"][metric])]
    return float(np.mean(window))


def _target(centralized: float, higher: bool) -> float:
    """The rounds_to_90 target: 90% of centralized (x 0.9, or / 0.9 when lower is better)."""
    return TARGET_FRACTION * centralized if higher else centralized / TARGET_FRACTION


def _ratio_gap(mean: float, centralized: float, higher: bool) -> tuple[float, float]:
    """(ratio, gap) oriented so that ratio 1.0 is as good as centralized and a positive gap is worse."""
    if higher:
        return (mean / centralized if centralized and not math.isnan(centralized) else math.nan), centralized - mean
    return (centralized / mean if mean and not math.isnan(mean) else math.nan), mean - centralized


def _facts(sub: dict[str, Any]) -> dict[str, Any]:
    """The fields of one submission that aggregation needs."""
    meta, r = sub["submission"], sub["result"]
    task, cfg, metric = r["task"], r["config"], r["task"]["primary_metric"]
    federated = r["kind"] == "federated"
    settings = run_settings(r)
    track = meta.get("track") if meta.get("track") in ("official", "community") else "official"
    return {
        "track": track, "profile_name": profile_name(meta["profile"]),
        # community rows stay apart per submitter; official rows of one profile are one row per method
        "community_of": meta["submitter"] if track == "community" else "",
        "reference": "" if federated else reference_kind(r),
        "selection": settings["selection"], "data": settings["data"], "dp": settings["dp"],
        "settings": "+".join(settings["tags"]), "epsilon": settings["epsilon"], "mia_auc": settings["mia_auc"],
        "attack": settings["attack"], "attack_fraction": settings["attack_fraction"],
        "task": task["name"], "family": task["family"], "model": task["model"], "profile": meta["profile"],
        "partition": r["partition"]["name"] if federated else CENTRALIZED_PARTITION, "method": meta["method"],
        "federated": federated, "digest": r["partition"]["digest"] if federated else "",
        "marked_canonical": meta.get("canonical") if isinstance(meta.get("canonical"), bool) else None,
        "algorithm": cfg["algorithm"], "metric": metric, "seed": r["seed"], "final": float(r["final"][metric]),
        "last20": last_window_mean(r["curve"], metric) if federated else math.nan,
        "fingerprint": task["data_fingerprint"], "curve": r["curve"], "submitter": meta["submitter"],
        "client_p10": float(r["clients"][metric]["p10"]) if federated else math.nan,
        "client_std": float(r["clients"][metric]["std"]) if federated else math.nan,
        "upload": int(r["upload_bytes_per_client_per_round"]) * int(cfg["clients_per_round"]),
    }


def reference_kind(result: dict[str, Any]) -> str:
    """"converged" for a centralized run trained to convergence (early stopping), else "same budget"."""
    return "converged" if (result.get("config") or {}).get("max_epochs") is not None else "same budget"


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in COLUMNS.items()})


def aggregate(records: Iterable[dict[str, Any]], canonical: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per (task, family, model, profile, partition, method) and training settings (selection, data,
    DP and their parameters: schema.run_settings); columns exactly COLUMNS, sorted rows.

    The centralized baseline of a row is the mean of the centralized runs with default settings (no DP) of the
    same task, model, data and profile; a centralized row with DP is compared with it like a federated row.

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

    # Centralized baselines: (task, model, data fingerprint, profile) -> {reference kind: {seed: [final metric]}};
    # only centralized runs with default settings (no DP) are baselines; converged ones win over same-budget ones.
    central: dict[tuple, dict[str, dict[int, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for f in facts:
        if not f["federated"] and not f["settings"] and f["track"] == "official":
            central[(f["task"], f["model"], f["fingerprint"], f["profile_name"])][f["reference"]][f["seed"]].append(
                f["final"])

    def reference_of(key: tuple, fingerprints: list[str], profile: str) -> tuple[str, dict[int, list[float]]]:
        for kind in ("converged", "same budget"):
            seeds: dict[int, list[float]] = defaultdict(list)
            for fp in fingerprints:
                for seed, vals in central.get((key[0], key[2], fp, profile), {}).get(kind, {}).items():
                    seeds[seed] += vals
            if seeds:
                return kind, seeds
        return "", {}

    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for f in facts:
        groups[tuple(f[k] for k in GROUP_KEY + _SETTINGS_KEY + ("reference", "track", "community_of"))].append(f)

    rows = []
    for full_key in sorted(groups):
        members = groups[full_key]
        key = full_key[:len(GROUP_KEY)]
        federated = members[0]["federated"]
        higher = higher_is_better(members[0]["metric"])
        by_seed = lambda field: _by_seed(members, field)  # noqa: E731
        mean, std, n = _seed_stats(by_seed("final"))
        ci = ci95_half_width(std, n)
        if federated:
            last_mean, last_std, last_n = _seed_stats(by_seed("last20"))
            last_ci = ci95_half_width(last_std, last_n)
        else:
            last_mean = last_ci = math.nan
        kind, baseline = reference_of(key, sorted({m["fingerprint"] for m in members}), members[0]["profile_name"])
        cen = _seed_mean(baseline)
        is_reference = (not federated and not members[0]["settings"] and members[0]["reference"] == kind
                        and members[0]["track"] == "official")
        if is_reference:
            ratio, gap = 1.0, 0.0
        else:
            ratio, gap = _ratio_gap(mean, cen, higher)
        # better than the reference by more than the row's own interval (any margin without an interval)
        above = (not is_reference and not math.isnan(cen) and not math.isnan(mean)
                 and -gap > (0.0 if math.isnan(ci) else ci))
        target = _target(cen, higher)
        reach = {s: [_rounds_to_target(m["curve"], m["metric"], target, higher) for m in members if m["seed"] == s]
                 for s in {m["seed"] for m in members}}
        any_never = any(math.isnan(v) for vals in reach.values() for v in vals)
        digests = sorted({m["digest"] for m in members})
        rows.append({
            **dict(zip(GROUP_KEY, key)),
            "partition_digest": ",".join(digests),
            "canonical": all(m["canonical"] for m in members),
            "algorithm": ",".join(sorted({m["algorithm"] for m in members})),
            "metric": ",".join(sorted({m["metric"] for m in members})),
            "n_seeds": n, "mean": mean, "std": std, "ci95": ci, "last20": last_mean, "last20_ci95": last_ci,
            "centralized": cen, "reference": kind,
            "above_reference": bool(above), "ratio": ratio, "gap": gap,
            "rounds_to_90": math.nan if any_never or not federated else _seed_mean(reach),
            "client_p10": _seed_mean(by_seed("client_p10")), "client_std": _seed_mean(by_seed("client_std")),
            "upload_bytes_per_round": int(round(_seed_mean(by_seed("upload")))),
            "submitter": ", ".join(sorted({m["submitter"] for m in members})), "track": members[0]["track"],
            "selection": members[0]["selection"], "data": members[0]["data"], "dp": members[0]["dp"],
            "epsilon": _seed_mean(_by_seed(members, "epsilon", skip_nan=True)),
            "mia_auc": _seed_mean(_by_seed(members, "mia_auc", skip_nan=True)),
            "attack": members[0]["attack"], "attack_fraction": members[0]["attack_fraction"],
        })
    df = pd.DataFrame(rows, columns=list(COLUMNS)).astype(COLUMNS)
    return df.sort_values(SORT_KEY, kind="mergesort").reset_index(drop=True)


def _by_seed(members: list[dict[str, Any]], field: str, skip_nan: bool = False) -> dict[int, list[float]]:
    """{seed: [field of each run]}; with skip_nan, runs without the value (NaN) are left out."""
    out: dict[int, list[float]] = defaultdict(list)
    for m in members:
        value = float(m[field])
        if not (skip_nan and math.isnan(value)):
            out[m["seed"]].append(value)
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
    df = pd.read_csv(p, keep_default_na=False, na_values={c: [""] for c in floats},
                     dtype={c: t for c, t in COLUMNS.items() if t != "bool"})
    return df.astype({"canonical": "bool", "above_reference": "bool"})
