"""The leaderboard board (render.build_board): markdown, one static HTML page, deterministic PNG plots.

The browser tests open index.html in headless Chromium (Debian's `chromium` + `chromium-driver`, driven by
selenium with the system chromedriver, offline). When Chromium is missing and we run as root with apt-get,
the session fixture installs it once; set FEDNLP_NO_APT=1 to forbid that. Without a browser or selenium
the browser tests skip and say why.
"""
from __future__ import annotations

import html
import io
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fednlp_bench.leaderboard.render import build_board

COLUMNS = ["task", "family", "model", "profile", "partition", "partition_digest", "canonical", "method", "algorithm",
           "metric", "n_seeds", "mean", "std", "ci95", "last20", "last20_ci95", "centralized", "reference", "above_reference", "ratio", "gap",
           "rounds_to_90", "client_p10", "client_std", "upload_bytes_per_round", "submitter"]
HOSTILE = "<script>alert(1)</script>"
DIGEST = "ab" * 32


def _row(task, family, metric, method, partition, mean, centralized, rounds_to_90, *, canonical=True,
         submitter="fednlp-bench", n_seeds=2, std=0.01, p10=None, upload=2_000_000, model="tiny"):
    fed = method != "centralized"
    return {"task": task, "family": family, "model": model, "profile": f"{model}, 5 rounds, max_train all",
            "partition": partition, "partition_digest": DIGEST if fed else None, "canonical": canonical,
            "method": method, "algorithm": method if fed else "centralized", "metric": metric, "n_seeds": n_seeds,
            "mean": mean, "std": std, "ci95": 12.706 * std / math.sqrt(2) if n_seeds == 2 else math.nan,
            "last20": mean - 0.0125 if fed else math.nan, "last20_ci95": 0.02 if fed and n_seeds == 2 else math.nan,
            "centralized": centralized, "reference": "converged" if fed else "converged",
            "above_reference": bool(fed and mean > centralized),
            "ratio": mean / centralized if fed else 1.0, "gap": centralized - mean if fed else 0.0,
            "rounds_to_90": rounds_to_90 if fed else math.nan,
            "client_p10": (p10 if p10 is not None else mean - 0.1) if fed else math.nan,
            "client_std": 0.05 if fed else math.nan, "upload_bytes_per_round": upload if fed else math.nan,
            "submitter": submitter}


def board_frame() -> pd.DataFrame:
    rows = [
        # demo (text classification): rows chosen so that sorting by "rounds to 90%" differs from the
        # default order (best mean first) and numeric order differs from string order (9 < 10 < 12.5).
        _row("demo", "text_classification", "accuracy", "fedavg", "uniform", 0.80, 0.85, 12.5),
        _row("demo", "text_classification", "accuracy", "fedprox", "niid_label_clients=10_alpha=0.1", 0.70, 0.85, 9.0),
        _row("demo", "text_classification", "accuracy", "fedavg", "niid_label_clients=10_alpha=1.0", 0.75, 0.85, 10.0),
        _row("demo", "text_classification", "accuracy", HOSTILE, "niid_label_clients=10_alpha=0.1", 0.60, 0.85,
             math.nan, canonical=False, submitter="mallory & <b>co</b>"),
        _row("demo", "text_classification", "accuracy", "centralized", "centralized", 0.85, 0.85, math.nan, n_seeds=1,
             std=0.0),
        # wnut17 (sequence tagging): no centralized baseline
        _row("wnut17", "sequence_tagging", "f1", "fedavg", "uniform", 0.30, math.nan, math.nan),
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def _run(task, family, metric, kind, algorithm, partition, alpha, seed, values):
    fed = kind == "federated"
    return {"schema_version": 1, "kind": kind, "seed": seed,
            "task": {"name": task, "family": family, "model": "tiny", "primary_metric": metric},
            "config": {"task": task, "algorithm": algorithm if fed else "centralized",
                       "partition": partition if fed else None, "alpha": alpha, "seed": seed, "model": "tiny"},
            "partition": ({"name": (f"niid_label_clients=10_alpha={alpha!r}" if partition == "label" else partition),
                           "method": partition, "alpha": alpha} if fed else {}),
            "curve": [{"round": i + 1, "metrics": {metric: v}} for i, v in enumerate(values)],
            "final": {metric: values[-1]}}


def board_records() -> list[dict]:
    recs = []
    for seed in (1, 2):
        d = 0.01 * seed
        recs.append(_run("demo", "text_classification", "accuracy", "federated", "fedavg", "uniform", None, seed,
                         [0.4 + d, 0.7 + d, 0.8 + d]))
        for alpha, top in ((0.1, 0.68), (1.0, 0.75), (100.0, 0.79)):
            recs.append(_run("demo", "text_classification", "accuracy", "federated", "fedavg", "label", alpha, seed,
                             [0.3 + d, top - 0.1 + d, top + d]))
            recs.append(_run("demo", "text_classification", "accuracy", "federated", "fedprox", "label", alpha, seed,
                             [0.3 + d, top - 0.12 + d, top - 0.02 + d]))
        recs.append(_run("wnut17", "sequence_tagging", "f1", "federated", "fedavg", "uniform", None, seed,
                         [0.1 + d, 0.2 + d, 0.3 + d]))
    recs.append(_run("demo", "text_classification", "accuracy", "centralized", None, None, None, 1, [0.8, 0.85]))
    # a submission wrapper with a hostile method name: its label must not break the plots
    hostile = _run("demo", "text_classification", "accuracy", "federated", "fedavg", "label", 0.1, 3, [0.5, 0.6])
    recs.append({"submission": {"submitter": "mallory", "method": HOSTILE + " $x$ _y", "profile": "p"},
                 "result": hostile})
    return recs


@pytest.fixture()
def board(tmp_path) -> Path:
    out = tmp_path / "board"
    build_board(board_frame(), board_records(), out)
    return out


# ------------------------------------------------------------------------------------------- file checks

def test_build_writes_readme_html_and_plots(tmp_path):
    out = tmp_path / "board"
    paths = build_board(board_frame(), board_records(), out)
    names = sorted(p.relative_to(out).as_posix() for p in map(Path, paths))
    assert "README.md" in names and "index.html" in names
    pngs = [n for n in names if n.endswith(".png")]
    assert "plots/ratio.png" in pngs
    assert any(n.startswith("plots/alpha-demo") for n in pngs)  # label-skew runs of demo
    assert not any(n.startswith("plots/alpha-wnut17") for n in pngs)  # wnut17 has no label-skew run
    assert any(n.startswith("plots/curves-demo") for n in pngs) and any(n.startswith("plots/curves-wnut17") for n in pngs)
    for p in paths:
        assert Path(p).is_file() and Path(p).stat().st_size > 0
    for png in pngs:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"Software" not in (out / png).read_bytes()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # no temp files left behind


def test_alpha_plot_has_a_panel_for_the_final_evaluation_and_one_for_the_last_fifth_of_rounds(monkeypatch):
    from fednlp_bench.leaderboard import render

    figures = []
    monkeypatch.setattr(render, "_png", lambda fig: figures.append(fig) or b"png")
    rows = board_frame().to_dict("records")
    demo = [r for r in rows if r["task"] == "demo"]
    assert render._alpha_plot("demo", demo) == b"png"
    titles = [ax.get_title() for ax in figures[-1].axes]
    assert titles == ["demo: final evaluation", "demo: mean of the last 20% of rounds"]
    # the last20 panel plots the window means (0.0125 below the final means here)
    ys = sorted(y for line in figures[-1].axes[1].lines for y in line.get_ydata() if len(line.get_ydata()) > 1)
    assert 0.7875 in [round(y, 6) for y in ys]
    for r in demo:
        r["last20"] = float("nan")  # results without the window: one panel
    render._alpha_plot("demo", demo)
    assert [ax.get_title() for ax in figures[-1].axes] == ["demo: final evaluation"]


def test_rebuild_is_byte_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    paths_a = build_board(board_frame(), board_records(), a)
    # same content, rows and records shuffled: the output must not depend on input order
    df = board_frame().sample(frac=1.0, random_state=3).reset_index(drop=True)
    recs = board_records()[::-1]
    paths_b = build_board(df, recs, b)
    rel_a = [Path(p).relative_to(a) for p in paths_a]
    rel_b = [Path(p).relative_to(b) for p in paths_b]
    assert rel_a == rel_b
    for rel in rel_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), f"{rel} differs between builds"
    # and rebuilding in place changes nothing
    before = {rel: (a / rel).read_bytes() for rel in rel_a}
    build_board(board_frame(), board_records(), a)
    assert {rel: (a / rel).read_bytes() for rel in rel_a} == before


def test_rebuild_removes_stale_plots(tmp_path):
    out = tmp_path / "board"
    build_board(board_frame(), board_records(), out)
    assert list((out / "plots").glob("curves-wnut17*.png"))
    df = board_frame()
    build_board(df[df.task == "demo"], [r for r in board_records() if "wnut17" not in str(r)], out)
    assert not list((out / "plots").glob("curves-wnut17*.png"))
    assert "wnut17" not in (out / "index.html").read_text()


def test_hostile_strings_are_escaped(board):
    page = (board / "index.html").read_text(encoding="utf-8")
    assert HOSTILE not in page
    assert html.escape(HOSTILE) in page
    assert "<b>co</b>" not in page and "mallory &amp; &lt;b&gt;co&lt;/b&gt;" in page
    assert page.count("<script") == 1  # only the page's own script
    readme = (board / "README.md").read_text(encoding="utf-8")
    assert HOSTILE not in readme and html.escape(HOSTILE, quote=False) in readme


def test_html_has_no_external_resources(board):
    page = (board / "index.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page, flags=re.I)
    assert refs, "expected the plots as <img src=...>"
    for ref in refs:
        assert "//" not in ref and ":" not in ref, ref
        assert (board / ref).is_file(), f"{ref} is not a file beside index.html"
    assert not re.search(r"<link\b|@import|url\(", page, flags=re.I)


def test_markdown_one_table_per_task_grouped_by_family(board):
    md = (board / "README.md").read_text(encoding="utf-8")
    assert md.count("## Text classification\n") == 1 and md.count("## Sequence tagging\n") == 1
    assert "## Extractive" not in md and "## Sequence to sequence" not in md  # families absent from the data
    assert md.index("## Text classification") < md.index("### demo") < md.index("## Sequence tagging") \
        < md.index("### wnut17")
    separators = [ln for ln in md.splitlines() if re.fullmatch(r"\|(-{3}:?\|)+", ln)]
    assert len(separators) == 4  # the profile's setup, one table per task (one per family here), provenance
    lines = md.splitlines()
    demo_header = next(ln for ln in lines if ln.startswith("| method"))
    assert "accuracy (mean ± 95% CI)" in demo_header and "rounds to 90%" in demo_header and "| n |" in demo_header
    assert "submitter" not in demo_header and "profile" not in demo_header  # moved to the provenance table
    provenance = md[md.index("## Provenance"):]
    assert "| submitter |" in provenance and "mallory &amp; &lt;b&gt;co&lt;/b&gt;" in provenance
    assert "| 0.8000 ± 0.0898 | 2 |" in md  # fixed float formatting, the 95% interval of 2 seeds
    assert "| last 20% of rounds |" in demo_header and "| 0.7875 ± 0.0200 |" in md  # the plateau window
    central_line = next(ln for ln in lines if ln.startswith("| centralized |"))
    assert "| 1 | — |" in central_line  # no window for the reference (its metric is the best epoch's)
    assert "last 20% of rounds: a second statistic" in md  # explained in the legend
    assert "| 0.6000 ± 0.0898 | 2 |" in md and "not canonical" not in md
    assert "| 0.941 |" in md  # ratio 0.80 / 0.85
    assert "| 2.000 |" in md  # upload MB/round
    assert "](plots/ratio.png)" in md


# ------------------------------------------------------------------------------------------ browser checks

def _chromium_paths() -> tuple[str | None, str | None]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None)
    return browser, driver


def _install_chromium() -> str:
    """Try `apt-get install -y chromium chromium-driver`; returns '' on success or why it failed."""
    if os.environ.get("FEDNLP_NO_APT"):
        return "FEDNLP_NO_APT is set"
    if not shutil.which("apt-get"):
        return "apt-get is not available"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "not root, cannot apt-get install (run: sudo apt-get install -y chromium chromium-driver)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:  # the package lists may be missing or stale
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=600)
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"apt-get failed: {exc}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return f"apt-get install chromium chromium-driver failed: {tail[0]}"
    return ""


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """(chromium binary, chromedriver) -- installed with apt-get once per session when missing."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium, the dev extra)")
    browser, driver = _chromium_paths()
    if not (browser and driver):
        why = _install_chromium()
        browser, driver = _chromium_paths()
        if not (browser and driver):
            pytest.skip(f"headless Chromium is not available: {why or 'chromium or chromedriver not found'}")
    return browser, driver


@pytest.fixture()
def browser(chromium, monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium manager must not download anything
    binary, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1600", "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                "--force-device-scale-factor=1"):
        options.add_argument(arg)
    try:
        drv = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except Exception as exc:  # noqa: BLE001 - any start-up failure means no browser here
        pytest.skip(f"headless Chromium did not start: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def _column(table, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    return [row.find_elements(By.TAG_NAME, "td")[index].text for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]


def test_page_renders_in_headless_chromium(board, browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    browser.get((board / "index.html").as_uri())
    tables = browser.find_elements(By.CSS_SELECTOR, "table.board")
    assert len(tables) == 3  # demo, wnut17, provenance
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.setup")) == 1  # what the profile is
    demo = tables[0]
    assert len(demo.find_elements(By.CSS_SELECTOR, "tbody tr")) == 5
    assert any(HOSTILE in cell for cell in _column(demo, 0))  # shown as text, not run
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    assert browser.execute_script(
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"), "a plot did not load"
    assert browser.execute_script("return document.images.length") >= 4
    # the screenshot is not blank
    from matplotlib import image as mpimg

    shot = mpimg.imread(io.BytesIO(browser.get_screenshot_as_png()), format="png")
    rgb = np.asarray(shot)[..., :3].astype(float)
    non_white = float((rgb.min(axis=-1) < 0.9).mean())
    assert rgb.std() > 0.05 and non_white > 0.01, (rgb.std(), non_white)


def test_click_sorts_a_column(board, browser):
    from selenium.webdriver.common.by import By

    browser.get((board / "index.html").as_uri())
    table = browser.find_elements(By.CSS_SELECTOR, "table.board")[0]
    headers = [th.text.replace("↕", "").strip() for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    col = headers.index("rounds to 90%")
    before = _column(table, col)
    # default order: best mean first; the centralized row has no rounds, the hostile row never reached 90%
    assert before == ["—", "12.5", "10.0", "9.0", "not reached"]

    header = table.find_elements(By.CSS_SELECTOR, "thead th")[col]
    header.click()
    ascending = _column(table, col)
    assert ascending != before
    assert ascending == ["9.0", "10.0", "12.5", "—", "not reached"]  # numeric, not string order; blanks last
    assert header.get_attribute("aria-sort") == "ascending"

    header.click()
    assert _column(table, col) == ["12.5", "10.0", "9.0", "—", "not reached"]
    assert header.get_attribute("aria-sort") == "descending"

    method_col = headers.index("method")
    table.find_elements(By.CSS_SELECTOR, "thead th")[method_col].click()
    methods = _column(table, method_col)
    assert methods == sorted(methods)


# ------------------------------------------------------------------------------------------ one page per profile
def test_one_board_per_profile_each_opening_with_its_profile(tmp_path):
    from leaderboard_factory import DIGEST as CANONICAL, make_record

    from fednlp_bench.leaderboard.aggregate import aggregate

    def sub(rec, profile):
        return {"submission": {"submitter": "fednlp-bench maintainers", "method": None, "profile": profile},
                "result": rec}

    std, smoke = "standard: tiny, 10 clients, 5/round, 3 rounds", "smoke: tiny, 10 clients, 5/round, 3 rounds"
    records = []
    for seed in (1, 2, 3):
        records += [sub(make_record("centralized", seed=seed, final=0.9), std),
                    sub(make_record(seed=seed, final=0.8 + 0.01 * seed), std)]
    records += [sub(make_record("centralized", seed=1, final=0.6, converged=False), smoke),
                sub(make_record(seed=1, final=0.7, curve=[0.5, 0.6, 0.7]), smoke)]
    for r in records:
        r["submission"]["method"] = "centralized" if r["result"]["kind"] == "centralized" else "fedavg"
        if r["result"]["config"].get("max_epochs") is None and r["result"]["kind"] == "centralized":
            r["submission"]["method"] = "centralized (same budget)"
    out = tmp_path / "board"
    paths = build_board(aggregate(records, canonical={CANONICAL}), records, out)
    names = {str(Path(p).relative_to(out)) for p in paths}
    assert {"README.md", "index.html", "smoke/README.md", "smoke/index.html"} <= names
    main_md, smoke_md = (out / "README.md").read_text(), (out / "smoke" / "README.md").read_text()
    assert main_md.startswith("# fednlp-bench leaderboard: standard profile")
    assert smoke_md.startswith("# fednlp-bench leaderboard: smoke profile (pipeline checks)")
    assert "pipeline checks, not benchmark numbers" in smoke_md.lower()
    assert "centralized (same budget)" in smoke_md and "centralized (same budget)" not in main_md
    assert "[smoke profile (pipeline checks)](smoke/README.md)" in main_md and "](../README.md)" in smoke_md
    # each page opens with what its profile is, read from the runs: sizes, clients, rounds, seeds, the reference
    setup = main_md[main_md.index("## What this profile is"):main_md.index("## Text classification")]
    assert "| 564 / 56 / 141 | 10 (5) | 3 × 1, 32 |" in setup and "| 1, 2, 3 |" in setup
    assert "early stopping: up to 3 epochs, patience 2" in setup
    assert "same budget: 3 passes" in smoke_md[:smoke_md.index("## Text classification")]
    # how much compute the profile's runs took: their count and the sum of their measured wall times
    assert "| 6 runs, 0.01 h" in setup and "sum of the wall times each run measured" in setup
    assert "| 2 runs, 0.00 h" in smoke_md[:smoke_md.index("## Text classification")]
    # the standard row: 3 seeds, its interval and n shown; the smoke one a single seed without an interval
    fed_line = next(ln for ln in main_md.splitlines() if ln.startswith("| fedavg |"))
    assert "| 0.8200 ± 0.0248 | 3 |" in fed_line
    assert "| 0.7000 ± — | 1 |" in smoke_md
