"""The lesion-centred two-sample test: patches land on the lesions, kinds are matched, and it tells a lesion
drawn where it was asked from one drawn elsewhere."""

import numpy as np

from mammosynth.datasets.schema import Finding, Record
from mammosynth.evaluate.lesions import lesion_centre, lesion_patches, lesion_two_sample_test

SIZE = 32


def disc(x: float, y: float, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    image = 0.3 + 0.05 * rng.standard_normal((SIZE, SIZE))
    image[(xx - x * SIZE) ** 2 + (yy - y * SIZE) ** 2 <= 9] = 0.9
    return image.clip(0, 1)


def real_set(n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[Record]]:
    images, records = [], []
    for k in range(n):
        x, y = rng.uniform(0.3, 0.7, 2)
        images.append(disc(x, y, rng))
        finding = Finding("mass", "malignant", geometry="circle", coords=[x * SIZE, y * SIZE, 3.0])
        records.append(Record(f"r{k}", "x.png", "d", f"p{k // 2}", findings=[finding], width=SIZE, height=SIZE))
    return np.stack(images), records


def synthetic_set(n: int, rng: np.random.Generator, misplaced: bool) -> tuple[np.ndarray, list[Record]]:
    images, records = [], []
    for k in range(n):
        x, y = rng.uniform(0.3, 0.7, 2)
        drawn = (1 - x, 1 - y) if misplaced and abs(x - 0.5) + abs(y - 0.5) > 0.15 else (x, y)
        if misplaced and drawn == (x, y):
            drawn = (0.1, 0.1)
        images.append(disc(*drawn, rng))
        asked = {"category": "mass", "pathology": "malignant", "lesion_x": x, "lesion_y": y}
        records.append(Record(f"s{k}", "x.png", "syn", f"s{k}", extra={"provenance": {"conditions": asked}}))
    return np.stack(images), records


def test_patches_are_centred_on_the_lesion():
    rng = np.random.default_rng(0)
    images, records = real_set(4, rng)
    patches = lesion_patches(images, [lesion_centre(r) for r in records], patch_px=8)
    assert patches.shape == (4, 8, 8)
    assert (patches[:, 3:5, 3:5] > 0.8).all()  # the disc is in the middle of every patch
    assert (patches[:, 0, 0] < 0.6).all()


def test_normal_images_and_unshared_kinds_are_left_out():
    rng = np.random.default_rng(1)
    images, records = real_set(6, rng)
    records[0].findings = []
    assert lesion_centre(records[0]) is None
    synthetic, synthetic_records = synthetic_set(6, rng, misplaced=False)
    for record in synthetic_records:
        record.extra["provenance"]["conditions"]["category"] = "calcification"
    result = lesion_two_sample_test(images, records, synthetic, synthetic_records, patch_px=16, steps=10)
    assert result["kinds"] == [] and "skipped" in result and result["real_lesions"] == 0


def test_lesions_away_from_where_they_were_asked_are_told_apart():
    rng = np.random.default_rng(2)
    real, real_records = real_set(48, rng)
    placed, placed_records = synthetic_set(48, rng, misplaced=False)
    misplaced, misplaced_records = synthetic_set(48, rng, misplaced=True)
    bad = lesion_two_sample_test(real, real_records, misplaced, misplaced_records, patch_px=16, steps=150)
    good = lesion_two_sample_test(real, real_records, placed, placed_records, patch_px=16, steps=150)
    assert bad["real_lesions"] == 48 and bad["kinds"] == ["mass"]
    assert bad["auc"] > 0.9
    assert good["auc"] < bad["auc"] - 0.2
