"""Build hook: ship the top-level task cards (tasks/*.yaml) inside the package as fednlp_bench/task_cards/.

Everything else is declared in setup.cfg. In a source checkout (or an editable install) the cards are read from
tasks/ directly; in a built wheel they are read from fednlp_bench/task_cards/ (see fednlp_bench/tasks/cards.py).
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class build_py_with_task_cards(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # editable installs read tasks/ in place
        target = Path(self.build_lib) / "fednlp_bench" / "task_cards"
        target.mkdir(parents=True, exist_ok=True)
        for card in sorted(ROOT.glob("tasks/*.y*ml")):
            self.copy_file(str(card), str(target / card.name))

    def get_outputs(self, include_bytecode=True):
        cards = [str(Path(self.build_lib) / "fednlp_bench" / "task_cards" / p.name) for p in ROOT.glob("tasks/*.y*ml")]
        return super().get_outputs(include_bytecode) + ([] if getattr(self, "editable_mode", False) else cards)


setup(cmdclass={"build_py": build_py_with_task_cards})
