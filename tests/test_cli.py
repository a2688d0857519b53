from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from factories import breast_image, vindr_tree, write_csv
from mammosynth.io import write_png


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mammosynth.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_demo_runs_end_to_end(tmp_path):
    """The README's first command, shortened: phantoms → prepare → GAN → balanced expansion → evaluation."""
    result = run("demo", "--out", str(tmp_path / "demo"), "--n", "40", "--train-steps", "20")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["prepared_counts"]["images"]["total"] == 40
    assert summary["counts_before"] == {"none": 24, "benign-mass": 6, "malignant-mass": 6, "calcification": 4}
    assert set(summary["counts_after"].values()) == {24} and summary["synthetic_images"] == 18 + 18 + 20
    from mammosynth.datasets import load_dataset

    prepared = load_dataset(tmp_path / "demo" / "prepared").records
    held_out = [r for r in prepared if r.split in ("val", "test")]
    assert summary["evaluation"]["real_split"] == "test,val" and summary["evaluation"]["real_images"] == len(held_out)
    evaluation = json.loads((tmp_path / "demo" / "expanded" / "evaluation" / "evaluation.json").read_text())
    assert evaluation["inputs"]["train_images"] == sum(r.split == "train" for r in prepared)
    # the balanced expansion has no new normal images: a C2ST on it cannot be drawn in the held-out mix
    mix = evaluation["realism_c2st"]["mix"]
    assert not mix["matched"] and "/none" in mix["reason"] and summary["evaluation"]["expanded_mix_matched"] is False
    # so realism is measured on twins: two generated images per held-out record, with that record's conditions,
    # and the report's realism section is that test (one C2ST, not a second one on the expansion's mix)
    tested = json.loads((tmp_path / "demo" / "held-out-twins" / "c2st.json").read_text())
    realism = evaluation["realism_c2st"]
    assert realism["source"] == "held-out twins" and realism["auc_repeats"] == tested["auc_repeats"]
    assert realism["test_images"] == tested["test_images"] and realism["split"] == "test,val"
    twins = load_dataset(tmp_path / "demo" / "held-out-twins" / "images").records
    assert len(twins) == 2 * len(held_out)
    # the demo's GAN renders label maps: the twins' layouts are drawn by the parametric model for their requests
    assert summary["generator"]["config"] == "gan/cpu-64-labels"
    assert (
        json.loads((tmp_path / "demo" / "held-out-twins" / "images" / "generate.json").read_text())["layout"]
        == "phantom"
    )
    asked = sorted((t.extra["provenance"]["conditions"].get("view"), t.view) for t in twins)
    assert asked == sorted((r.view, r.view) for r in held_out for _ in range(2))
    assert summary["evaluation"]["held_out_twins_c2st_auc"] == tested["auc"]
    report = tmp_path / "demo" / "expanded" / "evaluation" / "report.html"
    assert report.stat().st_size > 10_000 and "Side by side" in report.read_text()
    assert "Tested on held-out twins" in report.read_text()
    assert "not for diagnosis" in (tmp_path / "demo" / "expanded" / "README.md").read_text()
    for sheet in ("contact_sheet.png", "synthetic_contact_sheet.png"):
        assert (tmp_path / "demo" / sheet).stat().st_size > 1000
    refused = run("demo", "--out", str(tmp_path / "demo"), "--n", "40")
    assert refused.returncode == 2 and "pass --overwrite" in refused.stdout + refused.stderr


def test_phantom_and_inspect_commands(tmp_path):
    out = tmp_path / "ph"
    result = run(
        "phantom",
        "--out",
        str(out),
        "--n",
        "3",
        "--size",
        "64",
        "--view",
        "CC",
        "--density",
        "C",
        "--lesion",
        "malignant-mass",
    )
    assert result.returncode == 0, result.stderr
    result = run("datasets", "inspect", str(out), "--json")
    counts = json.loads(result.stdout)
    assert counts["view"]["CC"] == 3 and counts["density"]["C"] == 3 and counts["label"]["malignant"] == 3
    params = next((out / "params").glob("*.json"))
    assert run("phantom", "--out", str(tmp_path / "one"), "--params", str(params), "--size", "64").returncode == 0


def test_prepare_command_on_vindr(tmp_path):
    result = run(
        "prepare", str(vindr_tree(tmp_path / "v")), "--out", str(tmp_path / "p"), "--size", "64", "--salt", "x"
    )
    assert result.returncode == 0, result.stderr
    manifest = (tmp_path / "p" / "manifest.jsonl").read_text()
    assert "VINDR-s1" not in manifest and len(manifest.splitlines()) == 3


@pytest.mark.parametrize(
    "case", ["missing", "empty", "unknown-density", "bad-csv", "outside", "bad-size", "corrupt-image", "unknown-lesion"]
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, case):
    out = tmp_path / "out"
    if case == "missing":
        args = ["prepare", str(tmp_path / "nope"), "--out", str(out)]
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        args = ["prepare", str(tmp_path / "empty"), "--out", str(out)]
    elif case == "unknown-density":
        args = ["prepare", str(vindr_tree(tmp_path / "v", density="DENSITY E")), "--out", str(out)]
    elif case == "bad-csv":
        write_csv(tmp_path / "c" / "breast-level_annotations.csv", ["study_id"], [["s"]])
        args = ["datasets", "inspect", str(tmp_path / "c")]
    elif case == "outside":
        write_png(tmp_path / "g" / "a.png", np.zeros((16, 16), np.float32))
        write_csv(tmp_path / "g" / "meta.csv", ["file"], [["../../x.png"]])
        (tmp_path / "map.yaml").write_text("csv: meta.csv\ncolumns: {path: file}\n")
        args = ["prepare", str(tmp_path / "g"), "--mapping", str(tmp_path / "map.yaml"), "--out", str(out)]
    elif case == "bad-size":
        write_png(tmp_path / "g" / "a.png", np.zeros((16, 16), np.float32))
        args = ["prepare", str(tmp_path / "g"), "--out", str(out), "--size", "300"]
    elif case == "corrupt-image":
        (tmp_path / "g").mkdir()
        (tmp_path / "g" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
        args = ["prepare", str(tmp_path / "g"), "--out", str(out)]
    else:
        args = ["phantom", "--out", str(out), "--lesion", "tumour"]
    result = run(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert not out.exists() or not any(out.iterdir())


def prepare_64(source, tmp_path) -> list[str]:
    """``prepare`` of ``source`` at 64 px into ``tmp_path/out`` with the mapping ``tmp_path/map.yaml``."""
    return [
        "prepare",
        str(source),
        "--out",
        str(tmp_path / "out"),
        "--size",
        "64",
        "--mapping",
        str(tmp_path / "map.yaml"),
    ]


def test_missing_files_are_counted_and_named_not_written(tmp_path):
    """A partial download: the files a CSV lists but the folder lacks were dropped with "skipped": [];
    inspect and prepare now name them on stderr, and prepare.json holds only counts (no source path)."""
    for k in (0, 1, 2):
        write_png(tmp_path / "src" / f"{k}.png", breast_image(seed=k))
    rows = [[f"{k}.png", f"pat{k}"] for k in range(4)] + [["P_00042_secret.png", "pat9"]]
    write_csv(tmp_path / "src" / "metadata.csv", ["file", "patient"], rows)
    (tmp_path / "map.yaml").write_text("columns: {path: file, patient: patient}\n")
    looked = run("datasets", "inspect", str(tmp_path / "src"), "--mapping", str(tmp_path / "map.yaml"))
    assert looked.returncode == 0, looked.stderr
    assert "warning: 2 image(s) listed but missing, not counted above: 3.png; P_00042_secret.png" in looked.stderr
    done = run(*prepare_64(tmp_path / "src", tmp_path))
    assert done.returncode == 0, done.stderr
    assert "warning: 2 image(s) listed but missing, prepared without them: 3.png; P_00042_secret.png" in done.stderr
    info = json.loads((tmp_path / "out" / "prepare.json").read_text())
    assert info["images"] == 3 and info["skipped"] == {"unusable_images": 0, "missing_files": 2, "bad_annotations": 0}
    written = "".join(
        p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.suffix in (".json", ".jsonl")
    )
    assert "P_00042" not in written and "secret" not in written


def test_fit_prints_both_frames_and_refuses_a_bad_frame(tmp_path):
    image = tmp_path / "breast.png"
    write_png(image, breast_image(96, 128, side="right"), bits=8)
    result = run("fit", str(image), "--frame-px", "160x120")
    assert result.returncode == 0, result.stderr
    fitted = json.loads(result.stdout)
    assert fitted["frame_px"] == [160, 120] and fitted["iou"] > 0.9
    # a half-ellipse centred on the chest wall: the publication's centre sits on it (x = 120 / norm), y up
    norm = max(120, 160 - (80 - 63) + 1 - 6)  # about the skin line's top, 6 rows below the image's top
    assert fitted["outline"]["X0"] == pytest.approx(120 / norm, abs=0.05)
    assert fitted["phantom_outline"]["X0"] == pytest.approx(1.0, abs=0.05)
    for bad in ("160", "0x120", "ax120", "100x120"):
        refused = run("fit", str(image), "--frame-px", bad)
        assert refused.returncode == 2 and "--frame-px" in refused.stderr, (bad, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1


def test_skip_bad_leaves_out_images_with_bad_annotations_counted_and_named(tmp_path):
    """Without --skip-bad a bad lesion value stops the run (one line); with it that image alone is left out,
    named on stderr, counted in prepare.json (no source path there), and the rest prepared."""
    source = tmp_path / "src"
    for k in range(4):
        write_png(source / "img" / f"{k}.png", breast_image(seed=k))
    rows = [[f"img/{k}.png", "mass", 30, 40, 5] for k in range(4)]
    rows[2][2] = "3O"  # unparseable
    rows[3][4] = -3  # negative radius
    write_csv(source / "metadata.csv", ["file", "klass", "x", "y", "r"], rows)
    (tmp_path / "map.yaml").write_text(
        "csv: metadata.csv\ncolumns: {path: file, category: klass, cx: x, cy: y, radius: r}\n"
    )
    args = prepare_64(source, tmp_path)
    stopped = run(*args)
    assert stopped.returncode == 2 and "metadata.csv:4: lesion coordinates are not numbers" in stopped.stderr
    assert not (tmp_path / "out").exists()
    done = run(*args, "--skip-bad")
    assert done.returncode == 0, done.stderr
    assert "warning: 2 image(s) with a bad annotation, left out (--skip-bad)" in done.stderr
    assert "metadata.csv:5: mass circle radius must be positive, got -3" in done.stderr
    info = json.loads((tmp_path / "out" / "prepare.json").read_text())
    assert info["images"] == 2 and info["skipped"]["bad_annotations"] == 2
    assert str(source) not in (tmp_path / "out" / "prepare.json").read_text()
    counted = run("datasets", "inspect", str(source), "--mapping", str(tmp_path / "map.yaml"), "--skip-bad", "--json")
    assert counted.returncode == 0, counted.stderr
    assert len(json.loads(counted.stdout)["dataset"]["bad_annotations"]) == 2
