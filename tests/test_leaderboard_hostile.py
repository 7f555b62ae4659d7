"""Hostile and careless submissions: every one is one error line, exit 2, no traceback, and leaves leaderboard/
byte-for-byte as it was. Then the official/community split on a copy of the shipped board: a submission can never
extend an official row or move a centralized reference; it becomes a community row beside them."""
from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from leaderboard_factory import make_record

from fednlp_bench.cli import main
from fednlp_bench.errors import UserError
from fednlp_bench.leaderboard.submit import build, prepare_submission, validate_all

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "partition"
UNIFORM_DEMO = "c0c774112f716e7fb2f7564d4bf4cd3f2a6f0b427ca5a8706a991cf4c870e3cc"  # partition/demo_uniform_c10.yaml
LABEL_DEMO_A01 = "demo_label_c10_a0.1.yaml"
MAINTAINERS = "fednlp-bench maintainers"


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()} if root.exists() else {}


@pytest.fixture()
def board(tmp_path, capsys) -> Path:
    """A small board: a centralized run and a canonical FedAvg run by a community submitter, built."""
    root = tmp_path / "leaderboard"
    for name, rec in (("c.json", make_record("centralized", final=0.9)),
                      ("f.json", make_record(final=0.72, digest=UNIFORM_DEMO))):
        (tmp_path / name).write_text(json.dumps(rec))
        assert main(["leaderboard", "submit", str(tmp_path / name), "--root", str(root), "--recipes", str(RECIPES),
                     "--submitter", "lab A"]) == 0
    capsys.readouterr()
    return root


def good() -> dict:
    rec = make_record(final=0.75, digest=UNIFORM_DEMO, seed=9)
    rec["config"]["data_seed"] = rec["partition"]["seed"] = 42
    return rec


def _label_digest() -> str:
    import yaml

    return yaml.safe_load((RECIPES / LABEL_DEMO_A01).read_text())["expected_digest"]


# ------------------------------------------------------------------------------------------- the hostile cases
def _mutate(fn):
    rec = good()
    fn(rec)
    return rec


def cases() -> dict[str, tuple]:
    """name -> (file content: dict | str | bytes, extra CLI flags, a word the error line must contain)."""
    deep = "[" * 100_000 + "]" * 100_000
    wrapper_official = {"submission": {"submitter": MAINTAINERS, "method": "fedavg", "profile": "smoke",
                                       "track": "official"}, "result": good()}
    return {
        "maintainers' name": (good(), ["--submitter", MAINTAINERS], "reserved"),
        "maintainers' name in another case and spacing": (good(), ["--submitter", "FEDNLP-BENCH  Maintainers"],
                                                          "reserved"),
        "Cyrillic look-alike of the maintainers": (good(), ["--submitter", "fednlp-bench mаintainеrs"], "scripts"),
        "a file claiming to be official": (wrapper_official, [], "reserved"),
        "a detailed official profile label": (good(), ["--profile", "smoke: minilm, 10 clients"], "invalid choice"),
        "label skew claiming the uniform digest": (_mutate(lambda r: (
            r["config"].update(partition="label", alpha=0.1),
            r["partition"].update(method="label", alpha=0.1, name="niid_label_clients=10_alpha=0.1"))), [],
            "not the digest of the partition it names"),
        "a uniform digest under another data seed": (_mutate(lambda r: (
            r["config"].update(data_seed=7), r["partition"].update(seed=7))), [],
            "belongs to another canonical partition"),
        "named recipe with another digest": (_mutate(lambda r: r["partition"].update(digest="ee" * 32)), [],
                                             "not the digest of the partition it names"),
        "curve past the configured rounds": (_mutate(lambda r: (r["config"].update(rounds=1),
                                                                 r["curve"][-1].update(round=400))), [], "round"),
        "another model than the config's": (_mutate(lambda r: r["task"].update(model="distilbert-base-uncased")), [],
                                            "model"),
        "negative wall time": (_mutate(lambda r: r.update(wall_time_s=-5.0)), [], "wall_time_s"),
        "curve wall time after the run's": (_mutate(lambda r: r["curve"][-1].update(wall_time_s=1e6)), [],
                                            "wall times"),
        "upload bytes that are not the model's": (_mutate(lambda r: r.update(upload_bytes_per_client_per_round=7)),
                                                  [], "upload"),
        "clients per round not the curve's": (_mutate(lambda r: r["curve"][0].update(clients=[0, 1])), [], "clients"),
        "NaN wall time": (json.dumps(good()).replace('"wall_time_s": 7.8', '"wall_time_s": NaN'), [], "NaN"),
        "Infinity epsilon": (json.dumps({**good(), "privacy": {"level": "client", "epsilon": 1}}).replace(
            '"epsilon": 1', '"epsilon": Infinity'), [], "Infinity"),
        "a number that overflows": (json.dumps(good()).replace('"wall_time_s": 7.8', '"wall_time_s": 1e999'), [],
                                    "finite"),
        "JSON nested 100,000 deep": (json.dumps({**good(), "x": "HOLE"}).replace('"HOLE"', deep), [], "deeper"),
        "a 6 MB file": (json.dumps(good()) + " " * 6_000_000, [], "limit"),
        "byte 0xff in the file": (json.dumps(good()).encode().replace(b'"fedavg"', b'"fed\xffavg"'), [], "UTF-8"),
        "a lone surrogate in the method": ({"submission": {"method": "fedavg\ud800"}, "result": good()}, [],
                                           "surrogate"),
        "a lone surrogate in --method": (good(), ["--method", "fed\udcffavg"], "method"),
        "right-to-left override": (good(), ["--method", "fedavg\u202egvadef"], "RIGHT-TO-LEFT"),
        "zero-width space in the submitter": (good(), ["--submitter", "lab\u200bB"], "ZERO WIDTH"),
        "Cyrillic look-alike of fedavg": (good(), ["--method", "fеdavg"], "ASCII"),
        "fedavg in capitals": (good(), ["--method", "FedAvg"], "reads as"),
        "an ASCII look-alike of fedprox": (good(), ["--method", "fedpr0x"], "reads as"),
        "a markdown image as method": (good(), ["--method", "![x](https://example.org/t.png)"], "method"),
        "a web address as submitter": (good(), ["--submitter", "www.example.org"], "address"),
        "terminal escape in the method": (good(), ["--method", "\x1b[2Jfedavg"], "control"),
        "fullwidth letters": (good(), ["--submitter", "ｌａｂ"], "NFKC"),
        "repeated key": ('{"schema_version": 1, "schema_version": 1}', [], "repeats"),
        "a JSON list": ("[1, 2, 3]", [], "object"),
        "an empty file": ("", [], "not valid JSON"),
        "notes too long": (good(), ["--notes", "n" * 401], "at most 400"),
        "a centralized run that uploads": (_mutate(lambda r: None) | {"kind": "centralized"}, [], "centralized"),
        "no submitter": (good(), ["--submitter", ""], "submitter"),
    }


@pytest.mark.parametrize("case", list(cases()))
def test_hostile_submission_is_one_line_exit_2_and_changes_nothing(case, board, tmp_path, capsys):
    content, flags, word = cases()[case]
    path = tmp_path / "hostile.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8", errors="surrogatepass")
    names_itself = isinstance(content, dict) and (content.get("submission") or {}).get("submitter")
    if "--submitter" not in flags and not names_itself:
        flags = [*flags, "--submitter", "lab C"]
    before = tree(board)
    try:
        rc = main(["leaderboard", "submit", str(path), "--root", str(board), "--recipes", str(RECIPES), *flags])
    except SystemExit as exc:  # argparse's own refusals exit from the parser (one line, exit 2)
        rc = exc.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == 2, (case, out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert word.lower() in lines[0].lower(), lines[0]
    assert "\x1b" not in err and "\u202e" not in err and "\u200b" not in err  # escapes shown, never echoed
    assert tree(board) == before


def test_there_are_at_least_thirty_cases():
    assert len(cases()) >= 30


def test_missing_file_and_folder_are_one_line(board, tmp_path, capsys):
    for target in (tmp_path / "nope.json", tmp_path):
        before = tree(board)
        rc = main(["leaderboard", "submit", str(target), "--root", str(board), "--submitter", "x"])
        err = capsys.readouterr().err
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert tree(board) == before


def test_a_stored_file_that_fails_a_check_is_caught_by_validate_and_stops_build(board, capsys):
    """A file placed in submissions/ by hand (not through submit): validate names it, build refuses in one line
    instead of crashing on it, and the pages stay as they were."""
    stored = sorted((board / "submissions").glob("*.json"))[0]
    doc = json.loads(stored.read_text())
    doc["submission"]["method"] = "fedavg\ud800"
    evil = board / "submissions" / "0000000000000000.json"
    evil.write_text(json.dumps(doc), errors="surrogatepass")
    before = tree(board)
    assert main(["leaderboard", "validate", "--root", str(board), "--recipes", str(RECIPES)]) == 1
    assert "0000000000000000.json" in capsys.readouterr().out
    assert main(["leaderboard", "build", "--root", str(board)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "surrogate" in err and "Traceback" not in err
    assert tree(board) == before


def test_markdown_and_html_of_the_board_show_data_as_text(tmp_path, capsys):
    """What the checks let through is still escaped: markdown emphasis and table characters in a submitter."""
    root = tmp_path / "leaderboard"
    (tmp_path / "f.json").write_text(json.dumps(good()))
    assert main(["leaderboard", "submit", str(tmp_path / "f.json"), "--root", str(root), "--recipes", str(RECIPES),
                 "--submitter", "lab_of_x & y", "--method", "fedavg+tweak(k=2)"]) == 0
    capsys.readouterr()
    md = (root / "README.md").read_text()
    assert "lab\\_of\\_x &amp; y" in md and "fedavg+tweak(k=2)" in md


# -------------------------------------------------------------------------------- official vs community rows
@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    """A copy of the repository's leaderboard/ and partition/ (the official smoke rows of reproduction)."""
    if not (REPO / "leaderboard" / "submissions").is_dir():
        pytest.skip("no leaderboard/submissions in this checkout")
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(REPO / "leaderboard", root / "leaderboard")
    shutil.copytree(RECIPES, root / "partition")
    build(root / "leaderboard")  # as committed (a no-op when the shipped board is up to date)
    return root / "leaderboard"


def _official(board: Path, task: str, algorithm: str, partition: str | None = None, seed: int = 1) -> dict:
    for p in sorted((board / "submissions").glob("*.json")):
        doc = json.loads(p.read_text())
        cfg = doc["result"]["config"]
        if (cfg["task"] == task and cfg["algorithm"] == algorithm and doc["result"]["seed"] == seed
                and doc["submission"]["method"] in (algorithm, "centralized (same budget)")
                and (partition is None or cfg["partition"] == partition)
                and "table" not in cfg["extra"]["reproduce"]):
            return doc
    raise AssertionError(f"no official {task} {algorithm} run on the shipped board")


def _rows(board: Path) -> pd.DataFrame:
    return pd.read_csv(board / "results.csv")


def test_a_submission_cannot_extend_an_official_row_or_move_a_reference(shipped, tmp_path, capsys):
    board = shipped
    central = _official(board, "sst2", "centralized")
    fedavg = _official(board, "sst2", "fedavg", "uniform")
    before_rows = _rows(board)
    official_before = before_rows[before_rows["track"] == "official"].reset_index(drop=True)

    # a centralized result with accuracy 0.01 and a made-up seed, with the maintainers' profile label
    fake_central = copy.deepcopy(central["result"])
    fake_central["final"]["accuracy"] = 0.01
    fake_central["seed"] = fake_central["config"]["seed"] = 77
    path = tmp_path / "central.json"
    path.write_text(json.dumps({"submission": {**central["submission"]}, "result": fake_central}))
    with pytest.raises(UserError, match="matches no run of the card's plan"):
        prepare_submission(path, board, official=True)  # even through the API, not an official row
    before = tree(board)
    assert main(["leaderboard", "submit", str(path), "--root", str(board)]) == 2  # the maintainers' name
    assert "reserved" in capsys.readouterr().err and tree(board) == before

    # a fedavg result with accuracy 1.0 and a made-up seed: only ever a community row
    fake_fed = copy.deepcopy(fedavg["result"])
    fake_fed["final"]["accuracy"] = 1.0
    fake_fed["seed"] = fake_fed["config"]["seed"] = 78
    (tmp_path / "fed.json").write_text(json.dumps(fake_fed))
    (tmp_path / "central2.json").write_text(json.dumps(fake_central))
    for name in ("fed.json", "central2.json"):
        assert main(["leaderboard", "submit", str(tmp_path / name), "--root", str(board), "--submitter", "mallory",
                     "--profile", "smoke"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    after = _rows(board)
    official_after = after[after["track"] == "official"].reset_index(drop=True)
    pd.testing.assert_frame_equal(official_after, official_before)  # no official row, no reference moved
    community = after[(after["track"] == "community") & (after["task"] == "sst2")]
    fed_row = community[community["method"] == "fedavg"].iloc[0]
    ref = official_before[(official_before["task"] == "sst2") & (official_before["algorithm"] == "centralized")
                          & (official_before["dp"] == "none")].iloc[0]
    assert fed_row["submitter"] == "mallory" and fed_row["n_seeds"] == 1 and fed_row["mean"] == 1.0
    assert fed_row["centralized"] == pytest.approx(ref["mean"])  # compared with the official reference
    page = (board / "smoke" / "README.md").read_text()
    assert "fedavg · community (mallory)" in page
    assert validate_all(board) == []
    # and the official rows stay what a rebuild of the official submissions alone gives
    build(board)
    assert _rows(board)[lambda d: d["track"] == "official"].reset_index(drop=True).equals(official_before)


def test_build_deletes_the_plots_and_pages_it_no_longer_makes(board, capsys):
    """A plot of a task no longer on the board, a stale smoke page: `leaderboard build` removes them; files it
    does not make (a maintainer's notes) stay."""
    stale = [board / "plots" / "curves-gone-0000.png", board / "plots" / "alpha-gone-0000.png",
             board / "smoke" / "README.md", board / "smoke" / "plots" / "ratio.png"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"old")
    keep = board / "plots" / "NOTES.txt"
    keep.write_text("mine")
    assert main(["leaderboard", "build", "--root", str(board)]) == 0
    capsys.readouterr()
    assert not any(p.exists() for p in stale)
    assert keep.read_text() == "mine" and (board / "README.md").is_file()
