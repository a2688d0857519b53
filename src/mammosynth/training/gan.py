"""Training recipe of the conditional GAN, built against the thesis' failure modes: hinge loss,
spectral norm and a lazy R1 penalty keep the discriminator from overpowering the generator; DiffAugment
(no flips) makes small datasets last; two learning rates (``train.lr`` for G, ``train.lr_discriminator``
for D); an EMA generator for sampling; channels-last + bf16 autocast on CPU for speed."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from mammosynth.models.clamp import clamp_toward_range
from mammosynth.models.conditioning import drop_conditions, one_hot_labels
from mammosynth.models.gan import ConditionalGAN, GANConfig, diff_augment
from mammosynth.training.config import TrainConfig
from mammosynth.training.loop import AdversarialTask, StepContext

CHANNELS_LAST = torch.channels_last


class GANTask(AdversarialTask):
    family = "gan"
    ema_modules: ClassVar[dict[str, tuple[str, ...]]] = {"gan": ("generator",)}

    def __init__(self, model_config: GANConfig, train: TrainConfig, device: torch.device) -> None:
        super().__init__(model_config, train, device)
        self.model = ConditionalGAN(model_config).to(device).to(memory_format=CHANNELS_LAST)
        self.modules = {"gan": self.model}
        self.uses_labels = model_config.labels  # a label-map layout: batches carry derived label maps

    def _inputs(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        key = ("inputs", ctx.micro)
        if key not in ctx.scratch:
            encoded = {k: batch[k] for k in ("categorical", "continuous")}
            conditions = drop_conditions(encoded, self.train.cond_drop_field, self.train.cond_drop_all, ctx.rand)
            conditions = {k: v.to(self.device) for k, v in conditions.items()}
            images = batch["image"].to(self.device).contiguous(memory_format=CHANNELS_LAST)
            z = ctx.randn(images.shape[0], self.model.config.z_dim)
            noise = ctx.randn(images.shape[0], 1, *images.shape[-2:]) if self.model.config.noise else None
            if self.model.config.spatial:  # the layout is never dropped: it is the silhouette itself
                conditions["spatial"] = self._layout(batch).to(self.device).contiguous(memory_format=CHANNELS_LAST)
            ctx.scratch[key] = (images, conditions, z, noise)
        return ctx.scratch[key]

    def _layout(self, batch: dict) -> torch.Tensor:
        """The layout the generator follows: the spatial masks, or the one-hot derived label map."""
        return one_hot_labels(batch["labels"]) if self.model.config.labels else batch["spatial"]

    def _fake(self, batch: dict, ctx: StepContext, release: bool = False) -> torch.Tensor:
        """The step's generated batch, made once with its graph: the discriminator phase trains on it
        detached and the generator phase back-propagates through the same images (one generator forward
        per step instead of two; the generator's weights do not change between the phases)."""
        key = ("fake", ctx.micro)
        if key not in ctx.scratch:
            _, cond, z, noise = self._inputs(batch, ctx)
            fake = self.model.generator(z, cond["categorical"], cond["continuous"], noise, cond.get("spatial"))
            # the discriminator judges what the pipeline returns (clamped to [0, 1]): a background of small
            # positive values, invisible to it before, is now told from the real images' exact black; the
            # gradient passes the clamp near [0, 1] and back toward it, so the generator learns where it is
            # clipped without clipped pixels drifting away for ever (mammosynth.models.clamp)
            ctx.scratch[key] = clamp_toward_range(fake)
        return ctx.scratch.pop(key) if release else ctx.scratch[key]

    def _augment(self, images: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return diff_augment(images, ctx.rand, self.train.augment_colour) if self.train.diff_augment else images

    def discriminator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        images, cond, _, _ = self._inputs(batch, ctx)
        d = self.model.discriminator
        fake = self._fake(batch, ctx)
        real_score = d(self._augment(images, ctx), cond["categorical"], cond["continuous"])
        fake_score = d(self._augment(fake.detach(), ctx), cond["categorical"], cond["continuous"])
        loss = F.softplus(-real_score).mean() + F.softplus(fake_score).mean()
        parts = {"d_loss": loss.item(), "d_real": real_score.mean().item(), "d_fake": fake_score.mean().item()}
        if self.train.r1_gamma > 0 and ctx.step % self.train.r1_every == 0:
            with torch.autocast(self.device.type, enabled=False):
                real = images.detach().float().requires_grad_(True)
                score = d(real, cond["categorical"], cond["continuous"]).sum()
                (grad,) = torch.autograd.grad(score, real, create_graph=True)
                r1 = grad.pow(2).flatten(1).sum(1).mean()
            loss = loss + self.train.r1_gamma / 2 * r1 * self.train.r1_every
            parts["r1"] = r1.item()
        return loss, parts

    def generator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        _, cond, _, _ = self._inputs(batch, ctx)
        fake = self._fake(batch, ctx, release=True)
        loss = F.softplus(
            -self.model.discriminator(self._augment(fake, ctx), cond["categorical"], cond["continuous"])
        ).mean()
        return loss, {"g_loss": loss.item()}

    @torch.no_grad()
    def samples(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        n = min(8, batch["image"].shape[0])
        z = torch.randn(n, self.model.config.z_dim, generator=generator).to(self.device)
        size = self.model.config.image_size
        noise = torch.randn(n, 1, size, size, generator=generator).to(self.device) if self.model.config.noise else None
        categorical, continuous = batch["categorical"][:n].to(self.device), batch["continuous"][:n].to(self.device)
        spatial = self._layout(batch)[:n].to(self.device) if self.model.config.spatial else None
        fake = self.model.generator(z, categorical, continuous, noise, spatial)
        return torch.cat([batch["image"][:n].to(self.device), fake.float().clamp(0, 1)])
