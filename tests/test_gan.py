"""The conditional GAN on the shared training loop: losses, exact resume, determinism, conditioning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mammosynth import api
from mammosynth.datasets import load_dataset
from mammosynth.errors import InputError
from mammosynth.generate.pipeline import GANPipeline, load_pipeline
from mammosynth.io.images import read_image
from mammosynth.models.gan import ConditionalGAN, GANConfig, diff_augment
from test_generate import toy_views


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return toy_views(tmp_path_factory.mktemp("toy") / "data")


def losses(run) -> list[dict]:
    return [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]


def test_gan_config_checks_depth():
    with pytest.raises(InputError, match=r"g_channels needs .* = 3 entries for image_size 32, got 2"):
        GANConfig(image_size=32, g_channels=(8, 8), d_channels=(8, 8, 8)).check()


def test_short_training_lowers_the_generator_loss_and_resume_is_exact(data, tmp_path):
    common = ["train.r1_every=4", "train.checkpoint_every=10"]
    api.train(data, tmp_path / "full", model="gan", config="tiny", set=["train.steps=60", *common])
    rows = losses(tmp_path / "full")
    assert "r1" in rows[0] and "r1" not in rows[1]  # lazy R1 every 4 steps
    g = [r["g_loss"] for r in rows]
    assert np.mean(g[-10:]) < np.mean(g[:10])  # D's early advantage is not permanent
    api.train(data, tmp_path / "cut", model="gan", config="tiny", set=["train.steps=35", *common])
    api.train(data, tmp_path / "cut", model="gan", config="tiny", set=["train.steps=60", *common], resume=True)
    assert losses(tmp_path / "cut") == rows


def test_generation_is_deterministic_and_conditioning_changes_the_output(data, tmp_path):
    api.train(data, tmp_path / "g", model="gan", config="tiny", set=["train.steps=10"])
    pipeline = load_pipeline(str(tmp_path / "g"))
    assert isinstance(pipeline, GANPipeline)
    a = pipeline.sample([{"view": "CC"}] * 3, [1, 2, 3])
    b = pipeline.sample([{"view": "CC"}] * 3, [1, 2, 3])
    c = pipeline.sample([{"view": "MLO"}] * 3, [1, 2, 3])
    single = pipeline.sample([{"view": "CC"}], [2])
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(single[0] - a[1]).max() < 1e-5  # an image does not depend on its batch-mates
    result = api.generate(tmp_path / "g", tmp_path / "out", n=3, model="gan", view="MLO", density="C")
    record = load_dataset(tmp_path / "out").records[0]
    assert result["images"] == 3 and record.extra["provenance"]["family"] == "gan"
    assert record.extra["provenance"]["sampler"] is None
    assert read_image(tmp_path / "out" / record.path).pixels.shape == (32, 32)
    with pytest.raises(InputError, match="'gan' model, not 'ldm'"):
        api.generate(tmp_path / "g", tmp_path / "x", n=1, model="ldm")


def test_diff_augment_is_differentiable_and_keeps_shape():
    images = torch.rand(4, 1, 32, 32, requires_grad=True)
    out = diff_augment(images, torch.Generator().manual_seed(0))
    out.sum().backward()
    assert out.shape == images.shape and images.grad is not None and images.grad.abs().sum() > 0


def test_discriminator_uses_the_conditions():
    model = ConditionalGAN(GANConfig(image_size=32, z_dim=8, cond_dim=8, g_channels=(16, 8, 8), d_channels=(8, 8, 16)))
    images = torch.rand(2, 1, 32, 32)
    cc = model.discriminator(images, torch.tensor([[1, 0, 0, 0, 0, 0]] * 2), torch.zeros(2, 3, 2))
    mlo = model.discriminator(images, torch.tensor([[2, 0, 0, 0, 0, 0]] * 2), torch.zeros(2, 3, 2))
    assert not torch.allclose(cc, mlo)
