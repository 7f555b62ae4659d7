"""FedAvg, FedProx and FedOpt on the Algorithm API give the final weights of the code before it, bit for bit.

tests/data/algorithm_reference.json holds the sha256 of each case's final weights, written by the code of commit
d95a786 (before fednlp_bench/algorithms existed) with tests/data/algorithm_reference.py; here the same cases run on
the current code. One BLAS thread in both, so the kernels match.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"
spec = importlib.util.spec_from_file_location("algorithm_reference", DATA / "algorithm_reference.py")
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)
STORED = json.loads((DATA / "algorithm_reference.json").read_text())


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return reference.make_task(tmp_path_factory.mktemp("cache"))


def test_the_reference_covers_every_case_and_differs_between_them():
    assert set(STORED["cases"]) == set(reference.CASES)
    hashes = [c["sha256"] for c in STORED["cases"].values()]
    assert len(set(hashes)) == len(hashes)  # every case trains differently, so a mix-up would show


@pytest.mark.skipif(torch.__version__ != STORED["torch"], reason=f"the reference was made with torch {STORED['torch']}")
@pytest.mark.parametrize("name", list(reference.CASES))
def test_final_weights_are_bit_identical_to_the_stored_reference(task, name):
    weights = reference.run_case(task, name)
    assert weights.numel() == STORED["cases"][name]["numel"]
    assert reference.digest(weights) == STORED["cases"][name]["sha256"]
