"""Training recipe of the lesion verifier: cell-wise cross-entropy against finding masks, with light
intensity augmentation (gamma, contrast) so that it judges shape and texture, not one scanner's grey levels."""

from __future__ import annotations

import torch

from mammosynth.models.verifier import LesionVerifier, VerifierConfig
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
        loss = self.model.loss(images, batch["kinds"].to(self.device))
        return loss, {"verifier_loss": loss.item()}
