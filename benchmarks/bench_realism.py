"""Realism within a training budget, measured on held-out real patients (run by hand):

    .venv/bin/python benchmarks/bench_realism.py --datasets mias --size 128 --budget 60m --families gan
    .venv/bin/python benchmarks/bench_realism.py --prepared PREPARED --size 64 --budget 3m --families gan
    .venv/bin/python benchmarks/bench_realism.py --datasets mias --size 128 --budget 60m --families "gan>upscale"

Each dataset is prepared with patient-level train / val / test splits (``prepare``; mini-MIAS keeps the two
films of a woman together, cc-cesm has one image per woman). Every family trains on the **train** split only,
within ``--budget`` of wall time (``train --time-budget``), saving a checkpoint every ``--checkpoint-every``
steps. For every checkpoint it draws one image per held-out record (``--real-split``, default ``val,test``:
nothing here selects on val, and it doubles n) with that record's conditions (view, laterality, density,
finding), seeds by index, and runs the C2ST against those real images split by patient: the curve of C2ST
AUC (95 % interval) against training minutes. The last checkpoint is written as a dataset and goes through
the whole ``evaluate`` (moments KS, power-spectrum β, copies …) against the same held-out patients, and a
grid of real held-out images above synthetic ones is saved. Results: ``<out>/realism-<dataset>-<size>.json``
and ``<out>/grid-<dataset>-<family>-<size>.png``.

A cascade ``BASE>upscale`` shares the budget: the base family trains at ``size / 2`` for ``--cascade-share`` of
it (its curve: C2ST against the held-out images reduced to its size), then the super-resolution stage trains on
random crops at ``size`` for the rest (its curve: the final base followed by each stage checkpoint, at ``size``).

Nothing here selects on the held-out splits: presets and settings were chosen on the demo's phantoms.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from mammosynth import api
from mammosynth.evaluate.c2st import two_sample_test
from mammosynth.evaluate.suite import evaluate_sets, load_images, select_split
from mammosynth.generate.conditions import write_condition_table
from mammosynth.generate.pipeline import load_pipeline, load_stage
from mammosynth.io.images import write_png
from mammosynth.models.conditioning import conditions_from_record
from mammosynth.models.upscale import downsample
from mammosynth.training.checkpoint import open_checkpoint
from mammosynth.training.config import parse_duration
from mammosynth.training.loop import make_grid

CONFIGS = {
    "gan": {32: "cpu-32", 64: "cpu-64", 128: "cpu-128", 256: "gpu-256", 512: "gpu-512"},
    "ldm": {128: "cpu-128", 256: "gpu-256", 512: "gpu-512"},
    "upscale": {64: "cpu-64", 128: "cpu-128", 256: "cpu-256", 512: "gpu-512"},
}  # on a GPU: --config gpu-256; translation needs a label map per image, not in this benchmark yet


def prepared_sets(args: argparse.Namespace) -> dict[str, Path]:
    if args.prepared:
        return {args.prepared.name: args.prepared}
    from bench_evaluate import prepare_shared

    args.work.mkdir(parents=True, exist_ok=True)
    mias, cc = prepare_shared(args.shared, args.work, args.size)
    return {name: path for name, path in (("mias", mias), ("cc", cc)) if name in args.datasets}


def held_out(prepared: Path, splits: str) -> tuple[np.ndarray, list]:
    records, dataset, _ = select_split(prepared, splits, "real", "--real-split")
    images, records = load_images(prepared, records=records, root=dataset.root)
    return images, records


def sample(checkpoint: Path, records: list, repeat: int, upscale: Path | None = None) -> np.ndarray:
    pipeline = load_pipeline(str(checkpoint), upscale=upscale)
    conditions = [conditions_from_record(r) for r in records] * repeat
    out = []
    for start in range(0, len(conditions), 32):
        chunk = conditions[start : start + 32]
        seeds = [10_000_000 + start + k for k in range(len(chunk))]
        out.append(pipeline.sample(chunk, seeds, sampler="ddim", steps=30))  # a GAN ignores the sampler
    return np.concatenate(out)


def train_stage(name: str, prepared: Path, family: str, size: int, budget: float, args) -> tuple[Path, dict, str]:
    run = args.work / f"run-{name}-{family}-{size}"
    if args.config is None and size not in CONFIGS.get(family, {}):
        raise SystemExit(f"no preset for {family} at {size} px in this benchmark; pass --config")
    config = CONFIGS[family][size] if args.config is None else args.config
    checkpoints = sorted((run / "checkpoints").glob("step-*"))
    if args.reuse and checkpoints:  # trained before (e.g. by hand, with the same settings): measure it again
        state = open_checkpoint(checkpoints[-1]).state
        return run, {"steps": checkpoints[-1].name, "stopped_by": "reused", "elapsed_s": state["elapsed_s"]}, config
    trained = api.train(
        prepared,
        run,
        model=family,
        config=config,
        # the budget decides when a stage ends: a preset's step count (the demo's 2,500 for gan/cpu-64) must
        # not cut it short
        set=[
            f"train.checkpoint_every={args.checkpoint_every}",
            "train.keep_checkpoints=1000",
            "train.steps=10000000",
            *args.set,
        ],
        time_budget=budget,
        overwrite=True,
    )
    return run, trained, config


def curve_point(
    checkpoint: Path, real: np.ndarray, synthetic: np.ndarray, patients: list, offset_s: float, work_px: int
) -> dict:
    state = open_checkpoint(checkpoint).state
    c2st = two_sample_test(real, synthetic, patients, work_px=min(work_px, real.shape[-1]), seed=0)
    return {
        "step": int(checkpoint.name.split("-")[1]),
        "minutes": round((offset_s + state.get("elapsed_s", 0.0)) / 60, 2),
        "c2st_auc": round(c2st["auc"], 3),
        "c2st_ci95": [round(x, 3) for x in c2st["auc_ci95"]],
        "n_real": c2st["real_images"],
    }


def refine(checkpoint: Path, images: np.ndarray) -> np.ndarray:
    stage = load_stage(checkpoint)
    return np.concatenate(
        [
            stage.refine(images[i : i + 32], list(range(i, i + len(images[i : i + 32]))))
            for i in range(0, len(images), 32)
        ]
    )


def reduce(images: np.ndarray, factor: int) -> np.ndarray:
    """Held-out images shrunk as ``prepare`` (and the training loader) shrink them (Lanczos)."""
    return downsample(torch.from_numpy(images)[:, None], factor)[:, 0].numpy()


def run_family(name: str, prepared: Path, family: str, args: argparse.Namespace) -> dict:
    """Train ``family`` (or a cascade ``BASE>upscale[>upscale]``) within the budget; its curve and evaluation.

    A cascade of n stages: the base at ``size / 2**(n-1)``, each super-resolution stage doubling it. Every stage
    but the last gets ``cascade_share * budget / (n-1)``; the last gets what is left of the budget.
    """
    base, *refiners = family.split(">")
    budget = parse_duration(args.budget)
    base_size = args.size // 2 ** len(refiners)
    started = time.perf_counter()
    real, records = held_out(prepared, args.real_split)
    patients = [r.patient_key for r in records]
    early = args.cascade_share * budget / len(refiners) if refiners else budget
    run, trained, config = train_stage(name, prepared, base, base_size, early, args)
    curve = []
    checkpoints = sorted((run / "checkpoints").glob("step-*"))
    base_real = reduce(real, args.size // base_size)
    for checkpoint in checkpoints:
        synthetic = sample(checkpoint, records, args.repeat)
        point = curve_point(checkpoint, base_real, synthetic, patients, 0.0, args.c2st_px)
        curve.append({"stage": base, **point})
        print(json.dumps({"dataset": name, "family": family, **curve[-1]}), flush=True)
    final, chain, steps, elapsed_s = checkpoints[-1], [], [trained["steps"]], trained["elapsed_s"]
    for k, refiner in enumerate(refiners):
        size = base_size * 2 ** (k + 1)
        last = k == len(refiners) - 1
        stage_run, stage_trained, stage_config = train_stage(
            name, prepared, refiner, size, budget - elapsed_s if last else early, args
        )
        config, steps = f"{config}>{stage_config}", [*steps, stage_trained["steps"]]
        stage_real = reduce(real, args.size // size)
        low = reduce(real, args.size // (size // 2))
        for checkpoint in sorted((stage_run / "checkpoints").glob("step-*")):
            synthetic = sample(final, records, args.repeat, upscale=[*chain, checkpoint])
            point = curve_point(checkpoint, stage_real, synthetic, patients, elapsed_s, args.c2st_px)
            # the stage alone: the held-out images shrunk as prepare shrinks them, enlarged by it, against
            # themselves (how much of the gap is the stage's)
            enlarged = refine(checkpoint, low)
            alone = two_sample_test(stage_real, enlarged, patients, work_px=min(args.c2st_px, size), seed=0)
            point["stage_on_real_c2st_auc"] = round(alone["auc"], 3)
            point["stage_on_real_c2st_ci95"] = [round(x, 3) for x in alone["auc_ci95"]]
            curve.append({"stage": refiner, "size": size, **point})
            print(json.dumps({"dataset": name, "family": family, **curve[-1]}), flush=True)
        chain.append(sorted((stage_run / "checkpoints").glob("step-*"))[-1])
        elapsed_s += stage_trained["elapsed_s"]
    train_s = time.perf_counter() - started
    tag = family.replace(">", "-")
    generated = args.work / f"generated-{name}-{tag}-{args.size}"
    table = write_condition_table(records, args.work / f"conditions-{name}.csv", args.repeat)
    api.generate(final, generated, model=base, conditions=table, seed=1, steps=30, upscale=chain, overwrite=True)
    evaluation = evaluate_sets(
        prepared,
        generated,
        args.work / f"evaluation-{name}-{tag}-{args.size}",
        real_split=args.real_split,
        overwrite=True,
        seed=0,
        c2st_px=args.c2st_px,
    )
    synthetic = sample(final, records[:8], 1, upscale=chain)
    grid = make_grid(np.concatenate([real[:8], synthetic]), columns=8)
    write_png(args.out / f"grid-{name}-{tag}-{args.size}.png", grid, bits=8)
    fidelity = evaluation["fidelity"]
    return {
        "family": family,
        "config": config,
        "train_seconds": round(train_s, 1),
        "steps": steps,
        "stopped_by": trained["stopped_by"],
        "curve": curve,
        "final": {
            "c2st": {k: evaluation["realism_c2st"][k] for k in ("auc", "auc_ci95", "real_images", "real_patients")},
            "moments_ks_p": {k: v["ks_pvalue"] for k, v in fidelity["moments"].items() if isinstance(v, dict)},
            "spectrum_beta": fidelity["spectrum_beta"],
            "copies": evaluation["memorisation"].get("copies"),
            "kid": [fidelity["features"]["kernel_distance"], fidelity["features"]["kernel_distance_std"]],
            "precision_recall": [evaluation["diversity"]["precision"], evaluation["diversity"]["recall"]],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared" / "data")
    parser.add_argument("--prepared", type=Path, default=None, help="one prepared dataset instead of ../shared")
    parser.add_argument("--datasets", default="mias,cc")
    parser.add_argument("--families", default="gan")
    parser.add_argument("--config", default=None, help="a config instead of the family's preset for --size")
    parser.add_argument("--set", action="append", default=[], help="config override (repeatable)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--budget", default="60m", help="training wall time per family (a cascade's stages share it)")
    parser.add_argument("--reuse", action="store_true", help="measure runs already in --work instead of training")
    parser.add_argument("--cascade-share", type=float, default=2 / 3, help="a cascade's base stage's share")
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--real-split", default="val,test", help="held-out splits (nothing selects on val here)")
    parser.add_argument("--repeat", type=int, default=2, help="synthetic images per held-out image")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mammosynth-realism"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--c2st-px", type=int, default=None, help="the C2ST's working size (default: --size)")
    args = parser.parse_args()
    args.c2st_px = args.c2st_px or args.size
    args.out.mkdir(parents=True, exist_ok=True)
    for name, prepared in prepared_sets(args).items():
        results = {
            "dataset": name,
            "size": args.size,
            "budget": args.budget,
            "cpu_threads": os.cpu_count(),
            "torch_threads": __import__("torch").get_num_threads(),
            "split": f"trained on the train split; C2ST and evaluation on {args.real_split} (patient-disjoint)",
            "families": [run_family(name, prepared, family, args) for family in args.families.split(",")],
        }
        path = args.out / f"realism-{name}-{args.size}.json"
        path.write_text(json.dumps(results, indent=1))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
