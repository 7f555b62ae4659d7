"""The leaderboard board: one page per profile, each a README.md (markdown tables), an index.html (one static
page) and PNG plots.

`build_board(df, records, out_folder)` renders the aggregated table (one row per task, model, profile,
partition and method; see aggregate.py for the columns) and the run records behind it. The standard profile
(converged, 3 seeds) is the default page (out_folder/README.md and index.html, together with rows of any profile
not named smoke or full); smoke rows (pipeline checks) and full rows get their own pages under smoke/ and
full/. Each page opens with what its profile is (model, data sizes, clients, rounds, local epochs, seeds and the
centralized reference's early stopping), then one table per task: mean with its 95% confidence interval over
seeds, n, the centralized reference, ratio, gap, rounds to 90% and client p10, with a flag on any row above
its reference; who submitted what under which profile label follows in a provenance table. Plots: the
federated / centralized ratio per task and method (plots/ratio.png), the metric against the label-skew alpha per
algorithm with interval bars and the centralized band, learning curves averaged over seeds with their range as a
band, one panel per partition, and, where a partition has full fine-tuning beside a tuning method, the metric
against the upload per round.

Output is byte-identical across rebuilds from the same input: rows and records are sorted here, floats use
fixed formats, nothing carries a timestamp, and PNGs are saved without the "Software" metadata. Every file is
written to a temp file and renamed into place.

When any run uses a non-default client selection, continual data, differential privacy or the
membership-inference audit, a "Trustworthy FL" section follows the family tables: per task, one row per
partition and method (algorithm x selection x data x DP) with the primary metric, the client p10 and std,
epsilon and the MIA AUC, and one plot (plots/trustworthy.png). Without such runs the board is as before.
Rows are ordered best first by the metric's direction (lower first for perplexity or loss). When any run has
simulated attacking clients, a "Robustness to attacking clients" section follows: per task and partition, one
row per aggregator and one column per attack and share of attackers (the mean and n).

index.html is self-contained: inline CSS, one inline script (click a column header to sort; numbers sort
as numbers, a second click reverses), no external resource; plots are <img> tags with relative paths to
the plots/ folder beside it. Every string that comes from the data is HTML-escaped, and a
Content-Security-Policy only lets the page's own script (by its hash) run.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .schema import default_method, higher_is_better

FAMILY_ORDER = ("text_classification", "sequence_tagging", "extractive_qa", "seq2seq", "language_modeling")
FAMILY_TITLES = {"text_classification": "Text classification", "sequence_tagging": "Sequence tagging",
                 "extractive_qa": "Extractive question answering", "seq2seq": "Sequence to sequence",
                 "language_modeling": "Language modelling"}
PLOTS_DIR = "plots"
TRUST_PNG = "trustworthy.png"
_PLOT_NAME = re.compile(r"^(ratio|trustworthy|alpha-.+|curves-.+|communication-.+)\.png$")
PLOT_TITLES = {"alpha": "metric vs alpha", "curves": "learning curves",
               "communication": "metric vs upload per round, per tuning method"}
NA = "—"

# (key, header, kind) of the per-task table; kind picks the cell formatter.
COLUMNS = (
    ("method", "method", "method"),  # the method, marked † when its partition is not canonical
    ("partition", "partition", "partition"),
    ("model", "model", "text"),
    ("mean", None, "score"),  # header names the task's metric
    ("n_seeds", "n", "count"),
    ("last20", "last 20% of rounds", "window"),
    ("centralized", "centralized", "metric"),
    ("ratio", "ratio", "ratio"),
    ("gap", "gap", "metric"),
    ("rounds_to_90", "rounds to 90%", "rounds"),
    ("client_p10", "client p10", "metric"),
    ("upload_bytes_per_round", "upload MB/round", "megabytes"),
    ("above_reference", "flag", "flag"),
)
# Who submitted each row under which profile label, and its partition digest: below the tables of a page.
PROVENANCE_COLUMNS = (
    ("method", "method", "text"),
    ("track", "track", "text"),
    ("partition", "partition", "text"),
    ("model", "model", "text"),
    ("profile", "profile", "text"),
    ("submitter", "submitter", "text"),
    ("canonical", "canonical", "canonical"),
    ("partition_digest", "partition digest", "digest"),
)
ABOVE = "▲"  # a row better than its centralized reference by more than its interval
NOT_CANONICAL = "†"

LEGEND = ("mean ± 95% CI: the task's primary metric (a fraction in [0, 1], or a perplexity) averaged over the n "
          "seeds, ± the half-width of the 95% t-interval of that mean (t(0.975, n−1) · std / √n; — with a single seed). "
          "last 20% of rounds: a second statistic of federated rows — per seed, the mean of the evaluations in the "
          "last 20% of rounds, then mean ± 95% CI over seeds; under skew the model swings from round to round and "
          "this window says where a run plateaued better than its final evaluation does (ratio, gap and the flag "
          "use the final metric). centralized: the "
          "reference, the same model trained on all the data — converged (early stopping on a held-out validation "
          "split, the test metric of the best epoch) where the profile has such a run, else the same-budget run "
          "(as many passes as the FL run); ratio = federated / centralized; gap = centralized − federated; rounds "
          "to 90%: first evaluated round reaching 90% of centralized (mean over seeds; 'not reached' when a seed "
          "never did); client p10: 10th-percentile client score; upload MB/round: bytes sent to the server per "
          "round (1 MB = 10^6 bytes); flag " + ABOVE + ": the row beats its centralized reference by more than its "
          "interval, so that reference is not an upper bound for it; " + NOT_CANONICAL + " after a method: its "
          "partition digest matches no recipe in partition/. Official rows come from `fednlp-bench reproduce` (the "
          "card's profile, exactly); rows marked 'community (name)' were submitted by that name, are never merged "
          "into official rows and are compared with the official centralized reference. — : not applicable or not measured (no interval for "
          "one seed, no centralized reference for this task and model, no per-client scores for a centralized run).")
# Added to the legend when a lower-is-better metric (perplexity) is on the board.
LOWER_LEGEND = (" Perplexity is lower-is-better: rows list the lowest first, ratio = centralized / federated "
                "(1 = as good as centralized), gap = federated − centralized and rounds to 90% is the first round "
                "at or below centralized / 0.9; client p10 is the 90th-percentile client perplexity (the worst "
                "10% of clients).")

# (key, header, kind) of the per-task tables of the trustworthy-FL section.
TRUST_COLUMNS = (
    ("partition", "partition", "text"),
    ("method", "method", "text"),
    ("selection", "selection", "text"),
    ("data", "data", "text"),
    ("dp", "DP", "text"),
    ("mean", None, "score_std"),
    ("client_p10", "client p10", "metric"),
    ("client_std", "client std", "metric"),
    ("epsilon", "ε", "epsilon"),
    ("mia_auc", "MIA AUC", "ratio"),
    ("profile", "profile", "text"),
)
TRUST_LEGEND = ("Runs with a non-default client selection (activity, power_of_choice with d candidates), continual "
                "data (each client's examples arrive over A rounds, at most cap kept), differential privacy "
                "(client-level DP-FedAvg: noise multiplier z, update clip S; example-level DP-SGD: z, per-example "
                "clip C) or a membership-inference audit, next to the default runs of the same task and partition. "
                "The method name carries these settings (e.g. fedavg+power_of_choice(d=8), "
                "fedavg+dp-client(z=0.3,S=0.5)). client p10 / client std: the 10th-percentile client (the worst 10% of "
                "clients do this well; for perplexity the 90th percentile) and the standard deviation of the "
                "per-client test metric (fairness); ε: the accountant's epsilon at the run's delta (mean over "
                "seeds; — without DP, ∞ without noise); MIA AUC: loss-threshold membership-inference attack on the "
                "final model (0.5 = no leakage).")


# ----------------------------------------------------------------------------------------------- values

def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _num(value: Any) -> float:
    """A float, NaN when missing or not a number."""
    if _is_missing(value) or isinstance(value, bool):
        return math.nan
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def _text(value: Any) -> str:
    """A data string on one line ('' when missing)."""
    if _is_missing(value):
        return ""
    return " ".join(str(value).split())


def _fixed(value: Any, digits: int) -> str:
    x = _num(value)
    return NA if math.isnan(x) else f"{x:.{digits}f}"


def _sort_value(row: dict[str, Any], key: str, kind: str) -> str:
    """The raw value a cell sorts by (numbers as plain decimals, '' when missing)."""
    if kind == "text":
        return _text(row.get(key))
    if kind in ("canonical", "flag"):
        return "1" if _truthy(row.get(key)) else "0"
    if kind in ("method", "partition", "digest"):
        return _text(row.get(key))
    if kind == "epsilon" and _is_inf(row.get(key)):
        return "1e308"  # sorts after every finite epsilon
    x = _num(row.get(key))
    return "" if math.isnan(x) else repr(x)


def _truthy(value: Any) -> bool:
    return (not _is_missing(value)) and bool(value)


def _cell(row: dict[str, Any], key: str, kind: str) -> str:
    """A cell's display text (not escaped)."""
    value = row.get(key)
    if kind == "text":
        return _text(value) or NA
    if kind == "method":
        text = (_text(value) or NA) + ("" if _truthy(row.get("canonical")) or row.get("canonical") is None
                                        else " " + NOT_CANONICAL)
        if _text(row.get("track")) == "community":
            text += f" · community ({_text(row.get('submitter'))})"
        return text
    if kind == "partition":
        return short_partition(_text(value)) or NA
    if kind == "canonical":
        return "✓" if _truthy(value) else "✗"
    if kind == "digest":
        return _text(value)[:12] or NA
    if kind == "count":
        x = _num(value)
        return NA if math.isnan(x) else str(int(x))
    if kind == "flag":
        return ABOVE if _truthy(value) else ""
    if kind in ("score", "window"):  # mean ± 95% CI of the final metric, or of the last 20% of rounds
        mean_key, ci_key = ("mean", "ci95") if kind == "score" else ("last20", "last20_ci95")
        mean, ci = _num(row.get(mean_key)), _num(row.get(ci_key))
        return NA if math.isnan(mean) else f"{mean:.4f} ± {_fixed(ci, 4)}"
    if kind == "score_std":
        mean, std, n = _num(row.get("mean")), _num(row.get("std")), _num(row.get("n_seeds"))
        if math.isnan(mean):
            return NA
        seeds = "" if math.isnan(n) else f" (n={int(n)})"
        return f"{mean:.4f} ± {0.0 if math.isnan(std) else std:.4f}{seeds}"
    if kind == "metric":
        return _fixed(value, 4)
    if kind == "ratio":
        return _fixed(value, 3)
    if kind == "rounds":
        x = _num(value)
        if math.isnan(x) and not math.isnan(_num(row.get("centralized"))) and _text(row.get("algorithm")) not in (
                "", "centralized"):
            return "not reached"
        return _fixed(value, 1)
    if kind == "megabytes":
        x = _num(value)
        return NA if math.isnan(x) else f"{x / 1e6:.3f}"
    if kind == "epsilon":
        if _is_inf(value):
            return "∞"
        return _fixed(value, 2)
    raise ValueError(f"unknown column kind {kind!r}")


def _is_inf(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and not _is_missing(value) and math.isinf(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False


def _slug(name: str) -> str:
    """A file-name-safe, collision-free stem for a data string."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:40] or "task"
    return f"{base}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _family_key(family: str) -> tuple[int, str]:
    return (FAMILY_ORDER.index(family), "") if family in FAMILY_ORDER else (len(FAMILY_ORDER), family)


def _family_title(family: str) -> str:
    return FAMILY_TITLES.get(family, family or "other")


def _higher(metric: str) -> bool:
    """Whether larger is better for a row's metric ("a/b" when a row mixes metrics: larger unless all are lower)."""
    names = [m for m in metric.split("/") if m] if metric else []
    return not names or any(higher_is_better(m) for m in names)


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Table rows in a fixed order: family, task, best mean first (the highest, or the lowest for a lower-is-better
    metric such as perplexity), then every text column as a tie-break."""
    rows = [{k: (None if _is_missing(v) else v) for k, v in rec.items()} for rec in df.to_dict(orient="records")]

    def key(row: dict[str, Any]):
        mean = _num(row.get("mean"))
        sign = -1.0 if _higher(_text(row.get("metric"))) else 1.0
        return (_family_key(_text(row.get("family"))), _text(row.get("task")), math.isnan(mean),
                sign * mean if not math.isnan(mean) else 0.0, _text(row.get("method")), _text(row.get("partition")),
                _text(row.get("profile")), _text(row.get("model")), _text(row.get("submitter")),
                _text(row.get("partition_digest")), json.dumps(row, sort_keys=True, default=str))

    return sorted(rows, key=key)


def _grouped(rows: list[dict[str, Any]]) -> list[tuple[str, list[tuple[str, list[dict[str, Any]]]]]]:
    """[(family, [(task, rows), ...]), ...] keeping the row order."""
    families: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        families.setdefault(_text(row.get("family")), {}).setdefault(_text(row.get("task")), []).append(row)
    return [(fam, list(tasks.items())) for fam, tasks in families.items()]


def _metric_name(rows: list[dict[str, Any]]) -> str:
    names = sorted({_text(r.get("metric")) for r in rows} - {""})
    return "/".join(names) or "metric"


# --------------------------------------------------------------------------------------------- records

def _unwrap(record: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(run record, submitted method or None) for a bare run record or a submission wrapper."""
    if isinstance(record.get("result"), dict) and isinstance(record.get("submission"), dict):
        return record["result"], _text(record["submission"].get("method")) or None
    return record, None


def _profile_label(record: dict[str, Any]) -> str:
    """The board's profile label of a record (the submission's, else the default one)."""
    from .schema import default_profile

    if isinstance(record.get("submission"), dict) and _text(record["submission"].get("profile")):
        return _text(record["submission"]["profile"])
    run = record.get("result") if isinstance(record.get("result"), dict) else record
    try:
        return _text(default_profile(run))
    except (KeyError, TypeError, AttributeError):
        return ""


def _primary(run: dict[str, Any]) -> str:
    return _text((run.get("task") or {}).get("primary_metric"))


def _final(run: dict[str, Any]) -> float:
    """Final primary metric: final{} when present, else the last curve point."""
    metric = _primary(run)
    final = run.get("final") or {}
    if metric in final:
        return _num(final[metric])
    curve = run.get("curve") or []
    return _num((curve[-1].get("metrics") or {}).get(metric)) if curve else math.nan


def _run_info(record: dict[str, Any]) -> dict[str, Any] | None:
    run, method = _unwrap(record)
    if not isinstance(run, dict) or not isinstance(run.get("task"), dict):
        return None
    cfg = run.get("config") or {}
    part = run.get("partition") or {}
    kind = _text(run.get("kind"))
    if method is None:
        method = _text(default_method(run)) if kind == "centralized" or _text(cfg.get("algorithm")) else "?"
    part_method = _text(part.get("method")) or _text(cfg.get("partition"))
    part_name = _text(part.get("name")) or _text(cfg.get("partition"))
    alpha = _num(part.get("alpha")) if not _is_missing(part.get("alpha")) else _num(cfg.get("alpha"))
    return {
        "task": _text(run["task"].get("name")) or _text(cfg.get("task")),
        "model": _text(run["task"].get("model")) or _text(cfg.get("model")),
        "profile": _profile_label(record), "seed": _num(run.get("seed")),
        "num_train": _num(run["task"].get("num_train")), "num_test": _num(run["task"].get("num_test")),
        "num_validation": _num(run["task"].get("num_validation")),
        "config": {k: v for k, v in cfg.items() if isinstance(v, (str, int, float, bool)) or v is None},
        "early_stopping": run.get("early_stopping") if isinstance(run.get("early_stopping"), dict) else {},
        "metric": _primary(run), "kind": kind, "method": method,
        "partition": part_name if kind != "centralized" else "centralized",
        "label_skew": kind == "federated" and (part_method == "label" or part_name.startswith("niid_label")),
        "alpha": alpha, "final": _final(run), "wall_time_s": _num(run.get("wall_time_s")),
        "threads": _num((run.get("execution") or {}).get("torch_threads")),
        "device": _text((run.get("execution") or {}).get("device")),
        "curve": [(_num(p.get("round")), _num((p.get("metrics") or {}).get(_primary(run))))
                  for p in (run.get("curve") or []) if isinstance(p, dict)],
    }


def _runs(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    infos = [info for info in (_run_info(r) for r in records) if info is not None]
    return sorted(infos, key=lambda i: json.dumps(i, sort_keys=True, default=str))


def _mean(values: list[float]) -> float:
    vals = sorted(v for v in values if not math.isnan(v))
    return math.fsum(vals) / len(vals) if vals else math.nan


# ------------------------------------------------------------------------------------------------ plots

def _label(text: str) -> str:
    """A data string safe as matplotlib text (no mathtext, legend does not drop a leading '_')."""
    text = text.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


def short_partition(name: str) -> str:
    """FedNLP partition names shortened for axis labels: niid_label_clients=10_alpha=0.1 -> 'label a=0.1 (10)'."""
    import re

    m = re.fullmatch(r"niid_(\w+?)_clients=(\d+)(?:_(alpha|beta)=([^_]+))?", name)
    if not m:
        return name
    kind, clients, param, value = m.groups()
    return f"{kind} {param[0]}={value} ({clients})" if param else f"{kind} ({clients})"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", pad_inches=0.1, metadata={"Software": None})
    return buf.getvalue()


def _ratio_plot(rows: list[dict[str, Any]]) -> bytes | None:
    """Federated/centralized ratio: one panel per task, partitions on x, one bar per method (best profile)."""
    best: dict[str, dict[tuple[str, str], float]] = {}
    for row in rows:
        ratio = _num(row.get("ratio"))
        if _text(row.get("method")) == "centralized" or math.isnan(ratio):
            continue
        cell = best.setdefault(_text(row.get("task")), {})
        key = (_text(row.get("partition")), _text(row.get("method")))
        cell[key] = max(ratio, cell.get(key, -math.inf))
    if not best:
        return None
    tasks = sorted(best)
    lower_tasks = {_text(r.get("task")) for r in rows if not _higher(_text(r.get("metric")))}
    fig = _figure(8.0, 2.8 * len(tasks) + 0.4)
    axes = fig.subplots(len(tasks), 1, squeeze=False)[:, 0]
    for ax, task in zip(axes, tasks):
        values = best[task]
        partitions = sorted({p for p, _ in values})
        methods = sorted({m for _, m in values})
        width = 0.8 / len(methods)
        for j, method in enumerate(methods):
            xs = [i + (j - (len(methods) - 1) / 2) * width for i, p in enumerate(partitions) if (p, method) in values]
            ys = [values[(p, method)] for p in partitions if (p, method) in values]
            ax.bar(xs, ys, width=width, label=_label(method), color=f"C{j % 10}")
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_xticks(range(len(partitions)))
        ax.set_xticklabels([_label(short_partition(p)) for p in partitions], fontsize=7, rotation=20, ha="right")
        lower = task in lower_tasks
        ax.set_ylabel("centralized / federated" if lower else "federated / centralized")
        ax.set_title(_label(f"{task} (best profile per bar{'; lower metric is better' if lower else ''})"), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return _png(fig)


_ALPHA = re.compile(r"^niid_label_clients=\d+_alpha=([0-9.eE+-]+)$")
_PARTITION_ORDER = {"uniform": 0, "label": 1, "quantity": 2, "cluster": 3, "natural": 4}


def partition_alpha(name: str) -> float:
    """The label-skew alpha of a partition name (niid_label_clients=100_alpha=0.5 -> 0.5), else NaN."""
    m = _ALPHA.match(name)
    try:
        return float(m.group(1)) if m else math.nan
    except ValueError:
        return math.nan


def _partition_key(name: str) -> tuple:
    """Panels in a fixed order: IID, label skew from the mildest alpha down, quantity, cluster, natural, others."""
    kind = "uniform" if name == "uniform" else (name.split("_")[1] if name.startswith("niid_") else name)
    alpha = partition_alpha(name)
    return (_PARTITION_ORDER.get(kind, 9), -alpha if not math.isnan(alpha) else 0.0, name)


def _is_default_row(row: dict[str, Any]) -> bool:
    """A row trained with the default settings (no selection, continual-data or DP variant)."""
    return (_text(row.get("selection")) in ("", "uniform") and _text(row.get("data")) in ("", "static")
            and _text(row.get("dp")) in ("", "none"))


def _reference_row(task_rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The centralized row the task's federated rows are compared with (converged, else same budget)."""
    from .schema import SAME_BUDGET_METHOD

    kinds = {_text(r.get("reference")) for r in task_rows if _text(r.get("algorithm")) != "centralized"}
    want = "centralized" if "converged" in kinds or not kinds else SAME_BUDGET_METHOD
    central = [r for r in task_rows if _text(r.get("algorithm")) == "centralized" and _is_default_row(r)]
    chosen = [r for r in central if _text(r.get("method")) == want] or central
    return chosen[0] if chosen else None


def _central_band(ax, ref: dict[str, Any] | None) -> None:
    """The centralized reference as a line with its 95% interval as a shaded band."""
    if ref is None or math.isnan(_num(ref.get("mean"))):
        return
    mean, ci = _num(ref.get("mean")), _num(ref.get("ci95"))
    if not math.isnan(ci):
        ax.axhspan(mean - ci, mean + ci, color="black", alpha=0.12, lw=0)
    ax.axhline(mean, color="black", ls="--", lw=1,
               label="centralized" + ("" if math.isnan(ci) else " ± 95% CI"))


def _clip_fraction_axis(ax, metric: str) -> None:
    """Keep a fraction metric's axis within [0, 1] (wide intervals of few seeds would stretch it past the scale)."""
    if _higher(metric):
        lo, hi = ax.get_ylim()
        ax.set_ylim(max(lo, 0.0), min(hi, 1.0))


def _alpha_plot(task: str, rows: list[dict[str, Any]]) -> bytes | None:
    """Seed-mean metric against the label-skew alpha (and IID at the right), one line per method with its 95%
    interval as error bars, the centralized reference as a band; two panels: the final evaluation and the mean of
    the last 20% of rounds. Methods with fewer than two points are left out; None when no method has two."""
    fed = [r for r in rows if _text(r.get("algorithm")) != "centralized" and _is_default_row(r)]
    many_models = len({_text(r.get("model")) for r in fed}) > 1
    panels = (("mean", "ci95", "final evaluation"), ("last20", "last20_ci95", "mean of the last 20% of rounds"))
    lines: dict[str, dict[str, dict[str, tuple[float, float]]]] = {key: defaultdict(dict) for key, _, _ in panels}
    for r in fed:
        name = _text(r.get("partition"))
        alpha = partition_alpha(name)
        x = "IID" if name == "uniform" else (f"{alpha:g}" if not math.isnan(alpha) else None)
        if x is None:
            continue
        label = f"{_text(r.get('method'))} · {_text(r.get('model'))}" if many_models else _text(r.get("method"))
        for key, ci_key, _ in panels:
            lines[key][label][x] = (_num(r.get(key)), _num(r.get(ci_key)))
    keep = sorted(k for k, v in lines["mean"].items() if len(v) >= 2 and any(x != "IID" for x in v))
    if not keep:
        return None
    alphas = sorted({float(x) for k in keep for x in lines["mean"][k] if x != "IID"})
    ticks = [f"{a:g}" for a in alphas] + (["IID"] if any("IID" in lines["mean"][k] for k in keep) else [])
    pos = {t: i for i, t in enumerate(ticks)}
    metric = _metric_name(rows)
    shown = [p for p in panels if any(not math.isnan(m) for k in keep for m, _ in lines[p[0]][k].values())]
    fig = _figure(6.4 if len(shown) == 1 else 10.5, 3.8)
    axes = fig.subplots(1, len(shown), sharey=True, squeeze=False)[0]
    for ax, (key, _, title) in zip(axes, shown):
        _central_band(ax, _reference_row(rows))
        n = len(keep)
        for j, label in enumerate(keep):
            pts = sorted(((x, v) for x, v in lines[key][label].items() if not math.isnan(v[0])),
                         key=lambda kv: pos[kv[0]])
            xs = [pos[x] + (j - (n - 1) / 2) * 0.06 for x, _ in pts]  # a small dodge keeps the bars apart
            ys = [m for _, (m, _) in pts]
            err = [0.0 if math.isnan(c) else c for _, (_, c) in pts]
            ax.errorbar(xs, ys, yerr=err, marker="o", ms=4, capsize=3, lw=1.2, color=f"C{j % 10}",
                        label=_label(label))
        _clip_fraction_axis(ax, metric)
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels(ticks)
        ax.set_xlabel("label-skew alpha (smaller = more non-IID); IID = uniform")
        ax.set_title(_label(f"{task}: {title}"), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(_label(f"{metric} (mean ± 95% CI over seeds)"))
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)


def _curves_plot(task: str, runs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> bytes | None:
    """Learning curves, one panel per partition: per method the seed mean at each evaluated round, the range over
    seeds as a band, the centralized reference as a band. Only curves with two or more points are drawn."""
    by_part: dict[str, dict[str, dict[float, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in runs:
        if run["kind"] == "centralized":
            continue
        for rnd, value in run["curve"]:
            if not math.isnan(rnd) and not math.isnan(value):
                by_part[run["partition"]][run["method"]][rnd].append(value)
    panels = {p: {m: pts for m, pts in methods.items() if len(pts) >= 2} for p, methods in by_part.items()}
    panels = {p: methods for p, methods in panels.items() if methods}
    if not panels:
        return None
    metric = _metric_name(rows) if rows else runs[0]["metric"]
    methods = sorted({m for ms in panels.values() for m in ms})
    color = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    order = sorted(panels, key=_partition_key)
    ncols = min(3, len(order))
    nrows = math.ceil(len(order) / ncols)
    fig = _figure(3.6 * ncols + 2.2, 2.8 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    ref = _reference_row(rows)
    from matplotlib.ticker import MaxNLocator

    for k, part in enumerate(order):
        ax = axes[k // ncols, k % ncols]
        _central_band(ax, ref)
        for method in sorted(panels[part]):
            pts = panels[part][method]
            rounds = sorted(pts)
            mean = [_mean(pts[r]) for r in rounds]
            ax.plot(rounds, mean, lw=1.2, color=color[method], label=_label(method))
            if max(len(pts[r]) for r in rounds) > 1:
                ax.fill_between(rounds, [min(pts[r]) for r in rounds], [max(pts[r]) for r in rounds],
                                color=color[method], alpha=0.18, lw=0)
        ax.set_title(_label(short_partition(part)), fontsize=8)
        _clip_fraction_axis(ax, metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if k % ncols == 0:
            ax.set_ylabel(_label(metric), fontsize=8)
        if k // ncols == nrows - 1:
            ax.set_xlabel("round", fontsize=8)
    for k in range(len(order), nrows * ncols):
        axes[k // ncols, k % ncols].set_visible(False)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.suptitle(_label(f"{task}: learning curves (mean over seeds, band = range over seeds)"), fontsize=9)
    fig.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False)
    fig.tight_layout()
    return _png(fig)


_TUNING_TAG = re.compile(r"\+(lora\(|ia3|prompt\(|prefix\(|bitfit|freeze\()")


def tuning_label(method: str) -> str | None:
    """The tuning part of a method name ("lora(r=8)", "bitfit+freeze(e,0)"...), "full" without one, None for a
    centralized row."""
    if method.startswith("centralized"):
        return None
    found = _TUNING_TAG.search(method)
    return method[found.start() + 1:] if found else "full"


def _comm_plot(task: str, rows: list[dict[str, Any]]) -> bytes | None:
    """Metric against upload MB per round (log x), one point per tuning method with its 95% interval, one panel
    per partition (FedPETuning's view); drawn when a partition has full fine-tuning and at least one tuned row of
    the same algorithm."""
    panels: dict[str, list[tuple[str, float, float, float]]] = defaultdict(list)
    for row in rows:
        method = _text(row.get("method"))
        label = tuning_label(method)
        if label is None or not _is_default_row(row) or _num(row.get("attack_fraction")) > 0:
            continue
        upload, mean = _num(row.get("upload_bytes_per_round")) / 1e6, _num(row.get("mean"))
        if math.isnan(upload) or upload <= 0 or math.isnan(mean):
            continue
        algo = _text(row.get("algorithm"))
        panels[_text(row.get("partition"))].append((f"{algo} {label}", upload, mean, _num(row.get("ci95"))))
    keep = {p: pts for p, pts in panels.items() if len(pts) >= 2 and any(n.endswith(" full") for n, *_ in pts)
            and any(not n.endswith(" full") for n, *_ in pts)}
    if not keep:
        return None
    metric = _metric_name(rows)
    fig = _figure(4.2 * len(keep) + 1.6, 3.4)
    axes = fig.subplots(1, len(keep), squeeze=False)[0]
    ref = _reference_row(rows)
    for ax, (partition, points) in zip(axes, sorted(keep.items(), key=lambda kv: _partition_key(kv[0]))):
        for i, (name, upload, mean, ci) in enumerate(sorted(points, key=lambda t: t[1])):
            ax.errorbar([upload], [mean], yerr=None if math.isnan(ci) else [ci], fmt="o", capsize=3,
                        color=f"C{i % 10}", label=_label(name))
        _central_band(ax, ref)
        ax.set_xscale("log")
        ax.set_xlabel("upload MB per round (log scale)")
        ax.set_ylabel(_label(metric))
        ax.set_title(_label(f"{task}, {short_partition(partition)}"), fontsize=9)
        _clip_fraction_axis(ax, metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return _png(fig)


def _plots(rows: list[dict[str, Any]], runs: list[dict[str, Any]]) -> tuple[dict[str, bytes], dict[str, list[str]], str | None]:
    """({file name: png}, {task: [file names]}, ratio file name or None) of one page."""
    files: dict[str, bytes] = {}
    per_task: dict[str, list[str]] = defaultdict(list)
    ratio = _ratio_plot(rows)
    if ratio is not None:
        files["ratio.png"] = ratio
    runs_by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        runs_by_task[run["task"]].append(run)
    rows_by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        rows_by_task[_text(row.get("task"))].append(row)
    for task in sorted(set(runs_by_task) | set(rows_by_task)):
        task_rows = rows_by_task.get(task, [])
        for prefix, png in (("alpha", _alpha_plot(task, task_rows) if task_rows else None),
                            ("curves", _curves_plot(task, runs_by_task.get(task, []), task_rows)),
                            ("communication", _comm_plot(task, task_rows) if task_rows else None)):
            if png is not None:
                name = f"{prefix}-{_slug(task)}.png"
                files[name] = png
                per_task[task].append(name)
    return files, per_task, ("ratio.png" if ratio is not None else None)


# ------------------------------------------------------------------------------------------ trustworthy

def _is_trust_row(row: dict[str, Any]) -> bool:
    """A row with a non-default client selection, continual data, DP or a membership-inference audit."""
    return (_text(row.get("selection")) not in ("", "uniform") or _text(row.get("data")) == "continual"
            or _text(row.get("dp")) not in ("", "none") or not math.isnan(_num(row.get("mia_auc")))
            or not math.isnan(_num(row.get("epsilon"))) or _is_inf(row.get("epsilon")))


def _trust_groups(rows: list[dict[str, Any]]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """[(task, metric, rows)] for each task with a trustworthy-FL row: every row of the task's partitions that
    hold one (the default runs are the reference), by partition (centralized "all" last), best first within."""
    out = []
    for _, tasks in _grouped(rows):
        for task, task_rows in tasks:
            partitions = {_text(r.get("partition")) for r in task_rows if _is_trust_row(r)}
            if not partitions:
                continue
            chosen = [r for r in task_rows if _text(r.get("partition")) in partitions]
            chosen.sort(key=lambda r: (_text(r.get("partition")) == "all", _text(r.get("partition"))))  # stable
            out.append((task, _metric_name(task_rows), chosen))
    return out


ROBUST_LEGEND = ("Attacking (Byzantine) clients: a seeded share of the clients sends a corrupted update whenever it "
                 "is chosen (sign_flip(s=4.0): −4 × its own update). One row per aggregator (its arguments in its "
                 "name), one column per attack and share of attacking clients; each cell is the primary metric's "
                 "mean ± 95% CI over seeds (n). The no-attack column is the aggregator's own run without "
                 "attackers, on the same partition.")
_ATTACK_TAG = re.compile(r"\+attack\([^)]*\)")


def _is_attack_row(row: dict[str, Any]) -> bool:
    return _text(row.get("attack")) not in ("", "none")


def _robust_groups(rows: list[dict[str, Any]]) -> list[tuple[str, str, list, list[dict[str, Any]]]]:
    """[(title, metric, columns, table rows)]: per task and partition with an attacked run, one row per aggregator
    (the method name without its attack tag) and one column per attack (none first, then by attack and share)."""
    out = []
    for _, tasks in _grouped(rows):
        for task, task_rows in tasks:
            metric = _metric_name(task_rows)
            for part in sorted({_text(r.get("partition")) for r in task_rows if _is_attack_row(r)}):
                attacked = [r for r in task_rows if _text(r.get("partition")) == part and _is_attack_row(r)]
                bases = sorted({_ATTACK_TAG.sub("", _text(r.get("method"))) for r in attacked})
                cells: dict[tuple[str, str], dict[str, Any]] = {}
                levels: set[tuple[str, float]] = set()
                for r in task_rows:
                    base = _ATTACK_TAG.sub("", _text(r.get("method")))
                    if _text(r.get("partition")) != part or base not in bases:
                        continue
                    level = (_text(r.get("attack")) or "none", 0.0 if not _is_attack_row(r)
                             else _num(r.get("attack_fraction")))
                    levels.add(level)
                    cells[(base, f"{level[0]}|{level[1]!r}")] = r
                order = sorted(levels, key=lambda lv: (lv[0] != "none", lv[0], lv[1]))
                columns = [("method", "aggregator", "text")] + [
                    (f"{a}|{f!r}", "no attack" if a == "none" else f"{a} {f:.0%}", "text") for a, f in order]
                table = []
                for base in bases:
                    row: dict[str, Any] = {"method": base}
                    for key, _, _ in columns[1:]:
                        r = cells.get((base, key))
                        row[key] = NA if r is None else _cell(r, "mean", "score") + f" ({_cell(r, 'n_seeds', 'count')})"
                    table.append(row)
                out.append((f"{task} ({short_partition(part)})", metric, columns, table))
    return out


def _trust_labels(rows: list[dict[str, Any]]) -> list[str]:
    """One legend label per row: method · partition (· profile when that alone would repeat a label)."""
    labels = [f"{_text(r.get('method'))} · {short_partition(_text(r.get('partition')))}" for r in rows]
    repeated = {label for label in labels if labels.count(label) > 1}
    return [f"{label} · {_text(r.get('profile'))}" if label in repeated else label for label, r in zip(labels, rows)]


def _trust_plot(groups: list[tuple[str, str, list[dict[str, Any]]]]) -> bytes | None:
    """Per task (one row of panels): metric mean vs client p10 (fairness), vs MIA AUC and vs epsilon (privacy);
    the MIA and epsilon panels only when some run has them. One point per row of the section's table."""
    if not groups:
        return None
    all_rows = [r for _, _, rows in groups for r in rows]
    panels = ["fairness"]
    if any(not math.isnan(_num(r.get("mia_auc"))) for r in all_rows):
        panels.append("mia")
    if any(_num(r.get("epsilon")) > 0 for r in all_rows):
        panels.append("epsilon")
    fig = _figure(3.6 * len(panels) + 2.6, 3.0 * len(groups) + 0.4)
    axes = fig.subplots(len(groups), len(panels), squeeze=False)
    markers = ("o", "s", "^", "D", "v", "P", "X")
    for i, (task, metric, rows) in enumerate(groups):
        better = "higher" if _higher(metric) else "lower"
        for j, panel in enumerate(panels):
            ax = axes[i, j]
            plotted = 0
            for k, (row, label) in enumerate(zip(rows, _trust_labels(rows))):
                mean = _num(row.get("mean"))
                x, y = {"fairness": (mean, _num(row.get("client_p10"))),
                        "mia": (_num(row.get("mia_auc")), mean),
                        "epsilon": (_num(row.get("epsilon")), mean)}[panel]
                if math.isnan(x) or math.isnan(y) or (panel == "epsilon" and not x > 0):
                    continue
                ax.scatter([x], [y], s=30, color=f"C{k % 10}", marker=markers[(k // 10) % len(markers)],
                           label=_label(label), zorder=3)
                plotted += 1
            if panel == "fairness":
                ax.set_xlabel(_label(f"{metric}, mean over seeds ({better} is better)"), fontsize=8)
                ax.set_ylabel("client p10 (10th-percentile client)", fontsize=8)
                ax.set_title(_label(f"{task}: fairness"), fontsize=9)
                if plotted:  # the diagonal where every client would do as well as the mean (kept out of the limits)
                    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
                    ax.plot([x0, x1], [x0, x1], color="gray", ls=":", lw=1, label="p10 = mean")
                    ax.set_xlim(x0, x1)
                    ax.set_ylim(y0, y1)
            elif panel == "mia":
                ax.set_xlabel("membership-inference AUC (0.5 = no leakage)", fontsize=8)
                ax.set_ylabel(_label(metric), fontsize=8)
                ax.set_title(_label(f"{task}: {metric} vs MIA AUC"), fontsize=9)
                if plotted:
                    ax.axvline(0.5, color="gray", ls=":", lw=1)
            else:
                ax.set_xscale("log")
                ax.set_xlabel("ε (log scale; smaller = more private)", fontsize=8)
                ax.set_ylabel(_label(metric), fontsize=8)
                ax.set_title(_label(f"{task}: {metric} vs ε"), fontsize=9)
            if not plotted:
                ax.text(0.5, 0.5, {"fairness": "no federated runs", "mia": "no runs with --mia",
                                   "epsilon": "no DP runs"}[panel], ha="center", va="center", transform=ax.transAxes,
                        fontsize=8, color="gray")
                ax.set_xticks([])
                ax.set_yticks([])
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        handles, labels = [], []
        for ax in axes[i]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        if handles:
            axes[i, -1].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                               frameon=False)
    fig.tight_layout()
    return _png(fig)


# --------------------------------------------------------------------------------------------- markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")


def _md(text: str) -> str:
    """A data string that renders as itself in markdown (GitHub's included): <, > and & as HTML entities, and the
    characters of links, images, emphasis, code, tables, strikethrough and math backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _header(header: str | None, kind: str, metric: str) -> str:
    if header is not None:
        return header
    return f"{metric} (mean ± 95% CI)" if kind == "score" else f"{metric} (mean ± std)"


def _md_table(rows: list[dict[str, Any]], columns, metric: str) -> list[str]:
    headers = [_header(h, kind, metric) for _, h, kind in columns]
    out = ["| " + " | ".join(_md(h) for h in headers) + " |",
           "|" + "|".join("---" if kind in ("text", "canonical", "method", "partition", "digest", "flag") else "---:"
                          for _, _, kind in columns) + "|"]
    for row in rows:
        out.append("| " + " | ".join(_md(_cell(row, key, kind)) for key, _, kind in columns) + " |")
    return out


def _markdown(page: "Page") -> str:
    out = [f"# fednlp-bench leaderboard: {_md(page.title)}", "", _md(page.intro), ""]
    if page.nav:
        out += ["Other boards: " + " · ".join(f"[{_md(label)}]({href}README.md)" for label, href in page.nav), ""]
    out += ["Generated by `fednlp-bench leaderboard build`; do not edit by hand.", ""]
    if page.setup:
        out += ["## What this profile is", ""]
        out += _md_table(page.setup, SETUP_COLUMNS, "")
        out += ["", f"_{SETUP_NOTE}_", ""]
    out += [f"_{page.legend}_", ""]
    n_rows = sum(len(rows) for _, tasks in page.groups for _, rows in tasks)
    out += [f"{n_rows} leaderboard rows from {page.n_runs} runs. Interactive page: [index.html](index.html).", ""]
    if page.ratio_png:
        out += [f"![federated / centralized ratio per task and method]({PLOTS_DIR}/{page.ratio_png})", ""]
    if not page.groups:
        out += ["No results yet.", ""]
    for family, tasks in page.groups:
        out += [f"## {_md(_family_title(family))}", ""]
        for task, rows in tasks:
            metric = _metric_name(rows)
            out += [f"### {_md(task)}", ""]
            out += _md_table(rows, COLUMNS, metric)
            out.append("")
            for name in page.per_task.get(task, []):
                what = PLOT_TITLES[name.split("-", 1)[0]]
                out += [f"![{_md(task)}: {what}]({PLOTS_DIR}/{name})", ""]
    if page.trust:
        out += ["## Trustworthy FL", "", f"_{TRUST_LEGEND}_", ""]
        if page.trust_png:
            out += [f"![fairness and privacy per task and method]({PLOTS_DIR}/{page.trust_png})", ""]
        for task, metric, rows in page.trust:
            out += [f"### {_md(task)}: fairness and privacy", ""]
            out += _md_table(rows, TRUST_COLUMNS, metric)
            out.append("")
    if page.robust:
        out += ["## Robustness to attacking clients", "", f"_{ROBUST_LEGEND}_", ""]
        for title, metric, columns, rows in page.robust:
            out += [f"### {_md(title)}: {_md(metric)}", ""]
            out += _md_table(rows, columns, metric)
            out.append("")
    if page.provenance:
        out += ["## Provenance", "", "_Who submitted each row, under which profile label, on which partition "
                "(digest of the client split; canonical ✓ when it matches a recipe in partition/)._", ""]
        out += _md_table(page.provenance, PROVENANCE_COLUMNS, "")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# ------------------------------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;max-width:1400px;
padding:0 1rem;color:#1b1f24;background:#fff}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:2px solid #d0d7de;padding-bottom:.2rem}h3{margin-top:1.4rem}
p.legend{color:#57606a;font-size:.9rem;max-width:70rem}
div.scroll{overflow-x:auto;margin:.4rem 0 1rem}
table.board{border-collapse:collapse;font-size:.85rem}
table.board th,table.board td{border:1px solid #d0d7de;padding:.3rem .55rem;text-align:left;vertical-align:top;
white-space:nowrap}
table.board td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.board thead th{background:#f0f3f6;cursor:pointer;user-select:none;white-space:nowrap}
table.board thead th:hover{background:#e2e8ee}
table.board thead th::after{content:" \\2195";color:#8c959f}
table.board thead th[aria-sort=ascending]::after{content:" \\25B2";color:#1b1f24}
table.board thead th[aria-sort=descending]::after{content:" \\25BC";color:#1b1f24}
table.board tbody tr:nth-child(even){background:#f6f8fa}
table.setup{border-collapse:collapse;font-size:.8rem}
table.setup th,table.setup td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
table.setup th{background:#f0f3f6}
td.canonical-no{color:#b35900}
figure{margin:.5rem 0 1.5rem}figure img{max-width:100%;height:auto;border:1px solid #d0d7de}
figcaption{font-size:.8rem;color:#57606a}
""".strip()

_JS = """
(function () {
  "use strict";
  function value(row, col) {
    var cell = row.cells[col];
    if (!cell) { return ""; }
    var v = cell.getAttribute("data-sort");
    return v === null ? cell.textContent.trim() : v;
  }
  function compare(a, b) {
    var na = a === "" ? NaN : Number(a), nb = b === "" ? NaN : Number(b);
    var ia = isFinite(na), ib = isFinite(nb);
    if (ia && ib) { return na - nb; }
    if (ia !== ib) { return ia ? -1 : 1; }
    return a < b ? -1 : (a > b ? 1 : 0);
  }
  function sortBy(table, th) {
    var col = th.cellIndex;
    var descending = th.getAttribute("aria-sort") === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return {row: row, key: value(row, col), i: i};
    });
    rows.sort(function (x, y) {
      if ((x.key === "") !== (y.key === "")) { return x.key === "" ? 1 : -1; }
      var c = compare(x.key, y.key);
      if (descending) { c = -c; }
      return c !== 0 ? c : x.i - y.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.board"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th); }
      });
    });
  });
}());
""".strip()


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_table(rows: list[dict[str, Any]], columns, metric: str, sortable: bool = True) -> list[str]:
    out = ['<div class="scroll"><table class="board">' if sortable else '<div class="scroll"><table class="setup">']
    headers = [_header(h, kind, metric) for _, h, kind in columns]
    out.append("<thead><tr>" + "".join(f'<th scope="col" tabindex="0">{_e(h)}</th>' for h in headers)
               + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        cells = []
        for key, _, kind in columns:
            classes = "num" if kind not in ("text", "canonical", "method", "partition", "digest", "flag") else ""
            if kind == "canonical" and not _truthy(row.get(key)):
                classes = "canonical-no"
            cls = f' class="{classes}"' if classes else ""
            cells.append(f'<td{cls} data-sort="{_e(_sort_value(row, key, kind))}">'
                         f"{_e(_cell(row, key, kind))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody>")
    out.append("</table></div>")
    return out


def _html(page: "Page") -> str:
    script_hash = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    csp = (f"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; "
           "base-uri 'none'; form-action 'none'")
    n_rows = sum(len(rows) for _, tasks in page.groups for _, rows in tasks)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>fednlp-bench leaderboard: {_e(page.title)}</title>", f"<style>\n{_CSS}\n</style>", "</head>",
           "<body>", f"<h1>fednlp-bench leaderboard: {_e(page.title)}</h1>", f"<p>{_e(page.intro)}</p>"]
    if page.nav:
        out.append("<p>Other boards: " + " · ".join(f'<a href="{_e(href)}index.html">{_e(label)}</a>'
                                                    for label, href in page.nav) + "</p>")
    if page.setup:
        out.append('<h2 id="profile">What this profile is</h2>')
        out += _html_table(page.setup, SETUP_COLUMNS, "", sortable=False)
        out.append(f'<p class="legend">{_e(SETUP_NOTE)}</p>')
    out += [f'<p class="legend">{_e(page.legend)} Click a column header to sort; click again to reverse.</p>',
            f"<p>{n_rows} leaderboard rows from {page.n_runs} runs.</p>"]
    if page.ratio_png:
        out.append(_figure_html(f"{PLOTS_DIR}/{page.ratio_png}", "federated / centralized ratio per task and method"))
    if not page.groups:
        out.append("<p>No results yet.</p>")
    for family, tasks in page.groups:
        out.append(f"<h2>{_e(_family_title(family))}</h2>")
        for task, rows in tasks:
            metric = _metric_name(rows)
            out.append(f"<h3>{_e(task)}</h3>")
            out += _html_table(rows, COLUMNS, metric)
            for name in page.per_task.get(task, []):
                what = PLOT_TITLES[name.split("-", 1)[0]]
                out.append(_figure_html(f"{PLOTS_DIR}/{name}", f"{task}: {what}"))
    if page.trust:
        out.append('<h2 id="trustworthy-fl">Trustworthy FL</h2>')
        out.append(f'<p class="legend">{_e(TRUST_LEGEND)}</p>')
        if page.trust_png:
            out.append(_figure_html(f"{PLOTS_DIR}/{page.trust_png}", "fairness and privacy per task and method"))
        for task, metric, rows in page.trust:
            out.append(f"<h3>{_e(task)}: fairness and privacy</h3>")
            out += _html_table(rows, TRUST_COLUMNS, metric)
    if page.robust:
        out.append('<h2 id="robustness">Robustness to attacking clients</h2>')
        out.append(f'<p class="legend">{_e(ROBUST_LEGEND)}</p>')
        for title, metric, columns, rows in page.robust:
            out.append(f"<h3>{_e(title)}: {_e(metric)}</h3>")
            out += _html_table(rows, columns, metric, sortable=False)
    if page.provenance:
        out.append('<h2 id="provenance">Provenance</h2>')
        out.append('<p class="legend">Who submitted each row, under which profile label, on which partition '
                   "(digest of the client split; canonical ✓ when it matches a recipe in partition/).</p>")
        out += _html_table(page.provenance, PROVENANCE_COLUMNS, "")
    out += [f"<script>{_JS}</script>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def _figure_html(src: str, caption: str) -> str:
    return (f'<figure><img src="{_e(src)}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


# ------------------------------------------------------------------------------------------------ files

def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


PAGES = ("", "smoke", "full")  # "" = the default page (standard profile and any other label); then sub-folders
PAGE_TITLES = {"": "standard profile", "smoke": "smoke profile (pipeline checks)", "full": "full profile"}
PAGE_INTROS = {
    "": ("The benchmark's numbers: every official row is the standard profile, trained until it plateaus on 2 CPU "
         "cores over 3 seeds, and compared with a centralized reference trained to convergence (early stopping on "
         "a held-out validation split). Rows of other profile labels (community submissions) appear here too."),
    "smoke": ("Pipeline checks, not benchmark numbers: the smoke profile runs a few rounds on data subsets so that "
              "every task family and algorithm is exercised in minutes. Its centralized reference has the FL run's "
              "budget, not convergence, so federated rows can beat it; do not quote these rows as results."),
    "full": ("FedNLP's settings (pretrained base models, hundreds of rounds), for GPUs."),
}
SETUP_NOTE = ("runs, wall time: the task's runs on this page and the sum of the wall times each run measured "
              "(training and evaluation, as recorded in its result), on the device and with the torch threads shown; "
              "a run measured beside another job on the same cores took longer than it would alone.")
SETUP_COLUMNS = (
    ("task", "task", "text"),
    ("model", "model", "text"),
    ("data", "train / validation / test", "text"),
    ("clients", "clients (per round)", "text"),
    ("rounds", "rounds × local epochs, batch", "text"),
    ("training", "client optimizer per algorithm", "text"),
    ("seeds", "seeds", "text"),
    ("reference", "centralized reference", "text"),
    ("compute", "runs, wall time", "text"),
    ("profile", "profile label", "text"),
)


def page_of(profile: str) -> str:
    """The board page of a profile label: "smoke" or "full" when the label names that profile, else "" (default)."""
    name = _text(profile).split(":", 1)[0].strip().lower()
    return name if name in PAGES[1:] else ""


@dataclass
class Page:
    """One board page (a profile): what it says and the rows, plots and tables it holds."""

    key: str
    title: str
    intro: str
    nav: list[tuple[str, str]]
    groups: list
    per_task: dict[str, list[str]]
    ratio_png: str | None
    n_runs: int
    legend: str
    trust: list
    trust_png: str | None
    setup: list[dict[str, Any]]
    provenance: list[dict[str, Any]]
    robust: list = field(default_factory=list)


def _g(value: Any) -> str:
    x = _num(value)
    return _text(value) if math.isnan(x) else f"{x:g}"


def _optimizer(cfg: dict[str, Any], algorithm: str) -> str:
    """'adamw 0.002', with FedProx's mu and FedOpt's server optimizer."""
    text = f"{_text(cfg.get('client_optimizer'))} {_g(cfg.get('client_lr'))}".strip()
    if algorithm == "fedprox" and _num(cfg.get("mu")) > 0:
        text += f", mu {_g(cfg.get('mu'))}"
    if algorithm == "fedopt":
        server = f"server {_text(cfg.get('server_optimizer'))} lr {_g(cfg.get('server_lr'))}"
        if _num(cfg.get("server_momentum")) > 0:
            server += f" momentum {_g(cfg.get('server_momentum'))}"
        text += f" + {server}"
    return text


def _span(values: Iterable[Any]) -> str:
    """Distinct values as 'a' or 'a–b' (numbers) or 'a / b' (text)."""
    vals = sorted({v for v in values if not _is_missing(v)}, key=str)
    nums = [_num(v) for v in vals]
    if not vals:
        return NA
    if all(not math.isnan(x) for x in nums):
        lo, hi = min(nums), max(nums)
        return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"
    return " / ".join(_text(v) for v in vals)


def _compute(runs: list[dict[str, Any]]) -> str:
    """'19 runs, 1.25 h (cpu, 1–2 threads)': how many runs, the sum of their measured wall times, and where."""
    times = [r["wall_time_s"] for r in runs if not math.isnan(r["wall_time_s"])]
    if not times:
        return NA
    where = _span(r["device"] for r in runs)
    threads = _span(r["threads"] for r in runs)
    parts = [where if where != NA else "", f"{threads} thread{'' if threads == '1' else 's'}" if threads != NA else ""]
    detail = ", ".join(x for x in parts if x)
    return f"{len(runs)} runs, {sum(times) / 3600:.2f} h" + (f" ({detail})" if detail else "")


def _setup_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each (task, model, profile label) of a page ran: data sizes, clients, rounds, optimizers, seeds, and
    how its centralized reference was trained; read from the run records themselves."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[(run["task"], run["model"], run["profile"])].append(run)
    out = []
    for (task, model, profile), members in sorted(groups.items()):
        fed = [r for r in members if r["kind"] != "centralized"]
        cen = [r for r in members if r["kind"] == "centralized"]
        base = [r for r in fed if _text(r["config"].get("algorithm")) == "fedavg"] or fed
        training: dict[str, set[str]] = defaultdict(set)
        for r in sorted(fed, key=lambda r: r["method"]):
            if "+" in r["method"]:  # a trustworthy-FL variant: its name carries what differs
                continue
            training[r["method"]].add(_optimizer(r["config"], _text(r["config"].get("algorithm"))))
        for r in cen:
            training[r["method"]].add(_optimizer(r["config"], "centralized")
                                      + (f", batch {_g(r['config'].get('batch_size'))}" if r["config"].get("batch_size")
                                         else ""))
        val = _span(r["num_validation"] for r in cen)
        data = f"{_span(r['num_train'] for r in fed or cen)} / {val if val != NA else '—'} / " \
               f"{_span(r['num_test'] for r in members)}"
        reference = []
        for r in cen:
            es = r["early_stopping"]
            if es:
                reference.append(f"early stopping: up to {_g(es.get('max_epochs'))} epochs, patience "
                                 f"{_g(es.get('patience'))}; best epoch {{}}")
            else:
                reference.append(f"same budget: {_g(r['config'].get('epochs'))} passes")
        best = _span(r["early_stopping"].get("best_epoch") for r in cen if r["early_stopping"])
        ref_text = " / ".join(sorted({t.format(best) for t in reference})) or NA
        out.append({
            "task": task, "model": model, "profile": profile, "data": data, "compute": _compute(members),
            "clients": f"{_span(r['config'].get('clients') for r in base)} "
                       f"({_span(r['config'].get('clients_per_round') for r in base)})" if base else NA,
            "rounds": f"{_span(r['config'].get('rounds') for r in base)} × "
                      f"{_span(r['config'].get('local_epochs') for r in base)}, "
                      f"{_span(r['config'].get('batch_size') for r in base)}" if base else NA,
            "training": "; ".join(f"{m}: {' / '.join(sorted(v))}" for m, v in sorted(training.items())) or NA,
            "seeds": ", ".join(str(int(x)) for x in sorted({r["seed"] for r in members if not math.isnan(r["seed"])})),
            "reference": ref_text,
        })
    return out


def _write_page(page: Page, folder: Path, pngs: dict[str, bytes]) -> list[Path]:
    plots_dir = folder / PLOTS_DIR
    plots_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in sorted(pngs):
        _atomic_write(plots_dir / name, pngs[name])
        written.append(plots_dir / name)
    for stale in sorted(plots_dir.iterdir()):
        if stale.is_file() and _PLOT_NAME.match(stale.name) and stale.name not in pngs:
            stale.unlink()
    _atomic_write(folder / "README.md", _markdown(page).encode("utf-8"))
    _atomic_write(folder / "index.html", _html(page).encode("utf-8"))
    return written + [folder / "README.md", folder / "index.html"]


def build_board(df: pd.DataFrame, records: list[dict[str, Any]], out_folder) -> list[Path]:
    """Write one page per profile (README.md, index.html and plots/*.png: the default page in out_folder, the
    smoke and full pages in its smoke/ and full/ sub-folders); returns the written paths.

    df: the aggregated table (aggregate.aggregate); records: the run records (bare run JSONs or submission
    wrappers) behind it, used for the profile description, metric-vs-alpha plots and learning curves. Plots
    left over from an earlier build that this build does not produce are removed, and so is a sub-folder page
    whose profile no longer has rows.
    """
    out = Path(out_folder)
    all_rows = _rows(df)
    all_runs = _runs(records)
    keys = [k for k in PAGES if k == "" or any(page_of(_text(r.get("profile"))) == k for r in all_rows)]
    written: list[Path] = []
    for key in keys:
        rows = [r for r in all_rows if page_of(_text(r.get("profile"))) == key]
        runs = [r for r in all_runs if page_of(r["profile"]) == key]
        pngs, per_task, ratio_png = _plots(rows, runs)
        trust = _trust_groups(rows)
        trust_png = _trust_plot(trust)
        if trust_png is not None:
            pngs[TRUST_PNG] = trust_png
        legend = LEGEND + (LOWER_LEGEND if any(not _higher(_text(r.get("metric"))) for r in rows) else "")
        up = "../" if key else ""
        nav = [(PAGE_TITLES[k], f"{up}{k}/" if k else up) for k in keys if k != key]
        provenance = sorted(({k: r.get(k) for k, _, _ in PROVENANCE_COLUMNS} for r in rows),
                            key=lambda r: json.dumps(r, sort_keys=True, default=str))
        page = Page(key, PAGE_TITLES[key], PAGE_INTROS[key], nav, _grouped(rows), per_task, ratio_png, len(runs),
                    legend, trust, TRUST_PNG if trust_png is not None else None, _setup_rows(runs), provenance,
                    _robust_groups(rows))
        written += _write_page(page, out / key if key else out, pngs)
    for key in PAGES[1:]:
        if key not in keys and (out / key).is_dir():  # a profile page without rows any more
            for name in ("README.md", "index.html"):
                if (out / key / name).is_file():
                    (out / key / name).unlink()
            plots = out / key / PLOTS_DIR
            for stale in sorted(plots.glob("*.png")) if plots.is_dir() else []:
                if _PLOT_NAME.match(stale.name):
                    stale.unlink()
    return written
