"""--save-model: a run's final model in Hugging Face format (save_pretrained), with its tokenizer and a model card,
and the loader that reads it back (AutoModelFor... / PeftModel.from_pretrained).

A fully or partly fine-tuned model (BitFit, --freeze) is saved whole. A peft model is saved as its adapter in the
folder and its untouched base in `base/` (the tiny models have no name to load a base from), so that

    base = AutoModelForSequenceClassification.from_pretrained("DIR/base")
    model = PeftModel.from_pretrained(base, "DIR")
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from .errors import UserError
from .fl.params import FlatParams
from .tasks.base import Task
from .tuning import quiet_peft

AUTO_CLASSES = {"text_classification": "AutoModelForSequenceClassification",
                "sequence_tagging": "AutoModelForTokenClassification",
                "extractive_qa": "AutoModelForQuestionAnswering", "seq2seq": "AutoModelForSeq2SeqLM",
                "language_modeling": "AutoModelForCausalLM"}
CARD = "README.md"
RUN_FILE = "fednlp_bench_run.json"  # what the run recorded (task, partition, algorithm, metrics), for tools


def check_model_folder(path: str) -> None:
    """--save-model must name a new or empty folder (nothing is overwritten); raises UserError."""
    p = Path(path).expanduser()
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise UserError(f"--save-model folder '{path}' already holds files",
                        "pass a new or empty folder (nothing is overwritten)")


def model_card(family: str, record: dict[str, Any], peft: bool) -> str:
    """A short model card: what was trained, on which partition, how, its test metrics and how to load it."""
    task, part, algo = record["task"], record.get("partition") or {}, record.get("algorithm") or {}
    tuning = record.get("tuning") or {"method": "full"}
    auto = AUTO_CLASSES[family]
    load = (f"from peft import PeftModel\nfrom transformers import {auto}, AutoTokenizer\n\n"
            f"base = {auto}.from_pretrained(\"DIR/base\")\nmodel = PeftModel.from_pretrained(base, \"DIR\")\n"
            if peft else f"from transformers import {auto}, AutoTokenizer\n\nmodel = {auto}.from_pretrained(\"DIR\")\n")
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(record["final"].items()))
    kind = record["kind"]
    how = (f"federated, algorithm {algo.get('spec', record['config'].get('algorithm'))}, "
           f"{record['config'].get('rounds')} rounds" if kind == "federated" else "centralized")
    return (f"# {task['name']} ({family}), trained by fednlp-bench\n\n"
            f"- model: {task['model']}; tuning: {tuning['method']}"
            f"{', frozen ' + tuning['freeze'] if tuning.get('freeze') else ''}\n"
            f"- training: {how}, seed {record['seed']}\n"
            f"- partition: {part.get('method', 'all data')}"
            f"{', digest ' + part['digest'] if part.get('digest') else ''}\n"
            f"- data: {task.get('num_train')} training / {task.get('num_test')} test examples "
            f"(fingerprint {task.get('data_fingerprint')})\n\n"
            f"## Test metrics\n\n| metric | value |\n|---|---:|\n{metrics}\n\n"
            f"## Load it\n\n```python\n{load}tokenizer = AutoTokenizer.from_pretrained(\"DIR\")\n```\n\n"
            f"`{RUN_FILE}` holds the run's whole result record.\n")


def _detach_from_flat(model: torch.nn.Module) -> None:
    """Give every parameter its own storage (FlatParams makes them views of one tensor, which safetensors refuses)."""
    with torch.no_grad():
        for p in model.parameters():
            p.data = p.data.clone()


def save_model(task: Task, weights: torch.Tensor, seed: int, folder: Path, record: dict[str, Any]) -> Path:
    """Save the model holding `weights` (the flat trainable vector of a run) to `folder`; written to a temporary
    folder first and renamed, so that a failure leaves nothing half-written."""
    model = task.new_model(seed)
    FlatParams(model).set_(weights.detach().to("cpu"))
    _detach_from_flat(model)
    folder = folder.expanduser()
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        from peft import PeftModel
    except ImportError:  # without peft no run is a peft model
        PeftModel = ()  # type: ignore[assignment,misc]
    is_peft = isinstance(model, PeftModel)
    try:
        with quiet_peft():
            model.save_pretrained(tmp)
        if is_peft:
            base = task.base_model(seed)
            base.save_pretrained(tmp / "base")
            task.tokenizer.save_pretrained(tmp / "base")
        task.tokenizer.save_pretrained(tmp)
        (tmp / CARD).write_text(model_card(task.family, record, is_peft))
        (tmp / RUN_FILE).write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
        if folder.is_dir():
            folder.rmdir()  # empty (checked before training)
        os.replace(tmp, folder)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_saved_model(folder: str | Path, family: str) -> torch.nn.Module:
    """The model saved by --save-model, read back with transformers (and peft for an adapter)."""
    import transformers

    folder = Path(folder)
    auto = getattr(transformers, AUTO_CLASSES[family])
    if (folder / "adapter_config.json").exists():
        from peft import PeftModel

        with quiet_peft():
            return PeftModel.from_pretrained(auto.from_pretrained(folder / "base"), folder)
    return auto.from_pretrained(folder)
