"""Label map → mammogram translation: derived training pairs, losses, exact resume, determinism, lesion
placement, phantom --translate, generate --model translation, and bad label maps / checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import draw

from factories import prepared_phantoms
from mammosynth import api
from mammosynth.datasets import load_dataset
from mammosynth.errors import InputError
from mammosynth.generate.layout import layout_seed
from mammosynth.generate.pipeline import TranslationPipeline, load_pipeline
from mammosynth.io.images import read_image
from mammosynth.models.translation import check_label_map
from mammosynth.phantom.dataset import image_seed
from mammosynth.phantom.labelmap import BACKGROUND, BREAST, FIBROGLANDULAR, MALIGNANT_MASS, NIPPLE, SKIN
from mammosynth.training.data import PreparedImages

SIZE = ["model.image_size=64"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_phantoms(tmp_path_factory.mktemp("phantom"), ("none", "malignant-mass"), n=10, size=128, seed=5)


@pytest.fixture(scope="module")
def translator(prepared, tmp_path_factory):
    run = tmp_path_factory.mktemp("translator") / "run"
    api.train(prepared, run, model="translation", config="tiny", set=[*SIZE, "train.steps=150"])
    return run


def losses(run) -> list[dict]:
    return [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]


def test_training_pairs_carry_label_maps_derived_from_the_images(prepared):
    data = PreparedImages(prepared, size=64, labels=True)
    batch = data.batch(list(range(len(data))))
    labels, spatial = batch["labels"].numpy(), batch["spatial"].numpy()
    assert labels.shape == (len(data), 64, 64)
    assert np.array_equal(labels > BACKGROUND, spatial[:, 0] > 0)  # the breast is the prepared breast mask
    for cls in (BREAST, FIBROGLANDULAR, MALIGNANT_MASS):
        assert (labels == cls).any(), cls
    # 64 px over these crops is 3.4–3.75 mm a pixel, wider than the 2 mm skin: no pixel is skin, as in the
    # phantom's own label maps at this size (derive_label_map's skin: test_derived_skin_lies_along_the_skin_line)
    assert not (labels == SKIN).any()
    lesion = spatial[:, 2] > 0
    assert (labels[lesion] == MALIGNANT_MASS).mean() > 0.9
    assert "labels" not in PreparedImages(prepared, size=64).batch([0])  # only translators pay for them


def test_derived_skin_lies_along_the_skin_line():
    """The skin band follows the outline, as deep as ``skin_mm``, and never the chest wall (a one-column
    shift once put it on the boundaries that face the chest wall instead)."""
    from mammosynth.phantom.derive import derive_label_map

    rr, cc = np.mgrid[:100, :80]
    breast = ((rr - 50) / 45.0) ** 2 + (cc / 60.0) ** 2 < 1  # against the left edge
    labels = derive_label_map(np.full((100, 80), 0.3), breast, spacing_mm=0.5, skin_mm=2.0)
    skin = labels == SKIN
    depth = ndi.distance_transform_edt(np.hstack([np.ones((100, 1), bool), breast]))[:, 1:]
    assert np.isin(labels[breast & (depth <= 4)], (SKIN, NIPPLE)).all()  # 4 px of 0.5 mm, the nipple on top
    assert not skin[breast & (depth > 4)].any()
    assert not skin[40:60, 0].any()  # the chest wall
    assert skin[20, 42:45].all() and not skin[20, 30:37].any()  # across the skin line, above the nipple


def test_short_training_lowers_the_losses_and_resume_is_exact(prepared, translator, tmp_path):
    rows = losses(translator)
    l1 = [r["l1"] for r in rows]
    assert np.mean(l1[-5:]) < 0.6 * np.mean(l1[:3])
    assert {"d_loss", "g_adv", "feature_matching"} <= set(rows[0])
    common = [*SIZE, "train.checkpoint_every=10"]
    api.train(prepared, tmp_path / "full", model="translation", config="tiny", set=[*common, "train.steps=30"])
    api.train(prepared, tmp_path / "cut", model="translation", config="tiny", set=[*common, "train.steps=20"])
    api.train(
        prepared, tmp_path / "cut", model="translation", config="tiny", set=[*common, "train.steps=30"], resume=True
    )
    assert losses(tmp_path / "cut") == losses(tmp_path / "full")


def _lesion_free_map(prepared) -> np.ndarray:
    labels = PreparedImages(prepared, size=64, labels=True).batch([0])["labels"][0].numpy()
    labels[labels == MALIGNANT_MASS] = FIBROGLANDULAR
    return labels


def test_translation_is_deterministic_and_keeps_the_lesion_where_the_map_put_it(prepared, translator):
    pipeline = load_pipeline(str(translator))
    assert isinstance(pipeline, TranslationPipeline)
    plain = _lesion_free_map(prepared)
    rows, cols = np.nonzero(plain == FIBROGLANDULAR)
    shares = []
    for centre in ((int(np.median(rows)), int(np.median(cols))), (int(rows.min()) + 4, int(cols.min()) + 4)):
        with_lesion = plain.copy()
        disc = np.zeros_like(plain, dtype=bool)
        disc[draw.disk(centre, 5, shape=disc.shape)] = True
        disc &= plain > BACKGROUND
        with_lesion[disc] = MALIGNANT_MASS
        a = pipeline.translate(np.stack([plain, with_lesion]), [7, 7])
        assert np.array_equal(a, pipeline.translate(np.stack([plain, with_lesion]), [7, 7]))
        assert np.abs(pipeline.translate(with_lesion, [7])[0] - a[1]).max() < 1e-5  # whatever the batch
        change = np.abs(a[1] - a[0])
        grown = ndi.binary_dilation(disc, iterations=2)
        shares.append(change[grown].sum() / change.sum())  # the disc covers under 5 % of the image
        peak = np.unravel_index(np.argmax(ndi.uniform_filter(change, 5)), change.shape)
        assert grown[peak], (centre, peak)  # the biggest change is at the requested lesion
        assert a[1][disc].mean() > a[0][disc].mean()  # and it is a denser (brighter) mass
    assert min(shares) > 0.25, shares


def test_phantom_translate_renders_label_maps_through_the_model(translator, tmp_path):
    result = api.phantom(tmp_path / "ph", n=3, lesion="malignant-mass", seed=2, translate=translator)
    dataset = load_dataset(tmp_path / "ph")
    assert result["images"] == 3
    for record in dataset.records:
        image = read_image(tmp_path / "ph" / record.path).pixels
        labels = read_image(tmp_path / "ph" / record.extra["phantom"]["labels"]).pixels
        assert image.shape == labels.shape == (64, 64)
        assert record.extra["phantom"]["translated_by"]["family"] == "translation"
        breast = np.round(labels * 255) > 0 if labels.max() <= 1 else labels > 0
        assert image[breast].mean() > image[~breast].mean() + 0.1  # the model drew the breast where the map is
    with pytest.raises(InputError, match="this translator makes 64 px images"):
        api.phantom(tmp_path / "bad", n=1, size=128, translate=translator)


def test_generate_with_a_translator_draws_phantom_layouts(translator, tmp_path):
    result = api.generate(translator, tmp_path / "gen", n=2, model="translation", view="CC", lesion="malignant-mass")
    record = load_dataset(tmp_path / "gen").records[0]
    provenance = record.extra["provenance"]
    assert result["images"] == 2 and provenance["family"] == "translation" and provenance["layout"] == "phantom"
    assert "phantom_params" in provenance and record.findings and record.findings[0].mask_path
    # each layout comes from a seed stream of its own: not the seed of the same-index image of a phantom dataset
    # made with the same seed, whose fibroglandular pattern it would repeat
    drawn = sorted(r.extra["provenance"]["phantom_params"]["seed"] for r in load_dataset(tmp_path / "gen").records)
    assert drawn == sorted(layout_seed(0, i) for i in range(2))
    assert not set(drawn) & {image_seed(0, i) for i in range(2)}


def test_bad_label_maps_and_checkpoints_are_refused(translator, tmp_path):
    pipeline = TranslationPipeline(str(translator))
    good = np.zeros((64, 64), np.uint8)
    with pytest.raises(InputError, match=r"unknown class values \[9, 200\]"):
        pipeline.translate(np.where(np.eye(64, dtype=bool), 200, 9).astype(np.uint8), [0], where="map.png")
    with pytest.raises(InputError, match="label map is 32×32; this model translates 64×64 maps"):
        pipeline.translate(good[:32, :32], [0])
    with pytest.raises(InputError, match="non-integer values"):
        check_label_map(good + 0.5)
    with pytest.raises(InputError, match="2 label maps but 1 seeds"):
        pipeline.translate(np.stack([good, good]), [0])
    gan = tmp_path / "gan"
    api.train(prepared_stub(tmp_path), gan, model="gan", config="tiny", set=["train.steps=2"])
    with pytest.raises(InputError, match="'gan' model, not 'translation'"):
        TranslationPipeline(str(gan))
    with pytest.raises(InputError, match="'gan' model, not 'translation'"):
        api.phantom(tmp_path / "x", n=1, translate=gan)
    assert not (tmp_path / "x").exists()


def prepared_stub(tmp_path):
    from test_generate import toy_views

    return toy_views(tmp_path / "toy")


def test_cli_phantom_translate_refuses_a_wrong_checkpoint_in_one_line(translator, tmp_path):
    from test_generate import cli

    result = cli("phantom", "--out", str(tmp_path / "p"), "--n", "1", "--translate", str(tmp_path / "missing"))
    assert result.returncode == 2 and "checkpoint not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "p").exists()
    result = cli("phantom", "--out", str(tmp_path / "p"), "--n", "2", "--translate", str(translator))
    assert result.returncode == 0, result.stderr
    assert len(load_dataset(tmp_path / "p").records) == 2
