"""Every sampler against an oracle denoiser on Gaussian data: the answer is known in closed form, so a
sampler that walks the schedule wrongly (e.g. DDPM stepping t → t − 1 on a 50-step schedule) is caught."""

from __future__ import annotations

import pytest
import torch
from monai.networks.schedulers import DDIMScheduler

from mammosynth.errors import InputError
from mammosynth.models.sampling import SAMPLERS, denoise

DATA_STD = 0.5


class OracleGaussian:
    """Stands in for :class:`~mammosynth.models.ldm.LatentDiffusion`: data x₀ ~ N(0, 0.5²) element-wise, so
    E[ε | x_t] and E[x₀ | x_t] are linear in x_t and the model output is exact."""

    def __init__(self, prediction: str) -> None:
        self.prediction = prediction
        self.alphas = DDIMScheduler(1000, schedule="scaled_linear_beta").alphas_cumprod

    def scheduler(self, kind: str) -> DDIMScheduler:
        assert kind == "ddim", "every sampler walks the strided DDIM schedule"
        return DDIMScheduler(1000, schedule="scaled_linear_beta", prediction_type=self.prediction, clip_sample=False)

    def predict(self, x: torch.Tensor, t: torch.Tensor, conditions: dict) -> torch.Tensor:
        a = self.alphas[t].reshape(-1, 1, 1, 1).to(x.dtype)
        total = a * DATA_STD**2 + (1 - a)
        x0 = a.sqrt() * DATA_STD**2 / total * x
        eps = (1 - a).sqrt() / total * x
        return eps if self.prediction == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0


def expected_std(steps: int, eta: float) -> float:
    """The std a strided DDIM(η) sampler must end at on this data, by propagating the variance through the
    linear steps (written from the DDIM paper, independently of the code under test). It is exactly 0.5
    only in the many-step limit; a few steps lose some (the oracle gives E[x₀ | x_t], not a draw of x₀)."""
    alphas = OracleGaussian("epsilon").alphas.double()
    ratio = 1000 // steps
    variance = 1.0
    for t in range(999, 999 - steps * ratio, -ratio):  # trailing: from pure noise down by T // steps
        a, a_prev = alphas[t], alphas[t - ratio] if t - ratio >= 0 else torch.tensor(1.0, dtype=torch.float64)
        total = a * DATA_STD**2 + (1 - a)
        k_x0, k_eps = a.sqrt() * DATA_STD**2 / total, (1 - a).sqrt() / total
        sigma2 = eta**2 * (1 - a_prev) / (1 - a) * (1 - a / a_prev)
        c = a_prev.sqrt() * k_x0 + (1 - a_prev - sigma2).sqrt() * k_eps
        variance = float(c**2 * variance + sigma2)
    return variance**0.5


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("steps", [20, 50, 1000])
def test_every_sampler_draws_the_known_distribution_at_any_step_count(sampler, steps, prediction):
    model = OracleGaussian(prediction)
    noise = torch.randn(4, 1, 128, 128, generator=torch.Generator().manual_seed(0))
    generators = [torch.Generator().manual_seed(i) for i in range(4)]
    x = denoise(model, noise, {}, sampler=sampler, steps=steps, generators=generators)
    wanted = expected_std(steps, {"ddim": 0.0, "ddpm": 1.0}[sampler])
    # 65,536 values: the sample std is within 1 % of the true one (3.6 standard errors)
    assert float(x.std()) == pytest.approx(wanted, rel=0.01), (float(x.std()), wanted)
    assert abs(float(x.mean())) < 0.01
    if steps == 1000:  # the full schedule reaches the data distribution itself
        assert float(x.std()) == pytest.approx(DATA_STD, abs=0.01)
    else:
        assert 0.4 < wanted < DATA_STD  # and a short one nearly (the bug this catches gave 0.94 at 50 steps)


def test_ddpm_noise_is_per_image_and_seeded():
    model = OracleGaussian("epsilon")
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))

    def run(seeds: list[int], rows: slice = slice(None)) -> torch.Tensor:
        return denoise(
            model,
            noise[rows],
            {},
            sampler="ddpm",
            steps=10,
            generators=[torch.Generator().manual_seed(s) for s in seeds],
        )

    whole = run([1, 2, 3, 4])
    assert torch.equal(whole, run([1, 2, 3, 4]))
    assert torch.equal(whole[2:], run([3, 4], slice(2, None)))  # an image does not depend on its batch-mates
    assert not torch.equal(whole, run([5, 2, 3, 4]))
    assert torch.equal(whole[1:], run([5, 2, 3, 4])[1:])
    with pytest.raises(InputError, match="unknown sampler 'euler'"):
        denoise(model, noise, {}, sampler="euler")


class ConditionedOracle(OracleGaussian):
    """The oracle plus a shift that depends on the encoded conditions, so guidance has something to mix."""

    def predict(self, x: torch.Tensor, t: torch.Tensor, conditions: dict) -> torch.Tensor:
        shift = 0.05 * conditions["categorical"].float().sum(1).reshape(-1, 1, 1, 1)
        return super().predict(x, t, conditions) + shift


def test_guidance_one_is_the_conditional_output_and_zero_the_unconditional():
    from mammosynth.models.conditioning import encode_conditions, forget_fields

    model = ConditionedOracle("v_prediction")
    conditions = encode_conditions([{"view": "CC", "density": "C"}, {"view": "MLO", "density": "A"}])
    noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    single = denoise(model, noise, conditions, steps=10, guidance=1.0)  # one pass, conditional only
    mixed = denoise(model, noise, conditions, steps=10, guidance=torch.tensor([1.0, 0.0]))  # two passes
    assert torch.allclose(mixed[0], single[0], atol=1e-6)
    unconditional = denoise(model, noise, forget_fields(conditions, None), steps=10, guidance=1.0)
    assert torch.allclose(mixed[1], unconditional[1], atol=1e-6)
    assert not torch.allclose(single[1], unconditional[1], atol=1e-3)
    strong = denoise(model, noise, conditions, steps=10, guidance=3.0)
    assert not torch.allclose(strong, single, atol=1e-3)


def test_the_v_prediction_training_target_gives_back_the_clean_latent_in_the_sampler():
    from mammosynth.models.ldm import LatentDiffusion, LDMConfig
    from mammosynth.training.config import load_config

    tiny = load_config("ldm", "tiny")["model"].to_dict()
    model = LatentDiffusion(LDMConfig(**{**tiny, "prediction": "v_prediction"}))
    train_scheduler, sampler_scheduler = model.scheduler("ddpm"), model.scheduler("ddim")
    sampler_scheduler.set_timesteps(1000)
    generator = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(3, 4, 8, 8, generator=generator), torch.randn(3, 4, 8, 8, generator=generator)
    for t in (0, 10, 500, 999):
        steps = torch.full((3,), t)
        noisy = train_scheduler.add_noise(clean, noise, steps)
        target = train_scheduler.get_velocity(clean, noise, steps)  # what training regresses on
        _, predicted_clean = sampler_scheduler.step(target, t, noisy)
        assert torch.allclose(predicted_clean, clean, atol=1e-4), t
