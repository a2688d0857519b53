"""Training recipe of the lesion painter: every image of a batch gives one ``patch_px`` patch — an image with
a finding a patch around a random pixel of it (the disc: its finding mask grown by ``model.grow_px``, the kind
there), an image without one a patch around a random breast pixel (the disc: a circle of a random lesion-like
radius, kind none: fill with tissue). Each patch is turned by a random multiple of 90° and mirrored at random
(a lesion has no orientation). The discriminator learns least-squares real/fake on (condition, patch) pairs;
the generator minimises ``adv_weight`` × adversarial + ``feature_weight`` × feature matching + ``pixel_weight``
× L1 inside the disc to the real patch (weak: a strong one paints the blurred mean of all lesions), and with
``train.guide`` (a trained patch verifier, frozen) ``guide_weight`` × its cross-entropy toward the requested kind
on the painted patch's centre, an auxiliary classifier that asks the fill to be the kind requested (AC-GAN,
Odena et al. 2017). Judge a guided painter with verifiers other than its guide.

One example per image, so the losses are means over the same number of examples on every torchrun rank and
two processes train what one does."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from mammosynth.errors import InputError
from mammosynth.models.clamp import clamp_toward_range
from mammosynth.models.lesion import LesionConfig, LesionPainter, condition, disc_masks
from mammosynth.models.verifier import LesionVerifier, crop_patches, random_pixels, turn_patches
from mammosynth.training import patch_losses
from mammosynth.training.config import TrainConfig
from mammosynth.training.loop import AdversarialTask, StepContext
from mammosynth.training.verifier import load_verifier


def disc_weights(discs: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Per image, how much of each discriminator score's cell the disc covers, summing to 1 over the cells: the
    scores are judged where the painter painted (the rest of a pair is the same real pixels, and scores there,
    averaged in, kept the discriminator at "cannot tell", d_real = d_fake = 0.5, through 1,200 steps)."""
    cover = F.adaptive_avg_pool2d(discs.float(), shape) + 1e-3
    return cover / cover.sum((1, 2, 3), keepdim=True)


def weighted(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The weighted sum over each image's cells, averaged over images (the same on every torchrun rank)."""
    return (values * weights).sum((1, 2, 3)).mean()


def load_guide(path: str, config: LesionConfig, device: torch.device) -> LesionVerifier:
    """The frozen patch verifier of ``train.guide``; one line naming it when it cannot guide this painter."""
    _, guide = load_verifier(path, device)
    guide_config = guide.config
    if not guide_config.patch_px or guide_config.patch_px > config.patch_px:
        raise InputError(path, f"train.guide needs a patch verifier with patches of at most {config.patch_px} px")
    if guide_config.image_size != config.image_size:
        raise InputError(
            path, f"train.guide judges {guide_config.image_size} px images, the painter paints {config.image_size} px"
        )
    return guide.requires_grad_(False)


class LesionTask(AdversarialTask):
    family = "lesion"
    ema_modules: ClassVar[dict[str, tuple[str, ...]]] = {"lesion": ("generator",)}

    def __init__(self, model_config: LesionConfig, train: TrainConfig, device: torch.device) -> None:
        super().__init__(model_config, train, device)
        self.model = LesionPainter(model_config).to(device)
        self.modules = {"lesion": self.model}
        self.guide = load_guide(train.guide, model_config, device) if train.guide else None

    def examples(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The step's real patches (N, 1, P, P), their discs and kinds (N,), drawn as the module says."""
        config = self.model.config
        images, kinds = batch["image"].to(self.device), batch["kinds"].to(self.device)
        n, size, p = images.shape[0], images.shape[-1], config.patch_px
        draws = ctx.rand(n, size, size).to(self.device)
        radius_draw, spins = ctx.rand(n).to(self.device), ctx.rand(n, 2).to(self.device)
        lesion = kinds > 0
        has_lesion = lesion.flatten(1).any(1)
        centres = random_pixels(torch.where(has_lesion[:, None, None], lesion, (images[:, 0] > 0) & ~lesion), draws)
        # a lesion patch is centred halfway between that pixel and the centre of the image's findings (where a
        # request puts it), so the disc stays near the middle the discriminator looks at
        grid = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="xy"), -1).to(self.device)
        weight = lesion.float()[..., None]
        middle_of = (grid * weight).sum((1, 2)) / weight.sum((1, 2)).clamp(min=1)
        halfway = ((centres + middle_of) / 2).round()
        inside = lesion[torch.arange(n), halfway[:, 1].long(), halfway[:, 0].long()]
        centres = torch.where((has_lesion & inside)[:, None], halfway, centres)
        patches = crop_patches(images, centres, p)
        found = crop_patches(kinds[:, None].float(), centres, p)
        # each lesion's disc: its finding mask grown by a margin drawn from grow_min_px … grow_px (a wide margin
        # hides the lesion's halo from the context, so the painter learns to paint the whole lesion)
        low = config.grow_min_px if config.grow_min_px is not None else config.grow_px
        margin = (low + ctx.rand(n).to(self.device) * (config.grow_px - low + 1)).long().clamp(max=config.grow_px)
        found = (found > 0).float()
        grown = torch.stack([F.max_pool2d(found, 2 * g + 1, stride=1, padding=g) for g in range(config.grow_px + 1)])
        grown = grown[margin, torch.arange(n)]
        middle = torch.full((n, 2), float(p // 2), device=self.device)
        radii = config.min_radius_px + radius_draw * (2 * config.radius_px - config.min_radius_px)
        tissue = disc_masks(middle, radii.clamp(max=config.max_radius_px) + config.grow_px, p)
        discs = torch.where(has_lesion[:, None, None, None], grown, tissue)
        picked = kinds.flatten(1).gather(1, (centres[:, 1] * size + centres[:, 0]).long()[:, None])[:, 0]
        if config.gamma_jitter:  # the same random gamma on context and lesion: other films' grey levels
            gamma = torch.exp((ctx.rand(n, 1, 1, 1).to(self.device) - 0.5) * 2 * config.gamma_jitter)
            patches = patches.clamp(0, 1) ** gamma
        both = turn_patches(torch.cat([patches, discs], 1), spins)
        return both[:, :1], both[:, 1:], torch.where(has_lesion, picked, torch.zeros_like(picked))

    def _inputs(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = ("inputs", ctx.micro)
        if key not in ctx.scratch:
            patches, discs, kinds = self.examples(batch, ctx)
            noise = ctx.randn(patches.shape[0], 1, *patches.shape[2:]).to(self.device)
            ctx.scratch[key] = (patches, discs, condition(patches, discs, kinds), noise, kinds)
        return ctx.scratch[key]

    def _fake(self, batch: dict, ctx: StepContext, release: bool = False) -> torch.Tensor:
        key = ("fake", ctx.micro)
        if key not in ctx.scratch:
            patches, discs, cond, noise, _ = self._inputs(batch, ctx)
            ctx.scratch[key] = self.model.generator(cond, noise, patches, discs)
        return ctx.scratch.pop(key) if release else ctx.scratch[key]

    def discriminator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        patches, discs, cond, _, _ = self._inputs(batch, ctx)
        fake = clamp_toward_range(self._fake(batch, ctx)).detach()
        real_score = self.model.discriminate(cond, patches)[-1].float()
        fake_score = self.model.discriminate(cond, fake)[-1].float()
        weight = disc_weights(discs, real_score.shape[-2:])
        loss = 0.5 * (weighted((real_score - 1) ** 2, weight) + weighted(fake_score**2, weight))
        return loss, {
            "d_loss": loss.item(),
            "d_real": weighted(real_score, weight).item(),
            "d_fake": weighted(fake_score, weight).item(),
        }

    def generator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        patches, discs, cond, _, kinds = self._inputs(batch, ctx)
        raw = self._fake(batch, ctx, release=True)
        fake_features = self.model.discriminate(cond, clamp_toward_range(raw))
        score = fake_features[-1].float()
        adversarial = weighted((score - 1) ** 2, disc_weights(discs, score.shape[-2:]))
        loss, parts = self.train.adv_weight * adversarial, {"g_adv": adversarial.item()}
        if self.train.feature_weight > 0:
            with torch.no_grad():
                real_features = self.model.discriminate(cond, patches)
            matching = patch_losses.feature_matching(fake_features, real_features)
            loss = loss + self.train.feature_weight * matching
            parts["feature_matching"] = float(matching.detach())
        if self.train.pixel_weight > 0:
            # per patch, then the mean over patches: the same on every torchrun rank's share
            error = ((raw.float() - patches).abs() * discs).sum((1, 2, 3)) / discs.sum((1, 2, 3)).clamp(min=1)
            inside = error.mean()
            loss = loss + self.train.pixel_weight * inside
            parts["pixel_l1"] = inside.item()
        if self.guide is not None and self.train.guide_weight > 0:
            q, p = self.guide.config.patch_px, raw.shape[-1]
            centre = clamp_toward_range(raw)[..., (p - q) // 2 : (p - q) // 2 + q, (p - q) // 2 : (p - q) // 2 + q]
            with torch.autocast(self.device.type, enabled=False):
                guided = F.cross_entropy(self.guide.patch_logits(centre.float()), kinds)  # a mean per example
            loss = loss + self.train.guide_weight * guided
            parts["guide_ce"] = guided.item()
        return loss, parts

    @torch.no_grad()
    def samples(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        """Real patches, the condition's blanked patches and the painter's fill."""
        ctx = StepContext(0, 0, self.device, generator)
        patches, discs, kinds = self.examples(batch, ctx)
        patches, discs, kinds = patches[:8], discs[:8], kinds[:8]
        noise = torch.randn(len(patches), 1, *patches.shape[2:], generator=generator).to(self.device)
        fake = self.model.generator(condition(patches, discs, kinds), noise, patches, discs).clamp(0, 1)
        return torch.cat([patches, patches * (1 - discs), fake])
