"""DICOM mammograms in and out, through pydicom (+ pylibjpeg plugins for compressed transfer syntaxes).

Reading applies the Modality LUT (rescale), then the VOI LUT or window centre/width, inverts
MONOCHROME1, and maps the result to [0, 1]. Writing makes a new, derived object with new UIDs and a
pseudonymous patient module only: nothing is copied from any source file.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

from mammosynth.errors import InputError
from mammosynth.io.atomic import atomic_write
from mammosynth.io.images import MAX_PIXELS, Mammogram, to_uint
from mammosynth.io.pseudonym import pseudonymise, resolve_salt

#: Digital Mammography X-Ray Image Storage – For Presentation, and Secondary Capture Image Storage.
SOP_CLASSES = {
    "mammography": "1.2.840.10008.5.1.4.1.1.1.2",
    "secondary-capture": "1.2.840.10008.5.1.4.1.1.7",
}
COMPRESSIONS = {
    None: ExplicitVRLittleEndian,
    "none": ExplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg2000": JPEG2000Lossless,
}
#: SNOMED CT codes of the two standard views (DICOM CID 4014).
VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}
# ViewCodeSequence codes of the mammography views (DICOM CID 4014; SNOMED CT and the older SNOMED-RT)
VIEW_FROM_CODE = {
    **dict.fromkeys(("399162004", "R-10242"), "CC"),
    **dict.fromkeys(("399368009", "R-10226"), "MLO"),
    **dict.fromkeys(("399260004", "R-10224"), "ML"),
    **dict.fromkeys(("399352003", "R-10228"), "LM"),
    **dict.fromkeys(("399192003", "R-1024A"), "XCCL"),
    **dict.fromkeys(("399101009", "R-1024B"), "XCCM"),
}
VIEW_FROM_MEANING = {"cranio-caudal": "CC", "medio-lateral oblique": "MLO"}
# Patient Orientation (along a row, down a column) of a mammogram hung as prepared images are: chest wall at
# the left, so a row runs to the nipple (A), lateral side up, so a column runs medially, towards the
# patient's other side (CC) and also to the feet (MLO, "FR"/"FL"), as in PS3.3 C.7.6.1.1.1's examples
PATIENT_ORIENTATION = {
    ("CC", "L"): ["A", "R"],
    ("CC", "R"): ["A", "L"],
    ("MLO", "L"): ["A", "FR"],
    ("MLO", "R"): ["A", "FL"],
}


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def dicom_view(ds: Dataset) -> str | None:
    """The view of a DICOM header: ``ViewPosition``, or, where a scanner writes only the coded view, its
    ``ViewCodeSequence`` (code, else meaning; ``OTHER`` for a view of neither)."""
    position = str(ds.get("ViewPosition", "") or "").strip().upper()
    if position:
        return position
    for code in ds.get("ViewCodeSequence", None) or []:
        value, meaning = str(code.get("CodeValue", "")).strip(), str(code.get("CodeMeaning", "")).strip().lower()
        return VIEW_FROM_CODE.get(value) or VIEW_FROM_MEANING.get(meaning) or "OTHER"
    return None


def _first(value: object) -> float:
    if isinstance(value, pydicom.multival.MultiValue | list | tuple):
        return float(value[0])
    return float(value)  # type: ignore[arg-type]


def read_dicom(path: str | Path, salt: str | None = None, max_pixels: int = MAX_PIXELS) -> tuple[Mammogram, Dataset]:
    """Read one single-frame grayscale DICOM image; returns the mammogram and its header (no pixels).

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.dcm"
        >>> write_dicom(p, np.eye(16, dtype=np.float32), view="CC", laterality="L", patient_key="P1")
        >>> m, _ = read_dicom(p)
        >>> m.view, m.laterality, round(float(m.pixels[0, 0]), 3)
        ('CC', 'L', 1.0)
    """
    path = Path(path)
    try:
        ds = pydicom.dcmread(path, defer_size="1 KB")
    except InvalidDicomError:
        raise InputError(path, "not a DICOM file") from None
    except Exception as exc:  # pydicom raises many types for damaged files
        raise InputError(path, f"unreadable DICOM ({exc})") from None
    if "PixelData" not in ds:
        raise InputError(path, "DICOM has no pixel data")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise InputError(path, f"multi-frame DICOM ({frames} frames, e.g. tomosynthesis); expected one 2-D image")
    samples = int(ds.get("SamplesPerPixel", 1))
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if samples != 1 or not photometric.startswith("MONOCHROME"):
        raise InputError(path, f"colour DICOM ({photometric}, {samples} samples/pixel); expected grayscale")
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    if rows * cols > max_pixels:
        raise InputError(path, f"{cols}×{rows} pixels exceeds the limit of {max_pixels}")
    try:
        raw = ds.pixel_array
    except Exception as exc:
        raise InputError(
            path, f"truncated or corrupt pixel data ({ds.file_meta.TransferSyntaxUID.name}: {exc})"
        ) from None
    if raw.ndim != 2:
        raise InputError(path, f"pixel data has shape {raw.shape}; expected one 2-D image")

    bits = int(ds.get("BitsStored", 16))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    raw_lo, raw_hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
    if "ModalityLUTSequence" in ds:
        lo, hi = float(values.min()), float(values.max())
    else:
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        lo, hi = sorted((raw_lo * slope + intercept, raw_hi * slope + intercept))
    if "VOILUTSequence" in ds:
        values = np.asarray(apply_voi_lut(values, ds, index=0, prefer_lut=True), dtype=np.float64)
        lut_bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        lo, hi = 0.0, float(2**lut_bits - 1)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            width = _first(ds.WindowWidth)
        except (ValueError, TypeError, IndexError):
            width = float("nan")
        if not width >= 1:  # DICOM requires ≥ 1; pydicom raises on 0
            raise InputError(path, f"WindowWidth (0028,1051) must be at least 1, got {ds.WindowWidth}")
        values = np.asarray(apply_voi_lut(values, ds, index=0), dtype=np.float64)
    if photometric == "MONOCHROME1":
        values = hi + lo - values
    pixels = np.clip((values - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)

    spacing = None
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        if tag in ds and ds.get(tag):
            spacing = _first(ds.get(tag))
            break
    laterality = str(ds.get("ImageLaterality", "") or ds.get("Laterality", "") or "").upper() or None
    patient_key = study_key = None
    if ds.get("PatientID"):
        patient_key = pseudonymise(str(ds.PatientID), resolve_salt(salt), namespace="dicom-patient")
    if ds.get("StudyInstanceUID"):
        study_key = pseudonymise(str(ds.StudyInstanceUID), resolve_salt(salt), namespace="dicom-study", prefix="S")
    mammo = Mammogram(
        pixels=pixels,
        bits_stored=bits,
        spacing_mm=spacing,
        view=dicom_view(ds),
        laterality=laterality,
        manufacturer=str(ds.get("Manufacturer", "") or "") or None,
        patient_key=patient_key,
        study_key=study_key,
        extra={"photometric": photometric, "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", ""))},
    )
    del ds.PixelData
    return mammo, ds


def write_dicom(
    path: str | Path,
    pixels: np.ndarray,
    *,
    view: str | None = None,
    laterality: str | None = None,
    patient_key: str = "ANONYMOUS",
    spacing_mm: float | None = None,
    bits: int = 16,
    photometric: str = "MONOCHROME2",
    compression: str | None = None,
    sop_class: str = "secondary-capture",
    synthetic: bool = False,
    description: str = "mammosynth derived image",
    study_uid: str | None = None,
    burned_in_annotation: bool = False,
) -> None:
    """Write a float [0, 1] image as a new, derived DICOM object (atomic write).

    ``compression`` is None, ``"rle"`` (RLE Lossless) or ``"jpeg2000"`` (JPEG 2000 Lossless);
    ``photometric="MONOCHROME1"`` stores the inverted values. ``patient_key`` must already be a pseudonym.
    ``burned_in_annotation`` is what BurnedInAnnotation says: True (YES) for a real image that no label
    removal has cleaned (``prepare`` records its search in ``extra.prepare.burned_in``).
    """
    if sop_class not in SOP_CLASSES:
        raise ValueError(f"sop_class must be one of {sorted(SOP_CLASSES)}")
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {[c for c in COMPRESSIONS if c]}")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError("photometric must be MONOCHROME1 or MONOCHROME2")
    values = np.clip(np.asarray(pixels, dtype=np.float32), 0, 1)
    if photometric == "MONOCHROME1":
        values = 1.0 - values
    array = to_uint(values, 8 if bits == 8 else 16)
    if bits not in (8, 16):
        array = (array >> (16 - bits)).astype(np.uint16)

    now = _dt.datetime.now(_dt.UTC)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASSES[sop_class]
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.PatientID = patient_key
    ds.PatientName = "SYNTHETIC^MAMMOSYNTH" if synthetic else "ANONYMOUS^MAMMOSYNTH"
    ds.PatientBirthDate = ""
    ds.PatientSex = "F"
    ds.PatientIdentityRemoved = "YES"
    ds.StudyDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.StudyID = ds.AccessionNumber = ds.ReferringPhysicianName = ""
    ds.SeriesNumber = ds.InstanceNumber = 1
    ds.Modality = "MG"
    ds.ConversionType = "WSD"
    ds.Manufacturer = "mammosynth"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SeriesDescription = ("SYNTHETIC " if synthetic else "") + description
    ds.DerivationDescription = description
    ds.BurnedInAnnotation = "YES" if burned_in_annotation else "NO"
    if synthetic:
        from mammosynth import __version__

        ds.ImageComments = "SYNTHETIC IMAGE generated by mammosynth - not a patient, not for diagnosis"
        equipment = Dataset()
        equipment.Manufacturer = "mammosynth"
        equipment.ManufacturerModelName = "mammosynth generator"
        equipment.SoftwareVersions = __version__
        equipment.ContributionDateTime = now.strftime("%Y%m%d%H%M%S")
        equipment.ContributionDescription = "Synthetic image generated by mammosynth"
        purpose = Dataset()
        purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning = "109103", "DCM", "Modifying Equipment"
        equipment.PurposeOfReferenceCodeSequence = Sequence([purpose])
        ds.ContributingEquipmentSequence = Sequence([equipment])
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    # the Digital Mammography image's required modules (PS3.3 A.27): Frame of Reference, General Image,
    # DX Anatomy Imaged, DX Image, DX Detector, Mammography Image, Acquisition Context
    ds.PositionReferenceIndicator = ""
    ds.PatientOrientation = PATIENT_ORIENTATION.get((view, laterality), "")
    ds.ImageLaterality = laterality or "U"
    ds.AnatomicRegionSequence = Sequence([_code("76752008", "SCT", "Breast")])
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LIN", 1
    ds.DetectorType = ""
    ds.OrganExposed, ds.PositionerType = "BREAST", "MAMMOGRAPHIC"
    ds.AcquisitionContextSequence = Sequence([])
    if view:
        ds.ViewPosition = view
        if view in VIEW_CODES:
            ds.ViewCodeSequence = Sequence([_code(VIEW_CODES[view][0], "SCT", VIEW_CODES[view][1])])
    if spacing_mm:
        ds.PixelSpacing = ds.ImagerPixelSpacing = [float(spacing_mm), float(spacing_mm)]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = array.shape
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.WindowCenter = (2**bits - 1) / 2
    ds.WindowWidth = 2**bits
    ds.VOILUTFunction = "LINEAR"
    ds.LossyImageCompression = "00"
    ds.PixelData = array.tobytes()
    if compression not in (None, "none"):
        ds.compress(COMPRESSIONS[compression], array)
    with atomic_write(path, "wb") as handle:
        ds.save_as(handle, enforce_file_format=True)
