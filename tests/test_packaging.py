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


def test_wheel_ships_every_task_card(tmp_path):
    """`pip install .` (not editable) must carry tasks/*.yaml as fednlp_bench/task_cards/ (setup.py's build hook)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "tasks", src / "tasks")
    shutil.copytree(ROOT / "fednlp_bench", src / "fednlp_bench", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path / "dist")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    cards = {f"fednlp_bench/task_cards/{p.name}" for p in (ROOT / "tasks").glob("*.yaml")}
    assert cards and cards <= names, sorted(cards - names)
