"""The default feature space of the evaluation: a small CNN encoder trained, contrastively, on the user's
own real images — no download, no ImageNet bias, but also no outside reference: distances are only
comparable between evaluations that use the same encoder (same real set, seed and settings), and an
encoder trained on a few hundred images sees coarse structure (shape, density, texture scale) rather
than fine detail.

Method: SimCLR (Chen et al. 2020) with the NT-Xent loss on two views of each image (shift by up to 1/8,
brightness ±0.1, contrast ×0.8–1.2, Gaussian noise σ 0.02); features are the L2-normalised pooled output.
Written by hand because no kept library trains an encoder on grayscale mammograms from scratch."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mammosynth.errors import InputError
from mammosynth.evaluate.stack import work_stack


def _to_tensor(images: np.ndarray, work_px: int) -> torch.Tensor:
    return torch.from_numpy(work_stack(images, work_px))[:, None]


def small_cnn(width: int, outputs: int) -> nn.Sequential:
    """Four stride-2 convolutions (width, 2×, 4×, 8×) with group norm, global pooling and a linear head:
    the evaluation's encoder and its two-sample classifier."""
    layers: list[nn.Module] = []
    previous = 1
    for k in range(4):
        layers += [
            nn.Conv2d(previous, width * 2**k, 3, stride=2, padding=1),
            nn.GroupNorm(4, width * 2**k),
            nn.LeakyReLU(0.2),
        ]
        previous = width * 2**k
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, outputs))


class ImageEncoder(nn.Module):
    """(N, 1, S, S) → (N, dim) L2-normalised features."""

    def __init__(self, width: int = 16, dim: int = 64) -> None:
        super().__init__()
        self.width, self.dim = width, dim
        self.body = small_cnn(width, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.body(images), dim=1)


def _view(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, _, h, _ = x.shape
    shift = h // 8
    dy, dx = (torch.randint(-shift, shift + 1, (2,), generator=generator)).tolist()
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    brightness = (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.2
    contrast = 0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=generator)
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * contrast + mean + brightness + 0.02 * torch.randn(x.shape, generator=generator)


class FeatureExtractor:
    """A feature network with the resolution and input convention it works at; call it on (N, H, W) images
    in [0, 1]. ``channels`` = 3 repeats the grayscale image (for networks trained on colour images) and
    ``mean`` / ``std`` normalise the input as the network was trained (e.g. ImageNet's)."""

    def __init__(
        self,
        network: nn.Module,
        work_px: int,
        name: str = "contrastive encoder trained on the real set",
        channels: int = 1,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ) -> None:
        self.network, self.work_px, self.name, self.channels = network.eval(), work_px, name, channels
        self.mean = torch.tensor(mean or (0.0,) * channels).view(1, -1, 1, 1)
        self.std = torch.tensor(std or (1.0,) * channels).view(1, -1, 1, 1)

    @torch.no_grad()
    def __call__(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        x = _to_tensor(images, self.work_px).expand(-1, self.channels, -1, -1)
        x = (x - self.mean) / self.std
        return (
            torch.cat([self.network(x[i : i + batch_size]).flatten(1) for i in range(0, len(x), batch_size)])
            .numpy()
            .astype(np.float64)
        )


def train_encoder(
    real: np.ndarray,
    work_px: int = 64,
    steps: int = 300,
    batch_size: int = 32,
    dim: int = 64,
    temperature: float = 0.2,
    seed: int = 0,
) -> FeatureExtractor:
    """Train the default feature extractor on real images (N, H, W) (see the module docstring)."""
    x = _to_tensor(real, work_px)
    if len(x) < 4:
        raise InputError(None, "the encoder needs at least 4 real images")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    encoder = ImageEncoder(dim=dim)
    optimizer = torch.optim.Adam(encoder.parameters(), 1e-3)
    m = min(batch_size, len(x))
    for _ in range(steps):
        batch = x[torch.randperm(len(x), generator=generator)[:m]]
        z = encoder(torch.cat([_view(batch, generator), _view(batch, generator)]))
        similarity = z @ z.T / temperature
        similarity.fill_diagonal_(float("-inf"))
        targets = torch.cat([torch.arange(m, 2 * m), torch.arange(m)])
        loss = nn.functional.cross_entropy(similarity, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return FeatureExtractor(encoder, work_px)
