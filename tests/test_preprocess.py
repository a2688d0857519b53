from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared
from mammosynth.datasets import iter_manifest, load_dataset
from mammosynth.errors import InputError
from mammosynth.io import read_image, write_png
from mammosynth.io.pseudonym import pseudonymise
from mammosynth.phantom import make_phantom_dataset
from mammosynth.preprocess import breast_mask, chest_wall_side, pectoral_mask, prepare_dataset


def test_mias_lesion_lands_on_the_same_breast_pixels(tmp_path):
    source = load_dataset(shared("mini-mias-original"), salt="s")
    prepare_dataset(source, tmp_path / "out", size=256, salt="s")
    prepared = {r.extra["source"]["key"]: r for r in iter_manifest(tmp_path / "out")}
    checked = 0
    for record in source.records:
        circles = [f for f in record.findings if f.geometry == "circle"]
        if not circles:
            continue
        original = read_image(source.root / record.path).pixels
        cx, cy, r = circles[0].coords
        yy, xx = np.mgrid[0 : original.shape[0], 0 : original.shape[1]]
        lesion_mean = original[(xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= (0.5 * r) ** 2].mean()
        out = prepared[pseudonymise(record.path, "s", namespace="source", prefix="K")]
        image = read_image(tmp_path / "out" / out.path).pixels
        mask = read_image(tmp_path / "out" / out.findings[0].mask_path).pixels > 0.5
        breast = read_image(tmp_path / "out" / out.extra["breast_mask"]).pixels > 0.5
        assert mask.sum() > 0 and (mask & breast).sum() / mask.sum() > 0.9  # the lesion lies in the breast
        # the same tissue: the pixels under the moved circle are as bright, relative to the breast, as before
        rel_before = lesion_mean / original[breast_mask(original)].mean()
        scale = out.extra["prepare"]["transform"]["scale"]
        ncx, ncy, nr = out.findings[0].coords
        assert nr == pytest.approx(r * scale)
        yy, xx = np.mgrid[0:256, 0:256]
        inner = (xx + 0.5 - ncx) ** 2 + (yy + 0.5 - ncy) ** 2 <= (0.5 * nr) ** 2
        rel_after = image[inner].mean() / image[breast].mean()
        assert rel_after == pytest.approx(rel_before, rel=0.15)
        checked += 1
    assert checked >= 3
    # the crop starts where the tissue does: no half-dark first column (the dark film edge the mask's closing
    # reaches into, averaged in by the reduction): columns 0 and 1 were at 0.17 and 0.69 of column 2 here
    ratios = []
    for record in prepared.values():
        image = read_image(tmp_path / "out" / record.path).pixels
        rows = read_image(tmp_path / "out" / record.extra["breast_mask"]).pixels[:, 2] > 0.5
        first, second, third = (float(image[rows, k].mean()) for k in range(3))
        ratios.append((first / third, second / third))
    first_ratio, second_ratio = np.median(ratios, axis=0)
    assert first_ratio > 0.9 and second_ratio < 1.04, (first_ratio, second_ratio)


def test_phantom_prepare_flips_right_breasts_and_moves_masks(tmp_path):
    make_phantom_dataset(tmp_path / "ph", n=6, size=128, lesion="malignant-mass", seed=3)
    source = sorted(r.laterality for r in load_dataset(tmp_path / "ph").records)
    assert source == ["L", "L", "L", "R", "R", "R"]  # this seed draws both sides, so both paths run
    prepare_dataset(load_dataset(tmp_path / "ph"), tmp_path / "prep", size=64, salt="s")
    records = list(iter_manifest(tmp_path / "prep"))
    assert sorted(r.laterality for r in records) == source
    for record in records:
        assert record.extra["prepare"]["flipped"] == (record.laterality == "R")
        breast = read_image(tmp_path / "prep" / record.extra["breast_mask"]).pixels > 0.5
        assert chest_wall_side(breast) == "left" and breast[:, 0].sum() > breast[:, -1].sum()
        lesion = read_image(tmp_path / "prep" / record.findings[0].mask_path).pixels > 0.5
        x0, y0, x1, y1 = record.findings[0].coords
        rows, cols = np.flatnonzero(lesion.any(1)), np.flatnonzero(lesion.any(0))
        # the mask lies in the box, from its near corner (a flip would mirror it); the far side may fall short,
        # since a spiculated mass's thin spicules set the box but vanish from the mask at 64 px
        assert abs(cols[0] - x0) <= 2 and abs(rows[0] - y0) <= 2
        assert cols[-1] + 1 <= x1 + 2 and rows[-1] + 1 <= y1 + 2 and (cols[-1] + 1 - cols[0]) >= 0.5 * (x1 - x0)
        image = read_image(tmp_path / "prep" / record.path).pixels
        assert image[lesion].mean() > image[breast & ~lesion].mean()  # the mass is still under its mask


def test_splits_keep_patients_together_and_existing_output_is_refused(tmp_path):
    make_phantom_dataset(tmp_path / "ph", n=12, size=96, seed=1)
    prepare_dataset(load_dataset(tmp_path / "ph"), tmp_path / "prep", size=64)
    records = list(iter_manifest(tmp_path / "prep"))
    sides: dict[str, set] = {}
    for r in records:
        sides.setdefault(r.patient_key, set()).add(r.split)
    assert all(len(s) == 1 for s in sides.values()) and {"train", "test"} <= {r.split for r in records}
    before = (tmp_path / "prep" / "manifest.jsonl").read_text()
    with pytest.raises(InputError, match="exists"):
        prepare_dataset(load_dataset(tmp_path / "ph"), tmp_path / "prep", size=64)
    assert (tmp_path / "prep" / "manifest.jsonl").read_text() == before


def test_no_breast_found_writes_nothing(tmp_path):
    write_png(tmp_path / "src" / "blank.png", np.zeros((64, 64), np.float32))
    write_png(tmp_path / "src" / "ok.png", np.zeros((64, 64), np.float32) + 0.0)
    with pytest.raises(InputError, match=r"blank\.png: no breast found"):
        prepare_dataset(load_dataset(tmp_path / "src"), tmp_path / "out", size=64)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_ten_bit_values_in_a_sixteen_bit_png_prepare_like_the_full_range_image(tmp_path):
    """A 16-bit PNG holding 10-bit values spans 1/64 of the scale: the absolute contrast floor called it
    "no breast found". Thresholds relative to the image's range find the same breast; an image of noise
    alone still has none."""
    from factories import breast_image

    pixels = breast_image(seed=1)
    write_png(tmp_path / "full" / "a.png", pixels)
    ten_bit = np.round(pixels * 1023).astype(np.uint16)
    (tmp_path / "low").mkdir()
    Image.fromarray(ten_bit).save(tmp_path / "low" / "a.png")
    assert read_image(tmp_path / "low" / "a.png").pixels.max() < 1 / 60
    for name in ("full", "low"):
        prepare_dataset(load_dataset(tmp_path / name), tmp_path / f"prep-{name}", size=64)
    full, low = (read_image(next((tmp_path / f"prep-{n}" / "images").iterdir())).pixels for n in ("full", "low"))
    assert np.abs(full - low).max() < 0.01 and (low > 0).mean() > 0.3
    noise = np.random.default_rng(0).random((128, 96)).astype(np.float32) * 0.01
    write_png(tmp_path / "noise" / "n.png", noise)
    with pytest.raises(InputError, match=r"n\.png: no breast found"):
        prepare_dataset(load_dataset(tmp_path / "noise"), tmp_path / "prep-noise", size=64)


def test_source_splits_that_share_a_patient_are_redone_and_per_file_patients_are_said(tmp_path):
    """A source split with one woman in train and test leaked her into evaluation unchecked; a CSV without
    a patient column made every image its own patient without a word."""
    from factories import breast_image, write_csv

    for k in range(6):
        write_png(tmp_path / f"{k}.png", breast_image(seed=k))
    splits = ["train", "test", "train", "train", "test", "test"]  # woman w0 owns images 0 and 1
    rows = [[f"{k}.png", f"w{k // 2}", splits[k]] for k in range(6)]
    write_csv(tmp_path / "metadata.csv", ["file", "woman", "split"], rows)
    mapping = {"columns": {"path": "file", "patient": "woman", "split": "split"}}
    prepare_dataset(load_dataset(tmp_path, mapping=mapping), tmp_path / "out", size=64)
    info = json.loads((tmp_path / "out" / "prepare.json").read_text())
    assert info["warnings"] == ["the source's splits put 1 patient(s) in more than one split; split again by patient"]
    by_woman: dict = {}
    for record in iter_manifest(tmp_path / "out"):
        by_woman.setdefault(record.patient_key, set()).add(record.split)
    assert len(by_woman) == 3 and all(len(s) == 1 for s in by_woman.values())

    rows[1][2] = "train"  # now the source's splits keep every woman on one side: they are kept, no warning
    write_csv(tmp_path / "metadata.csv", ["file", "woman", "split"], rows)
    prepare_dataset(load_dataset(tmp_path, mapping=mapping), tmp_path / "kept", size=64)
    assert json.loads((tmp_path / "kept" / "prepare.json").read_text())["warnings"] == []
    assert sorted(r.split for r in iter_manifest(tmp_path / "kept")) == [
        "test",
        "test",
        "train",
        "train",
        "train",
        "train",
    ]

    no_patients = load_dataset(tmp_path, mapping={"columns": {"path": "file"}})
    assert no_patients.warnings and "counts as its own patient" in no_patients.warnings[0]


def test_chest_wall_side_ignores_a_leak_along_the_border():
    """A breast against the right border whose mask leaks along the top border to the far left (a label
    joined to it): the band rule saw the leak's columns at the left end and said left."""
    yy, xx = np.mgrid[0:200, 0:160]
    mask = ((160 - xx) / 90.0) ** 2 + ((yy - 100) / 60.0) ** 2 < 1
    mask[0:3, 0:160] = True  # along the top border …
    mask[:, 0:6] = True  # … into a scanner strip down the left border
    assert chest_wall_side(mask) == "right"


def test_chest_wall_side_on_every_shared_image():
    """Against the side each shared set records (mini-MIAS and DDSM: its chest_wall_side column; cc-cesm:
    laterality, L on the left): at most 0.5 % wrong, and those flagged uncertain (the breast fills the width)."""
    import csv

    from mammosynth.preprocess.segment import SIDE_MARGIN, side_margin

    wrong, unflagged, total = [], [], 0
    for name in ("mini-mias", "ddsm-tissue-seg", "cc-cesm"):
        root = shared(name)
        with open(root / "metadata.csv", newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if (root / r["file"]).is_file()]
        for row in rows:
            truth = row.get("chest_wall_side") or ("left" if row["laterality"] == "L" else "right")
            breast = breast_mask(read_image(root / row["file"]).pixels)
            total += 1
            if chest_wall_side(breast) != truth:
                wrong.append(row["file"])
                if side_margin(breast) >= SIDE_MARGIN:
                    unflagged.append(row["file"])
    assert len(wrong) <= 0.005 * total and unflagged == [], wrong


def test_pectoral_muscle_on_shared_mlo_films():
    """Against the DDSM films' pectoral labels, and found on mini-MIAS films (padded beside the chest wall:
    the earlier method looked for the muscle in the image's first columns and found it on none of them).
    Floors under the measured values (49 / 50, Dice median 0.95; 219 / 242 with Canny's thresholds in the
    breast's own spread and muscles up to 45 % of the breast, 181 before)."""
    import csv

    root = shared("ddsm-tissue-seg")
    with open(root / "metadata.csv", newline="") as handle:
        labels = {r["file"]: r["mask_file"] for r in csv.DictReader(handle) if (root / r["file"]).is_file()}
    dice, found = [], 0
    for path, mask_file in sorted(labels.items()):
        pixels = read_image(root / path).pixels
        breast = breast_mask(pixels)
        truth = np.asarray(Image.open(root / mask_file)) == 255
        if chest_wall_side(breast) == "right":
            pixels, breast, truth = pixels[:, ::-1], breast[:, ::-1], truth[:, ::-1]
        muscle = pectoral_mask(pixels, breast)
        found += bool(muscle.any())
        dice.append(2 * (muscle & truth).sum() / max(muscle.sum() + truth.sum(), 1))
    assert found >= 0.9 * len(labels) and np.median(dice) >= 0.9
    mapping = Path(__file__).parents[1] / "examples" / "mappings" / "mini-mias-derived.yaml"
    mias = load_dataset(shared("mini-mias"), mapping=mapping)
    hits = []
    for record in mias.records:
        pixels = read_image(mias.root / record.path).pixels
        breast = breast_mask(pixels)
        if chest_wall_side(breast) == "right":
            pixels, breast = pixels[:, ::-1], breast[:, ::-1]
        hits.append(pectoral_mask(pixels, breast).any())
    assert np.mean(hits) >= 0.9, (sum(hits), len(hits))


def test_segmentation_ignores_labels_and_finds_chest_wall():
    image = np.zeros((300, 200), np.float32)
    yy, xx = np.mgrid[0:300, 0:200]
    image[((200 - xx) / 120.0) ** 2 + ((yy - 150) / 130.0) ** 2 < 1] = 0.6  # chest wall on the right
    image[10:40, 10:50] = 1.0  # a film label
    mask = breast_mask(image)
    assert chest_wall_side(mask) == "right"
    assert not mask[10:40, 10:50].any() and mask[150, 150]


def test_prepare_json_provenance(tmp_path):
    make_phantom_dataset(tmp_path / "ph", n=2, size=64)
    prepare_dataset(load_dataset(tmp_path / "ph"), tmp_path / "prep", size=64)
    info = json.loads((tmp_path / "prep" / "prepare.json").read_text())
    assert info["images"] == 2 and info["orientation"].startswith("chest wall at the left")


@pytest.mark.parametrize("box", [(2.0, 3.0, 9.0, 7.0), (0.0, 0.0, 4.0, 4.0), (3.5, 1.25, 8.75, 6.5)])
def test_a_box_rasterises_exactly_like_the_polygon_of_the_same_square(box):
    from mammosynth.datasets.schema import Finding
    from mammosynth.preprocess.geometry import rasterise

    x0, y0, x1, y1 = box
    as_box = rasterise(Finding(category="mass", geometry="box", coords=list(box)), 12, 10)
    as_polygon = rasterise(
        Finding(category="mass", geometry="polygon", coords=[x0, y0, x1, y0, x1, y1, x0, y1]), 12, 10
    )
    assert np.array_equal(as_box, as_polygon)
    if box == (2.0, 3.0, 9.0, 7.0):  # whole pixels: columns 2–8 and rows 3–6, nothing past the right/bottom edge
        rows, cols = np.flatnonzero(as_box.any(1)), np.flatnonzero(as_box.any(0))
        assert (rows[0], rows[-1], cols[0], cols[-1]) == (3, 6, 2, 8) and as_box.sum() == 7 * 4


def _labelled_cases(names: tuple[str, ...], step: int):
    """(set, image, corner, touching, labelled pixels, label mask, clean mask) for film labels drawn into shared
    images in every corner that has room outside the breast."""
    from factories import CORNERS, film_label

    for name in names:
        for path in sorted((shared(name) / "images").glob("*.png"))[::step]:
            pixels = read_image(path).pixels
            clean = breast_mask(pixels)
            for corner in CORNERS:
                for touching in (False, True):
                    drawn = film_label(pixels, clean, corner, touching)
                    if drawn is not None:
                        yield name, path.name, corner, touching, drawn[0], drawn[1], clean


def test_film_labels_drawn_on_real_images_are_cut_from_the_breast(tmp_path):
    """Issue 16, item 3: white paper labels with dark text drawn in the corners of real films and digital
    images, apart from the breast and touching it: at most 2 % of a label left in the breast mask on at least
    95 % of them per set, and at least 94 % of the breast kept on every one (measured at step 5–12: 222 of 226
    labels cut, the breast kept ≥ 94.4 %; the misses touch the breast in a corner away from the chest wall)."""
    from mammosynth.preprocess.burned_in import burned_in_mask

    results: dict[str, list[bool]] = {}
    for name, image, corner, touching, pixels, label, clean in _labelled_cases(
        ("mini-mias", "cc-cesm", "ddsm-tissue-seg"), step=10
    ):
        mask = breast_mask(pixels)
        mask &= ~burned_in_mask(pixels, mask, chest_wall_side(mask))
        left = (mask & label).sum() / label.sum()
        kept = (mask & clean & ~label).sum() / (clean & ~label).sum()
        assert kept >= 0.94, (name, image, corner, touching, kept)
        results.setdefault(name, []).append(left <= 0.02)
    assert sorted(results) == ["cc-cesm", "ddsm-tissue-seg", "mini-mias"]
    for name, cut in results.items():
        assert len(cut) >= 10 and np.mean(cut) >= 0.95, (name, np.mean(cut), len(cut))


def test_what_is_cut_from_the_shared_images_stays_small():
    """On the 414 shared images: the cuts are film edge lines and tape along the top and bottom borders
    and mdb274's skin-line digits (mini-MIAS 18, DDSM 1 images; looked at with scripts/burned_in_check.py)
    and, on cc-cesm, which carries no labels, 8 false cuts of bright skin (nipple) or chest-wall strips under
    1 % of the mask each. Floors under those counts: no more images and no larger cuts."""
    from mammosynth.preprocess.burned_in import burned_in_mask

    cut: dict[str, list[float]] = {}
    for name in ("mini-mias", "cc-cesm", "ddsm-tissue-seg"):
        for path in sorted((shared(name) / "images").glob("*.png")):
            pixels = read_image(path).pixels
            mask = breast_mask(pixels)
            removed = burned_in_mask(pixels, mask, chest_wall_side(mask))
            if removed.any():
                cut.setdefault(name, []).append(removed.sum() / mask.sum())
    assert len(cut.get("cc-cesm", [])) <= 8 and max(cut.get("cc-cesm", [0])) < 0.01, cut.get("cc-cesm")
    assert len(cut.get("mini-mias", [])) <= 18 and len(cut.get("ddsm-tissue-seg", [])) <= 1
    assert max(max(shares) for shares in cut.values()) < 0.04


def test_digits_on_a_patch_at_the_skin_line_are_cut():
    """mdb274's "0 5": white digits on a grey label patch that overlaps the skin line, which the mask kept
    (legible at 512 px in the prepared image). They go, with 0.5 % of the mask, and nothing that bright is
    left where they were."""
    from mammosynth.preprocess.burned_in import burned_in_mask

    pixels = read_image(shared("mini-mias") / "images" / "mdb274.png").pixels
    mask = breast_mask(pixels)
    removed = burned_in_mask(pixels, mask, chest_wall_side(mask))
    assert 0.001 < removed.sum() / mask.sum() < 0.01
    around = np.zeros_like(mask)
    around[95:150, 280:340] = True  # the patch, on the skin line (x right, y down, shared image's frame)
    digits = pixels[mask & around].max()
    assert digits >= np.percentile(pixels[mask], 99.9)  # as bright as the densest tissue
    assert pixels[mask & ~removed & around].max() < 0.5 * digits


def test_labels_joined_to_the_breast_by_a_films_edge_line_are_left_out():
    """mini-MIAS films whose bright top edge line joins a label in the far corner to the breast: the mask
    kept the label (and prepare wrote it, legible) until the line was cut."""
    from skimage import measure

    for name in ("mdb045", "mdb075", "mdb077", "mdb201", "mdb309"):
        mask = breast_mask(read_image(shared("mini-mias") / "images" / f"{name}.png").pixels)
        inner = mask.copy()
        edge = round(0.02 * max(mask.shape))
        inner[:edge], inner[-edge:], inner[:, :edge], inner[:, -edge:] = False, False, False, False
        areas = np.sort(np.bincount(measure.label(inner).ravel())[1:])[::-1]
        assert len(areas) == 1 or areas[1] < 0.0005 * mask.size, (name, areas[:3])


def test_prepare_cuts_a_label_touching_the_breast_and_says_so(tmp_path):
    """Without shared data: a phantom with a paper label touching its breast. The prepared image is black
    where the label was, the manifest records the cut, --check-burned-in writes its table and sheet, and a
    DICOM export says BurnedInAnnotation NO for it and YES for a record no label search cleaned."""
    import pydicom

    from factories import film_label
    from mammosynth import api
    from mammosynth.datasets.schema import Record
    from mammosynth.export.formats import write_vindr

    make_phantom_dataset(tmp_path / "ph", n=2, size=256, seed=3)
    dataset = load_dataset(tmp_path / "ph")
    record = dataset.records[0]
    pixels = read_image(dataset.root / record.path).pixels
    clean = breast_mask(pixels)
    corner = "top-right" if chest_wall_side(clean) == "left" else "top-left"
    drawn = film_label(pixels, clean, corner, touching=True)
    assert drawn is not None
    write_png(dataset.root / record.path, drawn[0], bits=16)
    result = api.prepare(tmp_path / "ph", tmp_path / "prep", size=256, check_burned_in=True)
    assert result["burned_in_removed"] == 1
    assert result["images"] == 2 and result["counts"]["images"]["total"] == 2  # the check's sheet shows one
    prepared = load_dataset(tmp_path / "prep")
    cut = [r for r in prepared.records if r.extra["prepare"]["burned_in"]["regions"]]
    assert len(cut) == 1 and cut[0].extra["prepare"]["burned_in"]["removed_share"] > 0
    image = read_image(prepared.root / cut[0].path).pixels
    where = read_image(prepared.root / cut[0].extra["prepare"]["burned_in"]["mask"]).pixels > 0.5
    assert where.sum() > 50 and image[where].max() == 0.0
    table = (tmp_path / "prep" / "burned-in.csv").read_text().splitlines()
    assert len(table) == 2 and table[1].startswith(cut[0].image_id)
    assert (tmp_path / "prep" / "burned-in.png").stat().st_size > 1000
    assert json.loads((tmp_path / "prep" / "prepare.json").read_text())["burned_in_removed"] == 1

    unsearched = Record.from_dict(prepared.records[1].to_dict())
    del unsearched.extra["prepare"]["burned_in"]
    unsearched.image_id = "unsearched"
    for r in (cut[0], unsearched):
        (tmp_path / "out" / r.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / r.path).write_bytes((prepared.root / cut[0].path).read_bytes())
    write_vindr(tmp_path / "out", [cut[0], unsearched])
    said = {p.stem: pydicom.dcmread(p).BurnedInAnnotation for p in (tmp_path / "out" / "vindr").rglob("*.dicom")}
    assert said == {cut[0].image_id: "NO", "unsearched": "YES"}


def test_dark_fat_in_a_corner_against_the_chest_wall_and_border_stays_in_the_mask():
    """Issue 16, item 6: a breast that runs off the top and bottom of the image with dark fat in its top
    chest-wall corner (above the air, below the tissue) and a bright label in a far corner (which drew the
    threshold up). The fat opens onto the top border, so neither hole filling nor the chest-wall fill closed it:
    the mask lost it (a cc-cesm image lost 57 % of its breast so)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:400, 0:300]
    breast = (xx / 240.0) ** 2 + ((yy - 200) / 230.0) ** 2 < 1  # against the left border, past top and bottom
    image = np.where(breast, 0.55, 0.02) + rng.normal(0, 0.01, (400, 300))
    fat = breast & (xx < 110) & (yy < 120)
    image[fat] = 0.08
    image[360:395, 230:295] = 1.0  # a film label in the far bottom corner
    mask = breast_mask(image.astype(np.float32))
    assert chest_wall_side(mask) == "left"
    assert mask[fat].mean() > 0.95, mask[fat].mean()
    assert mask[~breast & (xx > 200) & (yy < 100)].mean() < 0.02


def dark_fat_picture(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A digital CC breast against the left edge whose lower chest-wall corner is fat as dark as the
    threshold, crossed by faint strands; the air is black. Returns the image, the breast and the fat."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:256, :200]
    inside = ((rr - 110) / 150.0) ** 2 + (cc / 170.0) ** 2 < 1
    image = np.zeros((256, 200))
    image[inside] = (0.45 + 0.6 * ndimage.gaussian_filter(rng.standard_normal((256, 200)), 4))[inside]
    fat = inside & (rr > 170) & (cc < 110)
    image[fat] = 0.02 + 0.01 * rng.random(int(fat.sum()))
    image[fat & ((rr + cc) % 9 < 2)] = 0.12
    return np.clip(image, 0, 1), inside, fat


def test_dark_fat_at_the_chest_wall_stays_in_the_breast():
    """Fat as dark as the threshold at the chest wall's corner, against black air: the publication's closing
    of the brighter-than-surroundings pixels takes it in (the threshold alone kept 3 % of it)."""
    image, inside, fat = dark_fat_picture()
    mask = breast_mask(image)
    assert (mask & fat).sum() / fat.sum() > 0.4
    assert (mask & ~inside).sum() < 0.01 * inside.sum()


def test_dark_fat_fill_on_the_shared_images():
    """cc-cesm: fewer masks lose more than 5 % of the breast that the publication's closing finds (3 of 122
    before the dark-fat fill, 2 after; the mask is the breast's interior and the closing's outline its edge);
    DDSM films, whose grain the closing would fill around the breast, keep their Dice with the tissue labels
    (median 0.975, worst 0.914; a fill without the grain test dropped six of them to 0.81–0.90)."""
    from scipy import ndimage

    from mammosynth.preprocess.adaptive import binarize_adaptive, equalize_64, quadrant_hull

    losing = []
    for path in sorted((shared("cc-cesm") / "images").glob("*.png")):
        pixels = read_image(path).pixels
        mask = breast_mask(pixels)
        levels = np.round((pixels - pixels.min()) / (pixels.max() - pixels.min()) * 255).astype(np.uint8)
        closed = quadrant_hull(binarize_adaptive(equalize_64(levels)) & ndimage.binary_dilation(mask, iterations=25))
        if (closed & ~mask).sum() / closed.sum() > 0.05:
            losing.append(path.name)
    assert len(losing) <= 2, losing
    dice = []
    root = shared("ddsm-tissue-seg")
    for path in sorted((root / "images").glob("*.png")):
        truth = np.asarray(Image.open(root / "masks" / f"{path.stem}_tissue.png")) > 64
        mask = breast_mask(read_image(path).pixels)
        dice.append(2 * (mask & truth).sum() / (mask.sum() + truth.sum()))
    assert np.median(dice) >= 0.97 and min(dice) >= 0.9, (np.median(dice), min(dice))
