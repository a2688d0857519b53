"""The conditional GAN on the shared training loop: losses, exact resume, determinism, conditioning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from factories import prepared_phantoms
from mammosynth import api
from mammosynth.datasets import load_dataset
from mammosynth.errors import InputError
from mammosynth.export.expand import _check_model
from mammosynth.export.plan import Plan
from mammosynth.generate.layout import phantom_layout
from mammosynth.generate.pipeline import GANPipeline, load_pipeline
from mammosynth.io.images import read_image
from mammosynth.models.conditioning import CONTINUOUS, FIELDS, encode_conditions, one_hot_labels
from mammosynth.models.gan import ConditionalGAN, FiLMBlock, GANConfig, diff_augment, minibatch_std
from mammosynth.phantom.labelmap import BREAST, FIBROGLANDULAR, prepared_label_map
from mammosynth.phantom.sampling import sample_params
from test_generate import toy_views


def uniform(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return lambda *shape: torch.rand(*shape, generator=generator)


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
    assert np.mean([r["d_real"] - r["d_fake"] for r in rows[-10:]]) > 0  # D tells real from fake
    trained = load_pipeline(str(tmp_path / "full"))
    untrained = GANPipeline(str(tmp_path / "full"))
    untrained.model = ConditionalGAN(trained.config).eval()  # the same network before any step
    real = np.stack([read_image(p).pixels for p in sorted((data / "images").glob("*.png"))])
    conditions, seeds = [{"view": "CC"}, {"view": "MLO"}] * 8, list(range(16))

    def gap(pipeline) -> float:  # distance of the mean generated image from the mean real one
        return float(np.abs(pipeline.sample(conditions, seeds).mean(0) - real.mean(0)).mean())

    assert gap(trained) < 0.6 * gap(untrained)  # G moved toward the data
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
    out = diff_augment(images, uniform(0))
    out.sum().backward()
    assert out.shape == images.shape and images.grad is not None and images.grad.abs().sum() > 0


def test_diff_augment_colour_zero_moves_pixels_without_changing_them():
    images = torch.rand(4, 1, 32, 32)
    kept = diff_augment(images, uniform(0), colour=0.0)
    for source, out in zip(images, kept, strict=True):  # translation and cutout only: every value is a source value
        assert torch.isin(out[out != 0], source).all()
    changed = diff_augment(images, uniform(0), colour=1.0)
    assert not torch.isin(changed[0][changed[0] != 0], images[0]).all()


def test_discriminator_uses_the_conditions():
    model = ConditionalGAN(GANConfig(image_size=32, z_dim=8, cond_dim=8, g_channels=(16, 8, 8), d_channels=(8, 8, 16)))
    images = torch.rand(2, 1, 32, 32)
    cc = model.discriminator(images, torch.tensor([[1, 0, 0, 0, 0, 0]] * 2), torch.zeros(2, 3, 2))
    mlo = model.discriminator(images, torch.tensor([[2, 0, 0, 0, 0, 0]] * 2), torch.zeros(2, 3, 2))
    assert not torch.allclose(cc, mlo)


def test_per_pixel_noise_is_used_and_comes_from_the_image_seed(data, tmp_path):
    config = GANConfig(image_size=32, z_dim=8, cond_dim=8, g_channels=(16, 8, 8), d_channels=(8, 8, 16))
    generator = ConditionalGAN(config).generator.eval()
    for block in generator.blocks:
        torch.nn.init.constant_(block.noise_strength, 0.5)
    z = torch.randn(2, 8)
    categorical, continuous = torch.zeros(2, 6, dtype=torch.long), torch.zeros(2, 3, 2)
    quiet = generator(z, categorical, continuous, None)
    first = generator(z, categorical, continuous, torch.randn(2, 1, 32, 32))
    second = generator(z, categorical, continuous, torch.randn(2, 1, 32, 32))
    assert not torch.allclose(first, second) and not torch.allclose(first, quiet)
    api.train(data, tmp_path / "g", model="gan", config="tiny", set=["train.steps=4"])
    pipeline = load_pipeline(str(tmp_path / "g"))
    for block in pipeline.model.generator.blocks:
        torch.nn.init.constant_(block.noise_strength, 0.5)
    same = pipeline.sample([{}] * 2, [5, 5])
    assert np.array_equal(same[0], same[1]) and not np.array_equal(same[0], pipeline.sample([{}], [6])[0])


def test_minibatch_std_sees_a_collapsed_batch():
    same = torch.ones(4, 3, 4, 4)
    spread = torch.randn(4, 3, 4, 4)
    assert minibatch_std(same).abs().max() < 1e-3
    assert minibatch_std(spread).min() > 0.1 and minibatch_std(spread).shape == (4, 1, 4, 4)
    assert minibatch_std(torch.randn(1, 3, 4, 4)).abs().max() == 0  # a batch of one has no spread


def test_minibatch_std_is_the_groups_population_spread():
    features = torch.randn(8, 3, 2, 2)
    expected = features.reshape(2, 4, 3, 2, 2).var(dim=1, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3))
    assert torch.allclose(minibatch_std(features)[:, 0, 0, 0], expected.repeat_interleave(4), atol=1e-6)


def test_film_block_with_noise_stays_in_the_autocast_dtype_and_channels_last():
    # an fp32 noise term promoted the block to fp32 and NCHW beside channels-last convolutions (strided copies)
    block = FiLMBlock(8, 4, 6, noise=True).to(memory_format=torch.channels_last)
    with torch.no_grad():
        block.noise_strength.fill_(0.5)
    x = torch.randn(2, 8, 4, 4).contiguous(memory_format=torch.channels_last)
    noise = torch.randn(2, 1, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = block(x, torch.randn(2, 6), noise)
        quiet = block(x, torch.randn(2, 6), None)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    assert out.shape == (2, 4, 8, 8) and not torch.equal(out, quiet)


def test_alpha_generator_paints_tissue_times_its_coverage():
    config = GANConfig(image_size=16, z_dim=4, cond_dim=4, g_channels=(8, 8), d_channels=(8, 8), alpha=True)
    generator = ConditionalGAN(config).generator.eval()
    z = torch.randn(2, 4)
    categorical = torch.zeros(2, len(FIELDS), dtype=torch.long)
    continuous = torch.zeros(2, len(CONTINUOUS), 2)
    assert generator.out.out_channels == 2
    with torch.no_grad():
        generator.out.bias[1] = -100.0  # no coverage anywhere: exact black
        assert generator(z, categorical, continuous).abs().max() < 1e-30
        generator.out.bias[1] = 100.0  # full coverage: the tissue channel as it is
        tissue = torch.nn.functional.conv2d(
            _last_features(generator, z, categorical, continuous),
            generator.out.weight[:1],
            generator.out.bias[:1],
            padding=1,
        )
        assert torch.allclose(generator(z, categorical, continuous), tissue, atol=1e-6)


def _last_features(generator, z, categorical, continuous):
    features = {}
    handle = generator.blocks[-1].register_forward_hook(lambda m, i, o: features.setdefault("x", o))
    generator(z, categorical, continuous)
    handle.remove()
    return features["x"]


def test_a_spatial_generator_paints_inside_the_given_breast_and_reads_the_layout():
    config = GANConfig(
        image_size=16, z_dim=4, cond_dim=4, g_channels=(8, 8), d_channels=(8, 8), alpha=True, spatial=True
    )
    generator = ConditionalGAN(config).generator.eval()
    z = torch.randn(2, 4)
    categorical = torch.zeros(2, len(FIELDS), dtype=torch.long)
    continuous = torch.zeros(2, len(CONTINUOUS), 2)
    layout = torch.zeros(2, 3, 16, 16)
    layout[:, 0, :, :10] = 1  # the breast: the left 10 columns
    muscle = layout.clone()
    muscle[:, 1, :6, :6] = 1  # the same breast with a pectoral muscle
    with torch.no_grad():
        out = generator(z, categorical, continuous, None, layout)
        moved = generator(z, categorical, continuous, None, muscle)
    assert generator.out.out_channels == 1  # the given breast is the coverage: no coverage channel
    assert out[..., 10:].abs().max() == 0 and out[..., :10].abs().mean() > 1e-3
    assert not torch.allclose(out, moved)  # the pectoral channel reaches the blocks
    with pytest.raises(InputError, match="needs spatial maps"):
        generator(z, categorical, continuous)


def test_a_label_map_generator_paints_inside_the_breast_and_reads_the_tissue_classes():
    config = GANConfig(
        image_size=16, z_dim=4, cond_dim=4, g_channels=(8, 8), d_channels=(8, 8), alpha=True, spatial=True, labels=True
    )
    generator = ConditionalGAN(config).generator.eval()
    assert generator.blocks[0].conv1.in_channels == 8 + 9  # the nine classes of the label map
    z, categorical = torch.randn(2, 4), torch.zeros(2, len(FIELDS), dtype=torch.long)
    continuous = torch.zeros(2, len(CONTINUOUS), 2)
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, :, :10] = BREAST
    dense = labels.clone()
    dense[:, 4:12, 2:8] = FIBROGLANDULAR
    with torch.no_grad():
        out = generator(z, categorical, continuous, None, one_hot_labels(labels))
        tissue = generator(z, categorical, continuous, None, one_hot_labels(dense))
    assert out[..., 10:].abs().max() == 0 and out[..., :10].abs().mean() > 1e-3  # the breast: every class but 0
    assert not torch.allclose(out, tissue)  # the fibroglandular class reaches the blocks
    with pytest.raises(InputError, match=r"model\.labels needs model\.spatial"):
        GANConfig(labels=True).check()


@pytest.mark.parametrize("layout", ["masks", "labels"])
def test_a_spatial_gan_trains_on_its_layouts_and_generates_from_phantom_layouts(tmp_path, layout):
    data = prepared_phantoms(tmp_path / "phantoms", ("none", "malignant-mass"), n=4, size=64, seed=4)
    run = tmp_path / "run"
    shape = ["model.image_size=64", "model.g_channels=[32,16,16,8]", "model.d_channels=[8,16,16,32]"]
    flags = ["model.spatial=true", "model.alpha=true", f"model.labels={str(layout == 'labels').lower()}"]
    # 40 steps: fresh from its initialisation a tiny generator may paint below 0 everywhere (black once clamped),
    # and calibration needs images that are not
    api.train(data, run, model="gan", config="tiny", set=["train.steps=40", *flags, *shape])
    pipeline = load_pipeline(str(run))
    assert pipeline.needs_layout and pipeline.follows_layout and pipeline.uses_labels == (layout == "labels")
    labels, spatial, _ = phantom_layout(7, 64, {"view": "MLO"})
    image = pipeline.sample([{"view": "MLO"}], [7], spatial=spatial[None], labels=labels[None])[0]
    assert image[labels == 0].max() == 0  # the layout's breast is the silhouette
    # inside it the generator paints (before the pipeline's clamp)
    generator, encoded = pipeline.model.generator, encode_conditions([{"view": "MLO"}])
    z = torch.randn(1, pipeline.config.z_dim, generator=torch.Generator().manual_seed(7))
    given = one_hot_labels(torch.from_numpy(labels[None])) if layout == "labels" else torch.from_numpy(spatial[None])
    with torch.no_grad():
        raw = generator(z, encoded["categorical"], encoded["continuous"], None, given)[0, 0].numpy()
    assert np.abs(raw[labels > 0]).mean() > 1e-3
    with pytest.raises(InputError, match="--layout phantom"):
        pipeline.sample([{"view": "MLO"}], [7])
    if layout == "labels":  # masks alone are not its layout
        with pytest.raises(InputError, match="--layout phantom"):
            pipeline.sample([{"view": "MLO"}], [7], spatial=spatial[None])
    result = api.generate(run, tmp_path / "out", n=2, seed=3, lesion="malignant-mass")
    assert result["layout"] == "phantom" and result["images"] == 2  # drawn for it, as for a translator
    # its conditions reach it (unlike a translator's): an expansion may not ask for a lesion it never saw
    with pytest.raises(InputError, match="trained without benign images"):
        _check_model(pipeline, Plan(by=("lesion",), target="x", seed=0, images=[{"lesion": "benign-mass"}]), "x")
    # the calibration draws a layout for each training request too (it refused layout-bound models before)
    summary = api.calibrate(run, data, tmp_path / "map.json")
    assert summary["images"] >= 4 and summary["quantile_gap"]["mapped"] < summary["quantile_gap"]["generated"]
    # and the web app's designer previews a designed breast through it (it follows the layout it is given)
    server = pytest.importorskip("mammosynth.app.server", reason="the app extra (FastAPI) is not installed")
    server.create_app(tmp_path / "app", translator=run)
    params = sample_params(5, view="MLO", lesion="benign-mass")
    framed, _ = prepared_label_map(params, 64)
    preview = server.realistic(pipeline, params)
    assert preview.shape == (64, 64) and preview[framed == 0].max() == 0 and np.isfinite(preview).all()


def test_the_noise_starts_at_its_configured_strength():
    config = GANConfig(image_size=16, z_dim=4, cond_dim=4, g_channels=(8, 8), d_channels=(8, 8), noise_init=0.2)
    blocks = ConditionalGAN(config).generator.blocks
    assert all(torch.equal(b.noise_strength, torch.full((2, 8, 1, 1), 0.2)) for b in blocks)
    quiet = ConditionalGAN(GANConfig(image_size=16, z_dim=4, cond_dim=4, g_channels=(8, 8), d_channels=(8, 8)))
    assert all(b.noise_strength.abs().max() == 0 for b in quiet.generator.blocks)  # StyleGAN's start by default
