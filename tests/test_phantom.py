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
from mammosynth.phantom.labelmap import breast_region

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


def test_fit_on_real_cc_images():
    from mammosynth.api import fit

    images = sorted((shared("cc-cesm") / "images").glob("*.png"))[:3]
    assert all(fit(path)["iou"] > 0.85 for path in images)


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
    with pytest.raises(InputError, match="unknown keys: colour"):
        PhantomParams.from_dict({"colour": 1})
    with pytest.raises(InputError, match="lesion"):
        sample_params(0, lesion="tumour")
