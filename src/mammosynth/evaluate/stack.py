"""Image stacks at the evaluation's working resolution (shared by the encoder, the two-sample classifier
and the memorisation search)."""

from __future__ import annotations

import numpy as np

from mammosynth.errors import InputError
from mammosynth.preprocess.resize import resize_image


def work_stack(images: np.ndarray, work_px: int, minimum: int = 1, name: str = "image") -> np.ndarray:
    """(N, H, W) images → float32 (N, work_px, work_px), refusing fewer than ``minimum`` images.

    Example:
        >>> work_stack(np.zeros((2, 128, 128)), 32).shape
        (2, 32, 32)
    """
    images = check_stack(images, minimum, name)
    return np.stack([resize_image(im, work_px, work_px) if im.shape != (work_px, work_px) else im for im in images])


def check_stack(images: np.ndarray, minimum: int = 1, name: str = "image") -> np.ndarray:
    """``images`` as float32, refusing anything but an (N, H, W) stack of at least ``minimum`` images."""
    images = np.asarray(images, np.float32)
    minimum = max(1, minimum)
    if images.ndim != 3 or len(images) < minimum:
        noun = "image" if minimum == 1 else "images"
        raise InputError(
            None,
            f"the {name} set needs at least {minimum} {noun} as a non-empty stack (N, H, W), got shape {images.shape}",
        )
    return images
