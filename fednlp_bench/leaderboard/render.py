"""The leaderboard board: README.md (markdown tables), index.html (one static page) and PNG plots.

`build_board(df, records, out_folder)` renders the aggregated table (one row per task, model, profile,
partition and method; see aggregate.py for the columns) and the run records behind it. Output is
byte-identical across rebuilds from the same input: rows and records are sorted here, floats use fixed
formats, nothing carries a timestamp, and PNGs are saved without the "Software" metadata. Every file is
written to a temp file and renamed into place.

When any run uses a non-default client selection, continual data, differential privacy or the
membership-inference audit, a "Trustworthy FL" section follows the family tables: per task, one row per
partition and method (algorithm x selection x data x DP) with the primary metric, the client p10 and std,
epsilon and the MIA AUC, and one plot (plots/trustworthy.png). Without such runs the board is as before.
Rows are ordered best first by the metric's direction (lower first for perplexity or loss).

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
_PLOT_NAME = re.compile(r"^(ratio|trustworthy|alpha-.+|curves-.+)\.png$")
NA = "—"

# (key, header, kind) of the per-task table; kind picks the cell formatter.
COLUMNS = (
    ("method", "method", "text"),
    ("partition", "partition", "text"),
    ("canonical", "canonical", "canonical"),
    ("mean", None, "score"),  # header names the task's metric
    ("centralized", "centralized", "metric"),
    ("ratio", "ratio", "ratio"),
    ("gap", "gap", "metric"),
    ("rounds_to_90", "rounds to 90%", "rounds"),
    ("client_p10", "client p10", "metric"),
    ("upload_bytes_per_round", "upload MB/round", "megabytes"),
    ("submitter", "submitter", "text"),
    ("profile", "profile", "text"),
)

LEGEND = ("mean ± std over n seeds of the task's primary metric (fraction in [0, 1]); centralized: the same "
          "model trained on all the data; ratio = federated / centralized; gap = centralized − federated; "
          "rounds to 90%: first round reaching 90% of centralized (mean over seeds); client p10: 10th-percentile "
          "client score; upload MB/round: bytes sent to the server per round (1 MB = 10^6 bytes); canonical ✓: "
          "the partition digest matches a recipe in partition/.")
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
    ("mean", None, "score"),
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
    if kind == "canonical":
        return "1" if _truthy(row.get(key)) else "0"
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
    if kind == "canonical":
        return "✓" if _truthy(value) else "✗"
    if kind == "score":
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
        "metric": _primary(run), "kind": kind, "method": method,
        "partition": part_name if kind != "centralized" else "centralized",
        "label_skew": kind == "federated" and (part_method == "label" or part_name.startswith("niid_label")),
        "alpha": alpha, "final": _final(run),
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


def _alpha_plot(task: str, runs: list[dict[str, Any]], centralized: float) -> bytes | None:
    """Final primary metric vs Dirichlet alpha (label skew), one line per method (and model)."""
    points: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if run["label_skew"] and not math.isnan(run["alpha"]) and run["alpha"] > 0 and not math.isnan(run["final"]):
            points[(run["method"], run["model"])][run["alpha"]].append(run["final"])
    if not points:
        return None
    many_models = len({model for _, model in points}) > 1
    metric = runs[0]["metric"]
    fig = _figure(6.0, 3.6)
    ax = fig.subplots()
    for j, (method, model) in enumerate(sorted(points)):
        alphas = sorted(points[(method, model)])
        ax.plot(alphas, [_mean(points[(method, model)][a]) for a in alphas], marker="o", ms=4, color=f"C{j % 10}",
                label=_label(f"{method} · {model}" if many_models else method))
    if not math.isnan(centralized):
        ax.axhline(centralized, color="black", ls="--", lw=1, label="centralized")
    ax.set_xscale("log")
    ax.set_xlabel("label-skew alpha (smaller = more non-IID)")
    ax.set_ylabel(_label(metric))
    ax.set_title(_label(f"{task}: {metric} vs alpha"), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)


def _curves_plot(task: str, runs: list[dict[str, Any]], centralized: float) -> bytes | None:
    """Primary metric per round (mean over seeds), one line per federated method and partition."""
    lines: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if run["kind"] == "centralized":
            continue
        for rnd, value in run["curve"]:
            if not math.isnan(rnd) and not math.isnan(value):
                lines[(run["method"], run["partition"])][rnd].append(value)
    if not lines and math.isnan(centralized):
        return None
    metric = runs[0]["metric"]
    from matplotlib.ticker import MaxNLocator

    fig = _figure(6.0, 3.6)
    ax = fig.subplots()
    for j, (method, partition) in enumerate(sorted(lines)):
        rounds = sorted(lines[(method, partition)])
        ax.plot(rounds, [_mean(lines[(method, partition)][r]) for r in rounds], marker="o", ms=2, lw=1.2,
                color=f"C{j % 10}", ls=("-", "--", ":", "-.")[(j // 10) % 4], label=_label(f"{method} · {partition}"))
    if not math.isnan(centralized):
        higher = higher_is_better(metric)
        ax.axhline(centralized, color="black", ls="--", lw=1, label="centralized (final)")
        ax.axhline(0.9 * centralized if higher else centralized / 0.9, color="gray", ls=":", lw=1,
                   label="90% of centralized" if higher else "90% of centralized (centralized / 0.9)")
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(_label(metric))
    ax.set_title(_label(f"{task}: learning curves"), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, ncol=2 if len(lines) > 16 else 1)
    return _png(fig)


def _plots(rows: list[dict[str, Any]], runs: list[dict[str, Any]]) -> tuple[dict[str, bytes], dict[str, list[str]], str | None]:
    """({file name: png}, {task: [file names]}, ratio file name or None)."""
    files: dict[str, bytes] = {}
    per_task: dict[str, list[str]] = defaultdict(list)
    ratio = _ratio_plot(rows)
    if ratio is not None:
        files["ratio.png"] = ratio
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_task[run["task"]].append(run)
    central: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        if run["kind"] == "centralized":
            central[run["task"]].append(run["final"])
    for task in sorted(by_task):
        cent = _mean(central.get(task, []))
        for prefix, png in (("alpha", _alpha_plot(task, by_task[task], cent)),
                            ("curves", _curves_plot(task, by_task[task], cent))):
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

def _md(text: str) -> str:
    """A data string safe inside a markdown table cell (HTML-escaped, pipes escaped)."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("`", "\\`")


def _md_table(rows: list[dict[str, Any]], columns, metric: str) -> list[str]:
    headers = [h if h is not None else f"{metric} (mean ± std)" for _, h, _ in columns]
    out = ["| " + " | ".join(_md(h) for h in headers) + " |",
           "|" + "|".join("---" if kind in ("text", "canonical") else "---:" for _, _, kind in columns) + "|"]
    for row in rows:
        out.append("| " + " | ".join(_md(_cell(row, key, kind)) for key, _, kind in columns) + " |")
    return out


def _markdown(groups, per_task: dict[str, list[str]], ratio_png: str | None, n_runs: int, legend: str = LEGEND,
              trust=(), trust_png: str | None = None) -> str:
    out = ["# fednlp-bench leaderboard", "",
           "Federated vs centralized NLP: one table per task, grouped by task family. "
           "Generated by `fednlp-bench leaderboard build`; do not edit by hand.", "",
           f"_{legend}_", ""]
    n_rows = sum(len(rows) for _, tasks in groups for _, rows in tasks)
    out += [f"{n_rows} leaderboard rows from {n_runs} runs. Interactive page: [index.html](index.html).", ""]
    if ratio_png:
        out += [f"![federated / centralized ratio per task and method]({PLOTS_DIR}/{ratio_png})", ""]
    if not groups:
        out += ["No results yet.", ""]
    for family, tasks in groups:
        out += [f"## {_md(_family_title(family))}", ""]
        for task, rows in tasks:
            metric = _metric_name(rows)
            out += [f"### {_md(task)}", ""]
            out += _md_table(rows, COLUMNS, metric)
            out.append("")
            for name in per_task.get(task, []):
                what = "metric vs alpha" if name.startswith("alpha-") else "learning curves"
                out += [f"![{_md(task)}: {what}]({PLOTS_DIR}/{name})", ""]
    if trust:
        out += ["## Trustworthy FL", "", f"_{TRUST_LEGEND}_", ""]
        if trust_png:
            out += [f"![fairness and privacy per task and method]({PLOTS_DIR}/{trust_png})", ""]
        for task, metric, rows in trust:
            out += [f"### {_md(task)}: fairness and privacy", ""]
            out += _md_table(rows, TRUST_COLUMNS, metric)
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


def _html_table(rows: list[dict[str, Any]], columns, metric: str) -> list[str]:
    out = ['<div class="scroll"><table class="board">']
    headers = [h if h is not None else f"{metric} (mean ± std)" for _, h, _ in columns]
    out.append("<thead><tr>" + "".join(f'<th scope="col" tabindex="0">{_e(h)}</th>' for h in headers)
               + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        cells = []
        for key, _, kind in columns:
            classes = "num" if kind not in ("text", "canonical") else ""
            if kind == "canonical" and not _truthy(row.get(key)):
                classes = "canonical-no"
            cls = f' class="{classes}"' if classes else ""
            cells.append(f'<td{cls} data-sort="{_e(_sort_value(row, key, kind))}">'
                         f"{_e(_cell(row, key, kind))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody>")
    out.append("</table></div>")
    return out


def _html(groups, per_task: dict[str, list[str]], ratio_png: str | None, n_runs: int, legend: str = LEGEND,
          trust=(), trust_png: str | None = None) -> str:
    script_hash = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    csp = (f"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; "
           "base-uri 'none'; form-action 'none'")
    n_rows = sum(len(rows) for _, tasks in groups for _, rows in tasks)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>fednlp-bench leaderboard</title>", f"<style>\n{_CSS}\n</style>", "</head>", "<body>",
           "<h1>fednlp-bench leaderboard</h1>",
           f'<p class="legend">{_e(legend)} Click a column header to sort; click again to reverse.</p>',
           f"<p>{n_rows} leaderboard rows from {n_runs} runs.</p>"]
    if ratio_png:
        out.append(_figure_html(f"{PLOTS_DIR}/{ratio_png}", "federated / centralized ratio per task and method"))
    if not groups:
        out.append("<p>No results yet.</p>")
    for family, tasks in groups:
        out.append(f"<h2>{_e(_family_title(family))}</h2>")
        for task, rows in tasks:
            metric = _metric_name(rows)
            out.append(f"<h3>{_e(task)}</h3>")
            out += _html_table(rows, COLUMNS, metric)
            for name in per_task.get(task, []):
                what = "metric vs alpha" if name.startswith("alpha-") else "learning curves"
                out.append(_figure_html(f"{PLOTS_DIR}/{name}", f"{task}: {what}"))
    if trust:
        out.append('<h2 id="trustworthy-fl">Trustworthy FL</h2>')
        out.append(f'<p class="legend">{_e(TRUST_LEGEND)}</p>')
        if trust_png:
            out.append(_figure_html(f"{PLOTS_DIR}/{trust_png}", "fairness and privacy per task and method"))
        for task, metric, rows in trust:
            out.append(f"<h3>{_e(task)}: fairness and privacy</h3>")
            out += _html_table(rows, TRUST_COLUMNS, metric)
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


def build_board(df: pd.DataFrame, records: list[dict[str, Any]], out_folder) -> list[Path]:
    """Write README.md, index.html and plots/*.png under out_folder; returns the written paths.

    df: the aggregated table (aggregate.aggregate); records: the run records (bare run JSONs or submission
    wrappers) behind it, used for metric-vs-alpha plots and learning curves. Plots left over from an earlier
    build that this build does not produce are removed from plots/.
    """
    out = Path(out_folder)
    plots_dir = out / PLOTS_DIR
    plots_dir.mkdir(parents=True, exist_ok=True)
    rows = _rows(df)
    groups = _grouped(rows)
    runs = _runs(records)
    pngs, per_task, ratio_png = _plots(rows, runs)
    trust = _trust_groups(rows)
    trust_png = _trust_plot(trust)
    if trust_png is not None:
        pngs[TRUST_PNG] = trust_png
    legend = LEGEND + (LOWER_LEGEND if any(not _higher(_text(r.get("metric"))) for r in rows) else "")
    written: list[Path] = []
    for name in sorted(pngs):
        _atomic_write(plots_dir / name, pngs[name])
        written.append(plots_dir / name)
    for stale in sorted(plots_dir.iterdir()):
        if stale.is_file() and _PLOT_NAME.match(stale.name) and stale.name not in pngs:
            stale.unlink()
    trust_name = TRUST_PNG if trust_png is not None else None
    _atomic_write(out / "README.md", _markdown(groups, per_task, ratio_png, len(runs), legend, trust,
                                               trust_name).encode("utf-8"))
    _atomic_write(out / "index.html", _html(groups, per_task, ratio_png, len(runs), legend, trust,
                                            trust_name).encode("utf-8"))
    return written + [out / "README.md", out / "index.html"]
