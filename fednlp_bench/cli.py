"""Command line: `fednlp-bench run | centralized | compare | check-algorithm | tasks | partition | leaderboard |
reproduce`; bad input is one error line and exit code 2."""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .config import (ALGORITHMS, ATTACKS, BACKENDS, CLIENT_OPTIMIZERS, PARTITIONS, PRECISIONS, PROFILES, SELECTIONS,
                     SERVER_OPTIMIZERS, TAG_SCHEMES, WEIGHTINGS, RunConfig, load_yaml_config)
from .errors import AlgorithmError, DataWarning, UserError, terminal_safe

S = argparse.SUPPRESS


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (problem and fix) with exit code 2, no usage dump."""

    def error(self, message: str):  # type: ignore[override]
        from .errors import terminal_safe

        print(f"{self.prog}: error: {terminal_safe(message)}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


def add_algorithm_arg(g) -> None:
    g.add_argument("--algorithm-arg", dest="algorithm_arg", action="append", default=S, metavar="KEY=VALUE",
                   help="an argument of the algorithm, typed by its Args (repeat for several), e.g. "
                        "--algorithm-arg q=0.5; YAML: algorithm_args: {q: 0.5}")


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("task and data")
    g.add_argument("--task", default=S, help="task name (see `fednlp-bench tasks`) or your own task card file "
                                             "(my_task.yaml, see tasks/README.md); default demo")
    g.add_argument("--data-dir", default=S, help="folder with a local copy of the task's files (else FEDNLP_DATA_DIR/<task>, else the hub)")
    g.add_argument("--train-file", default=S, help="your own training file (csv, tsv, jsonl, json; CoNLL for tagging; SQuAD json for QA)")
    g.add_argument("--test-file", default=S, help="your own test file; without it 20%% of the training file is held out (seeded)")
    g.add_argument("--local-train", default=S, metavar="NAME",
                   help="another training file of the task's local folder than the card's (a file name; needs --data-dir "
                        "or FEDNLP_DATA_DIR), e.g. squad's train-subset.json")
    g.add_argument("--local-test", default=S, metavar="NAME", help="another test file of the task's local folder")
    g.add_argument("--text-column", dest="text_columns", action="append", default=S,
                   help="text column (repeat to join several, e.g. title and description)")
    g.add_argument("--label-column", "--target-column", dest="label_column", default=S,
                   help="label column (classification), tag column (tagging), answers column (QA), target column (seq2seq)")
    g.add_argument("--max-train", type=int, default=S, help="use a seeded subset of this many training examples")
    g.add_argument("--max-test", type=int, default=S, help="use a seeded subset of this many test examples")
    g.add_argument("--model", default=S, help="'tiny' (random init, local tokenizer), 'minilm' (all-MiniLM-L6-v2, extra [minilm]), "
                                              "a Hugging Face name such as distilbert-base-uncased, or a local folder")
    g.add_argument("--max-length", type=int, default=S, help="maximum tokens per example (default: the task's)")
    g.add_argument("--dropout", type=float, default=S, help="override the model's dropout")
    g = p.add_argument_group("task family options")
    g.add_argument("--tag-scheme", choices=TAG_SCHEMES, default=S, help="tagging: tag scheme of the files (default auto)")
    g.add_argument("--doc-stride", type=int, default=S, help="QA: tokens shared by consecutive windows of a long context (default 64)")
    g.add_argument("--max-answer-length", type=int, default=S, help="QA: longest answer in tokens (default 30)")
    g.add_argument("--n-best", type=int, default=S, help="QA: start/end candidates searched per window (default 20)")
    g.add_argument("--num-beams", type=int, default=S, help="seq2seq: beams at evaluation, 1 = greedy (default 1)")
    g.add_argument("--max-new-tokens", type=int, default=S, help="seq2seq: tokens generated at evaluation (default 32)")
    g.add_argument("--max-target-length", type=int, default=S, help="seq2seq: target tokens kept for training (default 64)")
    g.add_argument("--no-repeat-ngram-size", type=int, default=S,
                   help="seq2seq: no n-gram of this size twice in one generated output (default off)")
    g.add_argument("--decoder-layers", type=int, default=S,
                   help="seq2seq with a BERT-family model (bert2bert): warm-start the decoder from the first N "
                        "layers only (default all; fewer is cheaper)")
    g.add_argument("--source-prefix", default=S, help="seq2seq: text put before every source, e.g. 'summarize: ' for T5")


def add_training_args(p: argparse.ArgumentParser, federated: bool) -> None:
    g = p.add_argument_group("training")
    if federated:
        g.add_argument("--algorithm", default=S, metavar="SPEC",
                       help=f"FL algorithm (default fedavg): a built-in ({', '.join(ALGORITHMS)}), your own class as "
                            "module:Class, or an installed plug-in's name (docs/algorithms.md)")
        add_algorithm_arg(g)
    g.add_argument("--partition", choices=PARTITIONS, default=S,
                   help="client partition (default uniform): label skew, quantity skew, cluster = feature skew "
                        "(TF-IDF clusters as labels), natural = the data's own client ids (e.g. domains)")
    g.add_argument("--alpha", type=float, default=S,
                   help="Dirichlet concentration for --partition label or cluster (smaller = more skew)")
    g.add_argument("--beta", type=float, default=S, help="Dirichlet concentration for --partition quantity (smaller = more skew)")
    g.add_argument("--clients", type=int, default=S, help="number of clients (default 10)")
    g.add_argument("--clients-per-round", type=int, default=S, help="clients sampled per round (default 5)")
    g.add_argument("--rounds", type=int, default=S, help="communication rounds (default 10)")
    g.add_argument("--local-epochs", type=int, default=S, help="local epochs per round (default 1)")
    g.add_argument("--batch-size", type=int, default=S, help="batch size (default 32)")
    g.add_argument("--client-optimizer", choices=CLIENT_OPTIMIZERS, default=S, help="default sgd (fedavg, fedprox) or adamw (fedopt)")
    g.add_argument("--client-lr", type=float, default=S, help="client learning rate (default depends on optimizer and model)")
    g.add_argument("--mu", type=float, default=S, help="FedProx proximal weight (default 0.1 for fedprox)")
    g.add_argument("--server-optimizer", choices=SERVER_OPTIMIZERS, default=S, help="FedOpt server optimizer (default sgd)")
    g.add_argument("--server-lr", type=float, default=S, help="FedOpt server learning rate (default 1.0)")
    g.add_argument("--server-momentum", type=float, default=S, help="FedOpt server SGD momentum (default 0.9)")
    g.add_argument("--weighting", choices=WEIGHTINGS, default=S, help="aggregation weight per client (default examples)")
    if federated:
        g.add_argument("--selection", choices=SELECTIONS, default=S,
                       help="client selection: uniform (default), activity (inclusion probability proportional to "
                            "the client's examples) or power_of_choice (of d activity-sampled candidates, the K "
                            "with the largest loss under the global model)")
        g.add_argument("--selection-candidates", type=int, default=S,
                       help="power_of_choice: candidates d per round (default 2 x --clients-per-round)")
        g.add_argument("--continual-rounds", type=int, default=S,
                       help="continual data: each client's examples arrive in a seeded stream over rounds 1..A "
                            "(default: all data from the start)")
        g.add_argument("--storage-cap", type=int, default=S,
                       help="continual data: a client keeps only its newest N examples (the oldest are deleted)")
        at = p.add_argument_group("simulated attacks (for the robust aggregators)")
        at.add_argument("--attack", choices=ATTACKS, default=S,
                        help="a seeded fraction of the clients sends a corrupted update: sign_flip (-s x its delta), "
                             "scale (s x its delta) or noise (Gaussian, std s)")
        at.add_argument("--attack-fraction", type=float, default=S, help="share of the clients that attack, in (0, 1)")
        at.add_argument("--attack-scale", type=float, default=S,
                        help="the attack's s (default: sign_flip 1, scale 10, noise 1)")
        dp = p.add_argument_group("differential privacy (client level, DP-FedAvg)")
        dp.add_argument("--dp-clip", type=float, default=S,
                       help="clip each client's delta to this L2 norm and aggregate with a fixed denominator")
        dp.add_argument("--dp-noise-multiplier", type=float, default=S,
                       help="Gaussian noise std on the sum of clipped deltas, in units of --dp-clip (default 0)")
        dp.add_argument("--dp-delta", type=float, default=S, help="delta of the reported (epsilon, delta) (default 1e-5)")
    dps = p.add_argument_group("differential privacy (example level, DP-SGD in local training)")
    dps.add_argument("--dp-sgd-clip", type=float, default=S,
                     help="clip each example's gradient to this L2 norm in every local step (DP-SGD; classification, "
                          "tagging, seq2seq); the result carries the worst client's epsilon")
    dps.add_argument("--dp-sgd-noise-multiplier", type=float, default=S,
                     help="Gaussian noise std on the sum of clipped per-example gradients, in units of --dp-sgd-clip "
                          "(default 0)")
    if not federated:
        dps.add_argument("--dp-delta", type=float, default=S, help="delta of the reported (epsilon, delta) (default 1e-5)")
    g.add_argument("--eval-every", type=int, default=S, help="evaluate the global model every k rounds (default 1)")
    if not federated:
        g.add_argument("--epochs", type=float, default=S,
                       help="a fixed budget: passes over the training data (default: the FL run's "
                            "rounds*local-epochs*clients-per-round/clients, the same-budget reference)")
        g.add_argument("--max-epochs", type=int, default=S,
                       help="train to convergence instead: up to N epochs on the training data less a held-out "
                            "validation split, stop after --patience epochs without a better validation metric, "
                            "report the test metric of the best epoch (the converged reference of the board)")
        g.add_argument("--patience", type=int, default=S,
                       help="early stopping: epochs without a better validation metric before stopping (default 2)")
        g.add_argument("--validation-fraction", type=float, default=S,
                       help="early stopping: share of the training data held out for validation, seeded by the "
                            "data seed (default 0.1)")
    g.add_argument("--mia", action="store_true", default=S,
                   help="after training, attack the final model with a loss-threshold membership-inference attack "
                        "(members: training examples that were trained on; non-members: the test split); "
                        "the result carries its AUC")
    g.add_argument("--seed", type=int, default=S, help="seed for partition, sampling, init and shuffling (default 42)")
    g.add_argument("--data-seed", type=int, default=S,
                   help="seed of the data side only: held-out split, subsets, partition (default --seed); "
                        "fix it to vary only the training seed, as a reproduction does")
    g.add_argument("--profile", choices=PROFILES, default=S,
                   help="take every setting not given here from the task card's profile: smoke (CPU, minutes, "
                        "a pipeline check), standard (converged on 2 CPU cores, the board's default) or full "
                        "(FedNLP's settings, for GPUs)")


def add_tuning_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("parameter-efficient tuning (only the trainable parameters are trained and uploaded)")
    g.add_argument("--peft", default=S, metavar="METHOD",
                   help="lora, ia3, prompt, prefix (the peft library; prompt and prefix: classification) or bitfit "
                        "(biases and the task head); default: full fine-tuning")
    g.add_argument("--lora-r", type=int, default=S, help="LoRA rank (default 8)")
    g.add_argument("--lora-alpha", type=float, default=S, help="LoRA scaling alpha (default 16)")
    g.add_argument("--lora-dropout", type=float, default=S, help="dropout on LoRA's input (default 0.05)")
    g.add_argument("--lora-targets", nargs="+", default=S, metavar="MODULE",
                   help="module names LoRA adapts (default: peft's for the model type, e.g. query value for BERT)")
    g.add_argument("--virtual-tokens", type=int, default=S, help="prompt / prefix tuning: virtual tokens (default 20)")
    g.add_argument("--freeze", default=S, metavar="LAYERS",
                   help="FedNLP's layer freezing with full fine-tuning: e (embeddings) and layer indices or ranges, "
                        "e.g. e,0-2 (embeddings and layers 0, 1, 2 of every stack frozen; the task head trains)")


def add_execution_args(p: argparse.ArgumentParser, federated: bool) -> None:
    g = p.add_argument_group("execution (scale, speed, fault tolerance)")
    if federated:
        g.add_argument("--backend", choices=BACKENDS, default=S,
                       help="inprocess (default) or distributed: under `torchrun --nproc-per-node N -m fednlp_bench.cli "
                            "run ...`, each rank trains a share of every round's clients (gloo on CPU, NCCL on GPU)")
        g.add_argument("--checkpoint-every", type=int, default=S,
                       help="checkpoint the global model, server optimizer, RNG states and curve every k rounds "
                            "(default 0: only when stopped by SIGTERM)")
        g.add_argument("--checkpoint-dir", default=S, help="checkpoint folder (default <output>/checkpoints/<run>)")
        g.add_argument("--resume", action="store_true", default=S,
                       help="continue from this run's latest checkpoint (starts from round 1 when there is none)")
    g.add_argument("--precision", choices=PRECISIONS, default=S,
                   help="fp32 (default) or bf16: autocast of the training forward pass, for GPUs")
    g.add_argument("--compile", action="store_true", default=S, help="torch.compile the model for training")


def add_output_args(p: argparse.ArgumentParser, tracking: bool = True) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--output", default=S, help="result folder (default runs/)")
    if tracking:
        g.add_argument("--log-dir", default=S, metavar="DIR",
                       help="also write the curve as TensorBoard scalars to DIR, per evaluated round or epoch "
                            "(`tensorboard --logdir DIR`; needs the extra [tracking]); changes no result")
        g.add_argument("--save-model", default=S, metavar="DIR",
                       help="save the final model to DIR in Hugging Face format (save_pretrained: the whole model, or "
                            "the base and the peft adapter) with the tokenizer and a model card; changes no result")
    g.add_argument("--cache-dir", default=S, help="tokenization cache (default ~/.cache/fednlp_bench or FEDNLP_CACHE)")
    g.add_argument("--device", default=S, help="auto (cuda if present), cpu or cuda")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=S, help="hide progress bars")
    g.add_argument("--config", default=S, help="YAML file with any of these settings (flags given here win)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="fednlp-bench", description="Federated learning benchmark for NLP.")
    parser.add_argument("--version", action="version", version=f"fednlp-bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="one federated run (any built-in or plug-in algorithm)",
                       description="Run one federated training job and write its result JSON and learning curve.")
    add_data_args(p), add_training_args(p, federated=True), add_tuning_args(p), add_execution_args(p, True)
    add_output_args(p)

    p = sub.add_parser("centralized", help="the centralized baseline (same model, data and passes)",
                       description="Train on the union of all clients' data; the baseline every FL result is compared with.")
    add_data_args(p), add_training_args(p, federated=False), add_tuning_args(p), add_execution_args(p, False)
    add_output_args(p)

    p = sub.add_parser("compare", help="centralized vs FedAvg IID vs FedAvg label skew, as a table",
                       description="Run the centralized baseline and FedAvg on an IID and a label-skewed partition "
                                   "with the same budget, then print their metrics side by side.")
    add_data_args(p), add_training_args(p, federated=True), add_tuning_args(p), add_execution_args(p, False)
    add_output_args(p, tracking=False)
    p.add_argument("--skew-alpha", type=float, default=0.1, help="alpha of the label-skewed run (default 0.1)")

    p = sub.add_parser("check-algorithm", help="check an algorithm: 2 gloo ranks vs in-process, resumed vs not",
                       description="Run an algorithm (a built-in, module:Class or a plug-in's name) for 2 rounds on a "
                                   "small demo task in-process, on 2 gloo ranks (torchrun), and stopped after round 1 "
                                   "then resumed in a new process; say whether the final weights, server state and "
                                   "client state agree (exit 1 if not). Run it before a sweep.")
    p.add_argument("spec", help="the algorithm, as --algorithm takes it")
    add_algorithm_arg(p)
    sub.add_parser("tasks", help="list the built-in tasks (task cards)",
                   description="List the built-in tasks: one YAML task card each (tasks/ in the repository).")
    from .partition.commands import add_partition_parser

    add_partition_parser(sub)
    add_leaderboard_parser(sub)
    add_reproduce_parser(sub)
    return parser


def add_reproduce_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce one table of the leaderboard (scripts/reproduce_<table>.sh)",
                       description="For every task of the table whose card has the profile: the untrained model, the "
                                   "centralized baseline and FedAvg, FedProx, FedOpt on the canonical partitions over "
                                   "several seeds; then submit the results and rebuild the board. Finished runs are "
                                   "skipped, so an interrupted reproduction resumes where it stopped.")
    p.add_argument("table", help="text_classification, sequence_tagging, extractive_qa, seq2seq, language_modeling "
                                 "(or classification, tagging, qa), or trustworthy: FedAvg under each client "
                                 "selection, static vs continual data, without / with client- and example-level DP, "
                                 "with a membership-inference audit, or robustness: FedAvg, median, trimmed mean and "
                                 "Krum without and with attacking clients (agnews, standard profile), or tuning: "
                                 "FedAvg with full fine-tuning beside LoRA, BitFit, prompt tuning and freezing (the "
                                 "cards' `tuning:` blocks)")
    p.add_argument("--profile", choices=PROFILES, default="smoke",
                   help="smoke: CPU, minutes a task, data subsets (pipeline check); standard: converged on 2 CPU cores, "
                        "3 seeds (the board's default); full: FedNLP's settings, for GPUs (default smoke)")
    p.add_argument("--runs", default="runs/reproduce", help="result folder (default runs/reproduce; "
                                                            "results go to RUNS/PROFILE/TABLE)")
    p.add_argument("--root", default="leaderboard", help="leaderboard folder to submit to and rebuild (default leaderboard)")
    p.add_argument("--no-board", action="store_true", help="run only; do not submit or rebuild the board")
    p.add_argument("--tasks", nargs="+", default=None, help="only these tasks of the table")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="these seeds instead of the card's")
    p.add_argument("--algorithms", nargs="+", default=None,
                   help="these instead of the default centralized fedavg fedprox fedopt (centralized or any built-in "
                        "algorithm; a reproduction never runs a plug-in)")
    p.add_argument("--partitions", nargs="+", default=None,
                   help="these partitions instead of the card's, e.g. uniform 'label alpha=0.1' 'quantity beta=5'")
    p.add_argument("--submitter", default="fednlp-bench maintainers", help="submitter shown on the board")
    p.add_argument("--dry-run", action="store_true", help="list the planned runs, which are finished, and stop")
    p.add_argument("--write-recipes", metavar="DIR", default=None,
                   help="write the canonical partition recipe of every planned partition to DIR, and stop")
    p.add_argument("--require-learning", action="store_true",
                   help="exit 1 when some algorithm does not learn: it must gain at least 0.02 over the untrained "
                        "model and a fifth of the centralized baseline's gain")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


def cmd_reproduce(args: argparse.Namespace) -> int:
    import pandas as pd

    from .reproduce import board_runs, finished_runs, plan_runs, reproduce, table_family, write_recipes

    if args.write_recipes:
        for path in write_recipes(args.table, args.profile, args.write_recipes, args.tasks):
            print(path)
        return 0
    if args.dry_run:
        family = table_family(args.table)
        runs = plan_runs(family, args.profile, args.tasks, args.seeds, args.algorithms, args.partitions)
        done = {**finished_runs(Path(args.runs) / args.profile / family),
                **(board_runs(Path(args.root)) if not args.no_board else {})}
        rows = [{"task": r.task, "algorithm": r.label, "partition": r.partition_label, "seed": r.seed,
                 "finished": r.key in done} for r in runs]
        print(pd.DataFrame(rows).to_string(index=False))
        print(f"{len(runs)} runs, {sum(r['finished'] for r in rows)} finished")
        return 0
    start = time.perf_counter()
    rep = reproduce(args.table, args.profile, args.runs, None if args.no_board else args.root, args.tasks,
                    args.seeds, args.algorithms, args.partitions, args.submitter, args.progress)
    table = rep.summary()
    table.to_csv(rep.folder / "summary.csv", index=False)
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(table.to_string(index=False))
    print(f"{rep.ran} runs done, {rep.skipped} already finished (skipped); results and summary.csv in {rep.folder}; "
          f"{time.perf_counter() - start:.0f} s" + ("" if args.no_board else f"; board rebuilt in {args.root}/")
          + (f" ({rep.superseded} earlier submissions of changed settings replaced)" if rep.superseded else ""))
    failed = table[~table["learned"]]
    for _, row in failed.iterrows():
        print(f"fednlp-bench: warning: {row['task']} {row['algorithm']} ({row['partition']}) ends at "
              f"{row['mean']:.4f}, not clearly above the untrained model's {row['untrained']:.4f}", file=sys.stderr)
    return 1 if (args.require_learning and len(failed)) else 0


def add_leaderboard_parser(sub) -> None:
    lb = sub.add_parser("leaderboard", help="submit results, rebuild and validate the leaderboard",
                        description="The centralized-versus-federated leaderboard: submissions and the generated board.")
    lsub = lb.add_subparsers(dest="lb_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default="leaderboard", help="leaderboard folder (default leaderboard/)")
    common.add_argument("--recipes", default=None, help="canonical partition recipes (default: partition/ beside --root)")
    p = lsub.add_parser("submit", parents=[common], help="check a result JSON and store it as a community row",
                        description="Validate a result (size, nesting, finite numbers, schema, metrics, the curve, "
                                    "model, clients per round, wall time and upload bytes against its config, the "
                                    "partition digest against the recipe it names, safe text, duplicates) and store "
                                    "it under <root>/submissions/ as a community row, shown apart from the official "
                                    "rows and compared with the official centralized reference of the same task, "
                                    "profile and model; then rebuild the board. Official rows come only from "
                                    "`fednlp-bench reproduce`.")
    p.add_argument("result", help="result JSON written by `fednlp-bench run` or `centralized`")
    p.add_argument("--submitter", default=None,
                   help="who submits (required; plain text in one script, at most 80 characters; the maintainers' "
                        "name is reserved)")
    p.add_argument("--method", default=None,
                   help="method name shown on the board (default: the algorithm and its settings); ASCII letters, "
                        "digits, spaces and ._+=(),- only, and not a look-alike of another method")
    p.add_argument("--profile", default=None, choices=PROFILES,
                   help="the board (and official reference) the row belongs to (default: the run's --profile, else "
                        "standard)")
    p.add_argument("--notes", default=None, help="a short note shown with the row (at most 400 characters)")
    p.add_argument("--allow-non-canonical", action="store_true",
                   help="accept a partition that matches no canonical recipe (the row is marked non-canonical)")
    p.add_argument("--no-build", dest="build", action="store_false", help="do not rebuild the board afterwards")
    lsub.add_parser("build", parents=[common], help="regenerate README.md, index.html, plots and tables",
                    description="Regenerate the board from the stored submissions (byte-identical for the same input).")
    lsub.add_parser("validate", parents=[common], help="re-check every stored submission",
                    description="Re-check every stored submission; exit 1 when any fails.")
    p = lsub.add_parser("aggregate", help="aggregate your own result files into one table (no submission)",
                        description="Read result JSONs (files or folders), group by task x partition x method, and "
                                    "write results.csv and results.parquet: mean +- std over seeds, ratio and gap to "
                                    "centralized, rounds to 90%%, client p10, upload bytes per round.")
    p.add_argument("paths", nargs="+", help="result JSON files or folders holding them")
    p.add_argument("--output", required=True, help="folder for results.csv and results.parquet")
    p.add_argument("--recipes", default=None, help="canonical partition recipes (default: the repository's partition/)")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard.submit import build, submit, validate_all

    if args.lb_command == "submit":
        path = submit(args.result, args.root, recipes=args.recipes, submitter=args.submitter, method=args.method,
                      profile=args.profile, allow_non_canonical=args.allow_non_canonical, notes=args.notes)
        print(f"stored {path}")
        if args.build:
            print(f"board rebuilt: {len(build(args.root))} files under {args.root}")
        return 0
    if args.lb_command == "aggregate":
        import pandas as pd

        from .config import check_output_dir
        from .results import remove_stale_temp_files
        from .leaderboard.aggregate import aggregate, canonical_digests, load_results, write_table

        check_output_dir(args.output)  # before reading anything; creates nothing
        remove_stale_temp_files(Path(args.output))
        df = aggregate(load_results(args.paths), canonical_digests(args.recipes) if args.recipes else None)
        cols = ["task", "partition", "method", "metric", "n_seeds", "mean", "std", "ci95", "last20", "centralized",
                "ratio", "gap", "rounds_to_90", "client_p10"]
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        try:
            csv, parquet = write_table(df, args.output)
        except OSError as exc:
            raise UserError(f"cannot write the table to {args.output} ({exc.strerror or exc})",
                            "pass --output with a folder you can write to, on a disk with room") from None
        print(f"written: {csv} {parquet}")
        return 0
    if args.lb_command == "build":
        files = build(args.root)
        print(f"board rebuilt: {len(files)} files under {args.root}")
        return 0
    problems = validate_all(args.root, args.recipes)
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s)" if problems else "every submission is valid")
    return 1 if problems else 0


def algorithm_args(pairs: list[str]) -> dict[str, str]:
    """--algorithm-arg KEY=VALUE pairs as a dict (the values stay text; the algorithm's Args type them)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--algorithm-arg '{pair}' is not KEY=VALUE", "write e.g. --algorithm-arg q=0.5")
        out[key.strip()] = value
    return out


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """RunConfig defaults, overridden by the task card's --profile, by --config YAML, by flags on the command line."""
    values: dict[str, Any] = {}
    given = vars(args)
    if "config" in given:
        values.update(load_yaml_config(given["config"]))
    names = {f.name for f in fields(RunConfig)}
    values.update({k: v for k, v in given.items() if k in names})
    if "algorithm_arg" in given:  # --algorithm-arg key=value (repeated), over the YAML's algorithm_args
        values["algorithm_args"] = {**values.get("algorithm_args", {}), **algorithm_args(given["algorithm_arg"])}
    if values.get("profile"):
        from .tasks.profiles import profile_settings
        from .tasks.registry import get_spec

        algorithm = "centralized" if args.command == "centralized" else values.get("algorithm", "fedavg")
        values = {**profile_settings(get_spec(values.get("task", "demo")), values["profile"], algorithm), **values}
    return RunConfig(**values)


def cmd_tasks() -> int:
    import pandas as pd

    from .tasks import TASKS
    from .tasks.profiles import has_profile

    def local_files(s) -> str:
        files = " + ".join(x for x in (s.local_train, s.local_test) if x)
        if not files:
            return "-"
        return (f"{s.folder}/" if s.folder else "") + files + (" (per domain)" if s.layout == "domains" else "")

    rows = [{"task": s.name, "family": s.family, "metric": s.metric, "default model": s.default_model,
             "max length": s.max_length, "columns": " / ".join([",".join(s.text_columns), s.label_column or "-"]),
             "hub": s.hub_name + (f" ({s.hub_config})" if s.hub_config else "") if s.hub_name
             else ("embedded" if s.embedded else "-"),
             "local files": local_files(s),
             "profiles": ",".join(p for p in PROFILES if has_profile(s, p)) or "-",
             "description": s.description} for s in TASKS.values()]
    with pd.option_context("display.max_colwidth", 80, "display.width", 250):
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


def cmd_run(cfg: RunConfig) -> int:
    from .fl.checkpoint import Interrupted
    from .runner import run_fl

    try:
        rec = run_fl(cfg)
    except Interrupted as stop:
        where = f"checkpoint {stop.path}" if stop.path else "the checkpoint of rank 0"
        print(f"fednlp-bench: stopped by SIGTERM after round {stop.round}; {where} holds it; "
              "rerun the same command with --resume to continue", file=sys.stderr)
        return 143
    if rec is None:  # a rank other than 0 of the distributed backend: rank 0 reports
        return 0
    print(f"{rec['task']['primary_metric']}={rec['final'][rec['task']['primary_metric']]:.4f}  result: {rec['path']}")
    return 0


def cmd_check_algorithm(args: argparse.Namespace) -> int:
    from .algorithms.check import Job, check_jobs, report

    job = Job(args.spec, algorithm_args(getattr(args, "algorithm_arg", [])))
    [verdict] = check_jobs([job])
    for line in report(verdict):
        print(line)
    return 0 if verdict.ok else 1


def cmd_centralized(cfg: RunConfig) -> int:
    from .runner import run_central

    rec = run_central(cfg)
    print(f"{rec['task']['primary_metric']}={rec['final'][rec['task']['primary_metric']]:.4f}  result: {rec['path']}")
    return 0


def cmd_compare(cfg: RunConfig, skew_alpha: float) -> int:
    from .compare import compare

    table, path = compare(cfg, skew_alpha)
    print(table)
    print(f"results and plot: {path}")
    return 0


def quiet_model_loading() -> None:
    """Hide transformers' per-load reports (a fresh task head is reported as "MISSING" every time a client starts)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # the per-load "Loading weights" bar, printed for every client's model


def show_data_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """DataWarnings as one `fednlp-bench: warning:` line; any other warning as Python shows it."""
    if issubclass(category, DataWarning):
        print(f"fednlp-bench: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)
        warnings.showwarning = show_data_warning
        return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Dispatch a parsed command; bad input becomes one error line and exit code 2."""
    from .fl.checkpoint import Interrupted

    try:
        if args.command == "tasks":
            return cmd_tasks()
        if args.command == "leaderboard":
            return cmd_leaderboard(args)
        if args.command == "reproduce":
            quiet_model_loading()
            return cmd_reproduce(args)
        if args.command == "check-algorithm":
            return cmd_check_algorithm(args)
        if args.command == "partition":
            from .partition.commands import run_partition_command

            return run_partition_command(args)
        cfg = config_from_args(args)
        quiet_model_loading()
        if args.command == "run":
            return cmd_run(cfg)
        if args.command == "centralized":
            return cmd_centralized(cfg)
        return cmd_compare(cfg, args.skew_alpha)
    except (UserError, AlgorithmError) as exc:
        print(f"fednlp-bench: error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2
    except Interrupted as stop:  # SIGTERM inside one run of compare or reproduce (`run` says more, above)
        print(f"fednlp-bench: stopped by SIGTERM after round {stop.round} of a run; rerun the same command to "
              "continue (reproduce skips its finished runs)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("fednlp-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
