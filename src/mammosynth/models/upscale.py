"""Super-resolution stage: a low-resolution mammogram → the same mammogram ``factor`` × larger with the
fine parenchymal texture a small generator cannot afford (the publication's last stage, and the
high-resolution stage of a cascade). It refines any family's images.

The generator works at the output resolution on the bilinearly enlarged image: a stack of dilated residual
3×3 convolutions (receptive field ``1 + 2·(2 + Σ dilations)`` px) with StyleGAN-style per-pixel noise added
in every block at a learned per-channel strength, predicting a residual, so it only adds what the
enlargement lacks and the same input gives different, reproducible textures per seed. Written by hand
because MONAI's ``UNet`` in this role striped the output (its strided transposed convolutions) and
collapsed within 600 steps on 64 px crops; it has no down- or up-sampling and no normalisation to
disagree between a crop and a whole image. It is fully convolutional, so it trains on random crops of the
prepared images (hundreds of patches per image: little data goes a long way on a CPU) and runs on whole
images. The discriminator is MONAI's ``PatchDiscriminator`` on (enlarged input, output) pairs, without
normalisation by default: with instance norm it stopped seeing how strong the texture is, and the stage
settled at half the real images' high-frequency amplitude. The training recipe
keeps the output's low frequencies on the input's (:func:`downsample`) but gives no pixel loss at full
resolution, so the texture is not the blurred mean of all textures.

Example:
    >>> model = Upscaler(UpscaleConfig(image_size=32, factor=2, crop_size=16, width=8, dilations=(1, 2)))
    >>> low = torch.rand(2, 1, 16, 16)
    >>> model.generator(low, torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from monai.networks.nets import PatchDiscriminator
from torch import nn

from mammosynth.errors import InputError
from mammosynth.models.base import Config


@dataclasses.dataclass
class UpscaleConfig(Config):
    image_size: int = 256  # output size; the input is image_size / factor
    factor: int = 2
    crop_size: int = 64  # training crops, in output pixels (the network is fully convolutional)
    width: int = 32  # channels of every generator block
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 1)  # one residual block per entry
    d_channels: int = 32
    d_layers: int = 3
    d_norm: str = "none"  # none, instance or batch: a normalised discriminator is blind to texture amplitude

    @property
    def input_size(self) -> int:
        return self.image_size // self.factor

    def check(self, where: str = "config") -> UpscaleConfig:
        if self.factor not in (2, 4, 8):
            raise InputError(where, f"model.factor must be 2, 4 or 8, got {self.factor}")
        if self.d_norm not in ("none", "instance", "batch"):
            raise InputError(where, f"model.d_norm must be none, instance or batch, got {self.d_norm!r}")
        if not self.dilations or min(self.dilations) < 1 or self.width < 1:
            raise InputError(where, "model.dilations needs at least one entry, all ≥ 1, and model.width ≥ 1")
        for name, size in (("image_size", self.image_size), ("crop_size", self.crop_size)):
            if size % self.factor:
                raise InputError(where, f"model.{name} {size} is not divisible by the factor {self.factor}")
        if not 0 < self.crop_size <= self.image_size:
            raise InputError(where, f"model.crop_size must be between 1 and image_size, got {self.crop_size}")
        return self


def lanczos_taps(factor: int, lobes: int = 3) -> torch.Tensor:
    """The 1-D Lanczos kernel of a reduction by ``factor`` (2·lobes·factor taps, summing to 1): Pillow's
    ``LANCZOS`` filter, which ``prepare`` shrinks images with."""
    offsets = torch.arange(2 * lobes * factor, dtype=torch.float64) + 0.5 - lobes * factor
    x = offsets / factor
    taps = torch.sinc(x) * torch.sinc(x / lobes)
    return (taps / taps.sum()).float()


def downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Reduce (N, C, H, W) by ``factor`` as ``prepare`` does (separable Lanczos-3, edges replicated), so a
    stage learns to enlarge the images a generator trained on prepared data imitates.

    Example:
        >>> small = downsample(torch.ones(1, 1, 8, 8), 2)
        >>> small.shape, round(float(small.mean()), 4)
        (torch.Size([1, 1, 4, 4]), 1.0)
    """
    if factor == 1:
        return images
    taps = lanczos_taps(factor).to(images.device, images.dtype)
    pad = (len(taps) - factor) // 2
    n, c, h, w = images.shape
    x = F.pad(images.reshape(n * c, 1, h, w), (pad, pad, pad, pad), mode="replicate")
    x = F.conv2d(x, taps.view(1, 1, 1, -1), stride=(1, factor))
    x = F.conv2d(x, taps.view(1, 1, -1, 1), stride=(factor, 1))
    return x.reshape(n, c, h // factor, w // factor)


def enlarge(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Bilinear enlargement by ``factor`` (the stage's starting point)."""
    return F.interpolate(images, scale_factor=factor, mode="bilinear", align_corners=False)


def radial_log_power(images: torch.Tensor, bins: int | None = None) -> torch.Tensor:
    """Log power spectrum of each image (N, 1, H, W), averaged over rings of spatial frequency up to the
    Nyquist limit → (N, bins): how much structure the image has at each scale, wherever it lies (the mean is
    removed first, so the first ring holds no power). ``bins`` defaults to a quarter of the smaller side,
    rings two frequency steps wide.

    Example:
        >>> flat, noisy = torch.zeros(1, 1, 16, 16), torch.randn(1, 1, 16, 16)
        >>> bool((radial_log_power(noisy)[:, 1:] > radial_log_power(flat)[:, 1:]).all())
        True
    """
    h, w = images.shape[-2:]
    bins = bins or max(2, min(h, w) // 4)
    spectrum = torch.fft.rfft2(images.float() - images.float().mean((-2, -1), keepdim=True), norm="ortho")
    power = (spectrum.real**2 + spectrum.imag**2).flatten(1)
    radius = torch.sqrt(torch.fft.fftfreq(h)[:, None] ** 2 + torch.fft.rfftfreq(w)[None, :] ** 2).to(images.device)
    ring = (radius / 0.5 * bins).long().clamp(max=bins - 1).flatten()
    sums = torch.zeros(len(power), bins, device=images.device).index_add_(1, ring, power)
    counts = torch.bincount(ring, minlength=bins).clamp(min=1)
    return torch.log(sums / counts + 1e-8)


class UpscaleGenerator(nn.Module):
    """(low-resolution image (N, 1, h, w), noise (N, 1, h·f, w·f)) → image (N, 1, h·f, w·f) on the [0, 1]
    scale, not clamped (pipelines clamp): the enlarged input plus a learned residual. The residual's last
    layer and the noise strengths start at zero, so an untrained stage is the plain enlargement."""

    def __init__(self, config: UpscaleConfig) -> None:
        super().__init__()
        self.factor, width = config.factor, config.width
        self.head = nn.Conv2d(1, width, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Conv2d(width, width, 3, padding=d, dilation=d) for d in config.dilations)
        self.noise_strength = nn.Parameter(torch.zeros(len(config.dilations), 1, width, 1, 1))
        self.residual = nn.Conv2d(width, 1, 3, padding=1)
        nn.init.zeros_(self.residual.weight)
        nn.init.zeros_(self.residual.bias)

    def forward(self, low: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        base = enlarge(low, self.factor)
        h = F.leaky_relu(self.head(base * 2 - 1), 0.2)
        for block, strength in zip(self.blocks, self.noise_strength, strict=True):
            h = h + F.leaky_relu(block(h) + strength * noise, 0.2) * 0.5
        return base + self.residual(h)


class Upscaler(nn.Module):
    """Generator and pair discriminator of one super-resolution stage (the checkpoint unit)."""

    def __init__(self, config: UpscaleConfig) -> None:
        super().__init__()
        self.config = config.check()
        self.generator = UpscaleGenerator(config)
        self.discriminator = PatchDiscriminator(
            spatial_dims=2,
            channels=config.d_channels,
            in_channels=2,
            out_channels=1,
            num_layers_d=config.d_layers,
            norm=None if config.d_norm == "none" else config.d_norm.upper(),
            bias=True,
        )

    def discriminate(self, low: torch.Tensor, images: torch.Tensor) -> list[torch.Tensor]:
        """Intermediate features and (last) the patch scores of (enlarged input, image) pairs."""
        base = enlarge(low, self.config.factor)
        return self.discriminator(torch.cat([base * 2 - 1, images * 2 - 1], dim=1))
