"""The benchmarks still run (tiny settings, nothing written to RESULTS.md) and their section writer is sound."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

from _report import markdown_table, write_section  # noqa: E402


def run_bench(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args, "--no-write"], cwd=BENCH.parent, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_write_section_replaces_its_own_section_only(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## A (2026-01-01)\n\nold a\n\n## B (2026-01-01)\n\nold b\n")
    write_section("A", "new a", path)
    text = path.read_text()
    assert "old a" not in text and "new a" in text and "old b" in text
    assert text.index("new a") < text.index("## B")  # replaced in place, order kept
    write_section("C", "new c", path)
    assert path.read_text().rstrip().endswith("new c")
    assert path.read_text().count("## A (") == 1


def test_markdown_table_has_a_header_and_one_row_per_record():
    import pandas as pd

    table = markdown_table(pd.DataFrame([{"x": 1.23456, "name": "a"}, {"x": 2.0, "name": "b"}]))
    lines = table.splitlines()
    assert len(lines) == 4 and "1.235" in table


def test_overhead_benchmark_reports_a_ratio():
    out = run_bench("benchmarks/fl_overhead.py", "--rounds", "2", "--repeats", "1", "--clients", "4", "--per-round", "2")
    ratio = float(re.findall(r"\|\s*([0-9.]+)\s*\|\s*$", out, re.M)[-1])
    assert 0.5 < ratio < 3.0, out


def test_memory_benchmark_reports_peak_rss_of_both_runs():
    out = run_bench("benchmarks/memory_clients.py", "--clients", "2", "50", "--per-round", "2", "--rounds", "1",
                    "--train", "300", "--test", "60")
    ratio = float(re.search(r"ratio ([0-9.]+)", out).group(1))
    assert 0.5 < ratio < 2.0, out
    assert re.search(r"^\|\s*50\s*\|", out, re.M), out


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo is exercised on Linux CI")
def test_distributed_benchmark_finds_identical_weights():
    out = run_bench("benchmarks/distributed_speed.py", "--rounds", "2", "--clients", "4", "--per-round", "2")
    row = next(line for line in out.splitlines() if line.startswith("| torchrun"))
    assert row.split("|")[7].strip() == "0", out  # max abs diff vs the 1-thread in-process run


def test_dp_sgd_benchmark_reports_step_ratios():
    out = run_bench("benchmarks/dp_sgd_speed.py", "--models", "tiny", "--batch-size", "8", "--repeats", "1",
                    "--threads", "1")
    row = next(line for line in out.splitlines() if line.startswith("| tiny"))
    vectorised, naive = (float(x) for x in row.strip(" |").split("|")[-2:])
    assert 0 < vectorised < naive, out  # the vectorised DP step beats the per-example loop


def test_tuning_cost_benchmark_reports_upload_ratios():
    out = run_bench("benchmarks/peft_cost.py", "--model", "tiny", "--methods", "full", "lora r8", "bitfit",
                    "--rounds", "1", "--train", "120")
    rows = {line.split("|")[1].strip(): line.split("|") for line in out.splitlines() if line.startswith("| ")}
    ratio = {name: float(cells[-2]) for name, cells in rows.items() if name in ("full", "lora r8", "bitfit")}
    assert ratio["full"] == 1.0 and ratio["lora r8"] > 10 and ratio["bitfit"] > ratio["lora r8"], out
