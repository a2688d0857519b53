"""Lesion painter: paints a requested lesion (mass, calcification cluster, other finding) into any image at a
requested place and size, leaving every pixel outside the painted disc as it was — a conditional infilling
GAN (Wu et al. 2018, "ciGAN", which inserted lesions into mammograms the same way).

It works on one ``patch_px`` square around the place: the square with a disc blanked out, the disc, and the
requested kind (one channel per lesion kind, 1 inside the disc) go in; the network fills the disc and the
surrounding tissue gives it context. Trained on real patches: a disc over a real finding (the annotation mask,
its kind) must be filled with that finding; a disc over normal breast tissue with kind none must be filled
with tissue, so the kind, not the disc, decides whether a lesion appears. Generators trained on whole images
learn where a lesion is only through a condition vector, and with tens of annotated masses they paint none
where asked (mini-MIAS: 0 of 16, ``README``); a patch painter sees every finding at the scale it has.

Written by hand for the same reasons as the super-resolution stage (:mod:`mammosynth.models.upscale`): a small
stack of dilated residual convolutions with per-pixel noise, no down- or up-sampling; the discriminator is
MONAI's ``PatchDiscriminator`` on (condition, patch) pairs.

Example:
    >>> painter = LesionPainter(LesionConfig(image_size=32, patch_px=16, width=8, dilations=(1, 2)))
    >>> centres, radii = torch.tensor([[8.0, 8.0], [4.0, 4.0]]), torch.tensor([3.0, 2.0])
    >>> patch, disc = torch.rand(2, 1, 16, 16), disc_masks(centres, radii, 16)
    >>> kinds = torch.tensor([1, 3])
    >>> out = painter.generator(condition(patch, disc, kinds), torch.zeros(2, 1, 16, 16), patch, disc)
    >>> out.shape, bool(torch.equal(out[disc == 0], patch[disc == 0]))
    (torch.Size([2, 1, 16, 16]), True)
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from monai.networks.nets import PatchDiscriminator
from torch import nn

from mammosynth.errors import InputError
from mammosynth.models.base import Config
from mammosynth.models.verifier import KINDS

LESION_KINDS = KINDS[1:]  # one condition channel each; background (kind 0) is "fill with tissue"


@dataclasses.dataclass
class LesionConfig(Config):
    image_size: int = 128  # the images it paints into (a cascade's output size)
    patch_px: int = 48  # the square around a lesion it sees: the disc and its context
    width: int = 32  # channels of every generator block
    dilations: tuple[int, ...] = (1, 2, 4, 8, 4, 2, 1)  # one residual block per entry
    d_channels: int = 32
    d_layers: int = 3
    d_crop_px: int = 0  # > 0: the discriminator sees the central window of this size (the painted disc and its rim)
    grow_px: int = 2  # the painted disc reaches this far beyond the lesion (its margin blends into the tissue)
    grow_min_px: int | None = None  # training draws each disc's margin from grow_min_px … grow_px (None: grow_px)
    gamma_jitter: float = 0.0  # training: patches raised to exp(±gamma_jitter) (intensity variety)
    radius_px: float = 5.0  # lesion radius when a request gives no size (mini-MIAS masses' median at 128 px)
    min_radius_px: float = 2.0  # the smallest and largest disc it paints (fractions of the patch beyond lose context)
    max_radius_fraction: float = 0.4
    # > 0: the fill blends into the tissue over the disc's outer feather_px (a linear ramp), no seam at its edge
    feather_px: int = 0

    @property
    def max_radius_px(self) -> float:
        return self.max_radius_fraction * self.patch_px

    def check(self, where: str = "config") -> LesionConfig:
        if not 8 <= self.patch_px <= self.image_size:
            raise InputError(where, f"model.patch_px must be between 8 and image_size, got {self.patch_px}")
        seen = self.d_crop_px or self.patch_px
        if seen % 2**self.d_layers or not 0 <= self.d_crop_px <= self.patch_px:
            raise InputError(
                where,
                f"model.d_crop_px {self.d_crop_px} must be 0 or up to patch_px, and what the discriminator sees "
                f"({seen} px) a multiple of 2^d_layers",
            )
        if self.grow_px < 0 or not 0 <= (self.grow_min_px or 0) <= self.grow_px:
            raise InputError(where, "model.grow_min_px must lie between 0 and model.grow_px (≥ 0)")
        if self.feather_px < 0:
            raise InputError(where, f"model.feather_px must be ≥ 0, got {self.feather_px}")
        if not self.dilations or min(self.dilations) < 1 or self.width < 1:
            raise InputError(where, "model.dilations needs at least one entry, all ≥ 1, and model.width ≥ 1")
        if not 0 < self.min_radius_px <= self.radius_px <= self.max_radius_px:
            raise InputError(where, "model.radius_px must lie between min_radius_px and max_radius_fraction × patch_px")
        return self


def disc_masks(centres: torch.Tensor, radii: torch.Tensor, patch_px: int) -> torch.Tensor:
    """(N, 1, P, P) float discs of ``radii`` (N,) px around ``centres`` (N, 2) pixel (x, y) inside the patch.

    Example:
        >>> disc_masks(torch.tensor([[2.0, 2.0]]), torch.tensor([1.0]), 5)[0, 0].int().tolist()[1:4]
        [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]]
    """
    grid = torch.arange(patch_px, dtype=torch.float32, device=centres.device)
    dx = grid[None, None, :] - centres[:, 0, None, None]
    dy = grid[None, :, None] - centres[:, 1, None, None]
    return ((dx**2 + dy**2) <= radii[:, None, None] ** 2).float()[:, None]


def condition(patch: torch.Tensor, disc: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
    """The painter's input (N, 2 + len(LESION_KINDS), P, P): the patch with the disc blanked to 0, the disc,
    and the requested kind's channel set to the disc (all kind channels 0 for kind 0, tissue)."""
    one_hot = F.one_hot(kinds.long(), len(KINDS))[:, 1:].to(patch.dtype)[:, :, None, None]
    return torch.cat([(patch * (1 - disc)) * 2 - 1, disc, one_hot * disc], dim=1)


class LesionGenerator(nn.Module):
    """(condition, noise (N, 1, P, P), patch, disc) → the patch with the disc filled, on the [0, 1] scale (not
    clamped; pipelines clamp). Pixels outside the disc are the input's, exactly."""

    def __init__(self, config: LesionConfig) -> None:
        super().__init__()
        width = config.width
        self.head = nn.Conv2d(2 + len(LESION_KINDS), width, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Conv2d(width, width, 3, padding=d, dilation=d) for d in config.dilations)
        self.noise_strength = nn.Parameter(torch.full((len(config.dilations), 1, width, 1, 1), 0.1))
        self.out = nn.Conv2d(width, 1, 3, padding=1)
        self.feather_px = config.feather_px

    def forward(self, cond: torch.Tensor, noise: torch.Tensor, patch: torch.Tensor, disc: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.head(cond), 0.2)
        for block, strength in zip(self.blocks, self.noise_strength, strict=True):
            h = h + F.leaky_relu(block(h) + strength * noise, 0.2) * 0.5
        filled = (self.out(h) + 1) / 2
        if self.feather_px:
            filled = patch + feather(disc, self.feather_px) * (filled - patch)
        return torch.where(disc > 0, filled, patch)


def feather(disc: torch.Tensor, feather_px: int) -> torch.Tensor:
    """A weight (N, 1, P, P) that is 1 deeper than ``feather_px`` inside the disc, falls linearly toward its edge
    (0.2, 0.6, 1 across a straight edge at 2 px) and is 0 outside it.

    Example:
        >>> disc = torch.zeros(1, 1, 7, 7).index_fill_(3, torch.arange(3, 7), 1.0)  # right of column 3
        >>> [round(v, 2) for v in feather(disc, 2)[0, 0, 3].tolist()]
        [0.0, 0.0, 0.0, 0.2, 0.6, 1.0, 1.0]
    """
    size = 2 * feather_px + 1
    share = F.avg_pool2d(disc, size, stride=1, padding=feather_px, count_include_pad=False)
    return disc * ((share - 0.5) * 2).clamp(0, 1)


class LesionPainter(nn.Module):
    """Generator and pair discriminator of one lesion painter (the checkpoint unit)."""

    def __init__(self, config: LesionConfig) -> None:
        super().__init__()
        self.config = config.check()
        self.generator = LesionGenerator(config)
        self.discriminator = PatchDiscriminator(
            spatial_dims=2,
            channels=config.d_channels,
            in_channels=3 + len(LESION_KINDS),
            out_channels=1,
            num_layers_d=config.d_layers,
            norm=None,
            bias=True,
        )
        # variance-preserving, not MONAI's N(0, 0.02): from that start the scores stayed at 0.5 for real and
        # painted patches alike through the first 1,200 steps (the GAN's discriminator starts the same way)
        for layer in self.discriminator.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, a=0.2)
                nn.init.zeros_(layer.bias)

    def discriminate(self, cond: torch.Tensor, patches: torch.Tensor) -> list[torch.Tensor]:
        """Intermediate features and (last) the patch scores of (condition, patch) pairs, seen through the
        central ``d_crop_px`` window (the whole patch at 0): a local discriminator (Iizuka et al. 2017) for which
        the painted disc is a large part of what it sees, not a twentieth."""
        pairs = torch.cat([cond, patches * 2 - 1], dim=1)
        crop = self.config.d_crop_px
        if crop:
            start = (pairs.shape[-1] - crop) // 2
            pairs = pairs[..., start : start + crop, start : start + crop]
        return self.discriminator(pairs)
