"""The pix2pix / pix2pixHD losses of a pair discriminator, shared by the translation and super-resolution
recipes: least-squares real/fake scores and feature matching on the discriminator's intermediate maps."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def discriminator_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Least-squares loss of the discriminator (real → 1, fake → 0) and its logged parts."""
    real_score, fake_score = real_score.float(), fake_score.float()
    loss = 0.5 * (
        F.mse_loss(real_score, torch.ones_like(real_score)) + F.mse_loss(fake_score, torch.zeros_like(fake_score))
    )
    return loss, {"d_loss": loss.item(), "d_real": real_score.mean().item(), "d_fake": fake_score.mean().item()}


def generator_adversarial(fake_score: torch.Tensor) -> torch.Tensor:
    """Least-squares loss of the generator: its output scored as real."""
    return F.mse_loss(fake_score.float(), torch.ones_like(fake_score.float()))


def feature_matching(fake_features: list[torch.Tensor], real_features: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between the discriminator's intermediate maps (all but the last, the score) of generated and
    real pairs."""
    pairs = list(zip(fake_features[:-1], real_features[:-1], strict=True))
    return sum(F.l1_loss(f.float(), r.float()) for f, r in pairs) / max(1, len(pairs))


def generator_terms(
    discriminate: Callable[[torch.Tensor, torch.Tensor], list[torch.Tensor]],
    condition: torch.Tensor,
    fake: torch.Tensor,
    real: torch.Tensor,
    adv_weight: float,
    feature_weight: float,
) -> tuple[torch.Tensor, dict]:
    """The generator's adversarial loss on (condition, fake) pairs plus, with ``feature_weight`` > 0,
    feature matching against (condition, real) pairs; and the logged parts."""
    fake_features = discriminate(condition, fake)
    adversarial = generator_adversarial(fake_features[-1])
    loss, parts = adv_weight * adversarial, {"g_adv": adversarial.item()}
    if feature_weight > 0:
        with torch.no_grad():
            real_features = discriminate(condition, real)
        matching = feature_matching(fake_features, real_features)
        loss = loss + feature_weight * matching
        parts["feature_matching"] = float(matching.detach())
    return loss, parts
