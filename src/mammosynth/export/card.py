"""The dataset card of an expanded dataset (``README.md`` in its folder): what made the synthetic images
and from which data, seeds and settings, counts per condition before and after, the evaluation summary
when one was run, intended use, and the warning that the images are synthetic and not for diagnosis."""

from __future__ import annotations

import json
from pathlib import Path

from mammosynth.evaluate.mix import mix_note
from mammosynth.io.atomic import atomic_write


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("–" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _interval(section: dict) -> str:
    ci = section.get("auc_ci95")
    return f"{ci[0]:.2f}–{ci[1]:.2f}" if ci else "–"


def render_card(summary: dict, evaluation: dict | None = None) -> str:
    """Markdown text of the card for an ``expand`` summary (and an ``evaluate`` result, if any)."""
    model, plan = summary["model"], summary["plan"]
    cells = sorted(set(summary["counts_before"]) | set(summary["counts_after"]))
    parts = [
        "# Expanded mammography dataset (mammosynth)",
        "> **Synthetic images — not for diagnosis.** Images whose `synthetic` column is true were generated "
        "by a model; they show no patient. They are meant for research: training and testing "
        "computer-aided detection models, balancing rare conditions, teaching. Do not use them for clinical "
        "decisions, and do not present them as patient data.",
        "## Contents\n\n"
        f"- Real images: {summary['real_images']} (copied from `{Path(summary['dataset']).name}`, pseudonymised keys)\n"
        f"- Synthetic images: {summary['synthetic_images']} (target `{plan['target']}`, balanced by "
        f"{', '.join(plan['by'])}); rejected after all attempts: {summary['rejected']['count']} "
        f"{json.dumps(summary['rejected']['by_reason']) if summary['rejected']['count'] else ''}\n"
        "- Files: `manifest.jsonl` (record schema), `manifest.csv`"
        + (", `manifest.parquet`" if summary["tables"].get("parquet") else "")
        + (", `dicom/`" if "dicom" in summary else "")
        + (", `vindr/` (VinDr-Mammo layout)" if "vindr" in summary else "")
        + ", `images/` (16-bit PNG), `plan.json`, `expand.json`",
        "## Counts per condition (" + " / ".join(plan["by"]) + ")",
        _table(
            ["condition", "before", "after"],
            [[c, summary["counts_before"].get(c, 0), summary["counts_after"].get(c, 0)] for c in cells],
        ),
        "## Generator",
        _table(
            ["family", "model id (hash)", "checkpoint step", "weights", "image size"],
            [
                [
                    model.get("family"),
                    model.get("model_id"),
                    model.get("checkpoint_step"),
                    model.get("weights"),
                    model.get("image_size"),
                ]
            ],
        ),
        "Trained on: `" + json.dumps(summary.get("trained_on")) + "`",
        "Settings: `" + json.dumps(summary["settings"]) + "`",
        f"Copy filter: a synthetic image whose pixel correlation with a real image exceeds "
        f"{summary['copy_threshold'] if summary['copy_threshold'] is not None else '–'} is regenerated with the "
        "next seed.",
        "## Reproducing an image",
        "Every synthetic record carries its provenance (model id, sampler, steps, guidance, seed, attempt, "
        "conditions, parametric-model parameters, checks passed). `mammosynth regenerate THIS_FOLDER IMAGE_ID` "
        "makes it again and compares it bit for bit.",
    ]
    if evaluation:
        utility = evaluation.get("utility", {}).get("arms", {})
        parts += [
            "## Evaluation summary",
            f"Against {evaluation['inputs']['real_images']} real images of the held-out split "
            f"`{evaluation['inputs']['real_split']}` ({evaluation['inputs']['real_patients']} patients the "
            "generator never saw).",
            _table(
                ["C2ST AUC (95 % CI)", "KID ± std (own encoder)", "precision", "recall", "coverage", "copies"],
                [
                    [
                        f"{evaluation['realism_c2st']['auc']:.3f} ({_interval(evaluation['realism_c2st'])})",
                        f"{evaluation['fidelity']['features']['kernel_distance']:.4f} ± "
                        f"{evaluation['fidelity']['features']['kernel_distance_std']:.4f}",
                        round(evaluation["diversity"]["precision"], 3),
                        round(evaluation["diversity"]["recall"], 3),
                        round(evaluation["diversity"]["coverage"], 3),
                        evaluation.get("memorisation", {}).get("copies"),
                    ]
                ],
            ),
        ]
        if evaluation["realism_c2st"].get("source") == "held-out twins":
            parts.append(
                "The C2ST is on held-out twins: synthetic images generated for each held-out record's own "
                "conditions, so it runs in the held-out set's mix, not in this dataset's."
            )
        elif evaluation["realism_c2st"].get("mix"):
            parts.append(mix_note(evaluation["realism_c2st"]["mix"]))
        if utility:
            parts.append(
                _table(
                    ["training set", "AUC on held-out real"],
                    [[arm, round(v["auc"], 3) if "auc" in v else v.get("skipped")] for arm, v in utility.items()],
                )
            )
    parts.append(f"\nMade with mammosynth {summary['mammosynth']}.")
    return "\n\n".join(parts) + "\n"


def write_card(path: str | Path, summary: dict, evaluation: dict | None = None) -> Path:
    """:func:`render_card` written atomically."""
    path = Path(path)
    with atomic_write(path, "w") as handle:
        handle.write(render_card(summary, evaluation))
    return path
