"""Conditional GAN for 64–512 px: a FiLM-conditioned upsampling generator and a projection
discriminator, both conditioned on the same attribute fields as the diffusion model.

Written by hand because MONAI's GAN networks (``Generator``/``Discriminator``) are unconditional
DCGAN-style stacks without projection; these two are small enough to read at once. Stabilisers (hinge
loss, R1, DiffAugment, two learning rates, EMA generator) live in the training recipe.

Why no spectral norm: on real 128² mammograms a spectral-norm stack of 10 convolutions shrank the
image-dependent part of the pooled features about 200× (std across a batch 0.04 → 0.0002), so the
image-independent projection term decided every score, real and fake scored alike (hinge loss stuck at
2.0) and the generator learned nothing. Variance-preserving (Kaiming) initialisation with the lazy R1
penalty keeps the discriminator in check instead (the StyleGAN2 recipe).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mammosynth.errors import InputError
from mammosynth.models.base import Config
from mammosynth.models.batchnorm import BatchNorm2d
from mammosynth.models.conditioning import NUM_CLASSES, SPATIAL_CHANNELS, ConditionEncoder


@dataclasses.dataclass
class GANConfig(Config):
    image_size: int = 128
    z_dim: int = 128
    cond_dim: int = 64
    g_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    d_channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    noise: bool = True  # StyleGAN-style per-pixel noise in every generator block (stochastic texture)
    noise_init: float = 0.0  # the noise's starting strength (StyleGAN: 0, learned from there)
    minibatch_std: bool = True  # the discriminator sees the spread of its batch (against mode collapse)
    d_head: str = "spatial"  # "spatial": conv + dense over the last 4×4 map; "mean": average-pooled features
    # the last layer paints tissue × sigmoid(4 × coverage): a crisp silhouette on exact black is one channel's sign,
    # not a balance of every pixel's value. On the demo's phantoms (held-out twins C2ST at 1,200 steps, three seeds
    # against two) 0.78 / 0.73 / 0.69 against 0.88 / 0.70; the silhouette alone 0.57 against 0.71
    alpha: bool = False
    # the generator follows a layout: the spatial channels (breast, pectoral, lesion) enter every block, and with
    # ``alpha`` the given breast mask is the coverage (the silhouette exact, drawn by the parametric model at
    # generation: ``generate`` draws phantom layouts for it as for a translator)
    spatial: bool = False
    # with ``spatial``: the layout is the parametric model's whole label map (one-hot, 9 classes: skin, nipple,
    # fibroglandular tissue and lesion kinds besides breast and pectoral) rather than three masks, so the network
    # renders the tissue the map draws (the publication's label map → image route, by a GAN with noise and no L1).
    # Training reads label maps derived from the images (phantom.derive); generation draws the parametric model's.
    labels: bool = False

    def check(self, where: str = "config") -> GANConfig:
        for name, channels in (("g_channels", self.g_channels), ("d_channels", self.d_channels)):
            if self.image_size != 4 * 2 ** len(channels):
                raise InputError(
                    where,
                    f"{name} needs log2(image_size / 4) = {int(math.log2(self.image_size / 4))} "
                    f"entries for image_size {self.image_size}, got {len(channels)}",
                )
        if self.d_head not in ("spatial", "mean"):
            raise InputError(where, f"model.d_head must be spatial or mean, got {self.d_head!r}")
        if self.labels and not self.spatial:
            raise InputError(where, "model.labels needs model.spatial: true (the label map is the layout)")
        return self

    @property
    def layout_channels(self) -> int:
        """Channels of the layout the generator follows: 0, the 3 spatial masks or the 9 label classes."""
        return (NUM_CLASSES if self.labels else len(SPATIAL_CHANNELS)) if self.spatial else 0


def noise_at(noise: torch.Tensor | None, size: int) -> torch.Tensor | None:
    """A full-resolution unit-variance noise map (N, 1, S, S) averaged down to ``size`` and rescaled to unit
    variance again, so every block of one image draws on the same per-image noise."""
    if noise is None:
        return None
    factor = noise.shape[-1] // size
    return _average_to(noise, size) * factor if factor > 1 else noise


def _average_to(maps: torch.Tensor, size: int) -> torch.Tensor:
    """Full-resolution maps (N, C, S, S) averaged down to ``size`` (a layout: the fraction covered per pixel)."""
    factor = maps.shape[-1] // size
    return F.avg_pool2d(maps, factor) if factor > 1 else maps


class FiLMBlock(nn.Module):
    """Upsample ×2, conv, batch-norm modulated by the condition vector (scale and shift), per-pixel noise
    scaled per channel (StyleGAN; its strength starts at 0 and is learned), activation."""

    def __init__(
        self, c_in: int, c_out: int, cond: int, noise: bool = False, spatial: int = 0, noise_init: float = 0.0
    ) -> None:
        super().__init__()
        self.noise_strength = nn.Parameter(torch.full((2, c_out, 1, 1), noise_init)) if noise else None
        self.conv1 = nn.Conv2d(c_in + spatial, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm1 = BatchNorm2d(c_out, affine=False)
        self.norm2 = BatchNorm2d(c_out, affine=False)
        self.film = nn.Linear(cond, 4 * c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        noise: torch.Tensor | None = None,
        spatial: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``spatial``: the layout's channels at the block's output size (only for a block built with them)."""
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        g1, b1, g2, b2 = self.film(cond)[:, :, None, None].chunk(4, dim=1)
        h = self.conv1(x if spatial is None else torch.cat([x, spatial.to(x.dtype)], dim=1))
        h = F.leaky_relu(self._modulate(self.norm1(h), g1, b1, noise, 0), 0.2)
        h = F.leaky_relu(self._modulate(self.norm2(self.conv2(h)), g2, b2, noise, 1), 0.2)
        return h + self.skip(x)

    def _modulate(
        self, h: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor, noise: torch.Tensor | None, k: int
    ) -> torch.Tensor:
        """h × (1 + gain) + shift + strength × noise, in h's dtype and memory order: under bf16 autocast an fp32
        noise term would promote the rest of the block to fp32 and, held in NCHW order, make every add beside the
        channels-last convolutions a strided copy (the demo's 64 px step 16 % faster on 2 CPU cores without it)."""
        if self.noise_strength is None or noise is None:
            return h * (1 + gain) + shift
        return h * (1 + gain) + (shift + noise.to(h.dtype) * self.noise_strength[k].to(h.dtype))


class ConditionalGenerator(nn.Module):
    """(z, conditions) → image (N, 1, S, S) on the [0, 1] scale, not clamped (a tanh output saturates on
    the black background that fills most of a mammogram; pipelines clamp)."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        c0 = config.g_channels[0]
        self.conditions = ConditionEncoder(config.cond_dim, config.cond_dim)
        self.input = nn.Linear(config.z_dim + config.cond_dim, 4 * 4 * c0)
        extra = config.layout_channels
        self.blocks = nn.ModuleList(
            FiLMBlock(a, b, config.z_dim + config.cond_dim, config.noise, extra, config.noise_init)
            for a, b in zip((c0, *config.g_channels[:-1]), config.g_channels, strict=True)
        )
        self.out = nn.Conv2d(config.g_channels[-1], 2 if config.alpha and not config.spatial else 1, 3, padding=1)

    def forward(
        self,
        z: torch.Tensor,
        categorical: torch.Tensor,
        continuous: torch.Tensor,
        noise: torch.Tensor | None = None,
        spatial: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``noise``: (N, 1, S, S) standard normal, one map per image (drawn from the image's seed by the
        pipeline, from the run's generator in training); ``None`` switches the noise inputs off. ``spatial``:
        (N, 3, S, S) breast / pectoral / lesion maps, or with ``labels`` the one-hot label map (N, 9, S, S),
        required by a generator built with ``spatial``."""
        if self.config.spatial and spatial is None:
            raise InputError(None, "this GAN follows a layout: it needs spatial maps (generate --layout phantom)")
        cond = torch.cat([z, self.conditions(categorical, continuous)[1]], dim=1)
        x = self.input(cond).view(z.shape[0], -1, 4, 4)
        for block in self.blocks:
            size = 2 * x.shape[-1]
            x = block(x, cond, noise_at(noise, size), _average_to(spatial, size) if self.config.spatial else None)
        out = self.out(x)
        if not self.config.alpha:
            return out
        if self.config.spatial:  # the breast: the breast mask, or every class but the background
            breast = 1 - spatial[:, :1] if self.config.labels else spatial[:, :1]
            return out[:, :1] * breast.to(out.dtype)
        return out[:, :1] * torch.sigmoid(4 * out[:, 1:])


class ProjectionDiscriminator(nn.Module):
    """Image + conditions → realness score: ψ(φ(x)) + ⟨embed(y), φ(x)⟩ (Miyato & Koyama 2018), with
    variance-preserving initialisation so the image, not the condition, drives the score."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 1
        for width in config.d_channels:
            layers += [nn.Conv2d(previous, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            previous = width
        self.features = nn.Sequential(*layers)
        self.minibatch_std = config.minibatch_std
        self.head: nn.Module | None = None
        if config.d_head == "spatial":
            self.head = nn.Sequential(
                nn.Conv2d(previous + int(config.minibatch_std), previous, 3, padding=1),
                nn.LeakyReLU(0.2),
                nn.Flatten(),
                nn.Linear(previous * 16, previous),
                nn.LeakyReLU(0.2),
            )
        self.linear = nn.Linear(previous, 1)
        self.conditions = ConditionEncoder(config.cond_dim, previous)
        for layer in [*self.features, *(self.head or [])]:
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(layer.weight, a=0.2)
                nn.init.zeros_(layer.bias)

    def forward(self, images: torch.Tensor, categorical: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        h = self.features(images * 2 - 1)
        if self.head is None:
            h = h.mean(dim=(2, 3)).float()
        else:
            if self.minibatch_std:
                h = torch.cat([h, minibatch_std(h)], dim=1)
            h = self.head(h).float()
        with torch.autocast(h.device.type, enabled=False):  # the score in fp32: bf16 rounding made it jumpy
            projection = (self.conditions(categorical, continuous)[1] * h).sum(1, keepdim=True)
            return (self.linear(h) + projection).squeeze(1)


def minibatch_std(features: torch.Tensor, group: int = 4) -> torch.Tensor:
    """One channel holding the mean standard deviation of the features across each group of images
    (Karras et al. 2018): a collapsed generator's batch has none, and the discriminator can see it.

    Groups are runs of consecutive images, so under torchrun a rank's share of the global batch (a consecutive
    run, :class:`~mammosynth.training.data.BatchOrder`) is grouped as one process groups the whole batch
    whenever the share is a multiple of ``group``."""
    n = features.shape[0]
    group = max(g for g in range(1, min(group, n) + 1) if n % g == 0)
    if group < 2:
        return torch.zeros_like(features[:, :1])
    x = features.float().reshape(n // group, group, *features.shape[1:])
    # the variance written out: Tensor.var over this dim took ~1 ms on a CPU for 8,192 numbers, 10× this
    variance = (x - x.mean(dim=1, keepdim=True)).square().mean(dim=1)
    spread = (variance + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n // group,)
    return spread.repeat_interleave(group)[:, None, None, None].expand(n, 1, *features.shape[2:]).to(features.dtype)


class ConditionalGAN(nn.Module):
    """Generator and discriminator of one model (the checkpoint unit)."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config.check()
        self.generator = ConditionalGenerator(config)
        self.discriminator = ProjectionDiscriminator(config)


def diff_augment(images: torch.Tensor, rand: Callable[..., torch.Tensor], colour: float = 1.0) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020) without flips (laterality is standardised): brightness (±0.1 × ``colour``),
    contrast (×(1 ± 0.5 × ``colour``)), translation by up to 1/8 and cutout of 1/4 — differentiable, applied to
    real and fake alike. ``colour`` 0 keeps intensities as they are: a discriminator that sees every image at
    random contrast cannot hold the generator to the real images' contrast (a 64 px GAN on mini-MIAS drifted
    to 12 % more contrast inside the breast with ``colour`` 1). ``rand(*shape)`` draws uniform numbers, one row
    per image (the training loop's ``StepContext.rand``, which draws for the global batch under torchrun).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> diff_augment(torch.rand(2, 1, 16, 16), lambda *s: torch.rand(*s, generator=g)).shape
        torch.Size([2, 1, 16, 16])
    """
    n, _, h, w = images.shape
    device = images.device
    # drawn at any colour: one stream
    brightness, contrast = rand(n, 1, 1, 1).to(device) - 0.5, rand(n, 1, 1, 1).to(device) - 0.5
    x = images
    if colour > 0:  # skipped at 0, where (x - mean) + mean would still round the pixels
        x = x + brightness * 0.2 * colour
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (contrast * colour + 1) + mean
    shift = h // 8
    dx = (rand(n).to(device) * (2 * shift + 1)).long() - shift
    dy = (rand(n).to(device) * (2 * shift + 1)).long() - shift
    yy, xx = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    src_y = (yy[None] - dy[:, None, None]).clamp(0, h - 1)
    src_x = (xx[None] - dx[:, None, None]).clamp(0, w - 1)
    x = x[torch.arange(n, device=device)[:, None, None], 0, src_y, src_x][:, None]
    cy = (rand(n).to(device) * h).long()[:, None, None]
    cx = (rand(n).to(device) * w).long()[:, None, None]
    keep = ((yy[None] - cy).abs() > h // 8) | ((xx[None] - cx).abs() > w // 8)
    return x * keep[:, None].to(x.dtype)
