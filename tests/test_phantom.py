from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared
from mammosynth.datasets import iter_manifest
from mammosynth.errors import InputError
from mammosynth.io import read_image
from mammosynth.phantom import (
    LABELS,
    Mass,
    Outline,
    PhantomParams,
    draw_label_map,
    fit_outline,
    make_phantom_dataset,
    power_law_noise,
    render_phantom,
    sample_params,
    to_colour,
)
from mammosynth.phantom.fit import outline_iou
from mammosynth.phantom.frame import breast_box
from mammosynth.phantom.labelmap import breast_region
from mammosynth.phantom.outline import ellipse_point

SIZE = 128


def fraction(labels: np.ndarray, name: str) -> float:
    return float((labels == LABELS[name]).sum() / (labels != 0).sum())


def test_deterministic_by_seed_and_json_roundtrip():
    params = sample_params(7, lesion="malignant-mass")
    again = PhantomParams.from_dict(json.loads(params.to_json()))
    a = render_phantom(params, draw_label_map(params, SIZE))
    b = render_phantom(again, draw_label_map(again, SIZE))
    assert np.array_equal(a, b)
    other = sample_params(8, lesion="malignant-mass")
    assert not np.array_equal(a, render_phantom(other, draw_label_map(other, SIZE)))


def test_density_raises_fibroglandular_fraction():
    fractions = [fraction(draw_label_map(PhantomParams(density=d, seed=1), SIZE), "fibroglandular") for d in "ABCD"]
    assert fractions == sorted(fractions) and fractions[-1] > 3 * fractions[0]


def test_skin_thickness_is_an_inward_offset():
    thin = draw_label_map(PhantomParams(skin_mm=1.0), 256)
    thick = draw_label_map(PhantomParams(skin_mm=4.0), 256)
    assert (thick == LABELS["skin"]).sum() > 2.5 * (thin == LABELS["skin"]).sum()
    assert np.array_equal(thin != 0, thick != 0)  # the outline does not move
    wall = thick[:, 0]
    assert (wall == LABELS["skin"]).sum() < 0.1 * (wall != 0).sum()  # skin only where the arc meets the wall


def test_outline_parameters_change_the_shape():
    base = breast_region(PhantomParams(), SIZE).sum()
    assert breast_region(PhantomParams(outline=Outline(a=0.7)), SIZE).sum() > base
    assert breast_region(PhantomParams(outline=Outline(b=0.3)), SIZE).sum() < base
    tilted = breast_region(PhantomParams(outline=Outline(phi=0.5)), SIZE)
    assert not np.array_equal(tilted, breast_region(PhantomParams(), SIZE))


def test_view_lesions_and_nipple():
    mlo = draw_label_map(PhantomParams(view="MLO"), SIZE)
    assert (
        fraction(mlo, "pectoral") > 0.02 and fraction(draw_label_map(PhantomParams(view="CC"), SIZE), "pectoral") == 0
    )
    small = draw_label_map(PhantomParams(masses=[Mass(kind="benign", shape="round", size_mm=8)]), 256)
    large = draw_label_map(PhantomParams(masses=[Mass(kind="benign", shape="round", size_mm=16)]), 256)
    ratio = (large == LABELS["benign_mass"]).sum() / (small == LABELS["benign_mass"]).sum()
    assert 3.2 < ratio < 4.8  # area grows with the square of the diameter
    bad = draw_label_map(PhantomParams(masses=[Mass(kind="malignant", shape="spiculated", x=0.2, y=0.5)]), 256)
    ys, xs = np.nonzero(bad == LABELS["malignant_mass"])
    assert abs(xs.mean() / 256 - 0.2) < 0.03 and abs(ys.mean() / 256 - 0.5) < 0.03
    up = np.argwhere(draw_label_map(PhantomParams(nipple_position=-0.8), SIZE) == LABELS["nipple"]).mean(0)
    down = np.argwhere(draw_label_map(PhantomParams(nipple_position=0.8), SIZE) == LABELS["nipple"]).mean(0)
    assert abs(up[0] - down[0]) > 10


def test_colour_sets_follow_the_publication():
    labels = draw_label_map(PhantomParams(masses=[Mass(kind="malignant")]), SIZE)
    rgb1, rgb2 = to_colour(labels, 1), to_colour(labels, 2)
    assert tuple(rgb1[labels == LABELS["malignant_mass"]][0]) == (178, 34, 34)
    assert tuple(rgb2[labels == LABELS["breast"]][0]) == (0, 0, 255)


def test_texture_has_the_requested_power_law():
    noise = power_law_noise((256, 256), 3.0, np.random.default_rng(0))
    spectrum = np.abs(np.fft.rfft2(noise)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(256), np.fft.rfftfreq(256), indexing="ij")
    f = np.hypot(fx, fy)
    band = (f > 0.02) & (f < 0.3)
    slope = np.polyfit(np.log(f[band]), np.log(spectrum[band]), 1)[0]
    assert slope == pytest.approx(-3.0, abs=0.15)


def test_fit_recovers_parameters():
    truth = Outline(a=0.45, b=0.38, phi=-0.2, X0=0.9, Y0=0.55, Alpha_e=1.4)
    fitted, iou = fit_outline(breast_region(PhantomParams(outline=truth), SIZE))
    assert iou > 0.97
    assert fitted.a == pytest.approx(0.45, abs=0.05) and fitted.b == pytest.approx(0.38, abs=0.05)
    assert fitted.phi == pytest.approx(-0.2, abs=0.12)


def publication_picture(truth: Outline, frame_px: tuple[int, int], image_px: tuple[int, int]) -> np.ndarray:
    """A breast drawn as the publication fits it: the ellipse ``truth`` in the padded frame (y up, divided by
    the image's top row, where the breast is cut), cut to the image (chest wall at its right edge), then
    mirrored to the standard orientation."""
    (rows_px, cols_px), (h, w) = frame_px, image_px
    row_start = rows_px // 2 - (h // 2 - 1)
    norm = rows_px - row_start + 1
    rr, cc = np.mgrid[0:h, 0:w]
    x = (cc + cols_px - w + 1) / norm - truth.X0
    y = (rows_px - row_start - rr + 1) / norm - truth.Y0
    c, s = np.cos(-truth.phi), np.sin(-truth.phi)
    inside = ((x * c + y * s) / truth.a) ** 2 + ((-x * s + y * c) / truth.b) ** 2 < 1
    return inside[:, ::-1]


def test_fit_returns_the_publication_convention():
    from mammosynth.phantom.frame import fit_publication

    truth = Outline(a=0.5, b=0.45, phi=-0.2, X0=0.9, Y0=0.57, Alpha_e=0.0)
    mask = publication_picture(truth, (300, 240), (260, 200))
    assert mask[0].any() and mask[:, 0].any() and not mask[-1].any()  # cut by the top edge and the chest wall
    fitted, frame, iou = fit_publication(mask, (300, 240))
    assert iou > 0.95
    for name, tolerance in (("a", 0.03), ("b", 0.03), ("Y0", 0.03), ("X0", 0.03), ("phi", 0.1)):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), abs=tolerance), name
    x_top, y_top = ellipse_point(fitted, fitted.Alpha_e)  # Alpha_e: the arc's top end, on the image's top row
    assert y_top == pytest.approx(1.0, abs=0.03) and x_top < truth.X0
    # the same picture in a frame padded 30 px wider (the norm, the image's top row, stays 280) moves X0,
    # and only X0, by 30 / 280
    wider, _, _ = fit_publication(mask, (300, 270))
    assert abs(wider.X0 - fitted.X0 - 30 / 280) < 0.005
    assert abs(wider.a - fitted.a) < 1e-6 and abs(wider.Y0 - fitted.Y0) < 1e-6
    # and the phantom draws the converted outline over the same breast
    assert outline_iou(frame.phantom_outline(fitted), breast_box(mask)) == pytest.approx(iou, abs=1e-6)
    with pytest.raises(InputError, match="frame-px"):
        fit_publication(mask, (200, 240))


def test_fit_on_real_cc_images_matches_the_publication():
    """cc-cesm's metadata holds the publication's own fits: ours, in its frames, must land on them."""
    import csv

    from mammosynth.api import fit
    from mammosynth.phantom.frame import PUBLICATION_FRAMES_PX, fit_publication
    from mammosynth.preprocess import breast_mask, chest_wall_side

    root = shared("cc-cesm")
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    deltas = []
    for row in rows[::8]:  # 16 images; scripts/publication_frame_check.py measures all
        pixels = read_image(root / row["file"]).pixels
        mask = breast_mask(pixels)
        if chest_wall_side(mask) == "right":
            mask, pixels = mask[:, ::-1], pixels[:, ::-1]
        frame_px = PUBLICATION_FRAMES_PX[row["finding_class"]]
        original = (int(row["orig_height"]), int(row["orig_width"]))  # the shared copies are shrunk
        outline, _, iou = fit_publication(mask, frame_px, pixels, original)
        assert iou > 0.8
        deltas.append([abs(getattr(outline, k) - float(row[k])) for k in ("a", "b", "Y0", "phi")])
    median = np.median(deltas, axis=0)
    assert median[:3].max() <= 0.03 and median[3] <= 0.1, median
    # the API on a shrunk copy, its frame shrunk with it, lands where the scaled fit does
    scale = int(row["height"]) / original[0]
    result = fit(root / row["file"], frame_px=(round(frame_px[0] * scale), round(frame_px[1] * scale)))
    for key in ("a", "b", "Y0"):
        assert result["outline"][key] == pytest.approx(getattr(outline, key), abs=0.01), key


def test_dataset_is_independent_of_sharding(tmp_path):
    make_phantom_dataset(tmp_path / "all", n=4, size=64, seed=5)
    make_phantom_dataset(tmp_path / "shard", n=2, size=64, seed=5, start=2)
    whole = {r.image_id: r for r in iter_manifest(tmp_path / "all")}
    for record in iter_manifest(tmp_path / "shard"):
        a = read_image(tmp_path / "all" / whole[record.image_id].path).pixels
        assert np.array_equal(a, read_image(tmp_path / "shard" / record.path).pixels)


def test_empirical_sampling_stays_in_bounds_and_classes_differ():
    from mammosynth.phantom.sampling import outline_stats, sample_outline

    stats = outline_stats()["classes"]["all"]
    rng = np.random.default_rng(0)
    for _ in range(50):
        values = list(sample_outline(rng).__dict__.values())
        assert all(lo - 1e-9 <= v <= hi + 1e-9 for v, lo, hi in zip(values, stats["min"], stats["max"], strict=True))
    assert sample_outline(rng, "median") == sample_outline(rng, "median")


def test_bad_parameters():
    with pytest.raises(InputError, match="density"):
        PhantomParams(density="E").validate()
    with pytest.raises(InputError, match="unknown key 'colour' in phantom parameters"):
        PhantomParams.from_dict({"colour": 1})
    with pytest.raises(InputError, match=r"calcifications\[1\].particle_mm must be above 0"):
        PhantomParams.from_dict({"calcifications": [{}, {"particle_mm": 0}]})
    with pytest.raises(InputError, match=r"outline.b must be a finite number, got inf"):
        PhantomParams(outline=Outline(b=float("inf"))).validate()
    with pytest.raises(InputError, match="lesion"):
        sample_params(0, lesion="tumour")


def test_publication_estimator_leaves_a_label_far_from_the_breast_out():
    """The publication's closing fills everything between bright pixels: a label in a corner would stretch
    the skin line to it. ``fit`` keeps only what lies near the breast mask."""
    from mammosynth.phantom.frame import fit_publication

    truth = Outline(a=0.5, b=0.45, phi=-0.2, X0=0.9, Y0=0.57, Alpha_e=0.0)
    mask = publication_picture(truth, (300, 240), (260, 200))
    image = mask * np.clip(0.6 + 0.05 * power_law_noise(mask.shape, 3.0, np.random.default_rng(0)), 0, 1)
    labelled = image.copy()
    labelled[235:250, 160:195] = 1.0  # 30 px beyond the breast's farthest column
    clean, _, _ = fit_publication(mask, (300, 240), image=image)
    fitted, _, iou = fit_publication(mask, (300, 240), image=labelled)
    ungated, _, _ = fit_publication(np.ones_like(mask), (300, 240), image=labelled)
    for name in ("a", "b", "phi", "X0", "Y0"):
        assert getattr(fitted, name) == pytest.approx(getattr(clean, name), abs=0.01), name
    assert abs(ungated.a - clean.a) > 0.2  # the label, let in, moves the fit
    assert iou > 0.9
