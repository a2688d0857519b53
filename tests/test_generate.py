"""Generation, conditioning, inpainting, the lesion-verification loop and bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mammosynth import api
from mammosynth.datasets import load_dataset
from mammosynth.datasets.schema import Record, write_manifest
from mammosynth.errors import InputError
from mammosynth.generate import DiffusionPipeline, LesionChecker
from mammosynth.io.images import read_image, write_png

FAST = [
    "train.batch_size=8",
    "train.lr=0.002",
    "train.warmup_steps=20",
    "train.ae_steps=100",
    "train.steps=300",
    "train.checkpoint_every=300",
    "train.sample_every=1000",
]


def toy_views(root: Path, n: int = 32) -> Path:
    """Breast-like discs; MLO images also carry a bright top-left triangle (the pectoral muscle)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    records = []
    for i in range(n):
        view = "CC" if i % 2 else "MLO"
        image = 0.05 + 0.05 * rng.random((32, 32))
        image[(xx / 20) ** 2 + ((yy - 16) / 14) ** 2 < 1] += 0.4
        if view == "MLO":
            image[(xx + yy) < 14] = 0.9
        write_png(root / f"images/{i}.png", image.astype(np.float32))
        records.append(
            Record(
                image_id=str(i),
                path=f"images/{i}.png",
                dataset="toy",
                patient_key=f"p{i}",
                view=view,
                laterality="L" if i % 4 < 2 else "R",
                density="B",
                width=32,
                height=32,
            )
        )
    write_manifest(root, records)
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ldm")
    api.train(toy_views(root / "data"), root / "run", config="tiny", set=FAST)
    return root / "run"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mammosynth.cli", *args], capture_output=True, text=True)


def test_requested_view_changes_the_output_accordingly(model):
    pipeline = DiffusionPipeline(str(model))
    seeds = list(range(6))
    yy, xx = np.mgrid[:32, :32]
    corner = (xx + yy) < 12
    cc = pipeline.sample([{"view": "CC"}] * 6, seeds, steps=20)[:, corner].mean(1)
    mlo = pipeline.sample([{"view": "MLO"}] * 6, seeds, steps=20)[:, corner].mean(1)
    assert (mlo > cc + 0.2).all(), (cc, mlo)  # each seed: the MLO image has the pectoral corner, the CC not


def test_generation_is_deterministic_by_seed_and_laterality_sets_orientation(model, tmp_path):
    common = dict(n=4, view="CC", steps=10, batch_size=2)
    first = api.generate(model, tmp_path / "a", seed=5, laterality="R", orientation="native", **common)
    api.generate(model, tmp_path / "b", seed=5, laterality="R", orientation="native", **common)
    api.generate(model, tmp_path / "c", seed=6, laterality="R", orientation="native", **common)
    api.generate(model, tmp_path / "d", seed=5, laterality="R", orientation="standard", **common)
    assert first["images"] == 4
    for name in ("syn0000000", "syn0000003"):
        a, b, c, d = (read_image(tmp_path / x / "images" / f"{name}.png").pixels for x in "abcd")
        assert np.array_equal(a, b) and not np.array_equal(a, c)
        assert np.array_equal(a, d[:, ::-1])  # native orientation mirrors right breasts
        assert d[:, :12].mean() > d[:, -12:].mean()  # standard orientation: chest wall (breast) on the left
    record = load_dataset(tmp_path / "a").records[0]
    provenance = record.extra["provenance"]
    assert record.laterality == "R" and record.view == "CC" and record.dataset == "mammosynth-synthetic"
    for key in ("model_id", "sampler", "steps", "guidance", "seed", "conditions", "batch"):
        assert key in provenance
    # regenerate one image from its provenance alone, bit for bit
    again = DiffusionPipeline(str(model)).sample(
        [provenance["conditions"]] * len(provenance["batch"]),
        [provenance["seed"] if i == provenance["index"] else 0 for i in provenance["batch"]],
        sampler=provenance["sampler"],
        steps=provenance["steps"],
        guidance=provenance["guidance"],
    )
    position = provenance["batch"].index(provenance["index"])
    written = read_image(tmp_path / "d" / record.path).pixels
    assert np.abs(again[position] - written).max() <= 1 / 65535


def test_conditions_csv_and_guidance_per_row(model, tmp_path):
    table = tmp_path / "c.csv"
    table.write_text("view,lesion,count,guidance\nCC,none,2,1\nMLO,malignant-mass,1,4\n")
    result = api.generate(model, tmp_path / "g", conditions=table, steps=5)
    records = load_dataset(tmp_path / "g").records
    assert result["images"] == 3 and [r.view for r in records] == ["CC", "CC", "MLO"]
    assert records[2].label == "malignant" and records[2].extra["provenance"]["guidance"] == 4.0


def test_inpainting_leaves_pixels_outside_the_mask_unchanged(model, tmp_path):
    image = read_image(model.parent / "data" / "images" / "1.png").pixels
    mask = np.zeros((32, 32), np.uint8)
    mask[12:20, 8:16] = 255
    write_png(tmp_path / "mask.png", mask, bits=8)
    out = api.inpaint(
        model.parent / "data" / "images" / "1.png",
        tmp_path / "mask.png",
        model,
        tmp_path / "in.png",
        lesion="malignant-mass",
        steps=10,
    )
    result = read_image(tmp_path / "in.png").pixels
    inside = mask > 0
    assert np.array_equal(result[~inside], image[~inside])  # tolerance: zero, bit-identical 16-bit values
    assert np.abs(result[inside] - image[inside]).mean() > 1e-3
    assert out["operation"] == "insert" and json.loads((tmp_path / "in.json").read_text())["seed"] == 0
    api.inpaint(tmp_path / "in.png", tmp_path / "mask.png", model, tmp_path / "out.png", remove=True, steps=10)
    removed = read_image(tmp_path / "out.png").pixels
    grown = np.zeros_like(inside)
    grown[10:22, 6:18] = True
    assert np.array_equal(removed[~grown], result[~grown])


def test_verify_loop_rejects_and_resamples(model, tmp_path, monkeypatch):
    from mammosynth.generate.dataset import attempt_seed

    api.train(model.parent / "data", tmp_path / "v", model="verifier", config="tiny", set=["train.steps=3"])
    real_check, calls = LesionChecker.check, []

    def second_time_lucky(self, images, conditions, regions):  # images 1 and 3 fail their first draw
        verdicts = real_check(self, images, conditions, regions)
        calls.append(np.array(images))
        return [{**v, "accepted": len(calls) > 1 or k % 2 == 0} for k, v in enumerate(verdicts)]

    monkeypatch.setattr(LesionChecker, "check", second_time_lucky)
    result = api.generate(
        model, tmp_path / "g", n=4, lesion="malignant-mass", steps=5, verify=tmp_path / "v", max_attempts=2, seed=7
    )
    verify = result["verify"]
    assert len(calls) == 2 and len(calls[1]) == 2  # only the two rejected images were drawn again
    assert verify["samples_drawn"] == 6 and verify["accepted"] == result["images"] == 4
    assert verify["acceptance_rate"] == round(4 / 6, 4) and verify["rejected_after_max_attempts"] == []
    assert not np.allclose(calls[1], calls[0][[1, 3]])  # a new seed, a new image
    records = sorted(load_dataset(tmp_path / "g").records, key=lambda r: r.image_id)
    assert [r.extra["provenance"]["attempt"] for r in records] == [0, 1, 0, 1]
    assert [r.extra["provenance"]["seed"] for r in records] == [
        attempt_seed(7, i, a) for i, a in enumerate([0, 1, 0, 1])
    ]
    for record in records:
        assert record.extra["provenance"]["verifier"]["accepted"] is True
    monkeypatch.setattr(LesionChecker, "check", lambda self, images, c, r: [{"accepted": False}] * len(images))
    none = api.generate(
        model, tmp_path / "none", n=3, lesion="malignant-mass", steps=5, verify=tmp_path / "v", max_attempts=2
    )
    assert none["images"] == 0 and none["verify"]["samples_drawn"] == 6
    assert len(none["verify"]["rejected_after_max_attempts"]) == 3


def test_checker_rules(model, tmp_path, monkeypatch):
    api.train(model.parent / "data", tmp_path / "v", model="verifier", config="tiny", set=["train.steps=1"])
    checker = LesionChecker(str(tmp_path / "v"))
    answers = [
        {"lesion_probability": 0.9, "kind": "benign-mass", "peak": [0.5, 0.5], "inside": True},
        {"lesion_probability": 0.9, "kind": "calcification", "peak": [0.5, 0.5], "inside": True},
        {"lesion_probability": 0.9, "kind": "malignant-mass", "peak": [0.1, 0.1], "inside": False},
        {"lesion_probability": 0.2, "kind": "malignant-mass", "peak": [0.5, 0.5], "inside": True},
        {"lesion_probability": 0.2, "kind": "benign-mass", "peak": [0.5, 0.5], "inside": True},
    ]
    monkeypatch.setattr(checker.model, "inspect", lambda images, regions: answers)
    mass = {"category": "mass", "pathology": "malignant"}
    region = np.ones((32, 32), bool)
    verdicts = checker.check(
        np.zeros((5, 32, 32), np.float32), [mass, mass, mass, mass, {"category": "none"}], [region] * 5
    )
    assert [v["accepted"] for v in verdicts] == [True, False, False, False, True]
    assert verdicts[0]["pathology_agrees"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--density", "E"], "unknown density 'E'"),
        (["--lesion", "tumour"], "unknown lesion 'tumour'"),
        (["--lesion-x", "1.5"], "out of range"),
        (["--sampler", "euler"], "unknown sampler"),
        (["--guide", "colour"], "cannot guide"),
    ],
)
def test_bad_generation_requests_exit_2_and_write_nothing(model, tmp_path, args, message):
    result = cli("generate", str(model), "--out", str(tmp_path / "g"), "--n", "2", "--steps", "2", *args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "g").exists()


def test_bad_masks_checkpoints_and_configs(model, tmp_path):
    write_png(tmp_path / "m64.png", np.ones((64, 64), np.uint8) * 255, bits=8)
    result = cli("generate", str(model), "--out", str(tmp_path / "g"), "--n", "1", "--mask", str(tmp_path / "m64.png"))
    assert result.returncode == 2 and "m64.png: mask is 64×64 but the model makes 32×32" in result.stderr
    image = model.parent / "data" / "images" / "0.png"
    result = cli(
        "inpaint",
        str(image),
        "--mask",
        str(tmp_path / "m64.png"),
        "--model",
        str(model),
        "--out",
        str(tmp_path / "x.png"),
        "--lesion",
        "benign-mass",
    )
    assert result.returncode == 2 and "mask is 64×64" in result.stderr and not (tmp_path / "x.png").exists()
    result = cli("generate", str(tmp_path / "missing"), "--out", str(tmp_path / "g"), "--n", "1")
    assert result.returncode == 2 and "checkpoint not found" in result.stderr
    api.train(model.parent / "data", tmp_path / "v", model="verifier", config="tiny", set=["train.steps=1"])
    result = cli("generate", str(tmp_path / "v"), "--out", str(tmp_path / "g"), "--n", "1")
    assert result.returncode == 2 and "a 'verifier' checkpoint cannot generate images" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {image_size: 32, widht: 3}\n")
    result = cli("train", str(model.parent / "data"), "--out", str(tmp_path / "t"), "--config", str(bad))
    assert result.returncode == 2 and "unknown key 'model.widht'" in result.stderr and not (tmp_path / "t").exists()
    with pytest.raises(InputError, match="not both or neither"):
        api.inpaint(image, tmp_path / "m64.png", model, tmp_path / "y.png")
    assert not list(tmp_path.glob("g*"))


def test_every_family_is_declared_once_and_every_pipeline_has_one_sample_signature():
    import inspect

    from mammosynth.families import FAMILIES, family, generator_names
    from mammosynth.generate.pipeline import Pipeline
    from mammosynth.models import model_config_class
    from mammosynth.training import task_class

    for name in generator_names():
        pipeline = family(name).pipeline_class()
        assert issubclass(pipeline, Pipeline) and pipeline.family == name
        assert pipeline.sample is Pipeline.sample, name  # one signature: a family implements _sample only
    kinds = {p.kind for p in inspect.signature(Pipeline.sample).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds
    for name, spec in FAMILIES.items():
        assert task_class(name).family == name and model_config_class(name) is spec.config_class()
    with pytest.raises(
        InputError, match="unknown model family 'vae'; known: ldm, gan, translation, upscale, lesion, verifier"
    ):
        family("vae")
    with pytest.raises(InputError, match="does not generate images"):
        family("verifier").pipeline_class()
    from mammosynth.families import refiner_names
    from mammosynth.generate.pipeline import Trained

    for name in refiner_names():  # a refiner is a trained network of its family that is not a generator
        refiner = family(name).refiner_class()
        assert issubclass(refiner, Trained) and not issubclass(refiner, Pipeline) and refiner.family == name
    with pytest.raises(InputError, match="does not refine images; refiners: upscale, lesion"):
        family("gan").refiner_class()
