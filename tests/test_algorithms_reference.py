"""FedAvg, FedProx and FedOpt on the Algorithm API give the final weights of the code before it, bit for bit.

tests/data/algorithm_reference.json holds, per environment (library versions and CPU), the sha256 of each case's
final weights, written by the code before fednlp_bench/algorithms existed (see tests/data/algorithm_reference.py,
which says how to add an environment); here the same cases run on the current code. One BLAS thread in both.
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
ENV = reference.environment()
STORED = reference.reference_for(ENV)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return reference.make_task(tmp_path_factory.mktemp("cache"))


def test_every_stored_reference_covers_every_case_and_differs_between_them():
    entries = reference.references()
    assert entries
    for entry in entries:
        assert set(entry["cases"]) == set(reference.CASES)
        hashes = [c["sha256"] for c in entry["cases"].values()]
        assert len(set(hashes)) == len(hashes)  # every case trains differently, so a mix-up would show


@pytest.mark.skipif(STORED is None, reason=f"no reference made by the pre-refactor code in this environment ({ENV}); "
                                           "tests/data/algorithm_reference.py says how to add one")
@pytest.mark.parametrize("name", list(reference.CASES))
def test_final_weights_are_bit_identical_to_the_stored_reference(task, name):
    weights = reference.run_case(task, name)
    assert weights.numel() == STORED["cases"][name]["numel"]
    assert reference.digest(weights) == STORED["cases"][name]["sha256"]
