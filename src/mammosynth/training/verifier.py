"""Training recipe of the lesion verifier: cell-wise cross-entropy against finding masks, with light
intensity augmentation (gamma, contrast) so that it judges shape and texture, not one scanner's grey levels.

A patch verifier (``model.patch_px``) learns from patches instead: one centred on a random pixel of each
image's finding mask (the kind there; anywhere in the finding, so the centre jitters by up to its radius)
and as many centred on random breast pixels outside every finding (background), each turned by a random
multiple of 90° and mirrored at random (a lesion has no orientation), the classes balanced by count."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mammosynth.models.verifier import LesionVerifier, VerifierConfig, crop_patches
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
        n, size = images.shape[0], images.shape[-1]
        lesion = kinds > 0
        tissue = (images[:, 0] > 0) & ~lesion
        has_lesion = lesion.flatten(1).any(1)
        # one uniform draw per image and kind of patch picks a pixel of the mask (argmax of uniform noise on it)
        pick = ctx.rand(n, 2, size, size).to(self.device)
        centres, labels, rows = [], [], []
        for k, mask in enumerate((lesion, tissue)):
            flat = torch.where(mask, pick[:, k], -1.0).flatten(1).argmax(1)
            keep = has_lesion if k == 0 else mask.flatten(1).any(1)
            if k == 1:  # as many background patches as lesion patches, at least one
                keep = keep & (torch.cumsum(keep.long(), 0) <= max(1, int(has_lesion.sum())))
            idx = torch.nonzero(keep).flatten()
            centres.append(torch.stack([flat[idx] % size, flat[idx] // size], 1).float())
            labels.append(kinds.flatten(1)[idx, flat[idx]] if k == 0 else torch.zeros_like(idx))
            rows.append(idx)
        rows_all, centres_all, labels_all = torch.cat(rows), torch.cat(centres), torch.cat(labels)
        patches = crop_patches(images[rows_all], centres_all, self.model.config.patch_px)
        # turns and mirrors drawn per image and kind of patch (per-example draws keep torchrun's ranks in step)
        spin = ctx.rand(n, 2, 2).to(self.device)[
            rows_all,
            torch.repeat_interleave(
                torch.arange(2, device=self.device), torch.tensor([len(r) for r in rows], device=self.device)
            ),
        ]
        patches = torch.stack(
            [
                torch.rot90(p, int(4 * turn), (1, 2)).flip(2) if mirror < 0.5 else torch.rot90(p, int(4 * turn), (1, 2))
                for p, (turn, mirror) in zip(patches, spin.tolist(), strict=True)
            ]
        )
        return F.cross_entropy(self.model.patch_logits(patches), labels_all)
