"""Expanding a dataset (issue 6): plans with known counts, outputs re-read by the project's own adapters,
DICOM marked synthetic with no source identifier, kill-and-resume to exactly the planned set, bit-exact
regeneration, and one clear error for each kind of bad input."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pydicom
import pytest

from mammosynth import api
from mammosynth.datasets import load_dataset
from mammosynth.datasets.schema import write_manifest
from mammosynth.errors import InputError
from mammosynth.export import plan_expansion
from mammosynth.phantom import make_phantom_dataset

MIX = (("none", 12), ("malignant-mass", 4), ("benign-mass", 2))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mammosynth.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An imbalanced 32 px phantom dataset (12 normal, 4 malignant, 2 benign) and a tiny GAN trained on it."""
    root = tmp_path_factory.mktemp("expand")
    parts = []
    for k, (lesion, n) in enumerate(MIX):
        make_phantom_dataset(root / lesion, n=n, size=32, seed=1, lesion=lesion, start=100 * k)
        parts.append(root / lesion)
    api._merge(parts, root / "data")
    api.train(root / "data", root / "run", model="gan", config="tiny")
    return root


def test_plans_have_the_counts_their_targets_name(setup, tmp_path):
    records = load_dataset(setup / "data").records
    balanced = plan_expansion(records, "balanced")
    assert {c["cell"]["lesion"]: (c["real"], c["add"]) for c in balanced.cells} == {
        "none": (12, 0),
        "malignant-mass": (4, 8),
        "benign-mass": (2, 10),
    }
    assert balanced.total == 18 and sum(1 for c in balanced.images if c["lesion"] == "benign-mass") == 10
    per_class = plan_expansion(records, "10-per-class")
    assert {c["cell"]["lesion"]: c["add"] for c in per_class.cells} == {
        "none": 0,
        "malignant-mass": 6,
        "benign-mass": 8,
    }
    by_two = plan_expansion(records, "balanced", by=("view", "lesion"))
    top = max(c["real"] for c in by_two.cells)
    assert all(c["real"] + c["add"] == top for c in by_two.cells)
    assert all(
        img["view"] == c["cell"]["view"]
        for c in by_two.cells
        for img in by_two.images
        if img["lesion"] == c["cell"]["lesion"] and img["view"] == c["cell"]["view"]
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text("by: [lesion]\ncells:\n  - {lesion: calcification, add: 5}\n  - {lesion: benign-mass, total: 3}\n")
    from_yaml = plan_expansion(records, str(spec))
    assert {c["cell"]["lesion"]: c["add"] for c in from_yaml.cells if c["add"]} == {
        "calcification": 5,
        "benign-mass": 1,
    }
    assert plan_expansion(records, "balanced", seed=3).images == plan_expansion(records, "balanced", seed=3).images


def test_expand_writes_a_dataset_the_adapters_read_back(setup):
    out = setup / "out"
    result = api.expand(setup / "data", out, setup / "run", formats=["png", "dicom", "vindr"])
    assert result["synthetic_images"] == 18 and result["real_images"] == 18
    assert result["counts_after"] == {"none": 12, "malignant-mass": 12, "benign-mass": 12}
    records = load_dataset(out).records
    synthetic = [r for r in records if r.extra.get("synthetic")]
    assert sorted(r.image_id for r in synthetic) == [f"syn{i:07d}" for i in range(18)]
    assert sum(r.label == "benign" for r in synthetic) == 10 and sum(r.label == "malignant" for r in synthetic) == 8
    for record in synthetic:
        provenance = record.extra["provenance"]
        assert {"model_id", "seed", "conditions", "attempt", "batch", "copy_filter"} <= set(provenance)
    for record in records:  # real images come along with every file their records name
        assert (out / record.path).is_file()
        if not record.extra.get("synthetic"):
            assert (out / record.extra["phantom"]["labels"]).is_file()
    vindr = load_dataset(out / "vindr")
    assert vindr.name == "vindr-mammo" and len(vindr) == 36
    assert sum(bool(r.findings) for r in vindr.records) == 4 + 2 + 18
    import pyarrow.parquet as pq

    table = pq.read_table(out / "manifest.parquet")
    assert table.num_rows == 36 and sum(table.column("synthetic").to_pylist()) == 18
    assert (out / "manifest.csv").read_text().count("\n") == 37
    card = (out / "README.md").read_text()
    assert "not for diagnosis" in card and "| benign-mass | 2 | 12 |" in card


def test_dicom_is_marked_synthetic_and_carries_no_source_identifier(setup):
    out = setup / "out"
    if not (out / "dicom").is_dir():
        api.expand(setup / "data", out, setup / "run", formats=["png", "dicom"])
    source = load_dataset(setup / "data").records
    identifiers = (
        {r.patient_key for r in source} | {r.image_id for r in source} | {r.study_key for r in source if r.study_key}
    )
    files = sorted((out / "dicom").glob("*.dcm"))
    assert len(files) == 18
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.ImageType[0] == "DERIVED" and "SYNTHETIC" in ds.SeriesDescription
        assert ds.BurnedInAnnotation == "NO" and ds.PatientIdentityRemoved == "YES"
        assert ds.ContributingEquipmentSequence[0].Manufacturer == "mammosynth"
        assert str(ds.PatientID).startswith("synthetic-") and str(ds.PatientName) == "SYNTHETIC^MAMMOSYNTH"
        assert ds.pixel_array.shape == (32, 32)
        text = " ".join(
            str(element.value) for element in ds.iterall() if element.VR in ("LO", "SH", "PN", "LT", "ST", "UT", "CS")
        )
        assert not [i for i in identifiers if i and i in text]
    uids = {pydicom.dcmread(p).SOPInstanceUID for p in files}
    assert len(uids) == 18


def test_an_expansion_killed_midway_resumes_to_exactly_the_planned_set(setup, tmp_path):
    args = [
        "expand",
        str(setup / "data"),
        "--model",
        str(setup / "run"),
        "--target",
        "100-per-class",
        "--batch-size",
        "4",
    ]
    reference = api.expand(setup / "data", tmp_path / "reference", setup / "run", target="100-per-class", batch_size=4)
    planned = reference["plan"]["synthetic_images"]
    assert planned == 88 + 96 + 98
    out = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "mammosynth.cli", *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while (
        time.time() < deadline
        and len(list((out / "records").glob("*.json")) if (out / "records").is_dir() else []) < 40
    ):
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(list((out / "records").glob("*.json")))
    assert 0 < done < planned, "the kill should land mid-way"
    assert not (out / "manifest.jsonl").exists()
    result = cli(*args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    records = [r for r in load_dataset(out).records if r.extra.get("synthetic")]
    assert sorted(r.image_id for r in records) == [f"syn{i:07d}" for i in range(planned)]
    for record in records[::25]:  # the same images an uninterrupted run made
        assert (out / record.path).read_bytes() == (tmp_path / "reference" / record.path).read_bytes()
    assert json.loads((out / "expand.json").read_text())["made_this_run"] == planned - done


def test_a_full_disk_stops_with_one_line_and_the_rerun_finishes(setup, tmp_path, monkeypatch):
    from mammosynth.export import expand as expand_module

    real_save, calls = expand_module._save_record, {"n": 0}

    def full_after_five(out, data):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(out, data)

    monkeypatch.setattr(expand_module, "_save_record", full_after_five)
    with pytest.raises(InputError, match=r"No space left on device.*run the same command again"):
        api.expand(setup / "data", tmp_path / "full", setup / "run")
    assert len(list((tmp_path / "full" / "records").glob("*.json"))) == 5
    assert not list((tmp_path / "full").rglob("*.tmp"))
    monkeypatch.setattr(expand_module, "_save_record", real_save)
    assert api.expand(setup / "data", tmp_path / "full", setup / "run")["synthetic_images"] == 18


def test_regenerate_remakes_an_image_bit_for_bit(setup):
    out = setup / "out"
    if not (out / "manifest.jsonl").is_file():
        api.expand(setup / "data", out, setup / "run")
    result = cli("regenerate", str(out), "syn0000011")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["identical"] and found["max_abs_difference_16bit"] == 0
    with pytest.raises(InputError, match="no generator provenance"):
        api.regenerate(out, next(r.image_id for r in load_dataset(out).records if not r.extra.get("synthetic")))


def test_bad_inputs_get_one_clear_line_and_write_nothing(setup, tmp_path):
    def refused(*args: str, match: str) -> None:
        result = cli("expand", *args)
        assert result.returncode == 2, result.stdout + result.stderr
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and match in lines[0], result.stdout + result.stderr

    data, model = str(setup / "data"), str(setup / "run")
    out = tmp_path / "x"
    make_phantom_dataset(tmp_path / "big", n=6, size=64, seed=2)
    refused(str(tmp_path / "big"), "--model", model, "--out", str(out), match="the model makes 32×32 images")
    refused(data, "--model", model, "--out", str(out), "--target", "0-per-class", match="N ≥ 1")
    refused(data, "--model", model, "--out", str(out), "--target", "lots", match="neither 'balanced'")
    spec = tmp_path / "shrink.yaml"
    spec.write_text("cells:\n  - {lesion: none, total: 3}\n")
    refused(data, "--model", model, "--out", str(out), "--target", str(spec), match="an expansion only adds")
    spec.write_text("by: [view]\nbalanced: true\n")
    refused(
        data,
        "--model",
        model,
        "--out",
        str(out),
        "--target",
        str(spec),
        "--by",
        "lesion",
        match="the spec balances by ['view'] but --by says ['lesion']",
    )
    refused(data, "--model", model, "--out", str(out), "--dry-run", "--overwrite", match="contradicts")
    refused(data, "--model", model, "--out", str(out), "--format", "tiff", match="unknown output format")
    normal_only = tmp_path / "normal"
    make_phantom_dataset(normal_only, n=6, size=32, seed=4)
    api.train(normal_only, tmp_path / "normal-run", model="gan", config="tiny", set=["train.steps=2"])
    refused(data, "--model", str(tmp_path / "normal-run"), "--out", str(out), match="trained without benign images")
    assert not out.exists()
    records = load_dataset(setup / "data").records
    for record in records:
        record.view = None
    write_manifest(tmp_path / "noview", records)
    with pytest.raises(InputError, match="no image of the dataset has a known view"):
        plan_expansion(records, "balanced", by=("view",))


def test_a_different_expansion_is_not_mixed_into_an_existing_folder(setup, tmp_path):
    api.expand(setup / "data", tmp_path / "o", setup / "run", target="balanced")
    with pytest.raises(InputError, match="holds a different expansion"):
        api.expand(setup / "data", tmp_path / "o", setup / "run", target="20-per-class")
    again = api.expand(setup / "data", tmp_path / "o", setup / "run", target="balanced")
    assert again["made_this_run"] == 0 and again["synthetic_images"] == 18
    assert np.isfinite(again["copy_threshold"])


def test_the_lesion_verifier_rejects_and_counts_and_the_evaluation_uses_it(setup, tmp_path, monkeypatch):
    from mammosynth.generate.verify import LesionChecker

    api.train(setup / "data", tmp_path / "v", model="verifier", config="tiny", set=["train.steps=3"])
    real_check = LesionChecker.check

    def no_malignant(self, images, conditions, regions):  # a verdict known in advance: malignant never passes
        verdicts = real_check(self, images, conditions, regions)
        return [{**v, "accepted": c.get("pathology") != "malignant"} for v, c in zip(verdicts, conditions, strict=True)]

    with monkeypatch.context() as patched:
        patched.setattr(LesionChecker, "check", no_malignant)
        result = api.expand(setup / "data", tmp_path / "o", setup / "run", verify=tmp_path / "v", max_attempts=2)
        again = api.expand(setup / "data", tmp_path / "o", setup / "run", verify=tmp_path / "v", max_attempts=2)
    synthetic = [r for r in load_dataset(tmp_path / "o").records if r.synthetic]
    assert result["rejected"]["count"] == 8 and result["rejected"]["by_reason"] == {"lesion verifier": 8}
    assert len(synthetic) == 10 == result["plan"]["synthetic_images"] - 8  # the balanced plan: 8 malignant, 10 benign
    assert {r.extra["provenance"]["conditions"]["pathology"] for r in synthetic} == {"benign"}
    assert all(r.extra["provenance"]["verifier"]["accepted"] for r in synthetic)
    assert again["made_this_run"] == 0 and again["rejected"] == result["rejected"]
    unchecked = tmp_path / "unchecked"
    api.expand(setup / "data", unchecked, setup / "run")
    found = api.evaluate(
        setup / "data",
        unchecked,
        tmp_path / "ev",
        verifier=tmp_path / "v",
        run_utility=False,
        encoder_steps=5,
        c2st_steps=5,
        conditional_steps=5,
    )
    verdict = found["conditional"]["verifier"]
    assert verdict["judged_images"] == 18 and verdict["lesion_requests"] == 18 and verdict["normal_requests"] == 0
    assert found["inputs"]["synthetic_images"] == 18  # the real images of the expanded folder are left out
    from mammosynth.evaluate.suite import load_images

    images, records = load_images(unchecked, synthetic_only=True)
    direct = LesionChecker(str(tmp_path / "v")).check(
        images, [r.extra["provenance"]["conditions"] for r in records], [None] * len(records)
    )
    assert verdict["lesion_present"] == pytest.approx(np.mean([v["present"] for v in direct]))


def test_a_file_a_killed_writer_left_half_written_is_gone_after_the_rerun(setup, tmp_path):
    out = tmp_path / "x"
    api.expand(setup / "data", out, setup / "run", target="14-per-class", batch_size=4)
    left = out / "images" / ".syn0000003.png.k3x9q.tmp"  # what atomic_write leaves when killed mid-write
    left.write_bytes(b"half a png")
    (out / "records" / "syn0000003.json").unlink()  # the kill came before the record
    again = api.expand(setup / "data", out, setup / "run", target="14-per-class", batch_size=4)
    assert again["made_this_run"] == 1 and not left.exists()
    assert not list(out.rglob("*.tmp"))
