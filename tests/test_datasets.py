from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import shared
from factories import (
    CBIS_MASS,
    VINDR_BREAST,
    breast_image,
    cbis_tcia_tree,
    cbis_tree,
    vindr_tree,
    write_csv,
    write_raw_dicom,
)
from mammosynth.datasets import count_dataset, load_dataset
from mammosynth.errors import InputError
from mammosynth.io import write_png


def test_mini_mias_original_format():
    ds = load_dataset(shared("mini-mias-original"), salt="s")
    assert ds.name == "mini-mias" and len(ds) == len(list(ds.root.glob("*.pgm")))
    by_id = {r.image_id: r for r in ds.records}
    r = by_id["mdb005"]  # Info.txt: mdb005 F CIRC B 477 133 30 (bottom-left origin)
    assert r.view == "MLO" and r.density == "A" and r.laterality == "R"
    assert r.findings[0].category == "mass" and r.findings[0].pathology == "benign"
    assert r.findings[0].coords == [477.0, 1024 - 133.0, 30.0]


def test_mini_mias_pairs_share_one_patient_key(tmp_path):
    """mdb001/mdb002 are one woman's two films, mdb003 another woman's (made-up PGMs in the original layout)."""
    import numpy as np

    rows = ["mdb001 G CIRC B 35 25 19", "mdb002 G CIRC B 22 28 6", "mdb003 D NORM"]
    (tmp_path / "Info.txt").write_text("\n".join(rows) + "\n")
    for row in rows:
        pixels = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
        (tmp_path / f"{row[:6]}.pgm").write_bytes(b"P5\n64 64\n255\n" + pixels.tobytes())
    keys = {r.image_id: r.patient_key for r in load_dataset(tmp_path, salt="s").records}
    assert keys["mdb001"] == keys["mdb002"] != keys["mdb003"]


def test_mias_coordinates_match_the_derived_copy():
    original = {r.image_id: r for r in load_dataset(shared("mini-mias-original"), salt="s").records}
    import csv

    with open(shared("mini-mias") / "metadata.csv") as handle:
        rows = {row["source_id"]: row for row in csv.DictReader(handle)}
    checked = 0
    for image_id, record in original.items():
        if record.findings and record.findings[0].geometry == "circle" and image_id in rows:
            cx, cy = (float(v.split(";")[0]) for v in (rows[image_id]["lesion_cx"], rows[image_id]["lesion_cy"]))
            assert record.findings[0].coords[0] * 0.5 == pytest.approx(cx)
            assert record.findings[0].coords[1] * 0.5 == pytest.approx(cy)
            checked += 1
    assert checked >= 3


def test_vindr_adapter(tmp_path):
    ds = load_dataset(vindr_tree(tmp_path), salt="s")
    assert ds.name == "vindr-mammo" and len(ds) == 3
    first = next(r for r in ds.records if r.image_id == "img0")
    assert first.density == "C" and first.birads == "4" and first.split == "train" and first.view == "CC"
    assert first.findings[0].category == "mass" and first.findings[0].coords == [10, 40, 30, 60]
    assert sum(len(r.findings) for r in ds.records) == 1
    assert all("s1" not in r.patient_key for r in ds.records)
    assert len({r.patient_key for r in ds.records}) == 2


def test_vindr_unknown_values_are_listed(tmp_path):
    with pytest.raises(InputError, match="'DENSITY E'"):
        load_dataset(vindr_tree(tmp_path / "a", density="DENSITY E"))
    with pytest.raises(InputError, match="'wobble'"):
        load_dataset(vindr_tree(tmp_path / "b", category="['Wobble']"))


def test_vindr_boxes_past_the_edge_are_clipped_and_off_image_ones_refused(tmp_path):
    """The image is 96 wide and 128 high: a box drawn past the left and right edges is clipped to them; one
    wholly beyond the right edge is an error naming the row."""
    ds = load_dataset(vindr_tree(tmp_path / "a", box=(-5, 40, 120, 60)))
    assert next(r for r in ds.records if r.image_id == "img0").findings[0].coords == [0, 40, 96, 60]
    with pytest.raises(
        InputError, match=r"finding_annotations\.csv|breast-level_annotations\.csv:2.*outside the 96×128"
    ):
        load_dataset(vindr_tree(tmp_path / "b", box=(200, 10, 220, 30)))


def test_vindr_png_conversions_are_read_with_boxes_in_their_frame(tmp_path):
    """Kaggle's VinDr PNGs keep the layout with .png files, often resized: boxes given in the DICOM's frame
    (96 × 128 here) are scaled to the PNG's (48 × 64)."""
    import pydicom
    from PIL import Image

    root = vindr_tree(tmp_path)
    for dicom in list((root / "images").rglob("*.dicom")):
        pixels = pydicom.dcmread(dicom).pixel_array
        Image.fromarray((pixels >> 4).astype(np.uint8)).resize((48, 64)).save(dicom.with_suffix(".png"))
        dicom.unlink()
    ds = load_dataset(root, salt="s")
    first = next(r for r in ds.records if r.image_id == "img0")
    assert len(ds) == 3 and first.path.endswith("img0.png") and (first.width, first.height) == (48, 64)
    assert first.findings[0].coords == [5, 20, 15, 30]


def test_dicom_view_from_the_view_code_sequence(tmp_path):
    """Some scanners write the view only as a code (ViewCodeSequence), not as ViewPosition."""
    import pydicom
    from pydicom.dataset import Dataset as DicomDataset
    from pydicom.sequence import Sequence

    for k, (value, meaning) in enumerate(
        [("R-10226", "medio-lateral oblique"), ("", "cranio-caudal"), ("R-10224", "")]
    ):
        path = write_raw_dicom(tmp_path / f"{k}.dcm", breast_image(seed=k), patient_id=f"p{k}")
        ds = pydicom.dcmread(path)
        del ds.ViewPosition
        code = DicomDataset()
        code.CodeValue, code.CodeMeaning, code.CodingSchemeDesignator = value, meaning, "SRT"
        ds.ViewCodeSequence = Sequence([code])
        ds.save_as(path)
    views = [r.view for r in sorted(load_dataset(tmp_path, salt="s").records, key=lambda r: r.path)]
    assert views == ["MLO", "CC", "other"]


def test_bad_lesion_annotations_are_one_line_errors(tmp_path):
    """Coordinates off the image, a NaN or negative radius, unparseable coordinates and an unknown severity
    were accepted silently (a 64 px image got a mass at (−12771, 12825)); each now names its row."""
    write_png(tmp_path / "img" / "0.png", breast_image(seed=0))  # 96 wide, 128 high
    mapping = {"columns": {"path": "file", "category": "klass", "cx": "x", "cy": "y", "radius": "r"}}
    for x, y, r, message in [
        (30, 40, 5, None),
        (-12771, 12825, 5, r"mass circle centre \(-12771, 12825\) lies outside the 96×128 image"),
        (30, 40, "nan", r"coordinates must be finite numbers"),
        (30, 40, -3, r"radius must be positive, got -3"),
        ("3O", 40, 5, r"lesion coordinates are not numbers"),
    ]:
        write_csv(tmp_path / "metadata.csv", ["file", "klass", "x", "y", "r"], [["img/0.png", "mass", x, y, r]])
        if message is None:
            assert load_dataset(tmp_path, mapping=mapping).records[0].findings[0].coords == [30, 40, 5]
            continue
        with pytest.raises(InputError, match=message) as caught:
            load_dataset(tmp_path, mapping=mapping)
        assert "metadata.csv:2" in str(caught.value)

    import numpy as np

    folder = tmp_path / "mias"
    folder.mkdir()
    pixels = np.zeros((64, 64), np.uint8)
    for ref in ("mdb001", "mdb002"):
        (folder / f"{ref}.pgm").write_bytes(b"P5\n64 64\n255\n" + pixels.tobytes())
    for row, message in [
        ("mdb001 G CALC M *NOTE 3*", None),  # the original's clusters without a centre
        ("mdb001 G CIRC X 30 20 5", r"Info\.txt:1: unknown severity 'X'; known: B, M"),
        ("mdb001 G CIRC B 30 2O 5", r"Info\.txt:1: lesion location must be three numbers X Y RADIUS, got '30 2O 5'"),
        ("mdb001 G CIRC B 30 20", r"three numbers X Y RADIUS, got '30 20'"),
        ("mdb001 G CIRC B 535 425 197", r"mdb001\.pgm: mass circle centre \(535, -361\) lies outside the 64×64"),
    ]:
        (folder / "Info.txt").write_text(row + "\nmdb002 G NORM\n")
        if message is None:
            assert load_dataset(folder).records[0].findings[0].geometry is None
            continue
        with pytest.raises(InputError, match=message):
            load_dataset(folder)
        lenient = load_dataset(folder, skip_bad=True)  # the film is left out, its problem kept
        assert [r.image_id for r in lenient.records] == ["mdb002"] and len(lenient.bad_annotations) == 1
        assert re.search(message, lenient.bad_annotations[0])


def test_masks_need_a_category_and_each_finding_keeps_its_own(tmp_path):
    """A mask column without a category column kept no lesion at all, and of a row's several findings only
    the first got a mask."""
    write_png(tmp_path / "img" / "0.png", breast_image(seed=0))
    for name in ("m0", "m1"):
        write_png(tmp_path / "masks" / f"{name}.png", np.zeros((128, 96), np.uint8), bits=8)
    write_csv(
        tmp_path / "metadata.csv", ["file", "klass", "masks"], [["img/0.png", "mass;calc", "masks/m0.png;masks/m1.png"]]
    )
    with pytest.raises(InputError, match=r"columns\.mask needs columns\.category"):
        load_dataset(tmp_path, mapping={"columns": {"path": "file", "mask": "masks"}})
    mapping = {
        "multi_separator": ";",
        "columns": {"path": "file", "category": "klass", "mask": "masks"},
        "values": {"category": {"mass": "mass", "calc": "calcification"}},
    }
    findings = load_dataset(tmp_path, mapping=mapping).records[0].findings
    assert [(f.category, f.mask_path) for f in findings] == [
        ("mass", "masks/m0.png"),
        ("calcification", "masks/m1.png"),
    ]


def test_a_folder_read_without_its_mapping_says_so(tmp_path):
    """Forgetting --mapping on a folder with a CSV and label maps trained on the label maps without a word."""
    for k in range(2):
        write_png(tmp_path / "images" / f"{k}.png", breast_image(seed=k))
        write_png(tmp_path / "masks" / f"{k}_tissue.png", np.zeros((128, 96), np.uint8), bits=8)
    write_csv(tmp_path / "metadata.csv", ["file", "woman"], [[f"images/{k}.png", "w"] for k in range(2)])
    warnings = load_dataset(tmp_path).warnings
    assert "metadata.csv is here but no --mapping was given" in " ".join(warnings)
    assert "2 image(s) look like masks or label maps by their path" in " ".join(warnings)
    mapped = load_dataset(tmp_path, mapping={"columns": {"path": "file", "patient": "woman"}})
    assert len(mapped) == 2 and mapped.warnings == []


def test_cbis_adapter(tmp_path):
    ds = load_dataset(cbis_tree(tmp_path), salt="s")
    assert ds.name == "cbis-ddsm" and len(ds) == 2
    pathologies = sorted(r.findings[0].pathology for r in ds.records)
    assert pathologies == ["benign", "malignant"]
    assert all(r.density == "C" and r.split == "train" and r.findings[0].geometry == "mask" for r in ds.records)
    assert all("P_0000" not in r.image_id + r.patient_key for r in ds.records)


def test_cbis_as_tcia_lays_it_out(tmp_path):
    """The TCIA download: series folders instead of the CSVs' UID paths, 1-1/1-2 instead of 000000/000001,
    the ROI mask and the crop in either order, Windows separators, and a row whose files were not
    downloaded (named, not dropped silently). Its masks land on the lesion after prepare."""
    from mammosynth.preprocess import prepare_dataset

    ds = load_dataset(cbis_tcia_tree(tmp_path), salt="s")
    assert ds.name == "cbis-ddsm" and len(ds) == 2
    masks = sorted(r.findings[0].mask_path for r in ds.records)
    assert [m.rsplit("/", 1)[1] for m in masks] == ["1-2.dcm", "1-1.dcm"]  # patient 1's mask is second, 4's first
    assert ds.skipped == [
        "Mass-Training_P_00009_LEFT_CC/1.3.6.1.4.1.9590.100.1.2.212342/1.3.6.1.4.1.9590.100.1.2.256782/000000.dcm"
    ]
    with pytest.raises(
        InputError, match=r"CBIS-DDSM: this is CBIS-DDSM's image folder: point at the folder that holds"
    ):
        load_dataset(tmp_path / "CBIS-DDSM")  # the generic reader would count masks and crops as mammograms
    prepare_dataset(ds, tmp_path / "prepared", size=64)
    from mammosynth.io import read_mask

    prepared = load_dataset(tmp_path / "prepared")
    for record in prepared.records:
        lesion = read_mask(prepared.root / record.findings[0].mask_path)
        assert 0 < lesion.mean() < 0.2


def test_csv_paths_outside_root_and_missing_columns(tmp_path):
    with pytest.raises(InputError, match=r"outside the dataset root"):
        load_dataset(cbis_tree(tmp_path / "a", image_path="../../etc/passwd"))
    write_csv(tmp_path / "b" / "breast-level_annotations.csv", VINDR_BREAST[:-2], [])
    with pytest.raises(InputError, match=r"missing required column.*breast_density, split"):
        load_dataset(tmp_path / "b")
    write_csv(tmp_path / "c" / "calc_case_description_test_set.csv", CBIS_MASS[:3], [])
    with pytest.raises(InputError, match=r"calc_case_description_test_set\.csv: missing required column"):
        load_dataset(tmp_path / "c")


def test_generic_csv_mapping_and_duplicates(tmp_path):
    for k in range(3):
        write_png(tmp_path / "img" / f"{k}.png", breast_image(seed=k))
    rows = [
        [f"img/{k}.png", f"id{k}", f"pat{k // 2}", "MLO", "L", "G", "CIRC" if k else "NORM", "B", 30, 40, 5]
        for k in range(3)
    ]
    header = ["file", "image_id", "patient", "view", "side", "tissue", "klass", "sev", "x", "y", "r"]
    write_csv(tmp_path / "meta.csv", header, rows)
    mapping = {
        "csv": "meta.csv",
        "dataset": "mine",
        "columns": {
            "path": "file",
            "image_id": "image_id",
            "patient": "patient",
            "view": "view",
            "laterality": "side",
            "density": "tissue",
            "category": "klass",
            "pathology": "sev",
            "cx": "x",
            "cy": "y",
            "radius": "r",
        },
        "values": {
            "density": {"F": "A", "G": "B", "D": "C"},
            "category": {"NORM": None, "CIRC": "mass"},
            "pathology": {"B": "benign", "M": "malignant"},
        },
    }
    ds = load_dataset(tmp_path, mapping=mapping)
    assert [len(r.findings) for r in ds.records] == [0, 1, 1]
    assert ds.records[1].findings[0].coords == [30.0, 40.0, 5.0] and ds.records[1].density == "B"
    assert ds.records[0].patient_key == ds.records[1].patient_key != ds.records[2].patient_key
    counts = count_dataset(ds)
    assert counts["label"]["benign"] == 2 and counts["density"]["B"] == 3
    rows[2][1] = "id0"
    write_csv(tmp_path / "meta.csv", header, rows)
    with pytest.raises(InputError, match="duplicate image ids: id0"):
        load_dataset(tmp_path, mapping=mapping)
    rows[2][1], rows[2][6] = "id2", "WEIRD"
    write_csv(tmp_path / "meta.csv", header, rows)
    with pytest.raises(InputError, match="'WEIRD'"):
        load_dataset(tmp_path, mapping=mapping)
    (tmp_path / "map.yaml").write_text(json.dumps({**mapping, "colums": {}}))
    with pytest.raises(InputError, match="unknown mapping keys: colums"):
        load_dataset(tmp_path, mapping=tmp_path / "map.yaml")


def test_empty_folder_and_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no images found"):
        load_dataset(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_dataset(tmp_path / "nope")


def test_skip_bad_leaves_out_a_vindr_image_with_a_bad_box(tmp_path):
    root = vindr_tree(tmp_path, box=("nan", 40, 30, 60))
    with pytest.raises(InputError, match=r"finding_annotations|breast-level_annotations|finite"):
        load_dataset(root)
    lenient = load_dataset(root, skip_bad=True)
    assert sorted(r.image_id for r in lenient.records) == ["img1", "img2"]
    assert len(lenient.bad_annotations) == 1 and "finite numbers" in lenient.bad_annotations[0]
