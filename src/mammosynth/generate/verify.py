"""The lesion-integrity check: an independent verifier network looks at every generated image and says
whether the requested lesion is present, of the requested kind and inside the requested region."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mammosynth.models.verifier import KINDS, kind_of
from mammosynth.training.device import pick_device
from mammosynth.training.verifier import load_verifier


def _category(kind: str) -> str:
    return "mass" if kind.endswith("mass") else kind


class LesionChecker:
    """Loads a ``verifier`` checkpoint; :meth:`check` judges a batch of images against their requests."""

    def __init__(self, checkpoint: str, threshold: float = 0.5, device: str = "auto") -> None:
        self.device = pick_device(device)
        self.checkpoint, self.model = load_verifier(checkpoint, self.device)
        self.config = self.model.config
        self.threshold = threshold
        self.model_id = self.checkpoint.hash()

    def check(self, images: np.ndarray, conditions: list[dict], regions: list[np.ndarray | None]) -> list[dict]:
        """Per image: the verifier's findings and ``accepted``.

        A lesion request passes when the lesion probability reaches the threshold, the predicted kind has
        the requested category (mass / calcification / other; the benign–malignant call is reported as
        ``pathology_agrees`` but not required) and, when a region was requested, the lesion peak lies in
        it. A request for no lesion passes when the probability stays below the threshold. Requests that
        leave the lesion unknown always pass. A patch verifier (``model.patch_px``) answers for the patch at
        the region's centre, and for a lesion request without a region for its most lesion-like patch of the
        breast; it does not judge requests for no lesion (``checked`` false, accepted): the most lesion-like of
        a film's patches passes its threshold on every held-out normal mini-MIAS film, so it cannot say a
        film is clean (``benchmarks/bench_verifier.py``).
        """
        size = self.config.image_size
        batch = torch.from_numpy(np.asarray(images, dtype=np.float32))[:, None].to(self.device)
        region_size = images.shape[-1]
        if batch.shape[-1] != size:
            batch = F.interpolate(batch, size=(size, size), mode="area")
        stacked = torch.from_numpy(
            np.stack([r if r is not None else np.ones((region_size,) * 2, bool) for r in regions])
        ).to(self.device)
        results = self.model.inspect(batch, stacked)
        out = []
        for result, cond, region in zip(results, conditions, regions, strict=True):
            wanted = kind_of(cond.get("category"), cond.get("pathology"))
            present = result["lesion_probability"] >= self.threshold
            if "category" not in cond:
                verdict = {"requested": "unknown", "accepted": True}
            elif wanted == KINDS[0] and self.config.patch_px:
                verdict = {"requested": "none", "checked": False, "accepted": True}
            elif wanted == KINDS[0]:
                verdict = {"requested": "none", "accepted": not present}
            else:
                kind_ok = present and _category(result["kind"]) == _category(wanted)
                inside = bool(result["inside"]) if region is not None else True
                verdict = {
                    "requested": wanted,
                    "kind_matches": kind_ok,
                    "inside": inside,
                    "pathology_agrees": result["kind"] == wanted,
                    "accepted": bool(present and kind_ok and inside),
                }
            out.append({**result, "present": bool(present), **verdict})
        return out
