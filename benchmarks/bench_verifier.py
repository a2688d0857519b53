"""The lesion verifier on real held-out women before any synthetic image: does it find a real mass or
calcification where the annotation puts it, and leave normal tissue alone?

Trains ``verifier/<config>`` on the train split of mini-MIAS (prepared with women kept whole, as
``bench_evaluate.prepare_shared`` does) and asks it, through the same :class:`LesionChecker` that judges generated
images, about every held-out (val + test) finding with a mask: "is a <kind> there?" (``accepted``). Normal
tissue: the lesion probability of patches centred on random breast pixels of held-out normal films, and the
checker's verdict on "no lesion" requests for those films. Prints n and Wilson 95 % intervals.

    .venv/bin/python benchmarks/bench_verifier.py --shared ../shared/data --size 128 --config cpu-128
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from bench_evaluate import prepare_shared

from mammosynth import api
from mammosynth.evaluate.classifier import auc_score
from mammosynth.generate.verify import LesionChecker
from mammosynth.models.verifier import crop_patches
from mammosynth.training.data import PreparedImages


def wilson(k: int, n: int) -> list[float]:
    """95 % Wilson interval of k successes in n (scipy's)."""
    if n == 0:
        return [float("nan"), float("nan")]
    interval = stats.binomtest(int(k), n).proportion_ci(method="wilson")
    return [round(interval.low, 3), round(interval.high, 3)]


def held_out(prepared: Path, size: int) -> dict:
    parts = [PreparedImages(prepared, size=size, split=s) for s in ("val", "test")]
    batches = [d.batch(list(range(len(d)))) for d in parts]
    records = [r for d in parts for r in d.records]
    return {
        "images": torch.cat([b["image"] for b in batches]).float(),
        "kinds": torch.cat([b["kinds"] for b in batches]),
        "records": records,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/verifier"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--config", default="cpu-128")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--patches-per-normal", type=int, default=8)
    parser.add_argument("--retrain", action="store_true", help="train again when the run folder has a checkpoint")
    parser.add_argument("--set", action="append", default=[], help="config overrides (model.patch_px=24, train.seed=1)")
    parser.add_argument("--name", default="", help="a suffix of the run folder (a second, independent verifier)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    (prepared,) = prepare_shared(args.shared, args.work, args.size, names=("mias",))
    run = args.work / f"verifier-{args.config}{args.name}"
    sets = [*args.set, *([f"train.steps={args.steps}"] if args.steps else [])] or None
    if args.retrain or not (run / "checkpoints").is_dir():
        api.train(prepared, run, model="verifier", config=args.config, set=sets, overwrite=True)
    checker = LesionChecker(str(run), device="cpu")
    data = held_out(prepared, checker.config.image_size)
    images, kinds, records = data["images"], data["kinds"], data["records"]
    rows = {"mass": [], "calcification": []}
    normal = []
    for k, record in enumerate(records):
        finding = next((f for f in record.findings if f.category in rows), None)
        if finding is not None and bool((kinds[k] > 0).any()):
            request = {"category": finding.category, "pathology": finding.pathology}
            (verdict,) = checker.check(images[k : k + 1, 0].numpy(), [request], [(kinds[k] > 0).numpy()])
            rows[finding.category].append(verdict)
        elif not record.findings:
            normal.append(k)
    rng = np.random.default_rng(0)
    tissue = []
    for k in normal:
        ys, xs = np.nonzero(images[k, 0].numpy() > 0)
        pick = rng.choice(len(xs), size=args.patches_per_normal)
        centres = torch.tensor(np.stack([xs[pick], ys[pick]], 1), dtype=torch.float32)
        patches = crop_patches(images[k : k + 1].expand(len(centres), -1, -1, -1), centres, checker.config.patch_px)
        with torch.no_grad():
            tissue += (1 - checker.model.patch_logits(patches).softmax(1)[:, 0]).tolist()
    scans = checker.model.inspect(images[normal], None)  # each normal film's most lesion-like patch
    tissue = np.array(tissue)
    curve = {}
    for kind, verdicts in rows.items():
        scores = np.array([v["lesion_probability"] for v in verdicts])
        if len(scores):
            curve[kind] = {
                "auc_vs_normal_patches": round(
                    auc_score(np.r_[scores, tissue], np.r_[np.ones(len(scores)), np.zeros(len(tissue))]), 3
                ),
                "at_threshold": {
                    str(t): {
                        "sensitivity": round(float((scores >= t).mean()), 3),
                        "specificity": round(float((tissue < t).mean()), 3),
                    }
                    for t in (0.5, 0.7, 0.9, 0.95)
                },
            }
    result = {"config": args.config, "set": args.set, "size": args.size, "held_out": "val + test women", "by_kind": {}}
    for kind, verdicts in rows.items():
        found = sum(v["accepted"] for v in verdicts)
        result["by_kind"][kind] = {
            "n": len(verdicts),
            "found_there": found,
            "share": found / max(1, len(verdicts)),
            "ci95": wilson(found, len(verdicts)),
        }
    clean = int((tissue < checker.threshold).sum())
    result["normal_patches"] = {
        "n": len(tissue),
        "below_threshold": clean,
        "specificity": clean / max(1, len(tissue)),
        "ci95": wilson(clean, len(tissue)),
        "films": len(normal),
    }
    result["lesion_probability_there"] = curve
    clean_films = sum(r["lesion_probability"] < checker.threshold for r in scans)
    result["normal_films_most_lesion_like_patch_below_threshold"] = {
        "n": len(scans),
        "films": clean_films,
        "ci95": wilson(clean_films, len(scans)),
    }
    (args.work / f"verifier-{args.config}{args.name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
