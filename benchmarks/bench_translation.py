"""Label map → mammogram translation, measured (run by hand).

    .venv/bin/python benchmarks/bench_translation.py [--ddsm ../shared/data/ddsm-tissue-seg]
        [--prepared PREPARED_128 --steps 3000 --work /tmp/translation-bench] [--out benchmarks/results/translation.json]

1. Derived label maps against the DDSM tissue labels (64 background, 128 adipose, 192 fibroglandular,
   255 pectoral): breast, pectoral muscle and fibroglandular tissue found by ``prepare``'s segmentation and
   :func:`mammosynth.phantom.derive.derive_label_map`, Dice per image (median, mean, quartiles).
2. Speed: generator images/s (inference) for the gpu-256 architecture at 256² and the gpu-512 one at 512²,
   and training images/s of the cpu-128 config at 128², fp32 and bf16 autocast; peak RSS.
3. With ``--prepared``: train the cpu-128 translator on a prepared dataset for ``--steps`` (resumable in
   ``--work``), then render phantom label maps through it into a sample grid (``--work``/grid.png).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from mammosynth.io.images import read_image, write_png
from mammosynth.models.translation import LabelTranslator, one_hot_labels
from mammosynth.phantom.derive import derive_label_map
from mammosynth.phantom.labelmap import FIBROGLANDULAR, PECTORAL
from mammosynth.preprocess.pectoral import pectoral_mask
from mammosynth.preprocess.segment import breast_mask
from mammosynth.training import load_config


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 1.0


def ddsm_dice(folder: Path, field_mm: float = 240.0) -> dict:
    rows = list(csv.DictReader((folder / "metadata.csv").open()))
    scores: dict[str, list[float]] = {"breast": [], "pectoral": [], "fibroglandular": []}
    for row in rows:
        pixels = read_image(folder / row["file"]).pixels
        reference = np.round(read_image(folder / row["mask_file"]).pixels * 255).astype(int)
        if row["chest_wall_side"] == "right":
            pixels, reference = pixels[:, ::-1], reference[:, ::-1]
        breast = breast_mask(pixels)
        if breast is None:
            breast = np.zeros(pixels.shape, bool)
        pectoral = pectoral_mask(pixels, breast)
        labels = derive_label_map(pixels, breast, field_mm / max(pixels.shape), pectoral)
        scores["breast"].append(dice(breast, reference > 64))
        scores["pectoral"].append(dice(labels == PECTORAL, reference == 255))
        scores["fibroglandular"].append(dice(labels == FIBROGLANDULAR, reference == 192))
    return {
        name: {
            "median": round(float(np.median(v)), 3),
            "mean": round(float(np.mean(v)), 3),
            "q25": round(float(np.percentile(v, 25)), 3),
            "q75": round(float(np.percentile(v, 75)), 3),
        }
        for name, v in scores.items()
    } | {"images": len(rows)}


def images_per_second(fn, batch: int, seconds: float = 8.0) -> float:
    fn()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        done += batch
    return done / (time.perf_counter() - start)


def speed() -> dict:
    out = {}
    for preset, size, batch in (("gpu-256", 256, 4), ("gpu-512", 512, 2)):
        model = LabelTranslator(load_config("translation", preset)["model"]).eval()
        labels = one_hot_labels(torch.randint(0, 9, (batch, size, size)))
        noise = torch.randn(batch, 1, size, size)
        for precision in ("fp32", "bf16"):
            context = torch.autocast("cpu", torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

            def run(model=model, labels=labels, noise=noise, context=context):
                with torch.no_grad(), context:
                    model.generator(labels, noise)

            out[f"inference_{preset}_{size}px_{precision}_images_per_second"] = round(images_per_second(run, batch), 2)
    cfg = load_config("translation", "cpu-128")
    model = LabelTranslator(cfg["model"])
    opt = torch.optim.Adam(model.generator.parameters(), 2e-4)
    labels = one_hot_labels(torch.randint(0, 9, (8, 128, 128)))
    target, noise = torch.rand(8, 1, 128, 128), torch.randn(8, 1, 128, 128)
    for precision in ("fp32", "bf16"):
        context = torch.autocast("cpu", torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

        def step(context=context):
            with context:
                fake = model.generator(labels, noise)
                loss = (fake.float() - target).abs().mean() + model.discriminate(labels, fake)[-1].float().pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        out[f"train_generator_cpu-128_128px_{precision}_images_per_second"] = round(images_per_second(step, 8), 2)
    return out


def train_and_render(prepared: Path, work: Path, steps: int) -> dict:
    from mammosynth import api
    from mammosynth.generate.pipeline import TranslationPipeline
    from mammosynth.phantom.labelmap import prepared_label_map, to_colour
    from mammosynth.phantom.sampling import sample_params
    from mammosynth.training.loop import make_grid

    run = work / "run"
    start = time.perf_counter()
    api.train(prepared, run, model="translation", config="cpu-128", set=[f"train.steps={steps}"], resume=run.exists())
    minutes = (time.perf_counter() - start) / 60
    pipeline = TranslationPipeline(str(run))
    rows = []
    for k, lesion in enumerate(("none", "malignant-mass", "benign-mass", "malignant-mass")):
        params = sample_params(100 + k, view="MLO" if k % 2 else "CC", lesion=lesion)
        labels, _ = prepared_label_map(params, pipeline.size)
        rows.append((labels, pipeline.translate(labels, [k])[0]))
    colour = [to_colour(labels).mean(axis=2) / 255 for labels, _ in rows]
    grid = make_grid(np.stack(colour + [image for _, image in rows]))
    write_png(work / "grid.png", grid, bits=8)
    return {"train_minutes_this_call": round(minutes, 1), "steps": steps, "grid": str(work / "grid.png")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ddsm", type=Path, default=Path(__file__).parents[2] / "shared/data/ddsm-tissue-seg")
    parser.add_argument("--prepared", type=Path)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/translation-bench"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results/translation.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    result: dict = {"threads": args.threads}
    if args.ddsm.is_dir():
        result["ddsm_dice"] = ddsm_dice(args.ddsm)
        print(json.dumps(result["ddsm_dice"], indent=1), flush=True)
    if not args.skip_speed:
        result["speed"] = speed()
        print(json.dumps(result["speed"], indent=1), flush=True)
    if args.prepared:
        result["trained"] = train_and_render(args.prepared, args.work, args.steps)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
