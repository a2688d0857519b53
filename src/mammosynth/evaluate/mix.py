"""The mix of conditions behind a two-sample test. A classifier that tells real from synthetic also tells a
60 %-normal real set from an all-lesion synthetic one (a lesion-balanced expansion): if it spotted every
lesion, prevalence alone would score AUC 0.6 + 0.4 / 2 = 0.8 with perfectly realistic images. So the C2ST
draws the synthetic images in the real set's mix of view × finding when the synthetic set can supply it,
and says how far apart the two mixes were when it cannot."""

from __future__ import annotations

from collections import Counter

import numpy as np

from mammosynth.evaluate.lesions import conditions_of

MIN_MATCHED = 20  # fewer synthetic images in the real mix (or fewer than the real set) and the mix is not matched


def stratum(record) -> str:
    """``VIEW/finding`` of a record: what a generated image asked for, what a real record's annotation says.

    Example:
        >>> from mammosynth.datasets.schema import Record
        >>> stratum(Record(image_id="a", path="a.png", dataset="d", patient_key="p", width=8, height=8, view="CC"))
        'CC/none'
    """
    conditions = conditions_of(record)
    return f"{conditions.get('view') or 'unknown'}/{conditions.get('category') or 'none'}"


def match_mix(real_records: list, synthetic_records: list, seed: int = 0) -> dict:
    """Indices of synthetic images drawn (without replacement, seeded) in the real set's proportions of
    view × finding, as many as the scarcest stratum allows, and how the two mixes compare.

    Returns ``matched`` (False when some real stratum has no synthetic image, or the mix leaves fewer than
    ``MIN_MATCHED`` synthetic images and fewer than the real set has), ``indices`` (all synthetic images when
    not matched), ``strata`` (per stratum: real count, synthetic available, synthetic used),
    ``total_variation`` (between the two mixes before matching, 0 = same mix) and ``reason`` when not matched.

    Example:
        >>> from mammosynth.datasets.schema import Record
        >>> def r(v): return Record(image_id=v, path="a", dataset="d", patient_key=v, width=8, height=8, view=v)
        >>> synthetic = [r("CC")] * 3 + [r("MLO")]
        >>> out = match_mix([r("CC"), r("MLO")], synthetic)
        >>> out["matched"], [stratum(synthetic[i]) for i in out["indices"]], out["total_variation"]
        (True, ['CC/none', 'MLO/none'], 0.25)
    """
    real = Counter(stratum(r) for r in real_records)
    pools: dict[str, list[int]] = {}
    for k, record in enumerate(synthetic_records):
        pools.setdefault(stratum(record), []).append(k)
    n_real, n_synthetic = len(real_records), len(synthetic_records)
    keys = sorted(set(real) | set(pools))
    tv = 0.5 * sum(abs(real[s] / n_real - len(pools.get(s, [])) / n_synthetic) for s in keys)
    multiple = min(len(pools.get(s, [])) / count for s, count in real.items())
    take = {s: int(np.floor(multiple * count)) for s, count in real.items()}
    strata = {s: {"real": real[s], "synthetic": len(pools.get(s, [])), "used": take.get(s, 0)} for s in keys}
    missing = [s for s in real if not pools.get(s)]
    if missing or sum(take.values()) < min(MIN_MATCHED, n_real):
        reason = (
            f"no synthetic image of {', '.join(sorted(missing))}"
            if missing
            else f"only {sum(take.values())} synthetic images fit the real mix of {n_real}"
        )
        for row in strata.values():
            row["used"] = row["synthetic"]
        return {
            "matched": False,
            "indices": list(range(n_synthetic)),
            "strata": strata,
            "total_variation": tv,
            "reason": reason,
        }
    rng = np.random.default_rng(seed)
    indices = sorted(int(i) for s, n in take.items() for i in rng.choice(pools[s], size=n, replace=False))
    return {"matched": True, "indices": indices, "strata": strata, "total_variation": tv, "reason": None}


def mix_note(mix: dict) -> str:
    """One sentence on the mix a C2ST ran on (the ``mix`` of :func:`match_mix` without its indices).

    Example:
        >>> mix_note({"matched": False, "total_variation": 0.6, "reason": "no synthetic image of MLO/none"})[:60]
        'Synthetic images not matched to the real mix of view × findi'
    """
    if mix["matched"]:
        used = sum(row["used"] for row in mix["strata"].values())
        return (
            f"{used} synthetic images drawn in the real set's mix of view × finding (the mixes differed by "
            f"{mix['total_variation']:.2f} in total variation), so the AUC measures realism, not the mix."
        )
    return (
        f"Synthetic images not matched to the real mix of view × finding ({mix['reason']}; the mixes differ by "
        f"{mix['total_variation']:.2f} in total variation): the AUC measures the difference in mix as well as "
        "realism."
    )
