"""The evaluation suite, measured (run by hand).

    .venv/bin/python benchmarks/bench_evaluate.py [--real N_REAL] [--synthetic N_SYNTH] [--size 256]
        [--work /tmp/evaluate-bench] [--prepared PREPARED] [--out benchmarks/results/evaluate.json]

Makes (once, in ``--work``) a "real" phantom set of ``--real`` images, half with a malignant mass, and a
synthetic set of ``--synthetic`` images from other seeds, plus a training set (every other real image),
then runs the whole evaluation twice: without the utility arm (the issue's 10-minute budget for 1,000
against 300 at 256²) and with it, reporting wall time, peak RSS and the headline numbers. With
``--prepared`` (a prepared real dataset at ``--size``) the real set is that instead of phantoms, the
synthetic set stays phantoms: the numbers then say how far the phantom is from real mammograms.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from mammosynth import api
from mammosynth.datasets import iter_manifest, write_manifest
from mammosynth.phantom import make_phantom_dataset


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mixed(root: Path, name: str, n: int, size: int, seed: int, start: int) -> Path:
    if (root / name / "manifest.jsonl").is_file():
        return root / name
    parts = []
    for k, lesion in enumerate(("none", "malignant-mass")):
        part = root / f"{name}-{lesion}"
        make_phantom_dataset(part, n=n // 2, size=size, seed=seed, lesion=lesion, start=start + k * n,
                             overwrite=True)
        parts.append(part)
    api._merge(parts, root / name)
    return root / name


def training_half(real: Path, out: Path) -> Path:
    """Every other real record, the images shared by symbolic links (no copy)."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in os.listdir(real):
        if entry != "manifest.jsonl" and not (out / entry).exists():
            os.symlink(real / entry, out / entry)
    write_manifest(out, list(iter_manifest(real))[::2])
    return out


def headline(result: dict) -> dict:
    out = {"fid": result["fidelity"]["features"]["frechet_distance"],
           "kid": result["fidelity"]["features"]["kernel_distance"],
           "c2st_auc": result["realism_c2st"]["auc"], "c2st_ci95": result["realism_c2st"]["auc_ci95"],
           **{k: result["diversity"][k] for k in ("precision", "recall", "coverage")},
           "mode_collapse": result["mode_collapse"]["collapse_suspected"],
           "moment_ks_p": {k: round(v["ks_pvalue"], 3) for k, v in result["fidelity"]["moments"].items()},
           "copies": result.get("memorisation", {}).get("copies"),
           "reidentification_rate": result.get("reidentification", {}).get("link_rate"),
           "conditional": {k: v.get("agreement") if v.get("checkable") else None
                           for k, v in result["conditional"]["fields"].items()}}
    if "utility" in result:
        out["utility_auc"] = {arm: (v.get("auc"), v.get("auc_ci95")) for arm, v in result["utility"]["arms"].items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", type=int, default=300)
    parser.add_argument("--synthetic", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--work", type=Path, default=Path("/tmp/evaluate-bench"))
    parser.add_argument("--prepared", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/evaluate.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    real = args.prepared or mixed(args.work, "real", args.real, args.size, 1, 0)
    synthetic = mixed(args.work, "synthetic", args.synthetic, args.size, 2, 10 * args.real)
    train = training_half(real, args.work / "train") if args.prepared is None else real
    made = time.perf_counter() - started
    runs = {}
    for name, utility in (("without_utility", False), ("with_utility", True)):
        started = time.perf_counter()
        result = api.evaluate(real, synthetic, args.work / f"eval-{name}", train=train, run_utility=utility,
                              overwrite=True)
        runs[name] = {"seconds": round(time.perf_counter() - started, 1), "peak_rss_mb": round(peak_rss_mb()),
                      **headline(result)}
        print(name, json.dumps(runs[name], indent=1))
    summary = {"real": str(real), "synthetic_images": args.synthetic, "size": args.size,
               "data_seconds": round(made, 1), "cpu_threads": os.cpu_count(), "runs": runs,
               "report": str(args.work / "eval-with_utility" / "report.html")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
