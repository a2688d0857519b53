"""The evaluation suite, measured (run by hand). Two parts:

    .venv/bin/python benchmarks/bench_evaluate.py perf [--synthetic 10000] [--real 300] [--size 256]
    .venv/bin/python benchmarks/bench_evaluate.py calibrate [--size 128] [--shared ../shared/data]

``perf``: a prepared-like "real" phantom set of ``--real`` images (half with a malignant mass; patient-level
train/val/test splits as ``prepare`` writes them) against ``--synthetic`` phantoms from other seeds; the
whole evaluation (held-out test split as real, train split as training set) without and with the utility
arm: wall time, peak RSS and the headline numbers.

``calibrate``: the table that says how far from 0.5 "indistinguishable" is at a user's n. Real mammograms
of ``../shared/data`` (mini-MIAS MLO, a pair of films per woman kept together; cc-cesm CC, one image per
woman as the source names no patient) are prepared at ``--size`` and split by patient into three disjoint
groups: T (the "generator's training set"), A (held-out real patients, the evaluation's real set) and B.
Against A (n images) it evaluates n images of: B itself (real vs real: what indistinguishable looks like),
B blurred, B with added noise, phantoms, and near-copies of T (what memorisation looks like); plus
phantoms against phantoms of other seeds (real vs real where n = 200 is available). Reported per n:
C2ST AUC with its 95 % interval, KID ± std, precision / recall and copies.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from mammosynth import api
from mammosynth.datasets import iter_manifest, write_manifest
from mammosynth.io.images import read_image, write_png
from mammosynth.phantom import make_phantom_dataset
from mammosynth.preprocess.splits import assign_splits


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mixed(root: Path, name: str, n: int, size: int, seed: int, start: int) -> Path:
    """Half normal, half malignant-mass phantoms in one folder (made once)."""
    if (root / name / "manifest.jsonl").is_file():
        return root / name
    parts = []
    for k, lesion in enumerate(("none", "malignant-mass")):
        part = root / f"{name}-{lesion}"
        make_phantom_dataset(part, n=n // 2, size=size, seed=seed, lesion=lesion, start=start + k * n, overwrite=True)
        parts.append(part)
    api._merge(parts, root / name)
    return root / name


def headline(result: dict) -> dict:
    features = result["fidelity"]["features"]
    out = {
        "real_split": result["inputs"]["real_split"],
        "real_images": result["inputs"]["real_images"],
        "train_images": result["inputs"]["train_images"],
        "synthetic_images": result["inputs"]["synthetic_images"],
        "c2st_auc": round(result["realism_c2st"]["auc"], 3),
        "c2st_ci95": [round(v, 3) for v in result["realism_c2st"]["auc_ci95"] or []],
        "kid": features["kernel_distance"],
        "kid_std": features["kernel_distance_std"],
        "fid": features["frechet"],
        **{k: round(result["diversity"][k], 3) for k in ("precision", "recall", "coverage")},
        "mode_collapse": result["mode_collapse"]["collapse_suspected"],
        "moment_ks_p": {k: round(v["ks_pvalue"], 3) for k, v in result["fidelity"]["moments"].items()},
        "copies": result["memorisation"].get("copies"),
        "reidentification_rate": result["reidentification"].get("link_rate"),
    }
    if "utility" in result and "arms" in result["utility"]:
        out["utility_auc"] = {arm: (v.get("auc"), v.get("auc_ci95")) for arm, v in result["utility"]["arms"].items()}
    return out


# --- perf -------------------------------------------------------------------------------------------------
def perf(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    real = mixed(args.work, "real", args.real, args.size, 1, 0)
    records = list(iter_manifest(real))
    if not any(r.split for r in records):
        write_manifest(real, assign_splits(records, seed=0))
    synthetic = mixed(args.work, "synthetic", args.synthetic, args.size, 2, 10 * args.real)
    made = time.perf_counter() - started
    runs = {}
    for name, utility in (("without_utility", False), ("with_utility", True)):
        started = time.perf_counter()
        result = api.evaluate(real, synthetic, args.work / f"eval-{name}", run_utility=utility, overwrite=True)
        runs[name] = {
            "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(peak_rss_mb()),
            **headline(result),
        }
        print(name, json.dumps(runs[name], indent=1), flush=True)
    summary = {
        "real": str(real),
        "synthetic_images": args.synthetic,
        "size": args.size,
        "data_seconds": round(made, 1),
        "cpu_threads": os.cpu_count(),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))


# --- calibrate --------------------------------------------------------------------------------------------
def prepare_shared(shared: Path, work: Path, size: int, names: tuple[str, ...] = ("mias", "cc")) -> list[Path]:
    """mini-MIAS (with a patient column: films 2k−1 and 2k are one woman) and cc-cesm (or those of ``names``),
    prepared at ``size``."""
    out = []
    mias = work / "mias-meta.csv"
    with open(shared / "mini-mias" / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(mias, "w", newline="") as handle:
        writer = csv.DictWriter(handle, [*rows[0], "woman"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "woman": str((int(row["source_id"][3:]) + 1) // 2)})
    mapping = (Path(__file__).parents[1] / "examples" / "mappings" / "mini-mias-derived.yaml").read_text()
    mapping = mapping.replace("csv: metadata.csv", f"csv: {mias.name}").replace(
        "columns: {", "columns: {patient: woman, "
    )
    (work / "mias.yaml").write_text(mapping)
    for name, source, mapping_path in (
        ("mias", shared / "mini-mias", work / "mias.yaml"),
        ("cc", shared / "cc-cesm", Path(__file__).parents[1] / "examples" / "mappings" / "cc-cesm.yaml"),
    ):
        if name not in names:
            continue
        target = work / f"prepared-{name}-{size}"
        if not (target / "manifest.jsonl").is_file():
            api.prepare(source, target, size=size, mapping=mapping_path, overwrite=True, salt="calibration")
        out.append(target)
    return out


def pooled(folders: list[Path]) -> tuple[list, dict]:
    """Records of several prepared folders and, per image id, its absolute image path."""
    records, paths = [], {}
    for folder in folders:
        for record in iter_manifest(folder):
            records.append(record)
            paths[record.image_id] = folder / record.path
    return records, paths


def patient_groups(records: list, seed: int) -> tuple[list, list, list]:
    """T, A, B: a quarter, three eighths and three eighths of the patients (each patient in one group)."""
    patients = sorted({r.patient_key for r in records})
    order = np.random.default_rng(seed).permutation(len(patients))
    cut1, cut2 = len(patients) // 4, len(patients) // 4 + 3 * len(patients) // 8
    group = {patients[i]: 0 if k < cut1 else 1 if k < cut2 else 2 for k, i in enumerate(order)}
    return tuple([r for r in records if group[r.patient_key] == g] for g in range(3))


def write_set(
    folder: Path, records: list, images: list[np.ndarray], splits: list[str | None], synthetic: bool = False
) -> Path:
    """A dataset folder of these images (written as 16-bit PNG) and copies of their records."""
    out = []
    for k, (record, image, split) in enumerate(zip(records, images, splits, strict=True)):
        path = f"images/{k:05d}.png"
        write_png(folder / path, np.clip(image, 0, 1).astype(np.float32))
        extra = {"synthetic": True} if synthetic else {}
        out.append(
            record.__class__(
                **{
                    **record.to_dict(),
                    "findings": [],
                    "path": path,
                    "split": split,
                    "image_id": f"{'s' if synthetic else 'r'}{k:05d}",
                    "extra": extra,
                    "patient_key": f"syn-{k}" if synthetic else record.patient_key,
                }
            )
        )
    write_manifest(folder, out)
    return folder


def calibrate(args: argparse.Namespace) -> None:
    work = args.work / "calibration"
    work.mkdir(parents=True, exist_ok=True)
    records, paths = pooled(prepare_shared(args.shared, work, args.size))
    train, held, other = patient_groups(records, seed=0)
    rng = np.random.default_rng(0)
    for group in (held, other):
        group[:] = [group[i] for i in rng.permutation(len(group))]  # mixed MLO and CC in every prefix
    read = {r.image_id: read_image(paths[r.image_id]).pixels for r in records}
    print(
        f"T {len(train)} images, A {len(held)}, B {len(other)} (patients {len({r.patient_key for r in train})}, "
        f"{len({r.patient_key for r in held})}, {len({r.patient_key for r in other})})",
        flush=True,
    )
    phantoms = work / f"phantoms-{args.size}"
    if not (phantoms / "manifest.jsonl").is_file():
        raw = mixed(work, "phantom-raw", 1000, 2 * args.size, 5, 0)
        api.prepare(raw, phantoms, size=args.size, overwrite=True, salt="calibration")
    phantom_records, phantom_paths = pooled([phantoms])
    phantom_images = [read_image(phantom_paths[r.image_id]).pixels for r in phantom_records]
    noise_rng = np.random.default_rng(1)
    sets = {
        "real, other patients": lambda n: [read[r.image_id] for r in other[:n]],
        "blurred real (σ 1 % of width)": lambda n: [
            ndi.gaussian_filter(read[r.image_id], args.size / 100) for r in other[:n]
        ],
        "real + noise (σ 0.05)": lambda n: [
            read[r.image_id] + noise_rng.normal(0, 0.05, (args.size, args.size)) for r in other[:n]
        ],
        "phantoms": lambda n: phantom_images[:n],
        "near-copies of T (σ 0.005)": lambda n: [
            read[r.image_id] + noise_rng.normal(0, 0.005, (args.size,) * 2) for r in train[:n]
        ],
    }
    rows = []
    for n_wanted in args.n:
        n = min(n_wanted, len(held), len(other))
        real = write_set(
            work / f"real-{n}",
            held[:n] + train,
            [read[r.image_id] for r in held[:n] + train],
            ["test"] * n + ["train"] * len(train),
        )
        for name, make in sets.items():
            images = make(n)
            synthetic = write_set(
                work / f"set-{n}-{len(rows)}",
                (other + train)[: len(images)],
                images,
                [None] * len(images),
                synthetic=True,
            )
            rows.append({"set": name, "n_wanted": n_wanted, **_evaluate(real, synthetic, work / "ev", args)})
            print(json.dumps(rows[-1]), flush=True)
        # phantoms against phantoms of other seeds, where n = 200 exists
        m = n_wanted
        test, rest = phantom_records[:m], phantom_records[m:]
        real = write_set(
            work / f"preal-{m}",
            test + rest[:300],
            phantom_images[: m + 300],
            ["test"] * m + ["train"] * min(300, len(rest)),
        )
        synthetic = write_set(
            work / f"pset-{m}", rest[300 : 300 + m], phantom_images[m + 300 : m + 300 + m], [None] * m, synthetic=True
        )
        rows.append(
            {
                "set": "phantoms vs phantoms (other seeds)",
                "n_wanted": m,
                **_evaluate(real, synthetic, work / "ev", args),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"size": args.size, "rows": rows}, indent=1))
    print("\n| set | n real / synthetic | C2ST AUC [95 % CI] | KID ± std | precision / recall | copies |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['set']} | {row['real_images']} / {row['synthetic_images']} | {row['c2st_auc']:.2f} "
            f"[{row['c2st_ci95'][0]:.2f}, {row['c2st_ci95'][1]:.2f}] | {row['kid']:.4f} ± {row['kid_std']:.4f} | "
            f"{row['precision']:.2f} / {row['recall']:.2f} | {row['copies']} |"
        )


def _evaluate(real: Path, synthetic: Path, out: Path, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    result = api.evaluate(real, synthetic, out, run_utility=False, conditional_steps=50, overwrite=True)
    return {**headline(result), "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["perf", "calibrate"])
    parser.add_argument("--real", type=int, default=300)
    parser.add_argument("--synthetic", type=int, default=10_000)
    parser.add_argument("--size", type=int)
    parser.add_argument("--n", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/evaluate-bench"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.size = args.size or (256 if args.part == "perf" else 128)
    args.out = args.out or Path(f"benchmarks/results/evaluate-{args.part}.json")
    args.work.mkdir(parents=True, exist_ok=True)
    perf(args) if args.part == "perf" else calibrate(args)


if __name__ == "__main__":
    main()
