"""`fednlp-bench partition create | stats | export | import | verify`: partitions as a tool of their own."""
from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Iterator

import numpy as np

from ..config import check_output_dir
from ..errors import UserError
from .recipe import METHODS, PartitionRecipe, build_partition, load_recipe, load_recipe_data

S = argparse.SUPPRESS
DEFAULT_RECIPES = Path(__file__).resolve().parents[2] / "partition"


def add_recipe_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("recipe")
    g.add_argument("--recipe", default=S, help="recipe YAML (flags given here win)")
    g.add_argument("--task", default=S, help="task whose data is partitioned (default demo)")
    g.add_argument("--data-dir", default=S, help="local copy of the task's files")
    g.add_argument("--method", choices=METHODS, default=S, help="partition method (default uniform)")
    g.add_argument("--clients", type=int, default=S, help="number of clients (natural: keep the C largest ids)")
    g.add_argument("--alpha", type=float, default=S, help="Dirichlet alpha for label and cluster skew")
    g.add_argument("--beta", type=float, default=S, help="Dirichlet beta for quantity skew")
    g.add_argument("--seed", type=int, default=S, help="seed (default 42)")
    g.add_argument("--k", type=int, default=S, help="cluster skew: K-means clusters (default 10)")
    g.add_argument("--embed-model", default=S, help="cluster skew: 'minilm' or a model folder (default TF-IDF + SVD)")
    g.add_argument("--merge-small", action="store_true", default=S, help="natural: pool ids beyond the C largest")
    g.add_argument("--max-train", type=int, default=S, help="seeded subset of the training split")
    g.add_argument("--max-test", type=int, default=S, help="seeded subset of the test split")


def add_partition_parser(sub) -> None:
    p = sub.add_parser("partition", help="create, inspect, export, import and verify client partitions",
                       description="Client partitions as a tool of their own: use them in any FL framework.")
    psub = p.add_subparsers(dest="partition_command", required=True, metavar="ACTION")
    from .export import FORMATS

    c = psub.add_parser("create", help="build a partition and export it with a manifest")
    add_recipe_args(c)
    c.add_argument("--format", choices=FORMATS, default="index-json", help="export format (default index-json)")
    c.add_argument("--output", required=True, help="export folder")
    c.add_argument("--overwrite", action="store_true", help="replace a non-empty export folder")

    s = psub.add_parser("stats", help="client sizes, label histograms, JSD, missing labels; table and PNGs")
    add_recipe_args(s)
    s.add_argument("--from", dest="source", default=S, help="an export folder or partition_index.h5 instead of a recipe")
    s.add_argument("--partition-method", default=S, help="FedNLP method name inside a partition_index.h5")
    s.add_argument("--output", required=True, help="folder for stats.json and the PNGs")

    e = psub.add_parser("export", help="convert an exported or FedNLP partition to another format")
    e.add_argument("--from", dest="source", required=True, help="export folder or partition_index.h5")
    e.add_argument("--partition-method", default=None, help="FedNLP method name inside a partition_index.h5")
    e.add_argument("--format", choices=FORMATS, required=True)
    e.add_argument("--output", required=True)
    e.add_argument("--overwrite", action="store_true")
    add_recipe_args(e)

    i = psub.add_parser("import", help="read an export or FedNLP partition_index.h5, check it, print its digest")
    i.add_argument("path", help="export folder or partition_index.h5")
    i.add_argument("--partition-method", default=None, help="FedNLP method name (alpha=1 and alpha=1.0 both match)")
    i.add_argument("--num-train", type=int, default=None, help="train size, to undo FedNLP's test-id offset")
    i.add_argument("--output", default=None, help="also write it as an index-json export here")
    i.add_argument("--overwrite", action="store_true")

    v = psub.add_parser("verify", help="rebuild the canonical partitions and check their digests")
    v.add_argument("--recipes", default=str(DEFAULT_RECIPES), help="folder of recipe YAMLs (default partition/)")


def recipe_from_args(args: argparse.Namespace) -> PartitionRecipe:
    given = vars(args)
    recipe = load_recipe(given["recipe"]) if "recipe" in given else PartitionRecipe()
    for f in fields(PartitionRecipe):
        if f.name in given:
            setattr(recipe, f.name, given[f.name])
    recipe.validate()
    return recipe


def dataset_info(recipe: PartitionRecipe, data) -> dict:
    return {"name": recipe.task, "fingerprint": data.fingerprint, "num_train": len(data.train_texts),
            "num_test": len(data.test_texts)}


def cmd_create(args) -> int:
    from .export import export_partition

    recipe = recipe_from_args(args)
    _check_target(Path(args.output), args.overwrite)
    data = load_recipe_data(recipe)
    part, _ = build_partition(recipe, data, progress=True)
    with _writing(Path(args.output)):
        folder = export_partition(part, args.output, args.format, data=data, overwrite=args.overwrite,
                                  dataset_info=dataset_info(recipe, data))
    print(f"{part.name}: {part.num_clients} clients, digest {part.digest}\nexported ({args.format}) to {folder}")
    return 0


def _check_target(folder: Path, overwrite: bool) -> None:
    """Refuse a non-empty or unwritable export folder before any work is done (creating nothing)."""
    check_output_dir(str(folder), "--output", "export folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise UserError(f"export folder {folder} exists and is not empty", "pass --overwrite or choose another --output")


@contextmanager
def _writing(folder: Path) -> Iterator[None]:
    """A failed write under `folder` (disk full, permissions changed meanwhile) becomes one error line."""
    try:
        yield
    except OSError as exc:
        raise UserError(f"cannot write to {folder} ({exc.strerror or exc})",
                        "pass --output with a folder you can write to, on a disk with room") from None


def cmd_stats(args) -> int:
    import pandas as pd

    from ..results import atomic_write, remove_stale_temp_files
    from .plots import plot_heatmap, plot_jsd_matrix, plot_sizes
    from .stats import client_label_histograms, jsd_matrix, partition_summary, summary_table

    given = vars(args)
    out = Path(args.output)
    check_output_dir(str(out))
    remove_stale_temp_files(out)
    if "source" in given:
        from .importer import import_partition

        part = import_partition(given["source"], given.get("partition_method"))
        recipe = recipe_from_args(args)
        if "task" not in given:
            raise UserError("stats --from needs the data's task for its labels", "pass --task (and --data-dir)")
        data = load_recipe_data(recipe)
        labels = data.train_labels
    else:
        recipe = recipe_from_args(args)
        data = load_recipe_data(recipe)
        part, skew = build_partition(recipe, data, progress=True)
        labels = skew["train"]
    if max(int(p.max()) if len(p) else -1 for p in part.train) >= len(labels):
        raise UserError("the partition indexes more examples than the task's training split has",
                        "pass the --task (and --max-train) the partition was made on")
    num_labels = int(labels.max()) + 1
    names = data.label_names if num_labels == len(data.label_names) and recipe.method != "cluster" else None
    summary = partition_summary(part.train, labels, num_labels, names)
    hist = client_label_histograms(part.train, labels, num_labels)
    summary.update({"partition_name": part.name, "digest": part.digest})
    with _writing(out):
        out.mkdir(parents=True, exist_ok=True)
        pngs = [plot_heatmap(hist, out / "label_heatmap.png", summary["label_names"]),
                plot_sizes(part.train, out / "client_sizes.png"),
                plot_jsd_matrix(jsd_matrix(hist), out / "jsd_matrix.png")]
        atomic_write(out / "stats.json", (json.dumps(summary, indent=1) + "\n").encode())
    sizes = summary["sizes"]
    head = pd.DataFrame([{"partition": part.name, "clients": part.num_clients, "min size": sizes["min"],
                          "max size": sizes["max"], "mean size": sizes["mean"], "std/mean": sizes["std_over_mean"],
                          "mean pairwise JSD": summary["mean_jsd"]}])
    print(head.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    missing = pd.Series(summary["missing_label_fraction"], name="fraction of clients missing the label")
    print(missing.to_frame().T.to_string(float_format=lambda x: f"{x:.2f}"))
    table = summary_table(summary)
    print(table.head(20).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if len(table) > 20:
        print(f"... {len(table) - 20} more clients in {out / 'stats.json'}")
    print("plots: " + ", ".join(str(p) for p in pngs))
    return 0


def cmd_export(args) -> int:
    from .export import SHARD_FORMATS, export_partition
    from .importer import import_partition

    _check_target(Path(args.output), args.overwrite)
    part = import_partition(args.source, args.partition_method)
    given = vars(args)
    data = info = None
    if args.format in SHARD_FORMATS or "task" in given:
        if "task" not in given:
            raise UserError(f"{args.format} export needs the dataset", "pass --task (and --data-dir) it was made on")
        recipe = recipe_from_args(args)
        data = load_recipe_data(recipe)
        info = dataset_info(recipe, data)
    with _writing(Path(args.output)):
        folder = export_partition(part, args.output, args.format, data=data, overwrite=args.overwrite,
                                  dataset_info=info)
    print(f"{part.name}: digest {part.digest}\nexported ({args.format}) to {folder}")
    return 0


def cmd_import(args) -> int:
    from .export import export_partition
    from .importer import import_partition
    from .stats import size_stats

    if args.output:
        _check_target(Path(args.output), args.overwrite)
    part = import_partition(args.path, args.partition_method, args.num_train)
    st = size_stats(part.train)
    print(f"{part.name}: {part.num_clients} clients, train sizes {st['min']}..{st['max']}, "
          f"{sum(len(p) for p in part.train)} train / {sum(len(p) for p in part.test)} test ids, digest {part.digest}")
    if args.output:
        with _writing(Path(args.output)):
            folder = export_partition(part, args.output, "index-json", overwrite=args.overwrite)
        print(f"written (index-json) to {folder}")
    return 0


def cmd_verify(args) -> int:
    folder = Path(args.recipes)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise UserError(f"no recipe YAMLs in {folder}", "pass --recipes with the canonical partition folder")
    failed = 0
    for path in files:
        recipe = load_recipe(path)
        try:
            data = load_recipe_data(recipe)
        except UserError as exc:
            print(f"SKIP  {path.name}: data not available ({exc})")
            continue
        part, _ = build_partition(recipe, data)
        ok = part.digest == recipe.expected_digest
        failed += not ok
        print(f"{'OK   ' if ok else 'FAIL '} {path.name}: {part.name} digest {part.digest[:16]}"
              + ("" if ok else f" expected {str(recipe.expected_digest)[:16]}"))
    return 1 if failed else 0


def run_partition_command(args) -> int:
    return {"create": cmd_create, "stats": cmd_stats, "export": cmd_export, "import": cmd_import,
            "verify": cmd_verify}[args.partition_command](args)
