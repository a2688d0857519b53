"""Training recipe of the latent diffusion model: an autoencoder stage (L1 + SSIM + KL + patch
adversarial loss; no downloaded perceptual network), then a diffusion stage on the frozen autoencoder's
latents with per-field condition dropout for classifier-free guidance."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from monai.losses import PatchAdversarialLoss, SSIMLoss

from mammosynth.models.conditioning import drop_conditions
from mammosynth.models.ldm import LatentDiffusion, LDMConfig, build_discriminator, kl_divergence
from mammosynth.models.sampling import denoise
from mammosynth.training import distributed
from mammosynth.training.config import TrainConfig
from mammosynth.training.loop import Phase, StepContext, Task


class LDMTask(Task):
    family = "ldm"
    ema_modules: ClassVar[dict[str, tuple[str, ...]]] = {"ldm": ("unet", "conditions")}
    first_stage_field = "ae_steps"

    def __init__(self, model_config: LDMConfig, train: TrainConfig, device: torch.device) -> None:
        super().__init__(model_config, train, device)
        self.model = LatentDiffusion(model_config).to(device)
        self.discriminator = build_discriminator(model_config).to(device)
        self.modules = {"ldm": self.model, "discriminator": self.discriminator}
        self.noise_scheduler = self.model.scheduler("ddpm")
        self.adversarial = PatchAdversarialLoss(criterion="least_squares")
        self.ssim = SSIMLoss(spatial_dims=2, data_range=1.0, win_size=7)

    def parameter_groups(self) -> dict:
        diffusion = [*self.model.unet.parameters(), *self.model.conditions.parameters()]
        return {
            "autoencoder": (list(self.model.autoencoder.parameters()), self.train.lr),
            "discriminator": (list(self.discriminator.parameters()), self.train.lr_discriminator),
            "diffusion": (diffusion, self.train.lr),
        }

    def in_autoencoder_stage(self, step: int) -> bool:
        return step < self.train.ae_steps

    def stage_start(self, step: int) -> int:
        return 0 if self.in_autoencoder_stage(step) else self.train.ae_steps

    def phases(self, step: int) -> list[Phase]:
        if not self.in_autoencoder_stage(step):
            return [Phase("diffusion", self.diffusion_loss)]
        # the autoencoder stage stays in fp32: reconstruction fidelity is what it is judged by
        phases = [Phase("autoencoder", self.autoencoder_loss, mixed_precision=False)]
        if self.adversarial_on(step):
            phases.append(Phase("discriminator", self.discriminator_loss, mixed_precision=False))
        return phases

    def adversarial_on(self, step: int) -> bool:
        return self.train.adv_weight > 0 and step >= self.train.adv_start

    def ema_active(self, step: int) -> bool:
        return not self.in_autoencoder_stage(step)

    def before_step(self, step: int, batches: list[dict], ctx: StepContext) -> None:
        self.current_step = step
        if step == self.train.ae_steps:  # calibrate once: unit-variance latents for the diffusion stage
            with torch.no_grad():
                images = torch.cat([b["image"] for b in batches]).to(self.device)
                std = distributed.global_std(self.model.encode_moments(images)[0].float())  # all ranks' images
            self.model.scale_factor.fill_(1.0 / max(std, 1e-6))

    # --- losses ------------------------------------------------------------------------------------
    def autoencoder_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        images = batch["image"].to(self.device)
        crop = self.train.ae_crop
        if 0 < crop < images.shape[-1]:  # the autoencoder is fully convolutional: train on crops, use whole
            y, x = (int(v) for v in torch.randint(0, images.shape[-1] - crop + 1, (2,), generator=ctx.generator))
            images = images[..., y : y + crop, x : x + crop]
        z_mu, z_sigma = self.model.encode_moments(images)
        z = z_mu + z_sigma * ctx.randn(*z_mu.shape).to(z_mu.dtype)
        recon = (self.model.autoencoder.decode(z).float() + 1) / 2
        l1 = (recon - images).abs().mean()
        kl = kl_divergence(z_mu.float(), z_sigma.float())
        loss = l1 + self.train.kl_weight * kl
        parts = {"ae_l1": l1.item(), "ae_kl": kl.item()}
        if self.train.ssim_weight > 0:
            ssim = self.ssim(recon.clamp(0, 1), images)
            loss = loss + self.train.ssim_weight * ssim
            parts["ae_ssim_loss"] = ssim.item()
        if self.adversarial_on(ctx.step):
            logits = self.discriminator(recon * 2 - 1)[-1]
            g_adv = self.adversarial(logits, target_is_real=True, for_discriminator=False)
            loss = loss + self.train.adv_weight * g_adv
            parts["ae_adv"] = g_adv.item()
        ctx.scratch[("recon", ctx.micro)] = recon.detach()
        ctx.scratch[("images", ctx.micro)] = images
        return loss, {"ae_loss": loss.item(), **parts}

    def discriminator_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        recon = ctx.scratch[("recon", ctx.micro)]
        images = ctx.scratch[("images", ctx.micro)]
        fake = self.adversarial(self.discriminator(recon * 2 - 1)[-1], target_is_real=False, for_discriminator=True)
        real = self.adversarial(self.discriminator(images * 2 - 1)[-1], target_is_real=True, for_discriminator=True)
        loss = 0.5 * (fake + real)
        return loss, {"disc_loss": loss.item()}

    def diffusion_loss(self, batch: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        images = batch["image"].to(self.device)
        with torch.no_grad():
            z0 = self.model.encode(images).float()
        noise = ctx.randn(*z0.shape)
        t = ctx.randint(self.noise_scheduler.num_train_timesteps, z0.shape[0])
        zt = self.noise_scheduler.add_noise(z0, noise, t)
        encoded = {k: batch[k] for k in ("categorical", "continuous", "spatial")}
        conditions = drop_conditions(encoded, self.train.cond_drop_field, self.train.cond_drop_all, ctx.rand)
        conditions = {k: v.to(self.device) for k, v in conditions.items()}
        out = self.model.predict(zt, t, conditions).float()
        target = noise if self.model.config.prediction == "epsilon" else self.noise_scheduler.get_velocity(z0, noise, t)
        loss = F.mse_loss(out, target)
        return loss, {"diffusion_loss": loss.item()}

    @torch.no_grad()
    def samples(self, batch: dict, generator: torch.Generator) -> torch.Tensor:
        images = batch["image"][:4].to(self.device)
        if self.in_autoencoder_stage(getattr(self, "current_step", 0)):
            return torch.cat([images, self.model.reconstruct(images)])
        n = images.shape[0]
        conditions = {k: batch[k][:n].to(self.device) for k in ("categorical", "continuous", "spatial")}
        size = self.model.config.latent_size
        noise = torch.randn(n, self.model.config.latent_channels, size, size, generator=generator).to(self.device)
        latents = denoise(self.model, noise, conditions, sampler="ddim", steps=20, guidance=2.0)
        return torch.cat([images, self.model.decode(latents)])
