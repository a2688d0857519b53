"""Lesion verifier: a small fully-convolutional network that labels each cell of a coarse grid as
background or a lesion kind, so one forward pass says whether a lesion is present, what kind it is and
where it is. Independent of the generators: trained on real prepared data with finding masks.

With ``patch_px`` set it is a patch classifier instead: the same network, its cell logits averaged over a
``patch_px`` square, asked about the place a lesion was requested ("is a mass *there*?"), not searched for
one anywhere. On mini-MIAS (women kept whole) the grid found the right kind inside the annotated circle for
at most 9 % of held-out lesions at any threshold; a patch classifier at the annotated centre separates them
from normal tissue (``benchmarks/bench_verifier.py``).

Written by hand because MONAI's classifiers give one label per image, not a located kind; a grid of
cell labels is the smallest detector that answers "is the requested lesion inside the requested region".
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from mammosynth.errors import InputError
from mammosynth.models.base import Config

KINDS = ("background", "benign-mass", "malignant-mass", "calcification", "other")


def kind_of(category: str | None, pathology: str | None) -> str:
    """Verifier class of a finding (mass pathology matters; other categories are grouped)."""
    if category == "mass":
        return "malignant-mass" if pathology == "malignant" else "benign-mass"
    if category == "calcification":
        return "calcification"
    return "background" if category in (None, "none") else "other"


@dataclasses.dataclass
class VerifierConfig(Config):
    image_size: int = 128
    channels: tuple[int, ...] = (16, 32, 64)
    lesion_weight: float = 10.0
    patch_px: int = 0  # > 0: a patch classifier asked at the requested place (0: the whole-image cell grid)

    def check(self, where: str = "config") -> VerifierConfig:
        if self.image_size % (2 ** len(self.channels)):
            raise InputError(where, f"image_size {self.image_size} is not a multiple of {2 ** len(self.channels)}")
        if self.patch_px and (self.patch_px % self.cell or not 0 < self.patch_px <= self.image_size):
            raise InputError(
                where, f"model.patch_px {self.patch_px} must be a multiple of {self.cell} up to image_size"
            )
        return self

    @property
    def cell(self) -> int:
        return 2 ** len(self.channels)


class LesionVerifier(nn.Module):
    """Image (N, 1, H, W) in [0, 1] → cell logits (N, len(KINDS), H/cell, W/cell)."""

    def __init__(self, config: VerifierConfig) -> None:
        super().__init__()
        self.config = config.check()
        layers: list[nn.Module] = []
        previous = 1
        for width in config.channels:
            layers += [
                nn.Conv2d(previous, width, 3, padding=1),
                nn.GroupNorm(min(8, width), width),
                nn.SiLU(),
                nn.Conv2d(width, width, 3, stride=2, padding=1),
                nn.SiLU(),
            ]
            previous = width
        layers += [
            nn.Conv2d(previous, previous, 3, padding=2, dilation=2),
            nn.SiLU(),
            nn.Conv2d(previous, len(KINDS), 1),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2 - 1)

    def cell_targets(self, lesion_kinds: torch.Tensor) -> torch.Tensor:
        """Per-pixel kind indices (N, H, W) → per-cell targets: the most frequent lesion kind in the cell,
        background when the cell has no lesion pixel."""
        one_hot = F.one_hot(lesion_kinds, len(KINDS)).permute(0, 3, 1, 2).float()
        counts = F.avg_pool2d(one_hot, self.config.cell)
        counts[:, 0] = 1e-6
        return counts.argmax(1)

    def loss(self, images: torch.Tensor, lesion_kinds: torch.Tensor) -> torch.Tensor:
        weight = torch.full((len(KINDS),), self.config.lesion_weight, device=images.device)
        weight[0] = 1.0
        return F.cross_entropy(self(images), self.cell_targets(lesion_kinds), weight=weight)

    def patch_logits(self, patches: torch.Tensor) -> torch.Tensor:
        """Patches (N, 1, P, P) → kind logits (N, len(KINDS)): the cell logits averaged over the patch."""
        return self(patches).mean(dim=(2, 3))

    @torch.no_grad()
    def inspect(self, images: torch.Tensor, regions: torch.Tensor | None = None) -> list[dict]:
        """Per image: lesion probability, the most likely kind, the peak cell (x, y as fractions) and,
        when ``regions`` (N, H, W) are given, whether the peak lies inside its region.

        A patch verifier (``patch_px``) looks at the patch centred on each region's centroid (the peak is
        that centre, inside by construction); where no region is given, at every patch of a half-overlapping
        grid over the breast (pixels above 0), the peak being the most lesion-like patch."""
        if self.config.patch_px:
            return self._inspect_patches(images, regions)
        probs = self(images).softmax(1)
        lesion = 1 - probs[:, 0]
        n, h, w = lesion.shape
        flat = lesion.flatten(1).argmax(1)
        results = []
        for i in range(n):
            y, x = divmod(int(flat[i]), w)
            kind_scores = probs[i, 1:].flatten(1).sum(1)
            result = {
                "lesion_probability": float(lesion[i].max()),
                "kind": KINDS[1 + int(kind_scores.argmax())],
                "peak": [(x + 0.5) / w, (y + 0.5) / h],
            }
            if regions is not None:
                region = F.adaptive_max_pool2d(regions[i : i + 1, None].float(), (h, w))[0, 0]
                result["inside"] = bool(region[y, x] > 0)
            results.append(result)
        return results

    def _inspect_patches(self, images: torch.Tensor, regions: torch.Tensor | None) -> list[dict]:
        size, patch = images.shape[-1], self.config.patch_px
        # each image's patch centres (pixel x, y): its region's centroid, or a half-overlapping grid on the breast
        step = torch.arange(patch // 2, size - patch // 2 + 1, max(1, patch // 2), device=images.device)
        grid = torch.cartesian_prod(step, step).flip(1).float()
        centres = []
        for i in range(images.shape[0]):
            region = None if regions is None else regions[i]
            if region is not None and bool(region.any()) and not bool(region.all()):
                ys, xs = torch.nonzero(region, as_tuple=True)
                centroid = torch.stack([xs.float().mean(), ys.float().mean()]) + 0.5
                centres.append(centroid[None] * (size / region.shape[-1]))
            else:
                inside = images[i, 0, grid[:, 1].long().clamp(max=size - 1), grid[:, 0].long().clamp(max=size - 1)] > 0
                centres.append(grid[inside] if bool(inside.any()) else grid)
        counts = [len(c) for c in centres]
        owner = torch.repeat_interleave(
            torch.arange(len(centres), device=images.device), torch.tensor(counts, device=images.device)
        )
        probs = self.patch_logits(crop_patches(images[owner], torch.cat(centres), patch)).softmax(1)  # one forward
        results = []
        for i, own in enumerate(probs.split(counts)):
            best = int((1 - own[:, 0]).argmax())
            x, y = (float(v) / size for v in centres[i][best])
            result = {
                "lesion_probability": float(1 - own[best, 0]),
                "kind": KINDS[1 + int(own[best, 1:].argmax())],
                "peak": [x, y],
            }
            if regions is not None:
                h, w = regions[i].shape
                result["inside"] = bool(regions[i][min(int(y * h), h - 1), min(int(x * w), w - 1)] > 0)
            results.append(result)
        return results


def crop_patches(images: torch.Tensor, centres: torch.Tensor, patch_px: int) -> torch.Tensor:
    """``patch_px`` squares of ``images`` (N, 1, H, W) centred on ``centres`` (N, 2) as pixel (x, y), padded
    with 0 (a prepared image's background) where they leave the image.

    Example:
        >>> crop_patches(torch.ones(1, 1, 8, 8), torch.tensor([[0.0, 4.0]]), 4)[0, 0].sum(0).tolist()
        [0.0, 0.0, 4.0, 4.0]
    """
    n, _, h, w = images.shape
    half = patch_px // 2
    padded = F.pad(images, (half, half, half, half))
    offsets = torch.arange(patch_px, device=images.device)
    x0 = centres[:, 0].round().long().clamp(0, w)
    y0 = centres[:, 1].round().long().clamp(0, h)
    rows = (y0[:, None] + offsets)[:, :, None]
    cols = (x0[:, None] + offsets)[:, None, :]
    return padded[torch.arange(n, device=images.device)[:, None, None], 0, rows, cols][:, None]


def random_pixels(masks: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """One pixel (x, y) per mask (N, H, W): where ``draws`` (N, H, W) uniform numbers peak inside it (any
    pixel of the image for an empty mask)."""
    size = masks.shape[-1]
    flat = torch.where(masks, draws, draws - 2.0).flatten(1).argmax(1)
    return torch.stack([flat % size, flat // size], 1).float()


def turn_patches(patches: torch.Tensor, spins: torch.Tensor) -> torch.Tensor:
    """Each patch (N, C, P, P) turned by ``4 × spins[:, 0]`` quarter turns and mirrored where ``spins[:, 1]`` <
    0.5."""
    out = []
    for patch, (quarter, mirror) in zip(patches, spins.tolist(), strict=True):
        patch = torch.rot90(patch, int(4 * quarter), (1, 2))
        out.append(patch.flip(2) if mirror < 0.5 else patch)
    return torch.stack(out)
