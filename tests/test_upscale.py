"""The super-resolution stage: config checks, aligned random crops, training and exact resume, what the stage
keeps of its input, per-seed determinism, and cascades after a generator (generate --upscale)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mammosynth import api
from mammosynth.datasets import load_dataset
from mammosynth.errors import InputError
from mammosynth.generate.pipeline import Cascade, UpscaleStage, load_pipeline
from mammosynth.io.images import read_image
from mammosynth.models.upscale import UpscaleConfig, Upscaler, downsample, enlarge
from mammosynth.training.loop import StepContext
from mammosynth.training.upscale import random_crops
from test_generate import cli, toy_views


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return toy_views(tmp_path_factory.mktemp("toy") / "data")


@pytest.fixture(scope="module")
def stage_64(data, tmp_path_factory):
    """A 32 → 64 px stage (the toy images enlarged to 64 px for training) to follow the 32 px tiny GAN."""
    run = tmp_path_factory.mktemp("up64") / "run"
    api.train(data, run, model="upscale", config="tiny", set=["model.image_size=64", "model.crop_size=32"])
    return run


@pytest.fixture(scope="module")
def gan_32(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("gan") / "run"
    api.train(data, run, model="gan", config="tiny", set=["train.steps=10"])
    return run


def losses(run) -> list[dict]:
    return [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]


def test_config_checks_factor_and_sizes():
    with pytest.raises(InputError, match="factor must be 2, 4 or 8, got 3"):
        UpscaleConfig(image_size=48, factor=3, crop_size=24).check()
    with pytest.raises(InputError, match="crop_size 15 is not divisible by the factor 2"):
        UpscaleConfig(image_size=32, factor=2, crop_size=15).check()
    with pytest.raises(InputError, match="dilations needs at least one entry"):
        UpscaleConfig(image_size=32, factor=2, crop_size=16, dilations=()).check()


def test_random_crops_are_windows_at_offsets_on_the_factor_grid():
    images = torch.arange(4 * 12 * 12, dtype=torch.float32).reshape(4, 1, 12, 12)
    ctx = StepContext(0, 0, torch.device("cpu"), torch.Generator().manual_seed(3))
    offsets = set()
    for _ in range(10):
        crops = random_crops(images, 4, 2, ctx)
        assert crops.shape == (4, 1, 4, 4)
        for k in range(4):
            row, col = divmod(int(crops[k, 0, 0, 0] - images[k, 0, 0, 0]), 12)
            assert row % 2 == 0 and col % 2 == 0 and row <= 8 and col <= 8
            assert torch.equal(crops[k], images[k, :, row : row + 4, col : col + 4])
            offsets.add((row, col))
    assert len(offsets) > 10  # the windows move


def test_training_keeps_the_inputs_low_frequencies_and_resume_is_exact(data, tmp_path):
    common = ["train.checkpoint_every=50", "train.steps=100"]
    api.train(data, tmp_path / "full", model="upscale", config="tiny", set=common)
    rows = losses(tmp_path / "full")
    assert {"d_loss", "g_adv", "low_l1", "pixel_l1", "spectrum", "feature_matching"} <= set(rows[0])
    trained = UpscaleStage(str(tmp_path / "full"))
    untrained = UpscaleStage(str(tmp_path / "full"))
    untrained.model = Upscaler(trained.config).eval()  # the same network before any step
    real = np.stack([read_image(p).pixels for p in sorted((data / "images").glob("*.png"))])
    low = downsample(torch.from_numpy(real)[:, None], 2)[:, 0].numpy()
    plain = enlarge(torch.from_numpy(low)[:, None], 2)[:, 0].clamp(0, 1).numpy()
    assert np.allclose(untrained.refine(low, list(range(len(low)))), plain, atol=1e-6)  # starts as the enlargement
    out = trained.refine(low, list(range(len(low))))

    def reduced_gap(images: np.ndarray) -> float:  # how far the image, reduced again, is from the input
        return float(np.abs(downsample(torch.from_numpy(images)[:, None], 2)[:, 0].numpy() - low).mean())

    # the toy images' pixel noise is texture the enlargement lacks: training adds a good share of it back …
    assert np.abs(out - plain).mean() > 0.3 * np.abs(real - plain).mean()
    assert reduced_gap(out) < reduced_gap(plain)  # … while its low frequencies stay on the input's
    api.train(data, tmp_path / "cut", model="upscale", config="tiny", set=[*common, "train.steps=70"])
    api.train(data, tmp_path / "cut", model="upscale", config="tiny", set=common, resume=True)
    assert losses(tmp_path / "cut") == rows


def test_an_image_depends_on_its_seed_alone(stage_64):
    stage = UpscaleStage(str(stage_64))
    low = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    both = stage.refine(low, [5, 6, 7])
    assert np.abs(both[1] - stage.refine(low[1:2], [6])[0]).max() < 1e-5  # not on its batch-mates
    assert np.array_equal(both, stage.refine(low, [5, 6, 7]))
    assert (
        np.abs(stage.refine(low[:1], [5]) - stage.refine(low[:1], [9])).max() > 1e-5
    )  # the seed's noise is used (strengths start at 0)
    assert both.shape == (3, 64, 64) and both.min() >= 0 and both.max() <= 1


def test_generate_upscale_makes_a_cascade_at_the_stages_size(gan_32, stage_64, tmp_path):
    out = tmp_path / "gen"
    result = api.generate(gan_32, out, n=4, view="CC", seed=3, upscale=stage_64)
    assert result["model"]["image_size"] == 64 and result["model"]["refined_by"][0]["family"] == "upscale"
    records = load_dataset(out).records
    assert {read_image(out / r.path).pixels.shape for r in records} == {(64, 64)}
    cascade = load_pipeline(str(gan_32), upscale=[stage_64])
    assert isinstance(cascade, Cascade) and cascade.size == 64
    gan = load_pipeline(str(gan_32))
    assert cascade.model_id != gan.model_id  # provenance names the whole chain
    a = cascade.sample([{"view": "CC"}] * 2, [1, 2])
    assert np.array_equal(a, cascade.sample([{"view": "CC"}] * 2, [1, 2]))
    # the generator's image, reduced again, is what the stage started from (up to what training left)
    base = gan.sample([{"view": "CC"}] * 2, [1, 2])
    reduced = downsample(torch.from_numpy(a)[:, None], 2)[:, 0].numpy()
    assert np.abs(reduced - base).mean() < np.abs(reduced - base[::-1]).mean()


def test_bad_cascades_are_refused_in_one_line(data, gan_32, stage_64, tmp_path):
    small = tmp_path / "up32"
    api.train(data, small, model="upscale", config="tiny", set=["train.steps=2"])
    with pytest.raises(InputError, match="this stage enlarges 16 px images, the stage before it makes 32 px"):
        load_pipeline(str(gan_32), upscale=small)
    with pytest.raises(
        InputError, match=r"needs a refining checkpoint \(super-resolution or lesion painter\), this is a 'gan' one"
    ):
        load_pipeline(str(gan_32), upscale=gan_32)
    with pytest.raises(InputError, match="cannot generate images"):
        load_pipeline(str(stage_64))
    result = cli("generate", str(gan_32), "--out", str(tmp_path / "g"), "--n", "2", "--upscale", str(small))
    assert result.returncode == 2 and "enlarges 16 px images" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "g").exists()


def test_the_clamp_passes_gradients_only_back_toward_the_range():
    from mammosynth.models.clamp import MARGIN, clamp_toward_range

    x = torch.tensor([-2.0, -MARGIN / 2, 0.3, 1 + MARGIN / 2, 3.0], requires_grad=True)
    out = clamp_toward_range(x)
    assert out.tolist() == pytest.approx([0.0, 0.0, 0.3, 1.0, 1.0])
    (-out.sum()).backward()  # a loss that wants every pixel brighter
    assert x.grad.tolist() == [-1.0, -1.0, -1.0, -1.0, 0.0]  # not the one already far above 1
    x.grad = None
    clamp_toward_range(x).sum().backward()  # … and darker: not the one already far below 0
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]


def test_a_cascade_image_is_remade_bit_for_bit(gan_32, stage_64, tmp_path):
    out = tmp_path / "gen"
    api.generate(gan_32, out, n=3, lesion="none", seed=4, upscale=[stage_64], batch_size=2)
    row = load_dataset(out).records[2].image_id
    assert api.regenerate(out, row, checkpoint=gan_32, upscale=[stage_64])["identical"]
    with pytest.raises(InputError, match="the image was made by"):  # the generator alone is another model
        api.regenerate(out, row, checkpoint=gan_32)
