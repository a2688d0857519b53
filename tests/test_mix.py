"""The C2ST's synthetic images are drawn in the real set's mix of view × finding: a lesion-heavy synthetic set
from a perfect generator is told apart by its prevalence alone, and matching takes that away."""

import numpy as np

from mammosynth.datasets.schema import Finding, Record
from mammosynth.evaluate.c2st import two_sample_test
from mammosynth.evaluate.mix import match_mix, stratum

SIZE = 32


def images_and_records(n_normal: int, n_mass: int, prefix: str, rng: np.random.Generator):
    """One generator for both sets: noise, plus a bright disc for a mass (so any difference is the mix)."""
    images, records = [], []
    for k in range(n_normal + n_mass):
        image = 0.3 + 0.05 * rng.standard_normal((SIZE, SIZE))
        findings = []
        if k >= n_normal:
            x, y = rng.uniform(8, 24, 2)
            yy, xx = np.mgrid[:SIZE, :SIZE]
            image[(xx - x) ** 2 + (yy - y) ** 2 <= 16] = 0.9
            findings = [Finding("mass", "benign", geometry="circle", coords=[x, y, 4.0])]
        patient = f"{prefix}{k // 2}" if prefix == "r" else f"{prefix}{k}"
        records.append(Record(f"{prefix}{k}", "x.png", "d", patient, view="CC", findings=findings))
        images.append(image.clip(0, 1))
    return np.stack(images).astype(np.float32), records


def test_synthetic_images_are_drawn_in_the_real_mix():
    rng = np.random.default_rng(0)
    _, real = images_and_records(12, 8, "r", rng)
    _, synthetic = images_and_records(15, 40, "s", rng)
    mix = match_mix(real, synthetic, seed=0)
    drawn = [stratum(synthetic[i]) for i in mix["indices"]]
    # as many as the scarcest stratum allows (15 normals for 12 real ones), in the real proportions 12 : 8
    assert mix["matched"] and (drawn.count("CC/none"), drawn.count("CC/mass")) == (15, 10)
    assert len(set(mix["indices"])) == len(mix["indices"])
    assert abs(mix["total_variation"] - (0.6 - 15 / 55)) < 1e-9
    assert mix["strata"]["CC/mass"] == {"real": 8, "synthetic": 40, "used": 10}


def test_a_missing_stratum_is_named_and_nothing_is_dropped():
    rng = np.random.default_rng(1)
    _, real = images_and_records(6, 4, "r", rng)
    _, synthetic = images_and_records(0, 30, "s", rng)
    mix = match_mix(real, synthetic)
    assert not mix["matched"] and "CC/none" in mix["reason"]
    assert mix["indices"] == list(range(30)) and mix["total_variation"] == 0.6


def test_matching_removes_the_prevalence_signal():
    rng = np.random.default_rng(2)
    real_images, real = images_and_records(45, 15, "r", rng)
    synthetic_images, synthetic = images_and_records(40, 200, "s", rng)
    patients = [r.patient_key for r in real]

    def auc(images: np.ndarray) -> float:
        return two_sample_test(real_images, images, patients, work_px=16, steps=150, bootstrap=10, seed=0)["auc"]

    mix = match_mix(real, synthetic, seed=0)
    # same generator for both sets: only the mix (25 % against 83 % masses) can tell them apart
    assert auc(synthetic_images) > 0.68
    assert mix["matched"] and auc(synthetic_images[mix["indices"]]) < 0.6
