"""Read PNG, TIFF, JPEG, PGM and DICOM mammograms into one form; write 8/16-bit PNG.

Every reader returns a :class:`Mammogram`: a 2-D float32 array in [0, 1] (0 = no attenuation, displayed
black) with the bit depth and the header facts that were found. Inputs that are not one grayscale image
(RGB, multi-frame, 3-D), truncated or unreadable files and decompression bombs raise :class:`InputError`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mammosynth.errors import InputError
from mammosynth.io.atomic import atomic_write

#: Largest image accepted, in pixels (a 4096 × 5120 full-field digital mammogram is 21 Mpx).
MAX_PIXELS = 80_000_000
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pgm", ".pnm"}


@dataclass
class Mammogram:
    """One grayscale mammogram: ``pixels`` float32 in [0, 1], rows × columns.

    ``view``/``laterality``/``manufacturer``/``spacing_mm`` come from DICOM headers when present;
    ``patient_key`` is already pseudonymised, never the source identifier.
    """

    pixels: np.ndarray
    bits_stored: int = 8
    spacing_mm: float | None = None
    view: str | None = None
    laterality: str | None = None
    manufacturer: str | None = None
    patient_key: str | None = None
    study_key: str | None = None
    extra: dict = field(default_factory=dict)


def is_dicom(path: Path) -> bool:
    """True for DICOM files, by suffix or by the ``DICM`` preamble marker."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read_image(path: str | Path, salt: str | None = None, max_pixels: int = MAX_PIXELS) -> Mammogram:
    """Read any supported mammogram file.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.png"
        >>> write_png(p, np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), bits=16)
        >>> m = read_image(p)
        >>> m.pixels.shape, m.bits_stored, float(m.pixels.max())
        ((8, 8), 16, 1.0)
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty")
    if is_dicom(path):
        from mammosynth.io.dicom import read_dicom

        return read_dicom(path, salt=salt, max_pixels=max_pixels)[0]
    suffix = path.suffix.lower()
    if suffix in {".pgm", ".pnm"}:
        return _read_pgm(path, max_pixels)
    if suffix in {".tif", ".tiff"}:
        return _read_tiff(path, max_pixels)
    return _read_pillow(path, max_pixels)


def _to_unit(array: np.ndarray, maxval: float, path: Path) -> np.ndarray:
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        rgb = array[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise InputError(path, f"colour (RGB) image of shape {array.shape}; expected one grayscale image")
        array = rgb[..., 0]
    if array.ndim == 3 and array.shape[-1] == 2:  # grayscale + alpha
        array = array[..., 0]
    if array.ndim != 2:
        raise InputError(path, f"image has shape {array.shape}; expected one 2-D grayscale image")
    if min(array.shape) < 8:
        raise InputError(path, f"image of {array.shape[1]}×{array.shape[0]} pixels is too small")
    return np.clip(array.astype(np.float32) / float(maxval), 0.0, 1.0)


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InputError(
            path, f"{width}×{height} pixels exceeds the limit of {max_pixels} (possible decompression bomb)"
        )


def _read_pillow(path: Path, max_pixels: int) -> Mammogram:
    try:
        with Image.open(path) as img:
            _check_size(path, img.width, img.height, max_pixels)
            if getattr(img, "n_frames", 1) > 1:
                raise InputError(path, f"multi-frame image ({img.n_frames} frames); expected one image")
            mode = img.mode
            array = np.asarray(img.convert("I") if mode in {"I;16", "I;16B", "I;16L"} else img)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(path, f"decompression bomb refused ({exc})") from None
    except UnidentifiedImageError:
        raise InputError(path, "not a readable image file") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"unreadable or truncated image ({exc})") from None
    if mode.startswith("I;16") or (mode == "I" and array.max(initial=0) > 255):
        bits, maxval = 16, 65535
    elif mode in {"L", "LA", "RGB", "RGBA", "P", "1"}:
        if mode == "P":
            raise InputError(path, "palette image; expected grayscale")
        bits, maxval = 8, (1 if mode == "1" else 255)
    elif mode == "I":
        bits, maxval = 8, 255
    else:
        raise InputError(path, f"unsupported pixel mode {mode}")
    return Mammogram(_to_unit(array, maxval, path), bits_stored=bits)


def _read_tiff(path: Path, max_pixels: int) -> Mammogram:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.pages) > 1:
                raise InputError(path, f"multi-page TIFF ({len(tif.pages)} pages); expected one image")
            page = tif.pages[0]
            shape = page.shape
            if len(shape) >= 2:
                _check_size(path, shape[1], shape[0], max_pixels)
            array = page.asarray()
    except InputError:
        raise
    except Exception as exc:  # tifffile raises many exception types for corrupt files
        raise InputError(path, f"unreadable or truncated TIFF ({exc})") from None
    if array.dtype == np.uint8:
        bits, maxval = 8, 255
    elif array.dtype == np.uint16:
        bits, maxval = 16, 65535
    elif np.issubdtype(array.dtype, np.floating):
        bits, maxval = 32, max(float(np.nanmax(array)), 1e-12)
    else:
        raise InputError(path, f"unsupported TIFF sample type {array.dtype}")
    return Mammogram(_to_unit(array, maxval, path), bits_stored=bits)


_PNM_TOKEN = re.compile(rb"(?:\s*(?:#[^\n]*\n)?)*\s*(\S+)")


def _read_pgm(path: Path, max_pixels: int) -> Mammogram:
    """Binary PGM (P5), 8 or 16 bit, honouring ``maxval``.

    Hand-written because Pillow does not scale 16-bit PGM by its ``maxval`` and mini-MIAS ships as P5.
    """
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    for _ in range(4):
        match = _PNM_TOKEN.match(data, pos)
        if not match:
            raise InputError(path, "truncated PGM header")
        fields.append(match.group(1))
        pos = match.end()
    if fields[0] != b"P5":
        raise InputError(path, f"unsupported PNM type {fields[0][:8]!r}; expected binary grayscale P5")
    try:
        width, height, maxval = (int(v) for v in fields[1:])
    except ValueError:
        raise InputError(path, "malformed PGM header") from None
    if not (0 < maxval < 65536) or width <= 0 or height <= 0:
        raise InputError(path, "malformed PGM header")
    _check_size(path, width, height, max_pixels)
    pos += 1  # the single whitespace after maxval
    dtype = np.dtype(">u2") if maxval > 255 else np.dtype("u1")
    need = width * height * dtype.itemsize
    if len(data) - pos < need:
        raise InputError(path, f"truncated PGM: {len(data) - pos} of {need} pixel bytes present")
    array = np.frombuffer(data, dtype=dtype, count=width * height, offset=pos).reshape(height, width)
    if int(array.max()) > maxval:  # the header's scale is wrong: clipping would hide it
        raise InputError(path, f"pixel value {int(array.max())} above the header's maxval {maxval}")
    return Mammogram(_to_unit(array, maxval, path), bits_stored=16 if maxval > 255 else 8)


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a binary mask (any non-zero pixel is inside), optionally checking its shape."""
    mammo = read_image(path)
    mask = mammo.pixels > 0
    if shape is not None and mask.shape != tuple(shape):
        raise InputError(path, f"mask is {mask.shape[1]}×{mask.shape[0]} but the image is {shape[1]}×{shape[0]}")
    return mask


def to_uint(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Float [0, 1] → unsigned integers of ``bits`` (8 or 16), rounded."""
    maxval = (1 << bits) - 1
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.round(np.clip(pixels, 0.0, 1.0) * maxval).astype(dtype)


def encode_png(pixels: np.ndarray, bits: int = 16) -> bytes:
    """PNG bytes of a float [0, 1] image (or an integer label map) as 8- or 16-bit grayscale; an
    (H, W, 3) integer array is written as 8-bit RGB. No metadata chunks.

    Example:
        >>> encode_png(np.zeros((4, 4)), bits=8)[:4]
        b'\\x89PNG'
    """
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    if np.issubdtype(pixels.dtype, np.integer) or pixels.dtype == bool:
        array = pixels.astype(np.uint8 if bits == 8 or pixels.ndim == 3 else np.uint16)
    else:
        array = to_uint(pixels, bits)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: str | Path, pixels: np.ndarray, bits: int = 16) -> None:
    """Write a float [0, 1] image (or an integer label map) as an 8- or 16-bit grayscale PNG, atomically."""
    data = encode_png(pixels, bits)
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file header alone, without decoding pixels."""
    path = Path(path)
    try:
        if is_dicom(path):
            import pydicom

            ds = pydicom.dcmread(path, stop_before_pixels=True)
            return int(ds.Columns), int(ds.Rows)
        if path.suffix.lower() in {".pgm", ".pnm"}:
            with open(path, "rb") as handle:
                head = handle.read(512)
            tokens: list[bytes] = []
            pos = 0
            while len(tokens) < 3:
                match = _PNM_TOKEN.match(head, pos)
                if not match:
                    raise ValueError("short header")
                tokens.append(match.group(1))
                pos = match.end()
            return int(tokens[1]), int(tokens[2])
        with Image.open(path) as img:
            return img.width, img.height
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"cannot read the image header ({exc})") from None
