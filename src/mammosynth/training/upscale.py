"""Training recipe of the super-resolution stage: every step takes one random ``crop_size`` window of each
prepared image (aligned to the factor), reduces it by ``factor`` with the Lanczos filter ``prepare`` shrinks
images with, and learns to give it back. The discriminator learns least-squares real/fake on
(enlarged input, image) pairs. The generator minimises ``adv_weight`` × adversarial + ``feature_weight`` ×
discriminator feature matching + ``l1_weight`` × L1 between its output reduced by ``factor`` and the input
(the low frequencies must agree) + ``pixel_weight`` × L1 to the real crop at full resolution (weak: it
restores what the input predicts; a strong one pulls the texture to the blurred mean) + ``spectrum_weight``
× L1 between the ring-averaged log power spectra of the output and the real crop (as much structure at
every scale, with no say on where it lies). The discriminator judges the clamped output as the pipeline
returns it (:mod:`mammosynth.models.clamp`); the two L1 terms see the raw output."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from mammosynth.models.clamp import clamp_toward_range
from mammosynth.models.upscale import UpscaleConfig, Upscaler, downsample, radial_log_power
from mammosynth.training import patch_losses
from mammosynth.training.config import TrainConfig
from mammosynth.training.loop import AdversarialTask, StepContext


def random_crops(images: torch.Tensor, size: int, step: int, ctx: StepContext) -> torch.Tensor:
    """One ``size`` × ``size`` window per image at a random offset that is a multiple of ``step``."""
    n, _, height, width = images.shape
    if size >= min(height, width):
        return images
    rows = ctx.randint((height - size) // step + 1, n).cpu() * step
    cols = ctx.randint((width - size) // step + 1, n).cpu() * step
    return torch.stack(
        [images[k, :, r : r + size, c : c + size] for k, (r, c) in enumerate(zip(rows, cols, strict=True))]
    )


class UpscaleTask(AdversarialTask):
    family = "upscale"
    ema_modules: ClassVar[dict[str, tuple[str, ...]]] = {"upscale": ("generator",)}

    def __init__(self, model_config: UpscaleConfig, train: TrainConfig, device: torch.device) -> None:
        super().__init__(model_config, train, device)
        self.model = Upscaler(model_config).to(device)
        self.modules = {"upscale": self.model}

    def _inputs(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = ("inputs", ctx.micro)
        if key not in ctx.scratch:
            config = self.model.config
            images = random_crops(batch["image"], config.crop_size, config.factor, ctx).to(self.device)
            low = downsample(images, config.factor)
            noise = ctx.randn(images.shape[0], 1, *images.shape[2:])
            ctx.scratch[key] = (images, low, noise)
        return ctx.scratch[key]

    def _fake(self, batch: dict, ctx: StepContext, release: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's output, made once, raw and as the discriminator sees it (clamped, the gradient passing
        back toward the range: :mod:`mammosynth.models.clamp`): D trains on it detached, G back-propagates
        through it."""
        key = ("fake", ctx.micro)
        if key not in ctx.scratch:
            _, low, noise = self._inputs(batch, ctx)
            raw = self.model.generator(low, noise)
            ctx.scratch[key] = (raw, clamp_toward_range(raw))
        return ctx.scratch.pop(key) if release else ctx.scratch[key]

    def discriminator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        images, low, _ = self._inputs(batch, ctx)
        fake = self._fake(batch, ctx)[1].detach()
        return patch_losses.discriminator_loss(
            self.model.discriminate(low, images)[-1], self.model.discriminate(low, fake)[-1]
        )

    def generator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        images, low, _ = self._inputs(batch, ctx)
        raw, fake = self._fake(batch, ctx, release=True)
        # on the raw output: a generator drifting out of [0, 1] where the clamp hides it still pays for it
        consistency = F.l1_loss(downsample(raw.float(), self.model.config.factor), low)
        terms, parts = patch_losses.generator_terms(
            self.model.discriminate, low, fake, images, self.train.adv_weight, self.train.feature_weight
        )
        loss = self.train.l1_weight * consistency + terms
        parts = {"low_l1": consistency.item(), **parts}
        if self.train.pixel_weight > 0:  # weak: restores what the input predicts, leaves the rest to D
            pixel = F.l1_loss(raw.float(), images)
            loss = loss + self.train.pixel_weight * pixel
            parts["pixel_l1"] = pixel.item()
        if self.train.spectrum_weight > 0:  # as much structure at each scale as the real crop, wherever it lies
            spectrum = F.l1_loss(radial_log_power(fake), radial_log_power(images))
            loss = loss + self.train.spectrum_weight * spectrum
            parts["spectrum"] = spectrum.item()
        return loss, parts

    @torch.no_grad()
    def samples(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """Real images, their reductions enlarged back (bilinear), and the stage's output."""
        config = self.model.config
        n = min(8, batch["image"].shape[0])
        images = batch["image"][:n].to(self.device)
        low = downsample(images, config.factor)
        noise = torch.randn(n, 1, *images.shape[2:], generator=generator).to(self.device)
        fake = self.model.generator(low, noise).float().clamp(0, 1)
        plain = F.interpolate(low, scale_factor=config.factor, mode="bilinear", align_corners=False)
        return torch.cat([images, plain, fake])
