from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from factories import write_raw_dicom
from mammosynth.errors import InputError
from mammosynth.io import pseudonymise, read_dicom, read_image, write_dicom, write_png


@pytest.mark.parametrize("compression", [None, "rle", "jpeg2000"])
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_roundtrip_16bit(tmp_path, gradient, compression, photometric):
    path = tmp_path / "x.dcm"
    write_dicom(
        path,
        gradient,
        view="MLO",
        laterality="R",
        patient_key="Pabc",
        spacing_mm=0.07,
        photometric=photometric,
        compression=compression,
    )
    mammo, header = read_dicom(path)
    assert header.PhotometricInterpretation == photometric
    assert mammo.bits_stored == 16 and mammo.view == "MLO" and mammo.laterality == "R"
    assert mammo.spacing_mm == pytest.approx(0.07)
    np.testing.assert_allclose(mammo.pixels, gradient, atol=1.5 / 65535)
    if compression:
        assert header.file_meta.TransferSyntaxUID.is_compressed


def test_written_dicom_is_derived_with_new_uids_and_no_source_identifier(tmp_path, gradient):
    source = write_raw_dicom(tmp_path / "src.dcm", gradient, patient_id="REAL-ID-42")
    mammo, src = read_dicom(source, salt="s")
    assert "REAL-ID-42" not in mammo.patient_key
    out = tmp_path / "out.dcm"
    write_dicom(out, mammo.pixels, patient_key=mammo.patient_key, view="CC", laterality="L", synthetic=True)
    raw = out.read_bytes()
    assert b"REAL-ID-42" not in raw and b"DOE" not in raw
    ds = pydicom.dcmread(out)
    assert next(iter(ds.ImageType)) == "DERIVED" and "SYNTHETIC" in ds.SeriesDescription
    assert ds.StudyInstanceUID != src.StudyInstanceUID and ds.SOPInstanceUID != src.SOPInstanceUID
    assert ds.BurnedInAnnotation == "NO"


# Type 1 (present, not empty) and Type 2 (present) attributes of the Digital Mammography X-Ray Image IOD, For
# Presentation (PS3.3 A.27.3): Patient, General Study, General Series, Frame of Reference, General Equipment,
# General Image, Image Pixel, DX Anatomy Imaged, DX Image, DX Detector, Mammography Image, Acquisition
# Context, VOI LUT and SOP Common modules
MAMMOGRAPHY_TYPE_1 = [
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "PresentationIntentType",
    "ImageType",
    "ImageLaterality",
    "AnatomicRegionSequence",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PixelIntensityRelationship",
    "PixelIntensityRelationshipSign",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "PresentationLUTShape",
    "LossyImageCompression",
    "BurnedInAnnotation",
    "ImagerPixelSpacing",
    "OrganExposed",
    "ViewCodeSequence",
    "PositionerType",
    "PixelData",
]
MAMMOGRAPHY_TYPE_2 = [
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "SeriesNumber",
    "PositionReferenceIndicator",
    "Manufacturer",
    "InstanceNumber",
    "PatientOrientation",
    "ContentDate",
    "ContentTime",
    "DetectorType",
    "AcquisitionContextSequence",
]


@pytest.mark.parametrize("view, laterality, orientation", [("CC", "L", ["A", "R"]), ("MLO", "R", ["A", "FL"])])
def test_written_mammography_dicom_has_every_required_attribute_and_reads_in_gdcm(
    tmp_path, gradient, view, laterality, orientation
):
    """The derived DICOMs lacked Positioner Type, Organ Exposed, Anatomic Region and Patient Orientation,
    among others, so a validator or PACS would refuse them; a second DICOM implementation reads them back."""
    out = tmp_path / "mg.dcm"
    write_dicom(
        out,
        gradient,
        patient_key="P1",
        view=view,
        laterality=laterality,
        spacing_mm=0.1,
        synthetic=True,
        sop_class="mammography",
    )
    ds = pydicom.dcmread(out)
    missing = [k for k in MAMMOGRAPHY_TYPE_1 if k not in ds or ds[k].value in (None, "", [])]
    missing += [k for k in MAMMOGRAPHY_TYPE_2 if k not in ds]
    assert missing == []
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.2" and ds.ImageLaterality == laterality
    assert (
        ds.OrganExposed == "BREAST"
        and ds.PositionerType == "MAMMOGRAPHIC"
        and list(ds.PatientOrientation) == orientation
    )
    assert ds.AnatomicRegionSequence[0].CodeValue == "76752008"
    gdcm = pytest.importorskip("gdcm", reason="python-gdcm (a dev dependency) is not installed")
    reader = gdcm.ImageReader()
    reader.SetFileName(str(out))
    assert reader.Read(), "gdcm could not read the file"
    image = reader.GetImage()
    assert [image.GetDimension(0), image.GetDimension(1)] == [gradient.shape[1], gradient.shape[0]]
    values = np.frombuffer(image.GetBuffer().encode("utf-8", "surrogateescape"), dtype=np.uint16).reshape(
        gradient.shape
    )
    np.testing.assert_array_equal(values, ds.pixel_array)


def test_monochrome1_and_12bit_window(tmp_path, gradient):
    mono1 = write_raw_dicom(tmp_path / "m1.dcm", gradient, photometric="MONOCHROME1", bits=12)
    np.testing.assert_allclose(read_image(mono1).pixels, gradient, atol=1 / 4095 + 1e-6)
    windowed = write_raw_dicom(tmp_path / "w.dcm", gradient, bits=14, window=(8191.5, 8192))
    pixels = read_image(windowed).pixels
    assert pixels.min() == 0 and pixels.max() == pytest.approx(1, abs=1e-3)
    narrow = write_raw_dicom(tmp_path / "n.dcm", gradient, bits=14, window=(4096, 2048))
    assert (read_image(narrow).pixels >= 0.999).sum() > (pixels >= 0.999).sum()  # the window saturates


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"])
def test_reads_compressed_reference_files(name):
    path = get_testdata_file(name)
    mammo = read_image(path)
    assert mammo.pixels.shape == (64, 64) and 0 <= mammo.pixels.min() < mammo.pixels.max() <= 1


@pytest.mark.parametrize("bits", [8, 16])
def test_png_roundtrip(tmp_path, gradient, bits):
    write_png(tmp_path / "a.png", gradient, bits=bits)
    mammo = read_image(tmp_path / "a.png")
    assert mammo.bits_stored == bits
    np.testing.assert_allclose(mammo.pixels, gradient, atol=1 / (2**bits - 1))


def test_tiff_jpeg_and_pgm(tmp_path, gradient):
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", (gradient * 65535).astype(np.uint16))
    np.testing.assert_allclose(read_image(tmp_path / "a.tif").pixels, gradient, atol=1e-4)
    Image.fromarray((gradient * 255).astype(np.uint8)).save(tmp_path / "a.jpg", quality=95)
    assert np.abs(read_image(tmp_path / "a.jpg").pixels - gradient).mean() < 0.02
    for maxval, dtype in ((255, ">u1"), (4095, ">u2")):
        data = np.round(gradient * maxval).astype(dtype)
        header = f"P5\n# comment\n{gradient.shape[1]} {gradient.shape[0]}\n{maxval}\n".encode()
        (tmp_path / "a.pgm").write_bytes(header + data.tobytes())
        np.testing.assert_allclose(read_image(tmp_path / "a.pgm").pixels, gradient, atol=1 / maxval)


def test_bad_inputs_name_file_and_problem(tmp_path, gradient):
    cases = {}
    write_png(tmp_path / "ok.png", gradient)
    (tmp_path / "trunc.png").write_bytes((tmp_path / "ok.png").read_bytes()[:200])
    cases["trunc.png"] = "truncated"
    (tmp_path / "garbage.png").write_bytes(b"not an image at all" * 10)
    cases["garbage.png"] = "not a readable image"
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    cases["rgb.png"] = "RGB"
    write_raw_dicom(tmp_path / "nopix.dcm", gradient, pixel_data=False)
    cases["nopix.dcm"] = "no pixel data"
    write_raw_dicom(tmp_path / "multi.dcm", gradient, frames=3)
    cases["multi.dcm"] = "multi-frame"
    write_raw_dicom(tmp_path / "rgb.dcm", gradient, rgb=True)
    cases["rgb.dcm"] = "colour"
    dicom = write_raw_dicom(tmp_path / "full.dcm", gradient)
    (tmp_path / "trunc.dcm").write_bytes(dicom.read_bytes()[:-2000])
    cases["trunc.dcm"] = "truncated or corrupt pixel data"
    (tmp_path / "bomb.pgm").write_bytes(b"P5\n100000 100000\n255\n" + b"\0" * 100)
    cases["bomb.pgm"] = "decompression bomb"
    for name, problem in cases.items():
        with pytest.raises(InputError) as info:
            read_image(tmp_path / name)
        assert name in str(info.value) and problem in str(info.value), str(info.value)
        assert "\n" not in str(info.value)


def test_png_bomb_refused_before_decoding(tmp_path):
    Image.new("L", (4000, 3000)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="decompression bomb"):
        read_image(tmp_path / "big.png", max_pixels=1_000_000)


def test_pseudonym_is_keyed_and_stable():
    a = pseudonymise("P_00001", "salt-1")
    assert a == pseudonymise("P_00001", "salt-1") != pseudonymise("P_00001", "salt-2")
    assert "00001" not in a


def test_atomic_outputs_get_the_modes_a_plain_write_would(tmp_path):
    import os
    import stat

    from mammosynth.io.atomic import atomic_output_dir, atomic_write

    umask = os.umask(0o022)
    os.umask(umask)
    with atomic_write(tmp_path / "file.txt", "w") as handle:
        handle.write("x")
    with atomic_output_dir(tmp_path / "folder") as folder:
        (folder / "inside.txt").write_text("y")
    assert stat.S_IMODE((tmp_path / "file.txt").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o777 & ~umask
    assert (tmp_path / "folder" / "inside.txt").read_text() == "y"
