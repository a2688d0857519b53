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

``--parallel-stages`` trains every stage of a cascade at once, each for the whole budget: the stages are
independent (a super-resolution stage learns from real images reduced by its factor, never from the stage
before it), so on one GPU the cascade's wall time is one stage's. Its curve composes, at each chosen
checkpoint of the last stage, every earlier stage's newest checkpoint that was saved no later (in training
minutes): the cascade as it stood at that minute.

``--calibrate`` ends the final cascade with an intensity map fitted on the training split (``mammosynth
calibrate``: images generated for the training images' requests get their pooled breast intensities); the
curve is measured without it. It was added after the 128² mini-MIAS job failed the standard deviation's
moment test in two runs: its fit sees the training split only, the decision to add it saw held-out numbers.
``--calibrate-spectrum`` adds the map's spectral tilt (``calibrate --spectrum``: the generated images get the
training images' median power-spectrum β too); added after the 60-min cc-cesm cascade missed the held-out β
by 0.33, fitted on the training split only.

The two-sample classifiers train on ``--device`` (a GPU makes the five-split C2ST at 512 px take seconds).
On one GPU: ``benchmarks/gpu_realism.sh`` (both datasets at 512 px, the stages in parallel).

Nothing here selects on the held-out splits: presets and settings were chosen on the demo's phantoms.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
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
from mammosynth.training.device import pick_device
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
    names = args.datasets.split(",")
    return dict(zip(names, prepare_shared(args.shared, args.work, args.size, names), strict=True))


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


def _train_worker(job: tuple) -> tuple[Path, dict, str]:
    """One stage of a parallel cascade in its own process, on ``threads`` CPU threads."""
    threads, *stage = job
    torch.set_num_threads(threads)
    run, trained, config = train_stage(*stage)
    print(json.dumps({"stage": f"{stage[2]}/{config}", "size": stage[3], **trained}, default=str), flush=True)
    return run, trained, config


def curve_point(
    checkpoint: Path, real: np.ndarray, synthetic: np.ndarray, patients: list, offset_s: float, args
) -> dict:
    state = open_checkpoint(checkpoint).state
    c2st = two_sample_test(
        real,
        synthetic,
        patients,
        work_px=min(args.c2st_px, real.shape[-1]),
        steps=args.c2st_steps,
        seed=0,
        device=args.classifier_device,
    )
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
        point = curve_point(checkpoint, base_real, synthetic, patients, 0.0, args)
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
            point = curve_point(checkpoint, stage_real, synthetic, patients, elapsed_s, args)
            # the stage alone: the held-out images shrunk as prepare shrinks them, enlarged by it, against
            # themselves (how much of the gap is the stage's)
            enlarged = refine(checkpoint, low)
            alone = two_sample_test(
                stage_real,
                enlarged,
                patients,
                work_px=min(args.c2st_px, size),
                steps=args.c2st_steps,
                seed=0,
                device=args.classifier_device,
            )
            point["stage_on_real_c2st_auc"] = round(alone["auc"], 3)
            point["stage_on_real_c2st_ci95"] = [round(x, 3) for x in alone["auc_ci95"]]
            curve.append({"stage": refiner, "size": size, **point})
            print(json.dumps({"dataset": name, "family": family, **curve[-1]}), flush=True)
        chain.append(sorted((stage_run / "checkpoints").glob("step-*"))[-1])
        elapsed_s += stage_trained["elapsed_s"]
    summary = {
        "family": family,
        "config": config,
        "train_seconds": round(time.perf_counter() - started, 1),
        "steps": steps,
        "stopped_by": trained["stopped_by"],
        "curve": curve,
    }
    return {**summary, "final": final_evaluation(name, prepared, family, final, chain, real, records, args)}


def run_parallel(name: str, prepared: Path, family: str, args: argparse.Namespace) -> dict:
    """A cascade ``BASE>upscale[>upscale…]`` whose stages all train at once, each for the whole budget
    (``--parallel-stages``); its curve at up to ``--curve-points`` checkpoints of the last stage."""
    stages = family.split(">")
    budget = parse_duration(args.budget)
    sizes = [args.size // 2 ** (len(stages) - 1 - k) for k in range(len(stages))]
    threads = max(1, (os.cpu_count() or 2) // (len(stages) * args.concurrent))
    started = time.perf_counter()
    jobs = [(threads, name, prepared, stage, size, budget, args) for stage, size in zip(stages, sizes, strict=True)]
    # spawn: a forked child would inherit a CUDA context it cannot use
    with ProcessPoolExecutor(len(stages), mp_context=multiprocessing.get_context("spawn")) as pool:
        trained = list(pool.map(_train_worker, jobs))
    train_s = time.perf_counter() - started
    real, records = held_out(prepared, args.real_split)
    patients = [r.patient_key for r in records]

    def saved(run: Path) -> list[tuple[float, Path]]:
        found = sorted((run / "checkpoints").glob("step-*"))
        return [(float(open_checkpoint(c).state.get("elapsed_s", 0.0)), c) for c in found]

    timelines = [saved(run) for run, *_ in trained]
    last = timelines[-1]
    picks = sorted({round(k * (len(last) - 1) / max(1, args.curve_points - 1)) for k in range(args.curve_points)})
    curve = []
    for index in picks:
        minute_s, checkpoint = last[index]
        # every earlier stage as it stood then (its first checkpoint if none was saved by that minute)
        chain = [max((t for t in line if t[0] <= minute_s + 1.0), default=line[0])[1] for line in timelines[:-1]]
        synthetic = sample(chain[0], records, args.repeat, upscale=[*chain[1:], checkpoint])
        point = curve_point(checkpoint, real, synthetic, patients, 0.0, args)
        point["stages"] = [c.name for c in [*chain, checkpoint]]
        curve.append(point)
        print(json.dumps({"dataset": name, "family": family, **point}), flush=True)
    finals = [line[-1][1] for line in timelines]
    return {
        "family": family,
        "config": ">".join(config for *_, config in trained),
        "parallel_stages": True,
        "train_seconds": round(train_s, 1),
        "steps": [t["steps"] for _, t, _ in trained],
        "stage_seconds": [t["elapsed_s"] for _, t, _ in trained],
        "stopped_by": [t["stopped_by"] for _, t, _ in trained],
        "curve": curve,
        "final": final_evaluation(name, prepared, family, finals[0], finals[1:], real, records, args),
    }


def final_evaluation(
    name: str, prepared: Path, family: str, final: Path, chain: list, real: np.ndarray, records: list, args
) -> dict:
    """The last checkpoints written as a dataset (one image per held-out record × ``--repeat``) through the
    whole ``evaluate`` against the held-out patients, and a grid: 8 real held-out images above 8 synthetic."""
    base = family.split(">")[0]
    tag = family.replace(">", "-")
    generated = args.work / f"generated-{name}-{tag}-{args.size}"
    table = write_condition_table(records, args.work / f"conditions-{name}.csv", args.repeat)
    if args.calibrate or args.calibrate_spectrum:  # the intensity map, fitted on the training split, last stage
        calibration = args.work / f"calibration-{name}-{tag}-{args.size}.json"
        api.calibrate(final, prepared, calibration, upscale=chain, spectrum=args.calibrate_spectrum, overwrite=True)
        chain = [*chain, calibration]
    api.generate(final, generated, model=base, conditions=table, seed=1, steps=30, upscale=chain, overwrite=True)
    evaluation = evaluate_sets(
        prepared,
        generated,
        args.work / f"evaluation-{name}-{tag}-{args.size}",
        real_split=args.real_split,
        overwrite=True,
        seed=0,
        c2st_px=args.c2st_px,
        c2st_steps=args.c2st_steps,
        device=args.device,
    )
    synthetic = sample(final, records[:8], 1, upscale=chain)
    grid = make_grid(np.concatenate([real[:8], synthetic]), columns=8)
    write_png(args.out / f"grid-{name}-{tag}-{args.size}.png", grid, bits=8)
    fidelity = evaluation["fidelity"]
    return {
        "c2st": {k: evaluation["realism_c2st"][k] for k in ("auc", "auc_ci95", "real_images", "real_patients")},
        "moments_ks_p": {k: v["ks_pvalue"] for k, v in fidelity["moments"].items() if isinstance(v, dict)},
        # the same tests with the training images in the synthetic set's place: the floor on this split
        "training_reference_fail_share": {
            k: v["fail_share"] for k, v in fidelity.get("moments_training_reference", {}).items() if isinstance(v, dict)
        },
        "spectrum_beta": fidelity["spectrum_beta"],
        "copies": evaluation["memorisation"].get("copies"),
        "kid": [fidelity["features"]["kernel_distance"], fidelity["features"]["kernel_distance_std"]],
        "precision_recall": [evaluation["diversity"]["precision"], evaluation["diversity"]["recall"]],
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
    parser.add_argument("--c2st-steps", type=int, default=300, help="training steps of each C2ST classifier")
    parser.add_argument("--device", default="auto", help="where the C2ST classifiers train (auto, cpu, cuda)")
    parser.add_argument("--parallel-stages", action="store_true", help="train a cascade's stages at once")
    parser.add_argument("--curve-points", type=int, default=3, help="curve points of a parallel cascade")
    parser.add_argument("--concurrent", type=int, default=1, help="benchmarks sharing this machine's CPU cores")
    parser.add_argument(
        "--calibrate", action="store_true", help="end the final cascade with an intensity map (mammosynth calibrate)"
    )
    parser.add_argument(
        "--calibrate-spectrum", action="store_true", help="the same map with its spectral tilt (calibrate --spectrum)"
    )
    args = parser.parse_args()
    args.c2st_px = args.c2st_px or args.size
    args.classifier_device = pick_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    run = run_parallel if args.parallel_stages else run_family
    for name, prepared in prepared_sets(args).items():
        results = {
            "dataset": name,
            "size": args.size,
            "budget": args.budget,
            "cpu_threads": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if args.classifier_device.type == "cuda" else "cpu",
            "split": f"trained on the train split; C2ST and evaluation on {args.real_split} (patient-disjoint)",
            "families": [run(name, prepared, family, args) for family in args.families.split(",")],
        }
        path = args.out / f"realism-{name}-{args.size}.json"
        path.write_text(json.dumps(results, indent=1))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
