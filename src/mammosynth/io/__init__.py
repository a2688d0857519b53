"""Reading and writing mammograms: DICOM, PNG, TIFF, JPEG, PGM; atomic writes; pseudonyms."""

from mammosynth.io.atomic import atomic_output_dir, atomic_write
from mammosynth.io.dicom import read_dicom, write_dicom
from mammosynth.io.images import Mammogram, image_size, read_image, read_mask, write_png
from mammosynth.io.pseudonym import pseudonymise, resolve_salt

__all__ = [
    "Mammogram",
    "atomic_output_dir",
    "atomic_write",
    "image_size",
    "pseudonymise",
    "read_dicom",
    "read_image",
    "read_mask",
    "resolve_salt",
    "write_dicom",
    "write_png",
]
