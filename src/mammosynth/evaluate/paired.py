"""Paired image metrics (reconstructions, inpainting outside the mask) with an explicit data range:
PSNR, SSIM and MS-SSIM from MONAI. The range is checked against the pixels, because a range that does not
match the data (GBCI's bug: 255 for images in [0, 1]) silently inflates PSNR and SSIM."""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import MultiScaleSSIMMetric, PSNRMetric, SSIMMetric

from mammosynth.errors import InputError

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def paired_metrics(
    reference: np.ndarray, test: np.ndarray, data_range: float = 1.0, kernel_size: int = 11
) -> dict[str, float]:
    """Mean PSNR (dB), SSIM and MS-SSIM over pairs of images (H, W) or (N, H, W) in [0, ``data_range``].

    MS-SSIM uses as many of its five scales as the image size allows (each scale halves the image and
    must stay larger than the kernel); the number used is returned as ``ms_ssim_scales``.

    Example:
        >>> a = np.zeros((32, 32)); b = a + 0.1
        >>> round(paired_metrics(a, b)["psnr_db"], 3)
        20.0
    """
    reference, test = np.asarray(reference, np.float64), np.asarray(test, np.float64)
    if reference.shape != test.shape:
        raise InputError(None, f"paired images differ in shape: {reference.shape} and {test.shape}")
    if reference.ndim == 2:
        reference, test = reference[None], test[None]
    if reference.ndim != 3:
        raise InputError(None, f"expected (H, W) or (N, H, W) images, got shape {reference.shape}")
    for name, images in (("reference", reference), ("test", test)):
        if not np.all(np.isfinite(images)):
            raise InputError(None, f"{name} images contain NaN or infinite values")
        if images.min() < 0 or images.max() > data_range:
            raise InputError(
                None,
                f"{name} pixels span {images.min():.4g}–{images.max():.4g}, outside the data "
                f"range 0–{data_range:g}; pass the range the images are stored in",
            )
    x, y = torch.from_numpy(test)[:, None].float(), torch.from_numpy(reference)[:, None].float()
    size = min(reference.shape[1:])
    if size < kernel_size:
        raise InputError(None, f"images of {size} px are smaller than the SSIM kernel ({kernel_size} px)")
    scales = len(MS_SSIM_WEIGHTS)
    while scales > 1 and size / 2 ** (scales - 1) <= kernel_size - 1:
        scales -= 1
    mse = ((x - y) ** 2).flatten(1).mean(1)
    psnr = PSNRMetric(max_val=data_range, reduction="none")(x, y).flatten()
    psnr = torch.where(mse == 0, torch.tensor(float("inf")), psnr)
    ssim = SSIMMetric(spatial_dims=2, data_range=data_range, win_size=kernel_size, reduction="none")(x, y).flatten()
    weights = np.array(MS_SSIM_WEIGHTS[:scales])
    ms_ssim = MultiScaleSSIMMetric(
        spatial_dims=2,
        data_range=data_range,
        kernel_size=kernel_size,
        weights=tuple(weights / weights.sum()),
        reduction="none",
    )(x, y).flatten()
    return {
        "pairs": len(reference),
        "psnr_db": float(psnr.mean()),
        "ssim": float(ssim.mean()),
        "ms_ssim": float(ms_ssim.mean()),
        "ms_ssim_scales": scales,
        "data_range": data_range,
    }
