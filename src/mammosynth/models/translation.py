"""Label map → mammogram translation (pix2pix, Isola et al. 2017), the CC publication's second stage.

The generator is MONAI's residual ``UNet`` fed the one-hot label map (the parametric model's 9 classes)
plus one channel of seeded noise, so the same map gives different, reproducible textures per seed. The
discriminator is MONAI's ``PatchDiscriminator`` looking at (label map, image) pairs. Losses (L1,
least-squares adversarial, discriminator feature matching) live in the training recipe.

Example:
    >>> model = LabelTranslator(TranslationConfig(image_size=32, channels=(8, 16), strides=(2,)))
    >>> labels = torch.zeros(2, 32, 32, dtype=torch.long)
    >>> model.generator(one_hot_labels(labels), torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from monai.networks.nets import PatchDiscriminator, UNet
from torch import nn

from mammosynth.errors import InputError
from mammosynth.models.base import Config
from mammosynth.models.conditioning import NUM_CLASSES, one_hot_labels  # noqa: F401 (one_hot_labels: re-exported)
from mammosynth.phantom.labelmap import LABELS


@dataclasses.dataclass
class TranslationConfig(Config):
    image_size: int = 256
    channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    strides: tuple[int, ...] = (1, 2, 2, 2)  # a first stride of 1 keeps a full-resolution level
    num_res_units: int = 1
    noise_channels: int = 1
    d_channels: int = 64
    d_layers: int = 3

    def check(self, where: str = "config") -> TranslationConfig:
        if len(self.strides) != len(self.channels) - 1:
            raise InputError(
                where,
                f"strides needs {len(self.channels) - 1} entries (one fewer than channels), got {len(self.strides)}",
            )
        factor = int(np.prod(self.strides))
        if self.image_size % factor:
            raise InputError(
                where, f"image_size {self.image_size} is not divisible by the UNet's total stride {factor}"
            )
        return self


class Translator(nn.Module):
    """(one-hot label map, noise) → image (N, 1, H, W) on the [0, 1] scale, not clamped: a tanh/sigmoid
    output saturates on the black background (most of a mammogram) and L1 training stalled (L1 0.26
    against 0.05 with a linear output after 120 steps); pipelines clamp."""

    def __init__(self, config: TranslationConfig) -> None:
        super().__init__()
        self.unet = UNet(
            spatial_dims=2,
            in_channels=NUM_CLASSES + config.noise_channels,
            out_channels=1,
            channels=config.channels,
            strides=config.strides,
            num_res_units=config.num_res_units,
            act=("LEAKYRELU", {"negative_slope": 0.2}),
            norm="INSTANCE",
        )

    def forward(self, labels_one_hot: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.unet(torch.cat([labels_one_hot, noise], dim=1))


class LabelTranslator(nn.Module):
    """Generator and pair discriminator of one translation model (the checkpoint unit)."""

    def __init__(self, config: TranslationConfig) -> None:
        super().__init__()
        self.config = config.check()
        self.generator = Translator(config)
        self.discriminator = PatchDiscriminator(
            spatial_dims=2,
            channels=config.d_channels,
            in_channels=NUM_CLASSES + 1,
            out_channels=1,
            num_layers_d=config.d_layers,
            norm="INSTANCE",
            bias=True,
        )

    def discriminate(self, labels_one_hot: torch.Tensor, images: torch.Tensor) -> list[torch.Tensor]:
        """Intermediate features and (last) the patch scores of (label map, image) pairs."""
        return self.discriminator(torch.cat([labels_one_hot, images * 2 - 1], dim=1))


def check_label_map(labels: np.ndarray, size: int | None = None, where: object = None) -> np.ndarray:
    """Validate a label map (H, W) or stack (N, H, W) of the parametric model's classes → int64.

    Raises :class:`InputError` naming ``where`` for non-integer values, classes outside 0–8 or a size other
    than ``size`` × ``size``.

    Example:
        >>> check_label_map(np.zeros((4, 4), np.uint8), size=4).dtype
        dtype('int64')
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3) or labels.shape[-1] != labels.shape[-2]:
        raise InputError(where, f"label map must be a square 2-D array of classes, got shape {labels.shape}")
    if size is not None and labels.shape[-1] != size:
        raise InputError(
            where, f"label map is {labels.shape[-1]}×{labels.shape[-2]}; this model translates {size}×{size} maps"
        )
    integral = np.issubdtype(labels.dtype, np.integer)
    if not integral and (not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels))):
        raise InputError(where, "label map has non-integer values; expected classes 0–8")
    unknown = sorted({int(v) for v in np.unique(labels)} - set(range(NUM_CLASSES)))
    if unknown:
        names = ", ".join(f"{k}={v}" for k, v in LABELS.items())
        raise InputError(where, f"label map has unknown class values {unknown[:5]}; known: {names}")
    return labels.astype(np.int64)
