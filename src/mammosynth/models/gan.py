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

import torch
import torch.nn.functional as F
from torch import nn

from mammosynth.errors import InputError
from mammosynth.models.base import Config
from mammosynth.models.conditioning import ConditionEncoder


@dataclasses.dataclass
class GANConfig(Config):
    image_size: int = 128
    z_dim: int = 128
    cond_dim: int = 64
    g_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    d_channels: tuple[int, ...] = (16, 32, 64, 128, 256)

    def check(self, where: str = "config") -> GANConfig:
        for name, channels in (("g_channels", self.g_channels), ("d_channels", self.d_channels)):
            if self.image_size != 4 * 2 ** len(channels):
                raise InputError(
                    where,
                    f"{name} needs log2(image_size / 4) = {int(math.log2(self.image_size / 4))} "
                    f"entries for image_size {self.image_size}, got {len(channels)}",
                )
        return self


class FiLMBlock(nn.Module):
    """Upsample ×2, conv, batch-norm modulated by the condition vector (scale and shift), activation."""

    def __init__(self, c_in: int, c_out: int, cond: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm1 = nn.BatchNorm2d(c_out, affine=False)
        self.norm2 = nn.BatchNorm2d(c_out, affine=False)
        self.film = nn.Linear(cond, 4 * c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        g1, b1, g2, b2 = self.film(cond)[:, :, None, None].chunk(4, dim=1)
        h = F.leaky_relu(self.norm1(self.conv1(x)) * (1 + g1) + b1, 0.2)
        h = F.leaky_relu(self.norm2(self.conv2(h)) * (1 + g2) + b2, 0.2)
        return h + self.skip(x)


class ConditionalGenerator(nn.Module):
    """(z, conditions) → image (N, 1, S, S) on the [0, 1] scale, not clamped (a tanh output saturates on
    the black background that fills most of a mammogram; pipelines clamp)."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        c0 = config.g_channels[0]
        self.conditions = ConditionEncoder(config.cond_dim, config.cond_dim)
        self.input = nn.Linear(config.z_dim + config.cond_dim, 4 * 4 * c0)
        self.blocks = nn.ModuleList(
            FiLMBlock(a, b, config.z_dim + config.cond_dim)
            for a, b in zip((c0, *config.g_channels[:-1]), config.g_channels, strict=True)
        )
        self.out = nn.Conv2d(config.g_channels[-1], 1, 3, padding=1)

    def forward(self, z: torch.Tensor, categorical: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        cond = torch.cat([z, self.conditions(categorical, continuous)[1]], dim=1)
        x = self.input(cond).view(z.shape[0], -1, 4, 4)
        for block in self.blocks:
            x = block(x, cond)
        return self.out(x)


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
        self.linear = nn.Linear(previous, 1)
        self.conditions = ConditionEncoder(config.cond_dim, previous)
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, a=0.2)
                nn.init.zeros_(layer.bias)

    def forward(self, images: torch.Tensor, categorical: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        h = self.features(images * 2 - 1).mean(dim=(2, 3)).float()
        with torch.autocast(h.device.type, enabled=False):  # the score in fp32: bf16 rounding made it jumpy
            projection = (self.conditions(categorical, continuous)[1] * h).sum(1, keepdim=True)
            return (self.linear(h) + projection).squeeze(1)


class ConditionalGAN(nn.Module):
    """Generator and discriminator of one model (the checkpoint unit)."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config.check()
        self.generator = ConditionalGenerator(config)
        self.discriminator = ProjectionDiscriminator(config)


def diff_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020) without flips (laterality is standardised): brightness, contrast,
    translation by up to 1/8 and cutout of 1/4 — differentiable, applied to real and fake alike."""
    n, _, h, w = images.shape
    device = images.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    x = images + (rand(n, 1, 1, 1) - 0.5) * 0.2
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean
    shift = h // 8
    dx = (rand(n) * (2 * shift + 1)).long() - shift
    dy = (rand(n) * (2 * shift + 1)).long() - shift
    yy, xx = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    src_y = (yy[None] - dy[:, None, None]).clamp(0, h - 1)
    src_x = (xx[None] - dx[:, None, None]).clamp(0, w - 1)
    x = x[torch.arange(n, device=device)[:, None, None], 0, src_y, src_x][:, None]
    cy = (rand(n) * h).long()[:, None, None]
    cx = (rand(n) * w).long()[:, None, None]
    keep = ((yy[None] - cy).abs() > h // 8) | ((xx[None] - cx).abs() > w // 8)
    return x * keep[:, None].to(x.dtype)
