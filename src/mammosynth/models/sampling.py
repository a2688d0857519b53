"""The reverse-diffusion loop over a MONAI scheduler, with classifier-free guidance per field and
optional known-region replacement (RePaint-style inpainting in latent space).

Kept beside the model (not in ``generate``) so training can draw sample grids with the same loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mammosynth.models.conditioning import forget_fields
from mammosynth.models.ldm import LatentDiffusion


def _concat(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: torch.cat([a[key], b[key]]) for key in a}


@torch.no_grad()
def denoise(
    model: LatentDiffusion,
    noise: torch.Tensor,
    conditions: dict[str, torch.Tensor],
    sampler: str = "ddim",
    steps: int = 50,
    guidance: float | torch.Tensor = 1.0,
    guide_fields: list[str] | None = None,
    generators: list[torch.Generator] | None = None,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
    known_noise: torch.Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Latents (N, C, h, w) from start ``noise`` under encoded ``conditions``.

    ``guidance`` (a number or one per image): output = uncond + g · (cond − uncond), where the
    unconditional branch forgets ``guide_fields`` (all fields and the spatial map when ``None``); g = 1
    skips the second pass. DDPM draws its per-step noise from ``generators`` (one per image) so that an
    image does not depend on its batch-mates. With ``known`` latents, the region where ``known_mask`` is 0
    is replaced after every step by ``known`` noised to that step's level.
    """
    scheduler = model.scheduler(sampler)
    scheduler.set_timesteps(steps, device=noise.device)
    n = noise.shape[0]
    scale = torch.as_tensor(guidance, dtype=noise.dtype, device=noise.device).reshape(-1, 1, 1, 1).expand(n, 1, 1, 1)
    use_guidance = bool((scale != 1).any())
    both = _concat(conditions, forget_fields(conditions, guide_fields)) if use_guidance else conditions
    x = noise
    timesteps = list(scheduler.timesteps)
    for i, t in enumerate(timesteps):
        t_batch = torch.full((n,), int(t), device=noise.device, dtype=torch.long)
        if use_guidance:
            out = model.predict(torch.cat([x, x]), torch.cat([t_batch, t_batch]), both)
            cond, uncond = out.float().chunk(2)
            out = uncond + scale * (cond - uncond)
        else:
            out = model.predict(x, t_batch, conditions).float()
        if sampler == "ddpm" and generators is not None:
            x = torch.cat([scheduler.step(out[k : k + 1], int(t), x[k : k + 1], generator=generators[k])[0]
                           for k in range(n)])
        else:
            x = scheduler.step(out, int(t), x)[0]
        if known is not None:
            previous = int(timesteps[i + 1]) if i + 1 < len(timesteps) else -1
            if previous < 0:
                known_t = known
            else:
                known_t = scheduler.add_noise(known, known_noise, torch.full((n,), previous, device=noise.device))
            x = known_mask * x + (1 - known_mask) * known_t
        if progress:
            progress(i + 1, len(timesteps))
    return x
