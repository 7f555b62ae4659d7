"""Peak memory vs number of clients: the same run with 10 clients and with 10,000 (same clients per round).

Run:  python benchmarks/memory_clients.py
Each configuration runs `fednlp-bench run` in its own process and reports that process's peak RSS. Clients
are index arrays and one working model serves them all, so memory must not grow with the number of clients
(target ratio <= 1.10). The data is the embedded demo generator written to CSV (30,000 train / 12,000 test
examples; 10,000 clients need at least as many examples); content does not matter for memory.
Prints a table and writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import machine, markdown_table, publish  # noqa: E402


def write_data(folder: Path, train: int, test: int) -> tuple[Path, Path]:
    from fednlp_bench.data import demo_dataset

    data = demo_dataset(num_train=train, num_test=test, seed=0)
    paths = []
    for split in ("train", "test"):
        path = folder / f"{split}.csv"
        labels = [data.label_names[y] for y in getattr(data, f"{split}_labels")]
        pd.DataFrame({"text": getattr(data, f"{split}_texts"), "label": labels}).to_csv(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


def child(args: list[str]) -> None:
    """Run the CLI in this process, then print its peak RSS (kB on Linux) as JSON."""
    from fednlp_bench.cli import main

    code = main(args)
    print(json.dumps({"code": code, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def measure(clients: int, per_round: int, rounds: int, train: Path, test: Path, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", "--", "run", "--task", "text_classification", "--train-file", str(train),
           "--test-file", str(test), "--clients", str(clients), "--clients-per-round", str(per_round),
           "--rounds", str(rounds), "--eval-every", str(rounds), "--output", str(out / str(clients)), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    rec = json.loads(next((out / str(clients)).glob("*.json")).read_text())
    return {"clients": clients, "clients/round": per_round, "rounds": rounds,
            "peak RSS MiB": info["maxrss_kb"] / 1024, "train wall s": rec["wall_time_s"],
            "accuracy": rec["final"]["accuracy"]}


def main() -> None:
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--") + 1:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", nargs=2, type=int, default=[10, 10_000])
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--train", type=int, default=30_000)
    ap.add_argument("--test", type=int, default=12_000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train, test = write_data(folder, args.train, args.test)
        rows = [measure(n, args.per_round, args.rounds, train, test, folder) for n in args.clients]
    df = pd.DataFrame(rows)
    ratio = rows[1]["peak RSS MiB"] / rows[0]["peak RSS MiB"]
    table = markdown_table(df)
    header = (f"Peak RSS of `fednlp-bench run` (tiny model, {args.train:,} train / {args.test:,} test examples): "
              f"{args.clients[1]:,} vs {args.clients[0]:,} clients, ratio {ratio:.3f} (target <= 1.10). {machine()}.")
    publish("Memory vs number of clients", header, table, "python benchmarks/memory_clients.py", not args.no_write)


if __name__ == "__main__":
    main()
