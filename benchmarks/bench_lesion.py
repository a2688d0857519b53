"""The lesion painter on held-out women: does the lesion verifier find the painted lesion where it was asked
for, and can a classifier tell painted lesions from real held-out ones?

Trains ``lesion/<config>`` on the train split of mini-MIAS (women kept whole, the data and the verifier of
``bench_verifier.py``, which it builds first when absent) and then, for every held-out (val + test) normal film,
paints a benign mass, a malignant mass and a calcification cluster, each at a breast pixel drawn from the
request's seed with a size drawn from the training masses, and asks each judge (a verifier run, through the same
:class:`LesionChecker` that judges generated images) "is a <kind> there?". The same question about the same
places before painting is the judge's false-alarm baseline. Lesion realism: a C2ST (split by patient) on 64 px
patches centred on the painted masses against patches centred on the held-out women's real masses, and a copy
check (distance of each painted mass to the nearest training mass, against the held-out real masses' distance).
With ``--generator RUN [--upscale UP]``: the cascade's held-out twins (``--repeat`` per val + test record, its
conditions, lesions at their annotated places) with the painter as the last stage, judged at the first attempt
and, with ``--verify``, as ``generate --verify`` delivers them (the first judge rejects and resamples up to 5
times; the other judges are the independent measure). Prints n and Wilson 95 % intervals.

    .venv/bin/python benchmarks/bench_verifier.py --shared ../shared/data \
        --set model.patch_px=24 --set train.seed=1 --name=-b
    .venv/bin/python benchmarks/bench_lesion.py --shared ../shared/data --budget 10m --generator GAN --upscale SR \
        --judge verifier-cpu-128 --judge verifier-cpu-128-b --verify
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from bench_evaluate import prepare_shared
from bench_verifier import held_out, wilson

from mammosynth import api
from mammosynth.evaluate.c2st import two_sample_test
from mammosynth.evaluate.lesions import lesion_patches
from mammosynth.generate.conditions import region_from_conditions
from mammosynth.generate.pipeline import LESION_SALT, LesionStage, stage_seed
from mammosynth.generate.verify import LesionChecker
from mammosynth.models.conditioning import conditions_from_record
from mammosynth.training.data import PreparedImages

REQUESTS = (
    {"category": "mass", "pathology": "benign"},
    {"category": "mass", "pathology": "malignant"},
    {"category": "calcification"},
)


def tally(rows: list[dict]) -> dict:
    found = sum(r["accepted"] for r in rows)
    return {
        "n": len(rows),
        "found_there": found,
        "share": round(found / max(1, len(rows)), 3),
        "ci95": wilson(found, len(rows)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/verifier"))
    parser.add_argument("--config", default="cpu-128")
    parser.add_argument("--budget", default="12m", help="the painter's training wall time")
    parser.add_argument("--retrain", action="store_true", help="train again when the run folder has a checkpoint")
    parser.add_argument(
        "--set", action="append", default=[], help="painter config overrides (train.guide=RUN, train.guide_weight=1)"
    )
    parser.add_argument("--name", default="", help="a suffix of the painter's run folder and result file")
    parser.add_argument("--generator", type=Path, help="a generator run trained on the same train women")
    parser.add_argument("--upscale", type=Path, action="append", default=[], help="its super-resolution stages")
    parser.add_argument(
        "--judge",
        action="append",
        default=[],
        help="verifier runs under --work that judge (default verifier-cpu-128; add verifier-cpu-128-b, a second one "
        "trained with another seed and patch size by bench_verifier.py --set model.patch_px=24 --set train.seed=1 "
        "--name=-b)",
    )
    parser.add_argument("--repeat", type=int, default=4, help="twins per held-out record")
    parser.add_argument("--verify", action="store_true", help="also generate the twins with --verify (the first judge)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    (prepared,) = prepare_shared(args.shared, args.work, 128, names=("mias",))
    verifier = args.work / "verifier-cpu-128"
    if not (verifier / "checkpoints").is_dir():
        subprocess.run(
            [sys.executable, str(Path(__file__).parent / "bench_verifier.py"), "--shared", str(args.shared)], check=True
        )
    run = args.work / f"lesion-{args.config}{args.name}"
    if args.retrain or not (run / "checkpoints").is_dir():
        sets = args.set or None
        api.train(prepared, run, model="lesion", config=args.config, set=sets, time_budget=args.budget, overwrite=True)
    stage = LesionStage(str(run), device="cpu")
    judges = {name: LesionChecker(str(args.work / name), device="cpu") for name in args.judge or [verifier.name]}
    data = held_out(prepared, stage.size)
    images, kinds, records = data["images"][:, 0].numpy(), data["kinds"], data["records"]
    train = PreparedImages(prepared, 128, split="train")
    sizes = [c["lesion_size_mm"] for c in train.conditions if c.get("category") == "mass" and "lesion_size_mm" in c]
    normal = [k for k, r in enumerate(records) if not r.findings]
    rng = np.random.default_rng(0)
    result: dict = {
        "config": args.config,
        "set": args.set,
        "held_out": "val + test women",
        "normal_films": len(normal),
        "by_request": {},
    }
    painted_masses = []
    for j, base in enumerate(REQUESTS):
        requests, film_seeds = [], []
        for k in normal:
            seed = 1000 * j + k
            requests.append({**base, "lesion_size_mm": float(rng.choice(sizes))})
            film_seeds.append(seed)
        films = images[normal]
        places = [breast_place(f, s, stage.config.radius_px) for f, s in zip(films, film_seeds, strict=True)]
        located = [
            {**r, "lesion_x": x / stage.size, "lesion_y": y / stage.size}
            for r, (x, y) in zip(requests, places, strict=True)
        ]
        regions = [region_from_conditions(r, stage.size, stage.spacing_mm) for r in located]
        painted = stage.refine(films, film_seeds, located)
        row: dict = {"painted": {}, "before_painting": {}, "lesion_probability_median": {}, "kinds_called": {}}
        for name, checker in judges.items():
            after = checker.check(painted, located, regions)
            row["painted"][name] = tally(after)
            row["before_painting"][name] = tally(checker.check(films, located, regions))
            row["lesion_probability_median"][name] = round(
                float(np.median([v["lesion_probability"] for v in after])), 3
            )
            row["kinds_called"][name] = dict(Counter(v["kind"] for v in after))
        result["by_request"]["-".join(base.values())] = row
        if base["category"] == "mass":
            painted_masses.append(lesion_patches(painted, [(r["lesion_x"], r["lesion_y"]) for r in located], 64))
    real = [(k, conditions_from_record(r)) for k, r in enumerate(records)]
    real = [(k, c) for k, c in real if c.get("category") == "mass" and "lesion_x" in c and bool((kinds[k] > 0).any())]
    real_patches = lesion_patches(images[[k for k, _ in real]], [(c["lesion_x"], c["lesion_y"]) for _, c in real], 64)
    synthetic = np.concatenate(painted_masses)[rng.permutation(sum(len(p) for p in painted_masses))]
    result["mass_patch_c2st_64px"] = {
        "real_held_out_masses": len(real_patches),
        "painted_masses": len(synthetic),
        **{
            k: v
            for k, v in two_sample_test(
                real_patches, synthetic, [records[k].patient_key for k, _ in real], work_px=64
            ).items()
            if k in ("auc", "auc_ci95", "auc_repeats", "accuracy", "n_real", "n_synthetic")
        },
    }
    library, library_patients = train_masses(train)
    result["copies_16px"] = nearest_train_lesion(library, real_patches, synthetic)
    # the painted masses beside the training masses the painter learned from: a test that can only flatter the
    # painter (it saw them), with 31 real where the held-out women have 8
    result["mass_patch_c2st_vs_train_masses_64px"] = {
        k: v
        for k, v in two_sample_test(library, synthetic, library_patients, work_px=64).items()
        if k in ("auc", "auc_ci95", "auc_repeats", "n_real", "n_synthetic")
    }
    contrast = {"held_out_real": conspicuity(real_patches), "train_real": conspicuity(library)}
    contrast["painted"] = conspicuity(synthetic)
    result["conspicuity_quartiles"] = {k: quartiles(v) for k, v in contrast.items()}
    result["conspicuity_painted_vs_train_p"] = round(
        float(stats.mannwhitneyu(contrast["painted"], contrast["train_real"]).pvalue), 4
    )
    if args.generator:
        verify = args.work / next(iter(judges)) if args.verify else None
        stages = [*args.upscale, run]
        result["twins"] = twins(
            prepared, args.generator, stages, judges, args.work / "lesion-twins", args.repeat, verify
        )
    (args.work / f"lesion-{args.config}{args.name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


def breast_place(image: np.ndarray, seed: int, inset_px: float) -> tuple[float, float]:
    """A breast pixel of a real film at least ``inset_px`` inside its skin line, drawn from ``seed``."""
    inner = ndi.binary_erosion(image > 0.05, iterations=max(1, round(inset_px)))
    ys, xs = np.nonzero(inner if inner.any() else np.ones_like(image, bool))
    k = int(np.random.default_rng(stage_seed(seed, LESION_SALT)).integers(len(xs)))
    return float(xs[k]), float(ys[k])


def dihedral(patches: np.ndarray) -> np.ndarray:
    """The 8 turns and mirrors of each patch (N, P, P) → (8N, P, P)."""
    turns = [np.rot90(patches, k, axes=(1, 2)) for k in range(4)]
    return np.concatenate([*turns, *(t[:, :, ::-1] for t in turns)])


def train_masses(train: PreparedImages, patch_px: int = 64) -> tuple[np.ndarray, list[str]]:
    """``patch_px`` patches centred on the train women's located masses, and their patients."""
    batch = train.batch(list(range(len(train))))
    located = [(k, c) for k, c in enumerate(train.conditions) if c.get("category") == "mass" and "lesion_x" in c]
    images = batch["image"][[k for k, _ in located], 0].numpy()
    patches = lesion_patches(images, [(c["lesion_x"], c["lesion_y"]) for _, c in located], patch_px)
    return patches, [train.records[k].patient_key for k, _ in located]


def nearest_train_lesion(library: np.ndarray, real: np.ndarray, painted: np.ndarray, crop_px: int = 16) -> dict:
    """Does the painter copy its training masses (``library``, 64 px patches)? The mean absolute difference of
    each lesion's centre ``crop_px`` square to the nearest training mass (any turn or mirror), for painted masses
    and, as the yardstick, for the held-out women's real masses (which no one trained on)."""
    cut = slice(32 - crop_px // 2, 32 + crop_px // 2)  # the centre of the 64 px patches
    library = dihedral(library[:, cut, cut])

    def nearest(patches: np.ndarray) -> np.ndarray:
        centres = patches[:, cut, cut]
        return np.array([np.abs(library - c).mean((1, 2)).min() for c in centres])

    held_out, synthetic = nearest(real), nearest(painted)
    return {
        "train_masses": len(library) // 8,
        "held_out_real_median": round(float(np.median(held_out)), 4),
        "held_out_real_min": round(float(held_out.min()), 4),
        "painted_median": round(float(np.median(synthetic)), 4),
        "painted_closer_than_every_held_out_real": int((synthetic < held_out.min()).sum()),
        "painted": len(synthetic),
    }


def conspicuity(patches: np.ndarray, inner_px: float = 4.0, ring_px: tuple[float, float] = (10.0, 16.0)) -> np.ndarray:
    """How much brighter each 64 px patch's centre (a disc of ``inner_px``) is than the ring around it."""
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 32, xx - 32)
    inner, ring = r <= inner_px, (r >= ring_px[0]) & (r <= ring_px[1])
    return patches[:, inner].mean(1) - patches[:, ring].mean(1)


def quartiles(values: np.ndarray) -> list[float]:
    return [round(float(q), 3) for q in np.percentile(values, [25, 50, 75])]


def twins(
    prepared: Path, generator: Path, stages: list[Path], judges: dict, out: Path, repeat: int, verify: Path | None
) -> dict:
    """Held-out twins of the cascade with the painter last; each verifier asked at each requested place."""
    from mammosynth.evaluate.suite import load_images
    from mammosynth.evaluate.twins import held_out_twins
    from mammosynth.io.images import read_mask

    c2st = held_out_twins(prepared, generator, out, real_split="val,test", upscale=stages, repeat=repeat)
    result: dict = {"c2st": {k: c2st[k] for k in ("auc", "auc_ci95", "split", "repeat")}}

    def judged(folder: Path) -> dict:
        images, records = load_images(folder, synthetic_only=True)
        picked: dict[str, list] = {"mass": [], "calcification": []}  # (image, request, mask) per kind, read once
        for k, record in enumerate(records):
            asked = record.extra["provenance"]["conditions"]
            mask = next((f.mask_path for f in record.findings if f.mask_path), None)
            if asked.get("category") in picked and mask is not None:
                picked[asked["category"]].append((k, asked, read_mask(folder / mask)))
        verdicts = {}
        for name, checker in judges.items():
            verdicts[name] = {}
            for kind, rows in picked.items():
                asked = [a for _, a, _ in rows]
                found = checker.check(images[[k for k, _, _ in rows]], asked, [m for _, _, m in rows]) if rows else []
                verdicts[name][kind] = tally(found)
        return verdicts

    result["first_attempt"] = judged(out / "images")
    if verify is not None:  # the product's loop: generate --verify (the first judge) resamples what it rejects
        from mammosynth.generate.dataset import generate_dataset

        report = generate_dataset(
            generator, out / "verified", table=out / "conditions.csv", upscale=stages, verify=verify, overwrite=True
        )
        result["with_verify"] = {
            "verifier": Path(verify).name,
            "report": report.get("verify"),
            "judged": judged(out / "verified"),
        }
    return result


if __name__ == "__main__":
    main()
