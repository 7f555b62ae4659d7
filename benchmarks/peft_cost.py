"""Cost of each tuning method in FL: upload bytes per client per round, round wall time and peak memory.

Run:  python benchmarks/peft_cost.py [--model minilm] [--rounds 2]
Each method runs the same FedAvg job (SST-2 from ../shared/data when present, else the embedded demo; same
partition, clients, rounds and batches) as `fednlp-bench run` in its own process, which reports its peak RSS.
Upload bytes are what one client sends per round (the trainable parameters, float32). Target: full / LoRA
upload >= 50x. Prints a table and writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import machine, markdown_table, publish  # noqa: E402
from _tasks import bench_config  # noqa: E402
from memory_clients import child  # noqa: E402 - runs the CLI in this process and prints its peak RSS

METHODS = {"full": [], "lora r8": ["--peft", "lora"], "ia3": ["--peft", "ia3"], "prompt 20": ["--peft", "prompt"],
           "bitfit": ["--peft", "bitfit"], "freeze e,0-2": ["--freeze", "e,0-2"], "freeze e,0": ["--freeze", "e,0"]}
DEFAULT_METHODS = ["full", "lora r8", "ia3", "prompt 20", "bitfit", "freeze e,0-2"]  # MiniLM has 6 layers


def measure(name: str, flags: list[str], base: list[str], rounds: int, out: Path) -> dict:
    folder = out / name.replace(" ", "_").replace(",", "_")
    cmd = [sys.executable, __file__, "--child", "--", "run", *base, *flags, "--output", str(folder)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    info = json.loads(lines[-1]) if proc.returncode == 0 and lines else {"code": proc.returncode}
    if info["code"] != 0:
        why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {info['code']}"
        raise SystemExit(f"{name} failed: {why}")
    rec = json.loads(next(folder.glob("*.json")).read_text())
    tuning = rec.get("tuning") or {"trainable_parameters": rec["num_parameters"], "total_parameters": rec["num_parameters"]}
    return {"method": name, "trainable params": tuning["trainable_parameters"],
            "share trained": tuning["trainable_parameters"] / tuning["total_parameters"],
            "upload MB/client/round": rec["upload_bytes_per_client_per_round"] / 1e6,
            "round wall s": rec["wall_time_s"] / rounds, "peak RSS MiB": info["maxrss_kb"] / 1024,
            rec["task"]["primary_metric"]: rec["final"][rec["task"]["primary_metric"]]}


def main() -> None:
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--") + 1:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=list(METHODS))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--train", type=int, default=400)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cfg, source = bench_config(args.model)
    base = ["--task", cfg.task, "--model", args.model, "--max-train", str(args.train), "--max-test", "200",
            "--clients", "10", "--clients-per-round", "2", "--rounds", str(args.rounds), "--eval-every",
            str(args.rounds), "--batch-size", "16", "--max-length", "64", "--client-optimizer", "adamw",
            "--client-lr", "2e-3" if args.model == "tiny" else "1e-4", "--seed", "1", "--no-progress"]
    if cfg.data_dir:
        base += ["--data-dir", cfg.data_dir]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(m, METHODS[m], base, args.rounds, Path(tmp)) for m in args.methods]
    df = pd.DataFrame(rows)
    full = df.set_index("method")["upload MB/client/round"].get("full")
    if full is not None:
        df["upload full / method"] = full / df["upload MB/client/round"]
    table = markdown_table(df)
    lora = df.set_index("method")["upload full / method"].get("lora r8") if full is not None else None
    header = (f"Tuning methods in FedAvg on {args.model}, {source}: {args.train} training examples, 10 clients, 2 a "
              f"round, {args.rounds} rounds, batch 16, max length 64, one process per method"
              + (f"; full / LoRA upload {lora:.0f}x (target >= 50x)" if lora is not None else "")
              + f". The metric after {args.rounds} rounds is a smoke check, not a comparison. {machine()}.")
    publish("Tuning methods: upload, time and memory", header, table,
            f"python benchmarks/peft_cost.py --model {args.model} --rounds {args.rounds}", not args.no_write)


if __name__ == "__main__":
    main()
