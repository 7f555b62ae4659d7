"""`fednlp-bench partition ...` end to end: create, export/import round trips, stats, verify, bad input."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from fednlp_bench.cli import main
from fednlp_bench.partition.export import FORMATS

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FEDNLP_SHARED_DATA", REPO.parent / "shared" / "data"))
RECIPE = ["--task", "demo", "--method", "label", "--alpha", "0.5", "--clients", "8", "--max-train", "800",
          "--max-test", "200"]


def run(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def digest_of(text: str) -> str:
    return text.split("digest ")[1].split()[0]


def one_error(rc, err, word):
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err and word in lines[0], err


@pytest.mark.parametrize("fmt", FORMATS)
def test_create_export_import_round_trip_keeps_the_digest(fmt, tmp_path, capsys):
    rc, out, _ = run(capsys, ["partition", "create", *RECIPE, "--output", str(tmp_path / "a")])
    assert rc == 0
    digest = digest_of(out)
    rc, out, _ = run(capsys, ["partition", "export", "--from", str(tmp_path / "a"), "--format", fmt,
                              "--output", str(tmp_path / "b"), *RECIPE])
    assert rc == 0 and digest_of(out) == digest
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["digest"] == digest and manifest["format"] == fmt
    rc, out, _ = run(capsys, ["partition", "import", str(tmp_path / "b"), "--output", str(tmp_path / "c")])
    assert rc == 0 and digest_of(out) == digest


def test_stats_prints_table_and_writes_pngs(tmp_path, capsys):
    import matplotlib.image as mpimg

    rc, out, _ = run(capsys, ["partition", "stats", *RECIPE, "--output", str(tmp_path)])
    assert rc == 0
    assert "mean pairwise JSD" in out and "niid_label_clients=8_alpha=0.5" in out
    for name in ("label_heatmap.png", "client_sizes.png", "jsd_matrix.png"):
        img = mpimg.imread(tmp_path / name)
        assert img.shape[1] >= 600 and img.shape[0] >= 400
        assert img.std() > 0.01  # not blank
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["num_clients"] == 8 and sum(stats["client_sizes"]) == 800


def test_stats_from_an_export_matches_stats_from_the_recipe(tmp_path, capsys):
    run(capsys, ["partition", "create", *RECIPE, "--output", str(tmp_path / "a")])
    run(capsys, ["partition", "stats", *RECIPE, "--output", str(tmp_path / "s1")])
    rc, _, _ = run(capsys, ["partition", "stats", "--from", str(tmp_path / "a"), *RECIPE, "--output", str(tmp_path / "s2")])
    assert rc == 0
    s1, s2 = (json.loads((tmp_path / s / "stats.json").read_text()) for s in ("s1", "s2"))
    assert s1["histograms"] == s2["histograms"] and s1["digest"] == s2["digest"]


def test_verify_rebuilds_the_canonical_demo_partitions(tmp_path, capsys):
    for p in (REPO / "partition").glob("demo_*.yaml"):
        shutil.copy(p, tmp_path)
    rc, out, _ = run(capsys, ["partition", "verify", "--recipes", str(tmp_path)])
    assert rc == 0 and out.count("OK") == len(list(tmp_path.glob("*.yaml"))) >= 5
    bad = tmp_path / "demo_uniform_c10.yaml"
    bad.write_text(bad.read_text().replace("expected_digest: ", "expected_digest: 00"))
    rc, out, _ = run(capsys, ["partition", "verify", "--recipes", str(tmp_path)])
    assert rc == 1 and "FAIL  demo_uniform_c10.yaml" in out


@pytest.mark.skipif(not (SHARED / "agnews").exists(), reason=f"real data not found at {SHARED}")
def test_verify_canonical_partitions_on_real_data(capsys, monkeypatch):
    monkeypatch.setenv("FEDNLP_DATA_DIR", str(SHARED))
    rc, out, _ = run(capsys, ["partition", "verify"])
    assert rc == 0 and "FAIL" not in out and "SKIP" not in out
    assert "natural_clients=5_by=domain" in out


def test_export_into_a_non_empty_folder_is_refused(tmp_path, capsys):
    target = tmp_path / "t"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    rc, _, err = run(capsys, ["partition", "create", *RECIPE, "--output", str(target)])
    one_error(rc, err, "not empty")
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def unwritable_folder(tmp_path: Path, how: str) -> Path:
    """An --output that cannot be written: a file, a folder under a file, or one in a read-only folder."""
    if how in ("is-a-file", "under-a-file"):
        taken = tmp_path / "taken"
        taken.write_text("x")
        return taken if how == "is-a-file" else taken / "out"
    if os.name != "posix" or os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    return ro / "out"


@pytest.mark.parametrize("how", ["is-a-file", "under-a-file", "read-only"])
@pytest.mark.parametrize("action", ["create", "stats"])
def test_partition_output_that_cannot_be_written_is_one_line(action, how, tmp_path, capsys):
    target = unwritable_folder(tmp_path, how)
    rc, out, err = run(capsys, ["partition", action, *RECIPE, "--output", str(target)])
    one_error(rc, err, "not writable")
    assert "--output" in err and out == ""  # refused before the partition was built
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder either


def test_partition_export_that_fails_while_writing_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    import fednlp_bench.partition.export as export

    def disk_full(partition, tmp):
        (tmp / "partition.json").write_text("{")  # half written when the disk filled up
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export, "_write_index_json", disk_full)
    rc, _, err = run(capsys, ["partition", "create", *RECIPE, "--output", str(tmp_path / "p")])
    one_error(rc, err, "No space left")
    assert list(tmp_path.iterdir()) == []  # neither the export nor its temp folder


def test_corrupt_h5_is_one_line(tmp_path, capsys):
    bad = tmp_path / "partition_index.h5"
    bad.write_bytes(os.urandom(4096))
    rc, _, err = run(capsys, ["partition", "import", str(bad)])
    one_error(rc, err, "HDF5")


def test_manifest_digest_mismatch_is_refused(tmp_path, capsys):
    from fednlp_bench.partition.manifest import sha256_file

    run(capsys, ["partition", "create", *RECIPE, "--output", str(tmp_path / "a")])
    index = tmp_path / "a" / "partition.json"
    data = json.loads(index.read_text())
    first, second = data["train"]["0"], data["train"]["1"]
    first[0], second[0] = second[0], first[0]  # same ids overall, different clients
    index.write_text(json.dumps(data))
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    manifest["files"]["partition.json"] = sha256_file(index)
    (tmp_path / "a" / "manifest.json").write_text(json.dumps(manifest))
    rc, _, err = run(capsys, ["partition", "import", str(tmp_path / "a")])
    one_error(rc, err, "digest")


def test_natural_partition_needs_an_id_column(tmp_path, capsys):
    rc, _, err = run(capsys, ["partition", "create", "--task", "demo", "--method", "natural", "--output",
                              str(tmp_path / "n")])
    one_error(rc, err, "natural client id")
    assert not (tmp_path / "n").exists()


def test_more_clients_than_examples(tmp_path, capsys):
    rc, _, err = run(capsys, ["partition", "create", "--task", "demo", "--max-train", "50", "--clients", "60",
                              "--output", str(tmp_path / "x")])
    one_error(rc, err, "60 clients")
    assert not (tmp_path / "x").exists()
