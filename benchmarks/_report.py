"""Shared by the benchmarks: markdown tables and one replaceable section per benchmark in RESULTS.md."""
from __future__ import annotations

import platform
import re
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).with_name("RESULTS.md")


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """df.to_markdown when tabulate is installed, else a plain pipe table of the same cells."""
    try:
        return df.to_markdown(index=False, floatfmt=floatfmt)
    except ImportError:
        cells = [[f"{v:{floatfmt}}" if isinstance(v, float) else str(v) for v in row] for row in df.itertuples(index=False)]
        lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])


def machine() -> str:
    """The hardware and software a number was measured on, in one line."""
    try:
        import torch

        torch_part = f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
    except ImportError:
        torch_part = ""
    return f"{platform.processor() or platform.machine()}, {torch_part}Python {platform.python_version()}"


def write_section(title: str, body: str, path: Path = RESULTS) -> None:
    """Replace the section `## <title> (...)` of RESULTS.md (or append it) with today's measurement."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = f"## {title} ({time.strftime('%Y-%m-%d')})\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)} \(.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text, count=1) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text.rstrip() + "\n")


def publish(title: str, header: str, table: str, command: str, write: bool = True, path: Path = RESULTS) -> None:
    """Print a benchmark's header and table; unless `write` is off, make them its section of RESULTS.md."""
    print(header)
    print(table)
    if write:
        write_section(title, f"{header}\n\nCommand: `{command}`\n\n{table}", path)
