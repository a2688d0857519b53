"""Lesion verifier: a small fully-convolutional network that labels each cell of a coarse grid as
background or a lesion kind, so one forward pass says whether a lesion is present, what kind it is and
where it is. Independent of the generators: trained on real prepared data with finding masks.

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

    def check(self, where: str = "config") -> VerifierConfig:
        if self.image_size % (2 ** len(self.channels)):
            raise InputError(where, f"image_size {self.image_size} is not a multiple of {2 ** len(self.channels)}")
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

    @torch.no_grad()
    def inspect(self, images: torch.Tensor, regions: torch.Tensor | None = None) -> list[dict]:
        """Per image: lesion probability, the most likely kind, the peak cell (x, y as fractions) and,
        when ``regions`` (N, H, W) are given, whether the peak lies inside its region."""
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
