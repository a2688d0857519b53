"""The patch verifier: it is asked at the requested place and answers for that place."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mammosynth.errors import InputError
from mammosynth.models.verifier import KINDS, LesionVerifier, VerifierConfig, crop_patches
from mammosynth.training.config import TrainConfig
from mammosynth.training.verifier import VerifierTask


def disks(n: int, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grey textured breasts filling the image, each with one bright disk ("mass") at a random place."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = torch.randint(6, size - 6, (n, 2), generator=generator)
    images = 0.3 + 0.1 * torch.rand(n, 1, size, size, generator=generator)
    inside = ((xx[None] - centres[:, :1, None]) ** 2 + (yy[None] - centres[:, 1:, None]) ** 2) <= 9
    images[:, 0][inside] += 0.5
    kinds = torch.where(inside, KINDS.index("benign-mass"), 0)
    return images, kinds, centres


def test_crop_patches_centres_the_patch_and_pads_with_black():
    image = torch.arange(64.0).reshape(1, 1, 8, 8)
    patch = crop_patches(image, torch.tensor([[3.0, 5.0]]), 4)[0, 0]
    assert patch[2, 2] == image[0, 0, 5, 3]  # the centre pixel sits at (P/2, P/2)
    corner = crop_patches(image, torch.tensor([[0.0, 0.0]]), 4)[0, 0]
    assert corner[:2].sum() == 0 and corner[:, :2].sum() == 0 and corner[2, 2] == image[0, 0, 0, 0]


def test_patch_verifier_finds_the_mass_where_it_was_asked_and_not_elsewhere():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    config = VerifierConfig(image_size=32, channels=(8, 16), patch_px=8, lesion_weight=1.0)
    task = VerifierTask(config, TrainConfig(lr=3e-3, batch_size=16), torch.device("cpu"))
    optimiser = torch.optim.Adam(task.model.parameters(), lr=3e-3)
    ctx = SimpleNamespace(rand=lambda *shape: torch.rand(*shape, generator=g))
    for _ in range(150):
        images, kinds, _ = disks(16, 32, g)
        loss = task.patch_loss(images, kinds, ctx)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    images, kinds, centres = disks(16, 32, g)
    task.model.eval()
    here = task.model.inspect(images, kinds > 0)
    # the same images asked about a disk-sized place on the opposite side of the image
    elsewhere_regions = torch.zeros_like(kinds, dtype=torch.bool)
    for k, (x, y) in enumerate((32 - centres).tolist()):
        elsewhere_regions[k, max(0, y - 2) : y + 3, max(0, x - 2) : x + 3] = True
    far = ((32 - centres) - centres).abs().amax(1) > 8
    elsewhere = task.model.inspect(images[far], elsewhere_regions[far])
    assert np.mean([r["lesion_probability"] > 0.5 and r["kind"] == "benign-mass" for r in here]) >= 0.9
    assert np.mean([r["lesion_probability"] < 0.5 for r in elsewhere]) >= 0.9
    assert all(r["inside"] for r in here)


def test_patch_verifier_without_a_region_scans_the_breast():
    model = LesionVerifier(VerifierConfig(image_size=32, channels=(8, 16), patch_px=8)).eval()
    image = torch.zeros(1, 1, 32, 32)
    image[0, 0, :, :12] = 0.5  # a breast on the left third; the rest is background
    (result,) = model.inspect(image, None)
    assert result["peak"][0] < 12 / 32  # only patches centred on breast pixels are asked


def test_patch_size_must_fit_the_grid():
    with pytest.raises(InputError, match="patch_px 12 must be a multiple of 8"):
        VerifierConfig(image_size=32, channels=(8, 16, 32), patch_px=12).check()


def test_a_patch_checker_leaves_no_lesion_requests_unjudged(tmp_path):
    from mammosynth.evaluate.conditional import verifier_agreement
    from mammosynth.generate.verify import LesionChecker

    checker = LesionChecker.__new__(LesionChecker)
    checker.config = VerifierConfig(image_size=32, channels=(8, 16), patch_px=8, lesion_weight=1.0)
    checker.model = LesionVerifier(checker.config).eval()
    checker.device, checker.threshold, checker.model_id = torch.device("cpu"), 0.5, "test"
    images = np.full((2, 32, 32), 0.4, dtype=np.float32)
    region = np.zeros((32, 32), bool)
    region[10:14, 10:14] = True
    verdicts = checker.check(images, [{"category": "none"}, {"category": "mass"}], [None, region])
    assert verdicts[0] == {**verdicts[0], "requested": "none", "checked": False, "accepted": True}
    assert verdicts[1]["requested"] == "benign-mass" and verdicts[1]["peak"] == [0.375, 0.375]
    summary = verifier_agreement(checker, images, [{"category": "none"}, {"category": "mass"}], [None, region])
    assert summary["normal_requests"] == 0 and summary["normal_clean"] is None and summary["judged_images"] == 1
