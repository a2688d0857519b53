"""The reverse-diffusion loop over a MONAI scheduler, with classifier-free guidance per field and
optional known-region replacement (RePaint-style inpainting in latent space).

Both samplers walk MONAI's ``DDIMScheduler`` on the strided schedule of ``steps`` steps (t = T − 1,
T − 1 − r, … with r = T // steps): ``ddim`` with η = 0 (deterministic), ``ddpm`` with η = 1 (ancestral:
the DDPM posterior variance on the strided schedule, exactly DDPM when ``steps`` equals the training
steps). MONAI's ``DDPMScheduler.step`` always goes t → t − 1, so after ``set_timesteps(50)`` it skips
19 of every 20 denoising steps' worth of noise removal (an oracle denoiser on data of std 0.5 came out
at std 0.94).

Kept beside the model (not in ``generate``) so training can draw sample grids with the same loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mammosynth.errors import InputError
from mammosynth.models.conditioning import forget_fields
from mammosynth.models.ldm import LatentDiffusion

ETA = {"ddim": 0.0, "ddpm": 1.0}
SAMPLERS = tuple(ETA)


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
    skips the second pass. DDPM draws its per-step noise on the model's device from a generator seeded by
    each image's ``generators`` entry, so that an image does not depend on its batch-mates. With ``known``
    latents, the region where ``known_mask`` is 0 is replaced after every step by ``known`` noised to that
    step's level.
    """
    if sampler not in ETA:
        raise InputError(None, f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
    eta = ETA[sampler]
    scheduler = model.scheduler("ddim")
    scheduler.set_timesteps(steps, device=noise.device)
    # MONAI spaces the timesteps by linspace(T − 1, 0) but its step() jumps to t − T // steps: the two
    # disagree (999 → 899, then the next step starts at 888). Walk a strided schedule with the stride step()
    # assumes, so every step lands where the next one starts; "trailing" (from T − 1 down, Lin et al. 2024)
    # so that the first step starts from pure noise, which is what the sampler is given.
    ratio = scheduler.num_train_timesteps // steps
    scheduler.timesteps = scheduler.num_train_timesteps - 1 - torch.arange(steps, device=noise.device) * ratio
    n = noise.shape[0]
    if eta > 0 and generators is None:
        generators = [torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)))) for _ in range(n)]
    if eta > 0 and len(generators) != n:
        raise InputError(None, f"{len(generators)} generators for {n} images")
    local = [torch.Generator(device=noise.device) for _ in range(n)] if eta > 0 else []
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
        if eta > 0:  # one draw per image and step, on the model's device
            for k in range(n):
                local[k].manual_seed(int(torch.randint(0, 2**62, (1,), generator=generators[k])))
            x = torch.cat(
                [scheduler.step(out[k : k + 1], int(t), x[k : k + 1], eta=eta, generator=local[k])[0] for k in range(n)]
            )
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
