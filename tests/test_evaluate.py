"""Evaluation metrics on cases with known answers, the evaluate command and its report (issue 5)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from mammosynth.datasets import load_dataset
from mammosynth.errors import InputError
from mammosynth.evaluate import (
    MOMENTS,
    compare_moments,
    histogram_distance,
    intensity_moments,
    paired_metrics,
    training_reference,
)
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

    assert np.allclose(
        m[:4], [pixels.mean(), pixels.std(), stats.skew(pixels.ravel()), stats.kurtosis(pixels.ravel(), fisher=False)]
    )
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


def test_the_training_reference_tells_a_split_that_differs_from_one_that_does_not():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(60, 5))
    same = training_reference(real, rng.normal(size=(120, 5)), ["x"] * 120, ["x"] * 60, seed=0)
    shifted = rng.normal(size=(120, 5)) + np.array([0, 1.0, 0, 0, 0])  # one column ("std") one unit higher
    apart = training_reference(real, shifted, ["x"] * 120, ["x"] * 60, seed=0)
    assert same["std"]["fail_share"] < 0.1 and apart["std"]["fail_share"] > 0.9
    assert apart["std"]["whole_set_ks_pvalue"] < 1e-6 and apart["mean"]["fail_share"] < 0.1
    assert same["std"]["draws"] == 200 and same["std"]["draw_images"] == 60 and same["std"]["matched_share"] == 1
    # each synthetic image gets a training image of its own stratum: of a training set half like the held-out
    # images ("a") and half shifted ("b"), draws for "a" requests pass, draws for "b" requests fail
    mixed = np.concatenate([rng.normal(size=(60, 5)), rng.normal(size=(60, 5)) + 3])
    strata = ["a"] * 60 + ["b"] * 60
    as_a = training_reference(real, mixed, strata, ["a"] * 60, seed=0)
    as_b = training_reference(real, mixed, strata, ["b"] * 60, seed=0)
    assert as_a["mean"]["fail_share"] < 0.1 and as_b["mean"]["fail_share"] > 0.9
    assert as_a["mean"]["whole_set_ks_pvalue"] < 0.01  # the unmatched whole set is a mixture
    unknown = training_reference(real, mixed, strata, ["c"] * 60, seed=0)
    assert unknown["mean"]["matched_share"] == 0 and unknown["mean"]["fail_share"] > 0.1  # a random mixture
    with pytest.raises(InputError, match="training strata"):
        training_reference(real, real, ["x"] * 10, ["x"] * 10)


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
    assert result["threshold_from"] == "half the smallest held-out patient → training patient distance"
    assert len(result["reference_nn_correlation"]) == 8
    alone = memorisation(synthetic, train)  # no held-out set: training images against each other
    assert alone["copies"] == 1
    assert alone["threshold_from"] == "half the smallest distance between two training patients"
    # a second view of woman 0 in the training set: counted as another woman it makes the threshold so
    # permissive that the copy slips through; grouped by patient it does not
    second_view = np.clip(train[0] + np.random.default_rng(1).normal(0, 0.01, train[0].shape), 0, 1)
    two_views = np.concatenate([train, second_view[None]])
    women = [f"w{i}" for i in range(16)] + ["w0"]
    assert memorisation(synthetic, two_views)["copies"] == 0
    grouped = memorisation(synthetic, two_views, train_patients=women)
    assert grouped["copies"] == 1 and grouped["pairs"][0][:2] == (6, 5)
    assert memorisation(fresh, train, held_out)["copies"] == 0
    with pytest.raises(InputError, match="non-empty stack"):
        memorisation(fresh[:0], train)
    from mammosynth.evaluate import feature_copies, train_encoder

    extract = train_encoder(phantoms, steps=100)
    in_features = feature_copies(extract(synthetic), extract(train), extract(held_out))
    assert (6, 5) in [pair[:2] for pair in in_features["pairs"]]  # coarser than pixels: look-alikes may join it


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
    # five splits and trainings: the AUC is their mean, the interval spans them (pooled bootstrap)
    assert alike["repeats"] == 5 and len(set(alike["auc_repeats"])) > 1
    assert alike["auc"] == pytest.approx(np.mean(alike["auc_repeats"]), abs=1e-4)
    assert alike["auc_ci95"][0] <= min(alike["auc_repeats"]) <= max(alike["auc_repeats"]) <= alike["auc_ci95"][1]
    with pytest.raises(InputError, match="the synthetic set needs at least 4 images"):
        two_sample_test(phantoms, noise[:2])
    with pytest.raises(InputError, match="repeats must be at least 1, got 0"):
        two_sample_test(phantoms, noise, repeats=0)


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
    with pytest.raises(InputError, match="at least 4 feature vectors"):
        kernel_distance(real, other[:3])
    # small sets: subsets of half the set, so the spread is a real one (subsets of the whole set gave std 0)
    small_mean, small_std = kernel_distance(real[:40], other[:40])
    assert small_std > 0 and abs(small_mean) < 3 * small_std + 0.05
    from mammosynth.evaluate.distances import frechet_with_interval

    fid = frechet_with_interval(real[:250], other[:250] + 1.0, bootstrap=50)
    assert fid["ci95"][0] < fid["value"] < fid["ci95"][1] and fid["value"] == pytest.approx(16.0, rel=0.2)
    assert frechet_with_interval(real[:199], other[:250])["value"] is None


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


def mixed_phantoms(root, name: str, n: int, size: int, seed: int, start: int = 0):
    """Half normal, half malignant-mass phantoms in one dataset folder."""
    from mammosynth import api

    parts = []
    for k, lesion in enumerate(("none", "malignant-mass")):
        part = root / f"{name}-{lesion}"
        make_phantom_dataset(part, n=n // 2, size=size, seed=seed, lesion=lesion, start=start + k * n)
        parts.append(part)
    api._merge(parts, root / name)
    return root / name


def split_by_patient(folder, test_every: int = 3) -> None:
    """Give a phantom folder two images per woman (pseudonyms w0, w1, …) and patient-level splits: every
    ``test_every``-th woman is held out (``test``), the rest are ``train``."""
    from mammosynth.datasets import iter_manifest, write_manifest

    records = list(iter_manifest(folder))
    for i, record in enumerate(records):
        record.patient_key = f"w{i // 2}"
        record.split = "test" if (i // 2) % test_every == 0 else "train"
    write_manifest(folder, records)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One small evaluation through the CLI: a prepared-like real set of 32 phantoms (16 women, two images
    each, half with lesions; 6 women held out as the test split) against 16 synthetic phantoms."""
    from test_generate import cli

    root = tmp_path_factory.mktemp("ev")
    real, synthetic = mixed_phantoms(root, "real", 32, 64, 1), mixed_phantoms(root, "synth", 16, 64, 2, start=100)
    split_by_patient(real)
    result = cli(
        "evaluate",
        str(real),
        str(synthetic),
        "--out",
        str(root / "ev"),
        "--encoder-steps",
        "20",
        "--c2st-steps",
        "20",
        "--utility-steps",
        "20",
        "--conditional-steps",
        "20",
    )
    assert result.returncode == 0, result.stderr
    return root


def test_evaluate_compares_with_held_out_patients_and_states_n(evaluated, tmp_path):
    report = json.loads((evaluated / "ev" / "evaluation.json").read_text())
    inputs = report["inputs"]
    assert (inputs["real_split"], inputs["real_images"], inputs["real_patients"]) == ("test", 12, 6)
    assert (inputs["train_split"], inputs["train_images"], inputs["train_patients"]) == ("train", 20, 10)
    assert report["fidelity"]["features"]["encoder_trained_on"] == "training split (train)"
    for section in (report["fidelity"], report["fidelity"]["features"], report["diversity"]):
        assert (section["split"], section["real_images"], section["synthetic_images"]) == ("test", 12, 16)
    c2st = report["realism_c2st"]
    assert report["settings"]["c2st_device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert c2st["real_images"] == c2st["synthetic_images"] == 12 and c2st["test_images"] == 12
    # patient-level halves: a woman on both sides would be counted twice
    assert c2st["real_patients"]["train"] + c2st["real_patients"]["test"] == 6
    # the mix of view × finding it ran on, counted over both whole sets
    strata = c2st["mix"]["strata"].values()
    assert sum(row["real"] for row in strata) == 12 and sum(row["synthetic"] for row in strata) == 16
    assert c2st["auc_ci95"][0] <= c2st["auc"] <= c2st["auc_ci95"][1] and c2st["auc_ci95"][0] < c2st["auc_ci95"][1]
    fid = report["fidelity"]["features"]["frechet"]
    assert fid["value"] is None and "fewer than 200" in fid["suppressed"]
    assert report["fidelity"]["features"]["kernel_distance_std"] > 0
    memo = report["memorisation"]
    assert memo["held_out_images"] == 12 and memo["train_images"] == 20 and memo["copies"] == 0
    assert len(memo["reference_nn_correlation"]) == 12 and "held-out patient" in memo["threshold_from"]
    assert report["reidentification"]["train_images"] == 20 and report["reidentification"]["held_out_images"] == 12
    utility = report["utility"]
    assert utility["test_images"] == 12 and utility["test_patients"] == 6 and utility["train_patients"] == 10
    assert utility["arms"]["real"]["train_images"] == 20 and utility["arms"]["real+synthetic"]["train_images"] == 36
    assert utility["split"] == "trained on train, tested on test"
    lesion = report["conditional"]["fields"]["lesion"]
    assert lesion["real_test_images"] == 12 and lesion["real_train_images"] == 20
    reference = report["fidelity"]["moments_training_reference"]
    assert (reference["split"], reference["train_images"]) == ("train vs test", 20)
    assert {k for k, v in reference.items() if isinstance(v, dict)} == set(MOMENTS)
    assert reference["std"]["draw_images"] == 16 and reference["std"]["draws"] == 200
    assert reference["std"]["matched_share"] > 0  # the synthetic phantoms' views and densities occur in training
    assert "draws with p &lt; 0.01" in (evaluated / "ev" / "report.html").read_text()


def test_evaluate_refuses_shared_patients_unknown_splits_and_bad_sets(evaluated, tmp_path):
    from mammosynth import api
    from mammosynth.datasets.schema import Record, write_manifest
    from mammosynth.io.images import write_png

    real, synth = evaluated / "real", evaluated / "synth"
    if not torch.cuda.is_available():  # the C2ST's device is checked before any work
        with pytest.raises(InputError, match=r"device 'cuda' requested but CUDA is not available"):
            api.evaluate(real, synth, tmp_path / "x", device="cuda")
        assert not (tmp_path / "x").exists()
    with pytest.raises(InputError, match=r"share 6 patient\(s\); evaluation needs patients the generator never"):
        api.evaluate(real, synth, tmp_path / "x", train=real, train_split="all")
    with pytest.raises(InputError, match=r"no real images in split val \(this dataset has test 12, train 20\)"):
        api.evaluate(real, synth, tmp_path / "x", real_split="val")
    with pytest.raises(InputError, match="unknown split holdout"):
        api.evaluate(real, synth, tmp_path / "x", real_split="holdout")
    from mammosynth.evaluate.suite import evaluate_sets

    with pytest.raises(InputError, match="the held-out twins were tested on split val, not test"):
        evaluate_sets(real, synth, tmp_path / "x", twins={"split": "val", "auc": 0.5})
    assert not (tmp_path / "x").exists()
    unsplit = api.evaluate(
        synth, real, tmp_path / "unsplit", run_utility=False, c2st_steps=5, encoder_steps=2, conditional_steps=5
    )
    assert unsplit["inputs"]["real_split"] == "all (no split recorded)" and unsplit["inputs"]["train_images"] is None
    assert "no training set" in unsplit["memorisation"]["skipped"] and unsplit["memorisation"]["copies"] is None
    assert unsplit["fidelity"]["features"]["encoder_trained_on"].startswith("the real set itself")
    make_phantom_dataset(tmp_path / "big", n=6, size=128, seed=3)
    with pytest.raises(InputError, match="are 128×128 but the real ones are 64×64"):
        api.evaluate(real, tmp_path / "big", tmp_path / "x")
    mixed = tmp_path / "mixed"
    records = []
    for i, size in enumerate((64, 64, 32)):
        write_png(mixed / f"images/{i}.png", np.zeros((size, size), np.float32))
        records.append(Record(image_id=str(i), path=f"images/{i}.png", dataset="toy", patient_key=f"p{i}"))
    write_manifest(mixed, records)
    with pytest.raises(InputError, match=r"mixed resolutions: 64×64 \(2\), 32×32 \(1\)"):
        api.evaluate(real, mixed, tmp_path / "x")
    write_manifest(tmp_path / "empty", [])
    with pytest.raises(InputError, match="no images found"):
        api.evaluate(tmp_path / "empty", synth, tmp_path / "x")
    with pytest.raises(InputError, match=r"evaluation\.json: not a safetensors weights file"):
        api.evaluate(real, synth, tmp_path / "x", features=str(evaluated / "ev" / "evaluation.json"))
    with pytest.raises(InputError, match="output folder exists"):
        api.evaluate(real, synth, evaluated / "ev")
    assert not (tmp_path / "x").exists()


def test_the_report_renders_in_headless_chromium_without_console_errors(evaluated):
    import re
    import shutil
    import subprocess

    page = evaluated / "ev" / "report.html"
    text = page.read_text()
    assert not re.search(r"(src|href)=\"(?!data:)", text), "the report must not load anything from outside"
    assert text.count("data:image/png;base64,") >= 10
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless Chromium here (make test installs it with apt where it can)")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    loaded = re.search(r'data-images-loaded="(\d+)"', done.stdout)
    total = re.search(r'data-images-total="(\d+)"', done.stdout)
    assert loaded and total, "the report's load script did not run"
    assert int(loaded.group(1)) == int(total.group(1)) >= 10, "some embedded images did not decode"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console


def test_a_saved_encoder_makes_two_evaluations_comparable(evaluated, tmp_path):
    from mammosynth import api

    first = json.loads((evaluated / "ev" / "evaluation.json").read_text())
    again = api.evaluate(
        evaluated / "real",
        evaluated / "synth",
        tmp_path / "again",
        features=str(evaluated / "ev" / "encoder.safetensors"),
        run_utility=False,
        c2st_steps=5,
        encoder_steps=1,
        conditional_steps=5,
    )
    assert again["fidelity"]["features"]["kernel_distance"] == pytest.approx(
        first["fidelity"]["features"]["kernel_distance"], rel=1e-6
    )
    assert not (tmp_path / "again" / "encoder.safetensors").exists()


def test_resnet_weights_from_a_file_load_and_bad_files_are_refused(tmp_path):
    import torch
    from monai.networks.nets import resnet18
    from safetensors.torch import save_file

    from mammosynth.evaluate import load_extractor

    torch.manual_seed(0)
    network = resnet18(
        spatial_dims=2, n_input_channels=3, num_classes=7, conv1_t_stride=2, bias_downsample=False
    )  # torchvision's layout, with an fc head as in its files
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, tmp_path / "r18.safetensors")
    extract = load_extractor(f"resnet18:{tmp_path / 'r18.safetensors'}", work_px=48)
    images = np.random.default_rng(0).random((3, 48, 48)).astype(np.float32)
    features = extract(images)
    assert features.shape == (3, 512) and np.array_equal(features, extract(images))
    network.eval()
    with torch.no_grad():
        x = torch.from_numpy(images)[:, None]
        x = (x.expand(-1, 3, -1, -1) - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
            [0.229, 0.224, 0.225]
        ).view(1, 3, 1, 1)
        network.fc = torch.nn.Identity()
        assert np.allclose(features, network(x).numpy(), atol=1e-4)
    with pytest.raises(InputError, match=r"weights do not fit the network: missing 'layer1\.0\.conv3"):
        load_extractor(f"resnet50:{tmp_path / 'r18.safetensors'}")
    (tmp_path / "junk.safetensors").write_bytes(b"not weights at all")
    with pytest.raises(InputError, match=r"junk\.safetensors: not a safetensors weights file"):
        load_extractor(f"resnet18:{tmp_path / 'junk.safetensors'}")
    with pytest.raises(InputError, match="weights not found"):
        load_extractor(f"resnet18:{tmp_path / 'absent.safetensors'}")


def _discs(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Noisy blank images; odd ones carry a bright disc (the "lesion") at a random place."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.4, 0.05, (n, size, size)).astype(np.float32)
    labels = np.arange(n) % 2
    yy, xx = np.mgrid[:size, :size]
    for i in np.flatnonzero(labels):
        cy, cx = rng.integers(8, size - 8, 2)
        images[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] += 0.4
    return images, labels


def test_utility_arms_on_a_task_with_known_answers():
    from mammosynth.evaluate import group_split, utility

    real, labels = _discs(60, 0)
    patients = [f"p{i // 2}" for i in range(60)]  # two images per patient
    test = group_split(patients, 0.3, seed=0)
    assert not {p for p, t in zip(patients, test, strict=True) if t} & {
        p for p, t in zip(patients, test, strict=True) if not t
    }
    synthetic, synthetic_labels = _discs(60, 1)
    found = utility(real, labels, patients, synthetic, synthetic_labels, work_px=32, steps=150)
    arms = found["arms"]
    assert arms["real"]["auc"] > 0.9 and arms["synthetic"]["auc"] > 0.9  # faithful synthetic data teaches the task
    assert arms["real"]["auc_ci95"][0] <= arms["real"]["auc"] <= arms["real"]["auc_ci95"][1]
    wrong = utility(real, labels, patients, synthetic, 1 - synthetic_labels, work_px=32, steps=150)
    assert wrong["arms"]["synthetic"]["auc"] < 0.2  # mislabelled synthetic data teaches the opposite
    assert (
        "skipped" in utility(real, labels, patients, synthetic, np.zeros(60), work_px=32, steps=5)["arms"]["synthetic"]
    )
    with pytest.raises(InputError, match="with and without lesions"):
        utility(real, np.zeros(60), patients, synthetic, synthetic_labels)


def test_conditional_agreement_sees_wrong_requests_and_unlearnable_fields():
    from mammosynth.evaluate import field_agreement

    images, labels = _discs(60, 0)
    values = ["lesion" if v else "normal" for v in labels]
    patients = [str(i) for i in range(60)]
    synthetic, synthetic_labels = _discs(20, 1)
    honest = field_agreement(
        images,
        values,
        patients,
        synthetic,
        ["lesion" if v else "normal" for v in synthetic_labels],
        work_px=32,
        steps=150,
    )
    assert honest["checkable"] and honest["agreement"] > 0.9
    lying = field_agreement(
        images,
        values,
        patients,
        synthetic,
        ["normal" if v else "lesion" for v in synthetic_labels],
        work_px=32,
        steps=150,
    )
    assert lying["agreement"] < 0.1
    coin = np.random.default_rng(5).integers(0, 2, 60)
    unlearnable = field_agreement(
        images, ["L" if c else "R" for c in coin], patients, synthetic, ["L"] * 20, work_px=32, steps=150
    )
    assert not unlearnable["checkable"]
    assert "skipped" in field_agreement(images, ["CC"] * 60, patients, synthetic, ["CC"] * 20)


def test_reidentification_links_copies_to_training_patients_but_not_fresh_images(phantoms, tmp_path):
    from mammosynth.evaluate import reidentification

    rng = np.random.default_rng(0)
    train, held_out = phantoms[:12], phantoms[12:]
    patients = [f"p{i}" for i in range(12)]
    copies = np.clip(train[rng.integers(0, 12, 30)] + rng.normal(0, 0.01, (30, 64, 64)), 0, 1)
    copied = reidentification(copies, train, patients, held_out)
    assert copied["better_than_chance"] and copied["link_rate"] == 1.0 and copied["chance"] == 0.5
    make_phantom_dataset(tmp_path / "fresh", n=30, size=64, seed=9)  # a new draw of the same population
    fresh_images = np.stack(
        [read_image(tmp_path / "fresh" / r.path).pixels for r in load_dataset(tmp_path / "fresh").records]
    )
    independent = reidentification(fresh_images, train, patients, held_out)
    assert not independent["better_than_chance"]


def test_mode_collapse_is_seen_in_a_collapsed_set_only():
    from mammosynth.evaluate import mode_collapse

    rng = np.random.default_rng(0)
    real = rng.normal(size=(80, 8))
    assert not mode_collapse(real, rng.normal(size=(200, 8)))["collapse_suspected"]
    collapsed = np.repeat(rng.normal(size=(4, 8)), 50, axis=0) + rng.normal(0, 0.01, (200, 8))
    found = mode_collapse(real, collapsed)
    assert found["collapse_suspected"] and found["nn_distance_ratio"] < 0.2


def test_shape_statistics_find_a_changed_outline(phantoms):
    from mammosynth.evaluate import compare_shapes

    shrunk = np.stack([np.pad(im[::2, ::2], ((16, 16), (0, 32))) for im in phantoms])  # half-size breasts
    cc = np.ones(len(phantoms), bool)
    same = compare_shapes(phantoms, phantoms, cc, cc, max_fits=8)
    assert same["area"]["ks_pvalue"] == 1.0 and same["outline"]["fit_iou_median"][0] > 0.9
    differ = compare_shapes(phantoms, shrunk, cc, cc, max_fits=8)
    assert differ["area"]["ks_pvalue"] < 0.01 and differ["area"]["median_gap_iqr"] < -1
    assert "skipped" in compare_shapes(phantoms, phantoms, cc, ~cc)["outline"]


def test_frd_is_zero_against_itself_and_grows_with_a_shift_or_says_how_to_install(phantoms, monkeypatch):
    from mammosynth.evaluate import radiomics

    if not radiomics.frd_available():
        with pytest.raises(InputError, match="no-build-isolation pyradiomics"):
            radiomics.radiomics_distance(phantoms, phantoms)
        pytest.skip(f"the optional radiomics extra is not installed ({radiomics.INSTALL_HINT})")
    found = radiomics.radiomics_distance(phantoms[:12], phantoms[:12])
    assert found["version"].startswith("v0") and found["package"].startswith("frd-score ")
    same = found["frd"]
    shifted = radiomics.radiomics_distance(phantoms[:12], np.clip(phantoms[:12] * 0.6, 0, 1))["frd"]
    assert abs(same) < 1e-2 and shifted > 1.0
    monkeypatch.setattr(radiomics, "frd_available", lambda: False)
    with pytest.raises(InputError, match="no-build-isolation pyradiomics"):
        radiomics.radiomics_distance(phantoms, phantoms)
