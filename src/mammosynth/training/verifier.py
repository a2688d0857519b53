"""Training recipe of the lesion verifier: cell-wise cross-entropy against finding masks, with light
intensity augmentation (gamma, contrast) so that it judges shape and texture, not one scanner's grey levels.

A patch verifier (``model.patch_px``) learns from patches instead: one centred on a random pixel of each
image's finding mask (the kind there; anywhere in the finding, so the centre jitters by up to its radius)
and one centred on a random breast pixel outside every finding (background), each turned by a random
multiple of 90° and mirrored at random (a lesion has no orientation); ``model.lesion_weight`` weighs the
lesion patches against the background ones."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mammosynth.models.verifier import LesionVerifier, VerifierConfig, crop_patches, random_pixels, turn_patches
from mammosynth.training.checkpoint import Checkpoint, load_module, open_checkpoint
from mammosynth.training.config import TrainConfig
from mammosynth.training.loop import Phase, StepContext, Task


class VerifierTask(Task):
    family = "verifier"

    def __init__(self, model_config: VerifierConfig, train: TrainConfig, device: torch.device) -> None:
        super().__init__(model_config, train, device)
        self.model = LesionVerifier(model_config).to(device)
        self.modules = {"verifier": self.model}

    def parameter_groups(self) -> dict:
        return {"verifier": (list(self.model.parameters()), self.train.lr)}

    def phases(self, step: int) -> list[Phase]:
        return [Phase("verifier", self.loss)]

    def loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        images = batch["image"].to(self.device)
        n = images.shape[0]
        gamma = torch.exp((ctx.rand(n, 1, 1, 1) - 0.5) * 0.6)
        contrast = 1 + (ctx.rand(n, 1, 1, 1) - 0.5) * 0.3
        images = ((images.clamp(0, 1) ** gamma) * contrast).clamp(0, 1)
        if self.model.config.patch_px:
            loss = self.patch_loss(images, batch["kinds"].to(self.device), ctx)
        else:
            loss = self.model.loss(images, batch["kinds"].to(self.device))
        return loss, {"verifier_loss": loss.item()}

    def patch_loss(self, images: torch.Tensor, kinds: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """Per image one patch centred on a random pixel of its findings (when it has one; weighted
        ``model.lesion_weight``) and one on a random breast pixel outside them; the loss is their weighted sum
        over the batch's images, so torchrun's ranks, each averaging over its own images, train what one
        process does."""
        n, size = images.shape[0], images.shape[-1]
        lesion = kinds > 0
        tissue = (images[:, 0] > 0) & ~lesion
        # per image and kind of patch: a uniform draw on every pixel picks one of the mask (the argmax), and
        # two more turn and mirror the patch (per-example draws keep torchrun's ranks in step)
        pick = ctx.rand(n, 2, size, size).to(self.device)
        spin = ctx.rand(n, 2, 2).to(self.device)
        rows, centres, labels, weights, spins = [], [], [], [], []
        for k, mask in enumerate((lesion, tissue)):
            pixels = random_pixels(mask, pick[:, k])
            idx = torch.nonzero(mask.flatten(1).any(1)).flatten()
            rows.append(idx)
            centres.append(pixels[idx])
            flat = (pixels[:, 1] * size + pixels[:, 0]).long()
            labels.append(kinds.flatten(1)[idx, flat[idx]] if k == 0 else torch.zeros_like(idx))
            weights.append(
                torch.full((len(idx),), self.model.config.lesion_weight if k == 0 else 1.0, device=self.device)
            )
            spins.append(spin[idx, k])
        patches = crop_patches(images[torch.cat(rows)], torch.cat(centres), self.model.config.patch_px)
        patches = turn_patches(patches, torch.cat(spins))
        losses = F.cross_entropy(self.model.patch_logits(patches), torch.cat(labels), reduction="none")
        return (losses * torch.cat(weights)).sum() / n


def load_verifier(path: str, device: torch.device) -> tuple[Checkpoint, LesionVerifier]:
    """A trained verifier checkpoint and its network (EMA weights) in eval mode on ``device``; one line naming
    the checkpoint when it is not a verifier's. Used by the generation checker and as a painter's guide."""
    checkpoint = open_checkpoint(path, family="verifier")
    model = LesionVerifier(VerifierConfig.from_dict(checkpoint.state["model"], str(checkpoint.folder)))
    load_module(checkpoint, "verifier", model)
    return checkpoint, model.eval().to(device)
