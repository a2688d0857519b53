"""Fréchet Radiomics Distance (FRD; Osuala et al.) through the optional ``frd-score`` package: the
Fréchet distance between Gaussians fitted to normalised pyradiomics features of two image sets, each
restricted to its breast mask. Interpretable (first-order, texture and shape features) and needs no
network, but slow: pyradiomics extracts hundreds of features per image.

Optional because pyradiomics does not install by plain ``pip`` on Python ≥ 3.10; this path works::

    pip install versioneer
    pip install --no-build-isolation pyradiomics
    pip install frd-score

Without it, :func:`frd_available` is False and the evaluation reports FRD as skipped with that reason."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from mammosynth.errors import InputError
from mammosynth.evaluate.shape import breast_mask
from mammosynth.io.images import write_png

INSTALL_HINT = "pip install versioneer && pip install --no-build-isolation pyradiomics && pip install frd-score"


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def frd_available() -> bool:
    """True when ``frd-score`` and pyradiomics import."""
    try:
        import frd_score.frd  # noqa: F401
        import radiomics  # noqa: F401
    except Exception:  # a broken optional install counts as none
        return False
    return True


def _write_set(images: np.ndarray, folder: Path) -> tuple[Path, Path]:
    image_dir, mask_dir = folder / "images", folder / "masks"
    for i, image in enumerate(images):
        write_png(image_dir / f"{i:06d}.png", np.clip(image, 0, 1), bits=8)
        mask = breast_mask(image)
        if mask.sum() < 16:
            mask = np.ones_like(mask)
        write_png(mask_dir / f"{i:06d}.png", mask.astype(np.uint8), bits=8)
    return image_dir, mask_dir


def radiomics_distance(
    real: np.ndarray, synthetic: np.ndarray, max_images: int = 100, seed: int = 0, workers: int = 1
) -> dict:
    """FRD (frd-score's v0: the Fréchet distance itself, ≈ 0 for equal sets, lower is closer — v1's log scale
    is −∞ there) between up to ``max_images`` random images of each set.

    Raises :class:`~mammosynth.errors.InputError` with the install line when the extra is absent.
    """
    if not frd_available():
        raise InputError(None, f"FRD needs the optional radiomics extra: {INSTALL_HINT}")
    from frd_score.frd import compute_frd

    rng = np.random.default_rng(seed)
    picked = [images[rng.permutation(len(images))[:max_images]] for images in (real, synthetic)]
    with tempfile.TemporaryDirectory(prefix="mammosynth-frd-") as tmp:
        folders = [
            _write_set(images, Path(tmp) / name) for images, name in zip(picked, ("real", "synthetic"), strict=True)
        ]
        value = compute_frd(
            [str(f[0]) for f in folders],
            paths_masks=[str(f[1]) for f in folders],
            num_workers=workers,
            verbose=False,
            frd_version="v0",
        )
    return {
        "frd": float(value),
        "images": [len(p) for p in picked],
        "version": "v0 (linear; ≈ 0 for equal sets)",
        "package": f"frd-score {_version('frd-score')}, pyradiomics {_version('pyradiomics')}",
        "masks": "breast (pixels > 0.02)",
    }
