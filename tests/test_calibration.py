"""The intensity map after a generator: what it does to a set with the wrong contrast, that 0 and 1 and the order
of intensities stay, its file (no pickle, bad files refused in one line), and calibrate → generate --upscale."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mammosynth import api
from mammosynth.datasets import iter_manifest, load_dataset, write_manifest
from mammosynth.errors import InputError
from mammosynth.generate.calibration import IntensityMap, breast_quantiles, fit_intensity_map, median_beta
from mammosynth.generate.pipeline import CalibrationStage, load_pipeline
from mammosynth.io.images import read_image
from mammosynth.preprocess.spectrum import tilt_spectrum
from test_generate import cli, toy_views


def breasts(seed: int, contrast: float = 1.0) -> np.ndarray:
    """Twelve 32 px images: a black background and a textured disc whose contrast about 0.5 is ``contrast``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    disc = (xx - 16) ** 2 + (yy - 16) ** 2 < 14**2
    tissue = 0.5 + contrast * 0.25 * (rng.random((12, 32, 32)) - 0.5) * 2  # within [0.15, 0.85] up to 1.4
    return (tissue * disc).astype(np.float32)


def test_a_map_gives_a_set_the_training_sets_intensities_and_keeps_black_white_and_order():
    real, bright = breasts(0), breasts(1, contrast=1.4)
    mapping = fit_intensity_map(bright, real, image_size=32)
    mapped = mapping.apply(bright)
    assert np.abs(breast_quantiles(mapped) - breast_quantiles(real)).max() < 0.02
    assert np.abs(breast_quantiles(bright) - breast_quantiles(real)).max() > 0.09  # it had something to do
    assert np.all(mapped[bright == 0] == 0) and mapping.apply(np.ones((1, 4, 4))).min() == pytest.approx(1)
    ramp = np.linspace(0, 1, 1001)[None, None]
    assert np.all(np.diff(mapping.apply(ramp).ravel()) >= 0)
    same = fit_intensity_map(real, real, image_size=32)
    assert np.abs(same.apply(real) - real).max() < 1e-3


def textured(seed: int, beta: float, n: int = 10, size: int = 64) -> np.ndarray:
    """``n`` discs on black whose tissue is power-law noise of exponent ``beta`` about 0.5."""
    rng = np.random.default_rng(seed)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    noise = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, size, size))) * np.maximum(f, 0.01) ** (-beta / 2)))
    noise /= noise.std(axis=(1, 2), keepdims=True)
    yy, xx = np.mgrid[:size, :size]
    disc = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (0.45 * size) ** 2
    return (np.clip(0.5 + 0.08 * noise, 0.05, 1) * disc).astype(np.float32)


def test_a_spectral_map_gives_a_smoother_set_the_training_sets_beta_and_keeps_the_background():
    real, smooth = textured(0, 2.0), textured(1, 3.0)
    assert median_beta(smooth) - median_beta(real) > 0.7  # it has something to do
    plain = fit_intensity_map(smooth, real, image_size=64)
    assert plain.spectral_tilt == 0 and abs(median_beta(plain.apply(smooth)) - median_beta(smooth)) < 0.2
    mapping = fit_intensity_map(smooth, real, image_size=64, spectrum=True)
    mapped = mapping.apply(smooth)
    assert 0.6 < mapping.spectral_tilt < 1.6
    assert abs(median_beta(mapped) - median_beta(real)) < 0.15
    assert np.abs(breast_quantiles(mapped) - breast_quantiles(real)).max() < 0.03
    assert np.all(mapped[smooth == 0] == 0) and np.all(mapped[smooth > 0] > 0.02)
    same = tilt_spectrum(real, 0.0)  # no tilt: the images as they were (float32 rounding only)
    assert np.abs(same - real).max() < 1e-6


def test_the_map_file_round_trips_and_bad_files_are_refused_naming_them(tmp_path):
    mapping = fit_intensity_map(breasts(1, 1.4), breasts(0), 32, points=33, fitted_on={"split": "train", "images": 12})
    path = mapping.save(tmp_path / "map.json")
    again = IntensityMap.load(path)
    assert np.allclose(again.source, mapping.source, atol=1e-6) and again.fitted_on["images"] == 12
    data = json.loads(path.read_text())
    assert "spectral_tilt" not in data  # a map without a tilt keeps the file (and model id) it always had
    tilted = IntensityMap(mapping.source, mapping.target, 32, spectral_tilt=0.4).save(tmp_path / "tilted.json")
    assert IntensityMap.load(tilted).spectral_tilt == pytest.approx(0.4)
    assert CalibrationStage(tilted).describe()["spectral_tilt"] == pytest.approx(0.4)  # said in generate.json
    assert "spectral_tilt" not in CalibrationStage(path).describe()
    for name, text in (
        ("steep.json", json.dumps({**data, "spectral_tilt": 5})),
        ("word.json", json.dumps({**data, "spectral_tilt": "flat"})),
        ("text.json", "not json"),
        ("other.json", json.dumps({"format": "something else"})),
        ("falls.json", json.dumps({**data, "target": data["target"][::-1]})),
        ("short.json", json.dumps({**data, "source": data["source"][:5]})),
        ("nosize.json", json.dumps({k: v for k, v in data.items() if k != "image_size"})),
    ):
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError) as caught:
            IntensityMap.load(tmp_path / name)
        assert name in str(caught.value)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny 32 px GAN on toy discs split by patient (a quarter held out)."""
    root = tmp_path_factory.mktemp("cal")
    data = toy_views(root / "data")
    records = list(iter_manifest(data))
    for i, record in enumerate(records):
        record.split = "test" if i % 4 == 0 else "train"
    write_manifest(data, records)
    run = root / "run"
    api.train(data, run, model="gan", config="tiny", set=["train.steps=10"])
    return data, run


def test_calibrate_then_generate_applies_the_map_as_the_last_stage(trained, tmp_path):
    data, run = trained
    result = cli("calibrate", str(run), str(data), "--out", str(tmp_path / "map.json"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert (summary["split"], summary["images"]) == ("train", 24)
    mapping = IntensityMap.load(tmp_path / "map.json")
    assert mapping.fitted_on == {"split": "train", "images": 24, "patients": 24}
    assert str(data) not in (tmp_path / "map.json").read_text()  # counts only, no source path
    # a 10-step GAN's intensities are far from the discs': the map gives them the training images' own
    assert summary["quantile_gap"]["generated"] > 0.1 and summary["quantile_gap"]["mapped"] < 0.01
    api.generate(run, tmp_path / "plain", n=4, seed=5)
    mapped = api.generate(run, tmp_path / "mapped", n=4, seed=5, upscale=[tmp_path / "map.json"])
    assert mapped["model"]["refined_by"][0]["family"] == "calibration"
    assert mapped["model"]["refined_by"][0]["images"] == 24
    pairs = list(zip(load_dataset(tmp_path / "plain").records, load_dataset(tmp_path / "mapped").records, strict=True))
    before = np.stack([read_image(tmp_path / "plain" / a.path).pixels for a, _ in pairs])
    after = np.stack([read_image(tmp_path / "mapped" / b.path).pixels for _, b in pairs])
    assert np.abs(after - mapping.apply(before)).max() < 2e-3  # 16-bit PNG rounding, times the slope
    assert np.abs(after - before).max() > 0.05
    cascade = load_pipeline(str(run), upscale=[tmp_path / "map.json"])
    assert isinstance(cascade.stages[0], CalibrationStage) and cascade.size == 32


def test_bad_calibrations_are_refused_in_one_line(trained, tmp_path):
    data, run = trained
    result = cli("calibrate", str(run), str(data), "--out", str(tmp_path / "map.png"))
    assert result.returncode == 2 and "map.png" in result.stderr and ".json" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "map.png").exists()
    result = cli("calibrate", str(run), str(data), "--out", str(tmp_path / "m.json"), "--split", "nosuch")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.json").exists()
    (tmp_path / "bad.json").write_text("{}")
    bad = str(tmp_path / "bad.json")
    result = cli("generate", str(run), "--out", str(tmp_path / "g"), "--n", "2", "--upscale", bad)
    assert result.returncode == 2 and "bad.json" in result.stderr and "not an intensity map" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "g").exists()
    small = IntensityMap(np.linspace(0.1, 0.9, 5), np.linspace(0.1, 0.9, 5), 64).check()
    small.save(tmp_path / "m64.json")
    with pytest.raises(InputError, match="this stage takes 64 px images, the stage before it makes 32 px"):
        load_pipeline(str(run), upscale=[tmp_path / "m64.json"])
