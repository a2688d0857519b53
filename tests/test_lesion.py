"""The lesion painter: what a training step draws, that the requested kind (not the disc) decides whether a
lesion appears, that only the disc at the requested place changes, per-seed determinism, and cascades
(``generate --upscale PAINTER``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mammosynth import api
from mammosynth.datasets import load_dataset
from mammosynth.errors import InputError
from mammosynth.generate.pipeline import PLACE_X, PLACE_Y, Cascade, LesionStage, load_pipeline
from mammosynth.io.images import read_image
from mammosynth.models.lesion import LesionConfig, LesionPainter, condition, disc_masks, feather
from mammosynth.models.verifier import KINDS, LesionVerifier, VerifierConfig
from mammosynth.training.config import TrainConfig, load_config
from mammosynth.training.lesion import LesionTask, load_guide
from mammosynth.training.loop import StepContext
from test_generate import toy_views

MASS = KINDS.index("benign-mass")


def tissue(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Grey textured breasts filling the image."""
    return 0.3 + 0.1 * torch.rand(n, 1, size, size, generator=g)


def with_masses(n: int, size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Half the images carry one bright disc of radius 3 ("mass", its finding mask in ``kinds``)."""
    images = tissue(n, size, g)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = torch.randint(6, size - 6, (n, 2), generator=g)
    inside = ((xx[None] - centres[:, :1, None]) ** 2 + (yy[None] - centres[:, 1:, None]) ** 2) <= 9
    inside[n // 2 :] = False
    images[:, 0][inside] += 0.5
    return images, torch.where(inside, MASS, 0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return toy_views(tmp_path_factory.mktemp("toy") / "data")


@pytest.fixture(scope="module")
def painter_32(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("lesion") / "run"
    api.train(data, run, model="lesion", config="tiny")
    return run


def test_config_checks_patch_and_radii():
    with pytest.raises(InputError, match="patch_px must be between 8 and image_size"):
        LesionConfig(image_size=32, patch_px=48).check()
    with pytest.raises(InputError, match="radius_px must lie between"):
        LesionConfig(image_size=32, patch_px=16, radius_px=9.0).check()
    with pytest.raises(InputError, match=r"grow_min_px must lie between 0 and model\.grow_px"):
        LesionConfig(image_size=32, patch_px=16, radius_px=3.0, grow_px=2, grow_min_px=3).check()
    with pytest.raises(
        InputError, match=r"d_crop_px 20 must be 0 or up to patch_px.*\(20 px\) a multiple of 2\^d_layers"
    ):
        LesionConfig(image_size=32, patch_px=16, radius_px=3.0, d_crop_px=20, d_layers=2).check()


def test_a_local_discriminator_sees_the_central_window_only():
    config = LesionConfig(image_size=32, patch_px=32, width=8, dilations=(1,), d_channels=8, d_layers=2, d_crop_px=16)
    model = LesionPainter(config).eval()
    cond, patch = torch.rand(1, 6, 32, 32), torch.rand(1, 1, 32, 32)
    edited = patch.clone()
    edited[..., :8, :] = 0  # outside the central 16 px window
    assert torch.equal(model.discriminate(cond, patch)[-1], model.discriminate(cond, edited)[-1])
    edited[..., 16, 16] = 1 - edited[..., 16, 16]  # inside it
    assert not torch.equal(model.discriminate(cond, patch)[-1], model.discriminate(cond, edited)[-1])


def test_a_feathered_fill_blends_into_the_tissue_at_the_disc_edge():
    with pytest.raises(InputError, match="feather_px must be ≥ 0"):
        LesionConfig(image_size=32, patch_px=16, radius_px=3.0, feather_px=-1).check()
    config = LesionConfig(image_size=32, patch_px=16, width=8, dilations=(1,), d_channels=8, d_layers=2, feather_px=2)
    generator = LesionPainter(config).generator.eval()
    patch = 0.3 + 0.1 * torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    disc = disc_masks(torch.tensor([[8.0, 8.0]]), torch.tensor([6.0]), 16)
    inputs = (condition(patch, disc, torch.tensor([MASS])), torch.zeros_like(patch), patch, disc)
    with torch.no_grad():
        soft = generator(*inputs)
        generator.feather_px = 0
        hard = generator(*inputs)
    weight = feather(disc, 2)
    assert torch.equal(soft[disc == 0], patch[disc == 0])  # outside the disc: the input, bit for bit
    assert torch.allclose(soft[weight == 1], hard[weight == 1], atol=1e-6)  # deep inside: the fill
    rim = (disc > 0) & (weight < 1)
    assert rim.sum() > 0 and torch.allclose(soft[rim], (patch + weight * (hard - patch))[rim])


def test_a_step_paints_findings_in_lesion_images_and_tissue_elsewhere():
    g = torch.Generator().manual_seed(0)
    images, kinds = with_masses(8, 32, g)
    config = LesionConfig(image_size=32, patch_px=16, width=8, dilations=(1, 2), d_channels=8, d_layers=2, grow_px=1)
    task = LesionTask(config, TrainConfig(), torch.device("cpu"))
    patches, discs, asked = task.examples({"image": images, "kinds": kinds}, StepContext(0, 0, torch.device("cpu"), g))
    assert patches.shape == discs.shape == (8, 1, 16, 16)
    assert asked[:4].tolist() == [MASS] * 4 and asked[4:].tolist() == [0] * 4
    for k in range(4):  # the disc holds the whole bright mass (turned with it) and a margin of tissue
        bright = patches[k, 0] > 0.75
        assert bright.sum() == 29 and bool(discs[k, 0][bright].all()) and discs[k].sum() > bright.sum()
    for k in range(4, 8):  # a tissue disc on a normal image: no bright pixel anywhere
        assert float(patches[k].max()) < 0.41 and discs[k].sum() > 0


def test_the_requested_kind_decides_whether_a_mass_is_painted():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    config = LesionConfig(image_size=32, patch_px=16, width=16, dilations=(1, 2, 1), d_channels=16, d_layers=2)
    task = LesionTask(config, TrainConfig(adv_weight=1.0, feature_weight=10.0, pixel_weight=1.0), torch.device("cpu"))
    d_opt = torch.optim.Adam(task.model.discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(task.model.generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    for step in range(120):
        images, kinds = with_masses(16, 32, g)
        batch, ctx = {"image": images, "kinds": kinds}, StepContext(step, 0, torch.device("cpu"), g)
        for optimiser, loss in ((d_opt, task.discriminator_loss), (g_opt, task.generator_loss)):
            optimiser.zero_grad()
            loss(batch, ctx)[0].backward()
            optimiser.step()
    stage = LesionStage.__new__(LesionStage)  # the stage around this network, without a checkpoint
    stage.model, stage.config, stage.device = task.model.eval(), config, torch.device("cpu")
    stage.size, stage.spacing_mm, stage.input_size = 32, None, 32
    stage.checkpoint = None
    normal = tissue(8, 32, g)[:, 0].numpy()
    place = {"lesion_x": 0.5, "lesion_y": 0.5}
    masses = stage.refine(normal, list(range(8)), [{"category": "mass", "pathology": "benign", **place}] * 8)
    unchanged = stage.refine(normal, list(range(8)), [{"category": "none"}] * 8)
    centre = np.s_[:, 14:19, 14:19]
    assert masses[centre].mean() > normal[centre].mean() + 0.25  # a bright mass where it was asked
    # the same disc asked to hold tissue (kind 0, what training asks of normal images): no mass
    patches = torch.from_numpy(normal[:, None, 8:24, 8:24])
    disc = disc_masks(torch.full((8, 2), 8.0), torch.full((8,), 7.0), 16)
    with torch.no_grad():
        filled = task.model.generator(
            condition(patches, disc, torch.zeros(8)), torch.zeros_like(patches), patches, disc
        )
    assert float(filled[:, 0, 6:11, 6:11].mean()) < normal[centre].mean() + 0.1
    assert np.abs(masses[:, :8] - normal[:, :8]).max() == 0  # and nothing changes away from it
    assert np.array_equal(unchanged, normal)  # no lesion asked: the image as it was, bit for bit


def test_a_guide_verifier_teaches_the_painter_what_it_calls_the_requested_kind_and_stays_frozen():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    guide = LesionVerifier(VerifierConfig(image_size=32, channels=(8, 16), patch_px=8))
    optimiser = torch.optim.Adam(guide.parameters(), lr=3e-3)
    for _ in range(80):  # the guide learns bright discs from tissue
        images, kinds = with_masses(16, 32, g)
        optimiser.zero_grad()
        guide.loss(images, kinds).backward()
        optimiser.step()
    config = LesionConfig(image_size=32, patch_px=16, width=8, dilations=(1, 2), d_channels=8, d_layers=2)
    # no adversarial, feature or pixel term: the guide's cross-entropy is the painter's only loss
    train = TrainConfig(adv_weight=0.0, feature_weight=0.0, pixel_weight=0.0, guide_weight=1.0)
    task = LesionTask(config, train, torch.device("cpu"))
    guide.zero_grad(set_to_none=True)
    task.guide = guide.eval().requires_grad_(False)
    painter = torch.optim.Adam(task.model.generator.parameters(), lr=3e-3)
    fixed = with_masses(16, 32, torch.Generator().manual_seed(7))

    def guide_ce(step: int) -> float:
        ctx = StepContext(step, 0, torch.device("cpu"), torch.Generator().manual_seed(3))
        with torch.no_grad():
            return task.generator_loss({"image": fixed[0], "kinds": fixed[1]}, ctx)[1]["guide_ce"]

    before = guide_ce(0)
    for step in range(60):
        images, kinds = with_masses(16, 32, g)
        painter.zero_grad()
        task.generator_loss({"image": images, "kinds": kinds}, StepContext(step, 0, torch.device("cpu"), g))[
            0
        ].backward()
        painter.step()
    # the painter now fills each disc with what the guide calls its kind (1.01 → 0.68 here; the guide's own
    # cross-entropy on the real patches is 0.96: a guide is a judge the painter learns to please)
    assert guide_ce(0) < 0.75 * before
    assert all(p.grad is None for p in guide.parameters())  # the guide itself is not trained


def test_a_guide_must_be_a_patch_verifier_of_the_painters_size(data, painter_32, tmp_path):
    verifier = tmp_path / "verifier"
    api.train(data, verifier, model="verifier", config="tiny", set=["train.steps=3"])
    config = load_config("lesion", "tiny")["model"]
    with pytest.raises(InputError, match="verifier"):
        load_guide(str(painter_32), config, torch.device("cpu"))
    with pytest.raises(InputError, match="judges 32 px images, the painter paints 64 px"):
        load_guide(str(verifier), LesionConfig(image_size=64, patch_px=16, radius_px=3.0), torch.device("cpu"))
    run = tmp_path / "guided"
    guided = [f"train.guide={verifier}", "train.guide_weight=1", "train.steps=4"]
    api.train(data, run, model="lesion", config="tiny", set=guided)
    assert "guide_ce" in (run / "losses.jsonl").read_text().splitlines()[-1]


def test_only_the_disc_at_the_requested_place_changes_and_each_image_depends_on_its_seed(painter_32):
    stage = LesionStage(str(painter_32))
    images = np.random.default_rng(0).uniform(0.3, 0.5, (3, 32, 32)).astype(np.float32)
    asks = [{"category": "mass", "pathology": "malignant", "lesion_x": 0.25, "lesion_y": 0.75}] * 3
    both = stage.refine(images, [5, 6, 7], asks)
    assert np.abs(both[1] - stage.refine(images[1:2], [6], asks[1:2])[0]).max() < 1e-5  # not on its batch-mates
    assert not np.array_equal(stage.refine(images[:1], [5], asks[:1]), stage.refine(images[:1], [9], asks[:1]))
    yy, xx = np.mgrid[:32, :32]
    x, y, radius = stage.place(asks[0], 5)
    assert (x, y) == (8.0, 24.0)
    outside = (xx - x) ** 2 + (yy - y) ** 2 > radius**2
    changed = both != images
    assert not changed[:, outside].any() and changed[:, ~outside].mean() > 0.5
    # a request without a place gets one drawn from its seed, known before the image is made
    calc = {"category": "calcification"}
    placed, again, other, normal = stage.locate([calc, calc, calc, {"category": "none"}], [3, 3, 4, 3])
    assert placed == again != other
    assert PLACE_X[0] <= placed["lesion_x"] <= PLACE_X[1] and PLACE_Y[0] <= placed["lesion_y"] <= PLACE_Y[1]
    assert normal == {"category": "none"}
    with pytest.raises(InputError, match="one request each"):
        stage.refine(images, [5, 6, 7], asks[:2])


def test_generate_with_a_painter_after_the_generator(data, painter_32, tmp_path):
    gan = tmp_path / "gan"
    api.train(data, gan, model="gan", config="tiny", set=["train.steps=5"])
    cascade = load_pipeline(str(gan), upscale=[painter_32])
    assert isinstance(cascade, Cascade) and cascade.size == 32
    plain = load_pipeline(str(gan))
    asks = [{"view": "CC", "category": "mass", "pathology": "benign", "lesion_x": 0.5, "lesion_y": 0.5}] * 2
    assert not np.array_equal(cascade.sample(asks, [1, 2]), plain.sample(asks, [1, 2]))
    normal = [{"view": "CC", "category": "none"}] * 2
    assert np.array_equal(cascade.sample(normal, [1, 2]), plain.sample(normal, [1, 2]))
    result = api.generate(
        gan, tmp_path / "out", n=2, lesion="benign-mass", lesion_x=0.5, lesion_y=0.5, upscale=painter_32
    )
    assert result["model"]["refined_by"][0]["family"] == "lesion"
    assert {read_image(p).pixels.shape for p in (tmp_path / "out/images").glob("*.png")} == {(32, 32)}
    # without a place: the painter's drawn place is the record's, with the lesion mask around it
    api.generate(gan, tmp_path / "free", n=2, lesion="benign-mass", upscale=painter_32)
    for record in load_dataset(tmp_path / "free").records:
        asked = record.extra["provenance"]["conditions"]
        assert PLACE_X[0] <= asked["lesion_x"] <= PLACE_X[1] and record.findings[0].mask_path
        mask = read_image(tmp_path / "free" / record.findings[0].mask_path).pixels > 0.5
        x, y = round(asked["lesion_x"] * 32), round(asked["lesion_y"] * 32)
        assert mask[y, x]  # the recorded region holds the painted place


def test_the_painter_is_a_refiner_of_its_own_family(painter_32):
    from mammosynth.families import family, refiner_names

    assert "lesion" in refiner_names() and family("lesion").refiner_class() is LesionStage
    assert isinstance(LesionPainter(LesionConfig(image_size=32, patch_px=16)).generator, torch.nn.Module)
