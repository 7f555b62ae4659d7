"""A plain `pip install .` (not editable) must ship every subpackage."""
from __future__ import annotations

from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_code_folder_is_a_package_that_setuptools_finds():
    found = set(find_packages(str(ROOT), include=["fednlp_bench", "fednlp_bench.*"]))
    folders = {p.parent for p in (ROOT / "fednlp_bench").rglob("*.py")}
    names = {".".join(f.relative_to(ROOT).parts) for f in folders}
    assert names <= found, f"folders without __init__.py are left out of the wheel: {sorted(names - found)}"
