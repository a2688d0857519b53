"""Training recipe of the label map → mammogram translator (pix2pix with pix2pixHD's feature matching):
the discriminator learns least-squares real/fake on (label map, image) pairs; the generator minimises
``l1_weight`` × L1 to the real image + ``adv_weight`` × adversarial + ``feature_weight`` × L1 between the
discriminator's features of real and generated pairs. Pairs are the prepared images and the label maps
derived from them (:func:`mammosynth.phantom.derive.derive_label_map`)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from mammosynth.models.translation import LabelTranslator, TranslationConfig, one_hot_labels
from mammosynth.training import patch_losses
from mammosynth.training.config import TrainConfig
from mammosynth.training.loop import AdversarialTask, StepContext


class TranslationTask(AdversarialTask):
    family = "translation"
    ema_modules: ClassVar[dict[str, tuple[str, ...]]] = {"translation": ("generator",)}
    uses_labels = True

    def __init__(self, model_config: TranslationConfig, train: TrainConfig, device: torch.device) -> None:
        super().__init__(model_config, train, device)
        self.model = LabelTranslator(model_config).to(device)
        self.modules = {"translation": self.model}

    def _inputs(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = ("inputs", ctx.micro)
        if key not in ctx.scratch:
            images = batch["image"].to(self.device)
            labels = one_hot_labels(batch["labels"]).to(self.device)
            noise = ctx.randn(images.shape[0], self.model.config.noise_channels, *images.shape[2:])
            ctx.scratch[key] = (images, labels, noise)
        return ctx.scratch[key]

    def discriminator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        images, labels, noise = self._inputs(batch, ctx)
        with torch.no_grad():
            fake = self.model.generator(labels, noise)
        return patch_losses.discriminator_loss(
            self.model.discriminate(labels, images)[-1], self.model.discriminate(labels, fake)[-1]
        )

    def generator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        images, labels, noise = self._inputs(batch, ctx)
        fake = self.model.generator(labels, noise)
        l1 = F.l1_loss(fake.float(), images)
        terms, parts = patch_losses.generator_terms(
            self.model.discriminate, labels, fake, images, self.train.adv_weight, self.train.feature_weight
        )
        loss = self.train.l1_weight * l1 + terms
        parts = {"l1": l1.item(), **parts}
        return loss, parts

    @torch.no_grad()
    def samples(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        n = min(8, batch["image"].shape[0])
        images = batch["image"][:n].to(self.device)
        labels = batch["labels"][:n]
        noise = torch.randn(n, self.model.config.noise_channels, *images.shape[2:], generator=generator)
        fake = self.model.generator(one_hot_labels(labels).to(self.device), noise.to(self.device))
        return torch.cat([labels[:, None].float().to(self.device) / 8, images, fake.float().clamp(0, 1)])
