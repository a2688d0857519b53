"""Small real-format test data: DICOMs written by pydicom, CSVs with the sources' real column names."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def breast_image(width: int = 96, height: int = 128, side: str = "left", seed: int = 0) -> np.ndarray:
    """A half-ellipse 'breast' against the chest wall on ``side``, with some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    xx = x if side == "left" else width - 1 - x
    inside = (xx / (0.7 * width)) ** 2 + ((y - height / 2) / (0.45 * height)) ** 2 < 1
    return np.where(inside, 0.5 + 0.1 * rng.standard_normal((height, width)), 0.02).clip(0, 1).astype(np.float32)


def write_raw_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    patient_id: str = "PATIENT-123",
    bits: int = 12,
    photometric: str = "MONOCHROME2",
    view: str = "CC",
    laterality: str = "L",
    window: tuple[float, float] | None = None,
    frames: int = 1,
    rgb: bool = False,
    pixel_data: bool = True,
) -> Path:
    """A 'scanner' DICOM (Digital Mammography For Presentation) carrying a real-looking PatientID."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.PatientName = patient_id, "DOE^JANE"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.Manufacturer = "MG", "ACME"
    ds.ViewPosition, ds.ImageLaterality = view, laterality
    ds.PixelSpacing = [0.1, 0.1]
    values = np.clip(pixels, 0, 1)
    if photometric == "MONOCHROME1":
        values = 1 - values
    maxval = 2**bits - 1
    array = np.round(values * maxval).astype(np.uint16)
    if rgb:
        array = np.stack([array] * 3, -1).astype(np.uint8)
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
    if frames > 1:
        array = np.stack([array] * frames)
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelRepresentation = 0
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if pixel_data:
        ds.PixelData = array.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


VINDR_BREAST = [
    "study_id",
    "series_id",
    "image_id",
    "laterality",
    "view_position",
    "height",
    "width",
    "breast_birads",
    "breast_density",
    "split",
]
VINDR_FINDING = [
    "study_id",
    "series_id",
    "image_id",
    "laterality",
    "view_position",
    "height",
    "width",
    "breast_birads",
    "breast_density",
    "finding_categories",
    "finding_birads",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "split",
]
CBIS_MASS = [
    "patient_id",
    "breast_density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "mass shape",
    "mass margins",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]


def vindr_tree(
    root: Path, density: str = "DENSITY C", category: str = "['Mass']", box: tuple = (10, 40, 30, 60)
) -> Path:
    rows, findings = [], []
    for k, (study, side, view) in enumerate([("s1", "L", "CC"), ("s1", "R", "MLO"), ("s2", "L", "MLO")]):
        image_id = f"img{k}"
        pixels = breast_image(side="left" if side == "L" else "right", seed=k)
        write_raw_dicom(
            root / "images" / study / f"{image_id}.dicom",
            pixels,
            view=view,
            laterality=side,
            patient_id=f"VINDR-{study}",
        )
        rows.append([study, "ser", image_id, side, view, 128, 96, "BI-RADS 4", density, "training"])
        cats = category if k == 0 else "['No Finding']"
        corners = list(box) if k == 0 else ["", "", "", ""]
        findings.append(
            [study, "ser", image_id, side, view, 128, 96, "BI-RADS 4", density, cats, "BI-RADS 4", *corners, "training"]
        )
    write_csv(root / "breast-level_annotations.csv", VINDR_BREAST, rows)
    write_csv(root / "finding_annotations.csv", VINDR_FINDING, findings)
    return root


def cbis_tree(root: Path, image_path: str | None = None) -> Path:
    rows = []
    for k, (patient, side, pathology) in enumerate([("P_00001", "LEFT", "MALIGNANT"), ("P_00004", "RIGHT", "BENIGN")]):
        folder = f"Mass-Training_{patient}_{side}_CC/1.3.6.1.4.1.9590/1.3.6.1.4.1.9590.{k}"
        image_rel = image_path or f"{folder}/000000.dcm"
        mask_rel = f"Mass-Training_{patient}_{side}_CC_1/1.3.6.1.4.1.9590/1.3.6.1.4.1.9590.{k}/000001.dcm"
        pixels = breast_image(side="left" if side == "LEFT" else "right", seed=k)
        write_raw_dicom(root / image_rel, pixels, patient_id=patient, laterality=side[0])
        mask = np.zeros_like(pixels)
        mask[50:70, 20:40] = 1
        if side == "RIGHT":
            mask = mask[:, ::-1]
        write_raw_dicom(root / mask_rel, mask, patient_id=patient, bits=8)
        rows.append(
            [
                patient,
                3,
                side,
                "CC",
                1,
                "mass",
                "OVAL",
                "CIRCUMSCRIBED",
                4,
                pathology,
                3,
                image_rel,
                f"{folder}/crop.dcm",
                mask_rel,
            ]
        )
    write_csv(root / "mass_case_description_train_set.csv", CBIS_MASS, rows)
    return root


def cbis_tcia_tree(root: Path) -> Path:
    """CBIS-DDSM as TCIA's NBIA download lays it out: the CSVs name ``CASE/<study UID>/<series UID>/000000.dcm``
    while the disk holds ``CBIS-DDSM/CASE/<date>-DDSM-NA-<study UID's last 5>/1.000000-<description>-<series
    UID's last 5>/1-1.dcm``. The ROI series holds the crop and the mask as ``1-1``/``1-2`` in either order
    (patient 1: crop first; patient 4: mask first), one row uses Windows separators, and a third row names a
    series that is not on disk."""
    rows = []
    cases = [
        ("P_00001", "LEFT", "MALIGNANT", True),
        ("P_00004", "RIGHT", "BENIGN", False),
        ("P_00009", "LEFT", "BENIGN", None),
    ]
    for k, (patient, side, pathology, crop_first) in enumerate(cases):
        case = f"Mass-Training_{patient}_{side}_CC"
        study, series = f"1.3.6.1.4.1.9590.100.1.2.{k}1234{k}", f"1.3.6.1.4.1.9590.100.1.2.{k}5678{k}"
        roi_study, roi_series = f"1.3.6.1.4.1.9590.100.1.2.{k}4321{k}", f"1.3.6.1.4.1.9590.100.1.2.{k}8765{k}"
        image_rel = f"{case}/{study}/{series}/000000.dcm"
        crop_rel, mask_rel = (f"{case}_1/{roi_study}/{roi_series}/00000{n}.dcm" for n in (0, 1))
        if k == 1:
            image_rel, crop_rel, mask_rel = (p.replace("/", "\\") for p in (image_rel, crop_rel, mask_rel))
        rows.append(
            [patient, 3, side, "CC", 1, "mass", "OVAL", "CIRCUMSCRIBED", 4, pathology, 3, image_rel, crop_rel, mask_rel]
        )
        if crop_first is None:
            continue  # listed, not downloaded
        pixels = breast_image(side="left" if side == "LEFT" else "right", seed=k)
        disk = (
            root
            / "CBIS-DDSM"
            / case
            / f"07-20-2016-DDSM-NA-{study[-5:]}"
            / f"1.000000-full mammogram images-{series[-5:]}"
        )
        write_raw_dicom(disk / "1-1.dcm", pixels, patient_id=patient, laterality=side[0])
        mask = np.zeros_like(pixels)
        mask[50:70, 20:40] = 1
        if side == "RIGHT":
            mask = mask[:, ::-1]
        crop = pixels[45:75, 15:45] if side == "LEFT" else pixels[45:75, -45:-15]
        roi = (
            root
            / "CBIS-DDSM"
            / f"{case}_1"
            / f"07-21-2016-DDSM-NA-{roi_study[-5:]}"
            / f"1.000000-ROI mask images-{roi_series[-5:]}"
        )
        first, second = (crop, mask) if crop_first else (mask, crop)
        write_raw_dicom(roi / "1-1.dcm", first, patient_id=patient, bits=8)
        write_raw_dicom(roi / "1-2.dcm", second, patient_id=patient, bits=8)
    write_csv(root / "mass_case_description_train_set.csv", CBIS_MASS, rows)
    return root


CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def film_label(
    pixels: np.ndarray, breast: np.ndarray, corner: str, touching: bool, seed: int = 0
) -> tuple[np.ndarray, np.ndarray] | None:
    """``pixels`` with a film label drawn in ``corner``: white paper (the image's brightest value) with rows of
    dark glyphs, a tenth of the image high and a fifth wide; against the image's corner, or, ``touching``, slid
    from there towards the breast's centre until it overlaps the breast mask by a few pixels. Returns the image and
    the label's mask, or None where the corner has no room outside the breast."""
    height, width = pixels.shape
    h, w = max(8, height // 10), max(12, width // 5)
    inset = max(1, height // 100)
    top = inset if corner.startswith("top") else height - h - inset
    left = inset if corner.endswith("left") else width - w - inset
    box = (slice(top, top + h), slice(left, left + w))
    if breast[box].any():
        return None
    if touching:  # slid from the corner towards the breast's centre until it overlaps the breast a little
        rows, cols = np.nonzero(breast)
        target = (rows.mean() - h / 2, cols.mean() - w / 2)
        overlap = max(2, width // 100)
        for t in np.linspace(0.0, 1.0, 400):
            y, x = round(top + t * (target[0] - top)), round(left + t * (target[1] - left))
            hit = breast[y : y + h, x : x + w]
            if hit.any():
                rows_hit, cols_hit = np.nonzero(hit)
                if min(rows_hit.max() - rows_hit.min(), cols_hit.max() - cols_hit.min()) + 1 >= overlap:
                    break
        else:
            return None
        top, left = y, x
        box = (slice(top, top + h), slice(left, left + w))
    out = pixels.copy()
    label = np.zeros(pixels.shape, bool)
    label[box] = True
    paper = np.full((h, w), float(pixels.max()), np.float32)
    rng = np.random.default_rng(seed)
    glyph_h, glyph_w = max(2, h // 5), max(2, w // 12)
    for row in range(glyph_h, h - glyph_h, 2 * glyph_h):
        for col in range(glyph_w, w - glyph_w, 2 * glyph_w):
            if rng.random() < 0.7:
                paper[row : row + glyph_h, col : col + max(1, glyph_w // 2)] = 0.15 * float(pixels.max())
    out[box] = paper
    return out, label


def prepared_phantoms(
    root: Path, lesions: tuple[str, ...], n: int, size: int, seed: int, prepared_size: int = 64
) -> Path:
    """``n`` phantoms per lesion kind (``size`` px, consecutive image numbers), merged and prepared at
    ``prepared_size``: the small labelled dataset the training tests share."""
    from mammosynth import api
    from mammosynth.phantom import make_phantom_dataset

    parts = []
    for k, lesion in enumerate(lesions):
        make_phantom_dataset(root / lesion, n=n, size=size, lesion=lesion, seed=seed, start=n * k)
        parts.append(root / lesion)
    api._merge(parts, root / "all")
    api.prepare(root / "all", root / "prepared", size=prepared_size)
    return root / "prepared"
