"""Latent diffusion model: MONAI AutoencoderKL + MONAI DiffusionModelUNet, conditioned on attributes
(cross-attention tokens and a FiLM-style vector added to the timestep embedding) and on a spatial map
(breast / pectoral / lesion channels, concatenated to the latent).

The MONAI UNet adds ``class_embedding(class_labels)`` to its timestep embedding; we replace that
embedding table by an identity and pass our attribute vector as ``class_labels``, which gives
multi-field FiLM conditioning without forking MONAI's network.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from monai.networks.nets import AutoencoderKL, DiffusionModelUNet, PatchDiscriminator
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler
from torch import nn

from mammosynth.errors import InputError
from mammosynth.models.base import Config
from mammosynth.models.conditioning import SPATIAL_CHANNELS, ConditionEncoder


@dataclasses.dataclass
class LDMConfig(Config):
    """Architecture of a latent diffusion model (every field serialises to JSON)."""

    image_size: int = 128
    latent_channels: int = 4
    ae_channels: tuple[int, ...] = (32, 64, 64)
    ae_res_blocks: int = 1
    disc_channels: int = 32
    disc_layers: int = 3
    unet_channels: tuple[int, ...] = (64, 128, 128)
    unet_attention: tuple[bool, ...] = (False, True, True)
    unet_res_blocks: int = 1
    head_channels: int = 32
    norm_groups: int = 16
    cond_dim: int = 64
    spatial: bool = True
    train_timesteps: int = 1000
    schedule: str = "scaled_linear_beta"
    prediction: str = "v_prediction"

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ae_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.downsample

    def check(self, where: str = "config") -> LDMConfig:
        if self.image_size % self.downsample or self.image_size < 16:
            raise InputError(where, f"image_size {self.image_size} is not a multiple of {self.downsample}")
        if len(self.unet_attention) != len(self.unet_channels):
            raise InputError(where, "unet_attention needs one entry per unet_channels level")
        if self.prediction not in ("epsilon", "v_prediction"):
            raise InputError(where, f"prediction must be epsilon or v_prediction, got {self.prediction!r}")
        for c in (*self.ae_channels, *self.unet_channels):
            if c % self.norm_groups:
                raise InputError(where, f"channel count {c} is not a multiple of norm_groups {self.norm_groups}")
        return self


class LatentDiffusion(nn.Module):
    """Autoencoder, condition encoder and denoising UNet in one module; ``scale_factor`` makes the
    latents unit-variance (set once from data when diffusion training starts)."""

    def __init__(self, config: LDMConfig) -> None:
        super().__init__()
        self.config = config.check()
        n = len(config.ae_channels)
        self.autoencoder = AutoencoderKL(
            spatial_dims=2,
            in_channels=1,
            out_channels=1,
            num_res_blocks=config.ae_res_blocks,
            channels=config.ae_channels,
            attention_levels=(False,) * n,
            latent_channels=config.latent_channels,
            norm_num_groups=config.norm_groups,
            with_encoder_nonlocal_attn=False,
            with_decoder_nonlocal_attn=False,
        )
        extra = len(SPATIAL_CHANNELS) + 1 if config.spatial else 0
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=config.latent_channels + extra,
            out_channels=config.latent_channels,
            num_res_blocks=config.unet_res_blocks,
            channels=config.unet_channels,
            attention_levels=config.unet_attention,
            norm_num_groups=config.norm_groups,
            num_head_channels=config.head_channels,
            with_conditioning=True,
            cross_attention_dim=config.cond_dim,
            num_class_embeds=1,
        )
        self.unet.class_embedding = nn.Identity()
        self.conditions = ConditionEncoder(config.cond_dim, config.unet_channels[0] * 4)
        self.register_buffer("scale_factor", torch.tensor(1.0))

    def scheduler(self, sampler: str = "ddpm") -> DDPMScheduler | DDIMScheduler:
        kind = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}[sampler]
        return kind(
            num_train_timesteps=self.config.train_timesteps,
            schedule=self.config.schedule,
            prediction_type=self.config.prediction,
            clip_sample=False,
        )

    def encode_moments(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [0, 1] (N, 1, H, W) → latent mean and sigma (unscaled)."""
        return self.autoencoder.encode(images * 2 - 1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] → scaled latent means (the diffusion space)."""
        return self.encode_moments(images)[0] * self.scale_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents → images in [0, 1]."""
        return ((self.autoencoder.decode(latents / self.scale_factor) + 1) / 2).clamp(0, 1)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return ((self.autoencoder.decode(self.encode_moments(images)[0]) + 1) / 2).clamp(0, 1)

    def spatial_input(self, spatial: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor | None:
        """Spatial map (N, 3, H, W) at image size → latent-size channels plus a 'map known' channel."""
        if not self.config.spatial:
            return None
        size = self.config.latent_size
        if spatial is None:
            return torch.zeros(batch, len(SPATIAL_CHANNELS) + 1, size, size, device=device)
        pooled = F.adaptive_avg_pool2d(spatial.float(), size)
        known = (spatial.flatten(1).amax(1) > 0).float().view(-1, 1, 1, 1).expand(-1, 1, size, size)
        return torch.cat([pooled, known], dim=1)

    def predict(
        self, latents: torch.Tensor, timesteps: torch.Tensor, conditions: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Model output (ε or v) for noisy latents under encoded conditions."""
        tokens, vector = self.conditions(conditions["categorical"], conditions["continuous"])
        spatial = self.spatial_input(conditions.get("spatial"), latents.shape[0], latents.device)
        x = latents if spatial is None else torch.cat([latents, spatial.to(latents.dtype)], dim=1)
        return self.unet(x, timesteps, context=tokens.to(latents.dtype), class_labels=vector)


def build_discriminator(config: LDMConfig) -> PatchDiscriminator:
    """MONAI PatchGAN discriminator for the autoencoder's adversarial loss."""
    return PatchDiscriminator(
        spatial_dims=2,
        channels=config.disc_channels,
        in_channels=1,
        out_channels=1,
        num_layers_d=config.disc_layers,
        norm="INSTANCE",
    )


def kl_divergence(z_mu: torch.Tensor, z_sigma: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) ‖ N(0, I)) per sample, averaged over the batch."""
    kl = 0.5 * (z_mu.pow(2) + z_sigma.pow(2) - torch.log(z_sigma.pow(2) + 1e-12) - 1)
    return kl.flatten(1).sum(1).mean()
