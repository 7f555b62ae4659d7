"""The benchmarks' task: SST-2 from ../shared/data when it is there (real data), else the embedded demo."""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fednlp_bench.cli import quiet_model_loading  # noqa: E402
from fednlp_bench.config import RunConfig  # noqa: E402
from fednlp_bench.runner import prepare  # noqa: E402

SHARED = Path(os.environ.get("FEDNLP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def bench_config(model: str = "tiny", **settings) -> tuple[RunConfig, str]:
    """A run config on SST-2 (real data) when the shared data is there, else on the demo task."""
    sst2 = SHARED / "sst2"
    base = dict(model=model, progress=False, output=str(Path(os.environ.get("TMPDIR", "/tmp")) / "fednlp-bench-runs"))
    if (sst2 / "train.tsv").exists():
        return RunConfig(task="sst2", data_dir=str(sst2), **base, **settings), "sst2 (train.tsv)"
    return RunConfig(task="demo", **base, **settings), "demo (embedded)"


def bench_task(model: str = "tiny", **settings):
    quiet_model_loading()
    cfg, source = bench_config(model, **settings)
    _, task = prepare(cfg)
    return task, source
