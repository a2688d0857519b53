"""Evaluation metrics on cases with known answers (issue 5, in progress: moments and paired metrics)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from mammosynth.datasets import load_dataset
from mammosynth.errors import InputError
from mammosynth.evaluate import MOMENTS, compare_moments, histogram_distance, intensity_moments, paired_metrics
from mammosynth.io.images import read_image
from mammosynth.phantom import make_phantom_dataset


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> np.ndarray:
    root = tmp_path_factory.mktemp("ph") / "set"
    make_phantom_dataset(root, n=24, size=64, seed=1)
    return np.stack([read_image(root / r.path).pixels for r in load_dataset(root).records])


def set_moments(images: np.ndarray) -> np.ndarray:
    return np.stack([intensity_moments(im, im > 0.02) for im in images])


def test_moments_match_scipy_on_a_known_sample():
    rng = np.random.default_rng(0)
    pixels = rng.gamma(2.0, 0.1, size=(50, 50))
    m = intensity_moments(pixels)
    from scipy import stats

    assert np.allclose(m[:4], [pixels.mean(), pixels.std(), stats.skew(pixels.ravel()),
                               stats.kurtosis(pixels.ravel(), fisher=False)])
    assert np.isclose(m[4], stats.moment(pixels.ravel(), 5) / pixels.std() ** 5)


def test_a_set_against_itself_passes_and_a_shifted_copy_fails(phantoms):
    real = set_moments(phantoms)
    same = compare_moments(real, real)
    assert all(same[name]["ks_pvalue"] == 1.0 and same[name]["median_gap_iqr"] == 0 for name in MOMENTS)
    shifted = set_moments(np.clip(phantoms + 0.15 * (phantoms > 0.02), 0, 1))
    result = compare_moments(real, shifted)
    assert result["mean"]["ks_pvalue"] < 0.01 and result["mean"]["median_gap_iqr"] > 1
    assert histogram_distance(phantoms, phantoms) == 0
    assert histogram_distance(phantoms, np.clip(phantoms + 0.15, 0, 1)) > 0.3


def test_paired_metrics_have_known_values_and_check_the_data_range(phantoms):
    image = phantoms[0]
    same = paired_metrics(image, image)
    assert same["psnr_db"] == float("inf")
    assert same["ssim"] == pytest.approx(1.0) and same["ms_ssim"] == pytest.approx(1.0)
    offset = paired_metrics(np.zeros((64, 64)), np.full((64, 64), 0.1))
    assert offset["psnr_db"] == pytest.approx(20.0, abs=1e-3)
    blurred = paired_metrics(phantoms[:4], ndi.gaussian_filter(phantoms[:4], (0, 1.5, 1.5)))
    assert 0 < blurred["ssim"] < 0.99 and blurred["pairs"] == 4
    assert paired_metrics(image * 255, image * 255, data_range=255)["ssim"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="outside the data range 0–1"):
        paired_metrics(image * 255, image * 255)
    with pytest.raises(InputError, match="differ in shape"):
        paired_metrics(image, image[:32])
    with pytest.raises(InputError, match="need at least 2 images"):
        compare_moments(set_moments(phantoms[:1]), set_moments(phantoms))


def test_a_synthetic_set_containing_a_training_image_is_flagged(phantoms, tmp_path):
    from mammosynth.evaluate import memorisation

    other = tmp_path / "other"
    make_phantom_dataset(other, n=12, size=64, seed=2)
    fresh = np.stack([read_image(other / r.path).pixels for r in load_dataset(other).records])
    train, held_out = phantoms[:16], phantoms[16:]
    copied = np.clip(train[5] + np.random.default_rng(0).normal(0, 0.01, train[5].shape), 0, 1)
    synthetic = np.concatenate([fresh[:6], copied[None], fresh[6:]])
    result = memorisation(synthetic, train, held_out)
    assert result["copies"] == 1 and result["pairs"][0][:2] == (6, 5), result["pairs"]
    assert result["threshold_from"] == "half the held-out minimum distance"
    assert len(result["reference_nn_correlation"]) == 8
    alone = memorisation(synthetic, train)  # no held-out set: training images against each other
    assert alone["copies"] == 1 and alone["threshold_from"] == "half the smallest distance between training images"
    assert memorisation(fresh, train, held_out)["copies"] == 0
    with pytest.raises(InputError, match="non-empty stack"):
        memorisation(fresh[:0], train)


def test_c2st_cannot_tell_a_set_from_itself_but_spots_noise(phantoms, tmp_path):
    from mammosynth.evaluate import two_sample_test

    more = tmp_path / "more"
    make_phantom_dataset(more, n=24, size=64, seed=7)
    same_kind = np.stack([read_image(more / r.path).pixels for r in load_dataset(more).records])
    alike = two_sample_test(phantoms, same_kind, steps=150)
    assert alike["auc_ci95"][0] < 0.5 + 1e-9 or alike["auc"] < 0.75, alike  # indistinguishable
    noise = np.random.default_rng(0).random(phantoms.shape).astype(np.float32)
    spotted = two_sample_test(phantoms, noise, steps=150)
    assert spotted["auc"] > 0.95 and spotted["accuracy"] > 0.9, spotted
    assert spotted["test_images"] == 24 and len(spotted["most_synthetic"]) == 8
    with pytest.raises(InputError, match="the synthetic set needs at least 4 images"):
        two_sample_test(phantoms, noise[:2])


def power_law_noise(beta: float, size: int = 256, seed: int = 0) -> np.ndarray:
    f = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    amplitude = np.where(radius > 0, radius, np.inf) ** (-beta / 2)
    noise = np.fft.fft2(np.random.default_rng(seed).normal(size=(size, size)))
    return np.real(np.fft.ifft2(noise * amplitude))


@pytest.mark.parametrize("beta", [1.5, 3.0])
def test_spectrum_exponent_recovers_a_known_power_law(beta):
    from mammosynth.evaluate import spectrum_exponent

    assert spectrum_exponent(power_law_noise(beta)) == pytest.approx(beta, abs=0.25)
    region = np.zeros((256, 256), bool)
    with pytest.raises(InputError, match="no 64×64 patch"):
        spectrum_exponent(power_law_noise(beta), region)


def test_precision_recall_density_coverage_on_known_sets():
    from mammosynth.evaluate import precision_recall_density_coverage as prdc

    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 8))
    same = prdc(real, real)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = prdc(real, rng.normal(size=(200, 8)) + 20)
    assert far["precision"] == far["recall"] == far["coverage"] == far["density"] == 0.0
    collapsed = prdc(real, np.repeat(real[:1], 200, axis=0) + rng.normal(scale=0.01, size=(200, 8)))
    assert collapsed["precision"] == 1.0 and collapsed["coverage"] < 0.1  # mode collapse: faithful but narrow
    with pytest.raises(InputError, match="one width"):
        prdc(real, real[:, :4])


def test_fid_and_kid_are_zero_for_a_set_against_itself_and_grow_with_a_shift():
    from mammosynth.evaluate import frechet_distance, kernel_distance

    rng = np.random.default_rng(1)
    real = rng.normal(size=(300, 16))
    other = rng.normal(size=(300, 16))
    assert abs(frechet_distance(real, real)) < 1e-6
    assert frechet_distance(real, other) < 1.0 < frechet_distance(real, other + 1.0)
    assert frechet_distance(real, other + 1.0) == pytest.approx(16.0, rel=0.15)  # |Δμ|² = 16
    kid_same, kid_shift = kernel_distance(real, other)[0], kernel_distance(real, other + 1.0)[0]
    assert abs(kid_same) < 0.05 < kid_shift
    with pytest.raises(InputError, match="at least 2 feature vectors"):
        kernel_distance(real, other[:1])


def test_the_self_trained_encoder_separates_noise_from_breasts_and_is_seeded(phantoms, tmp_path):
    from mammosynth.evaluate import frechet_distance, train_encoder

    more = tmp_path / "more"
    make_phantom_dataset(more, n=24, size=64, seed=9)
    alike = np.stack([read_image(more / r.path).pixels for r in load_dataset(more).records])
    noise = np.random.default_rng(0).random(phantoms.shape).astype(np.float32)
    extract = train_encoder(phantoms, steps=60)
    real, same_kind, noisy = extract(phantoms), extract(alike), extract(noise)
    assert real.shape == (24, 64) and np.allclose(np.linalg.norm(real, axis=1), 1, atol=1e-5)
    assert frechet_distance(real, same_kind) < 0.5 * frechet_distance(real, noisy)
    first, second = train_encoder(phantoms, steps=5, seed=3), train_encoder(phantoms, steps=5, seed=3)
    assert np.array_equal(first(phantoms), second(phantoms))


def test_evaluate_writes_every_number_and_refuses_bad_sets(tmp_path):
    from mammosynth import api
    from mammosynth.datasets.schema import Record, write_manifest
    from mammosynth.io.images import write_png
    from test_generate import cli

    make_phantom_dataset(tmp_path / "real", n=12, size=64, seed=1)
    make_phantom_dataset(tmp_path / "synth", n=12, size=64, seed=2)
    result = cli("evaluate", str(tmp_path / "real"), str(tmp_path / "synth"), "--out", str(tmp_path / "ev"),
                 "--train", str(tmp_path / "real"), "--encoder-steps", "20", "--c2st-steps", "20")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert report["inputs"]["real_images"] == 12 and report["memorisation"]["copies"] == 0
    assert set(report["fidelity"]["moments"]) == set(MOMENTS) and 0 <= report["realism_c2st"]["auc"] <= 1
    assert report["fidelity"]["spectrum_beta"]["real_images"] > 0
    make_phantom_dataset(tmp_path / "big", n=6, size=128, seed=3)
    with pytest.raises(InputError, match="are 128×128 but the real ones are 64×64"):
        api.evaluate(tmp_path / "real", tmp_path / "big", tmp_path / "x")
    mixed = tmp_path / "mixed"
    records = []
    for i, size in enumerate((64, 64, 32)):
        write_png(mixed / f"images/{i}.png", np.zeros((size, size), np.float32))
        records.append(Record(image_id=str(i), path=f"images/{i}.png", dataset="toy", patient_key=f"p{i}"))
    write_manifest(mixed, records)
    with pytest.raises(InputError, match=r"mixed resolutions: 64×64 \(2\), 32×32 \(1\)"):
        api.evaluate(tmp_path / "real", mixed, tmp_path / "x")
    write_manifest(tmp_path / "empty", [])
    with pytest.raises(InputError, match="no images found"):
        api.evaluate(tmp_path / "empty", tmp_path / "synth", tmp_path / "x")
    assert not (tmp_path / "x").exists()
