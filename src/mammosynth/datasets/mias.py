"""mini-MIAS in its original distribution: ``Info.txt`` + ``mdbNNN.pgm`` (1024 × 1024, 200 µm pixels).

Info.txt rows: ``REF TISSUE CLASS [SEVERITY X Y RADIUS]``; lesion centres have a BOTTOM-left origin, so
``y_image = height - y``. Films come in pairs from one woman (mdb001/mdb002, …; even = left): the
pair shares one pseudonymous patient key.
"""

from __future__ import annotations

import re
from pathlib import Path

from mammosynth.datasets.base import Dataset, check_unique, rejecting
from mammosynth.datasets.schema import Finding, Record
from mammosynth.datasets.vocab import MIAS_CLASS, MIAS_DENSITY, MIAS_SEVERITY
from mammosynth.errors import InputError
from mammosynth.io.images import image_size
from mammosynth.io.pseudonym import pseudonymise, resolve_salt

SPACING_MM = 0.2
_ROW = re.compile(r"^(mdb\d{3})\s+(\S+)\s+(\S+)(.*)$")


def parse_info(path: Path, bad: list[str] | None = None) -> dict[str, dict]:
    """Info.txt → {ref: {"tissue", "lesions": [(class, severity, x, y, r) …]}} with clear errors; with
    ``bad`` a film with a bad row is left out and the row's problem noted there."""
    table: dict[str, dict] = {}
    rejected: set[str] = set()
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        match = _ROW.match(line.strip())
        if not match:
            continue
        with rejecting(bad) as outcome:
            _parse_row(table, *match.groups(), where=f"{path}:{number}")
        if outcome.failed:
            rejected.add(match.group(1))
    return {ref: entry for ref, entry in table.items() if ref not in rejected}


def _parse_row(table: dict, ref: str, tissue: str, klass: str, rest: str, where: str) -> None:
    if tissue not in MIAS_DENSITY:
        raise InputError(where, f"unknown background tissue {tissue!r}; known: F, G, D")
    if klass != "NORM" and klass not in MIAS_CLASS:
        raise InputError(where, f"unknown abnormality class {klass!r}; known: NORM, {', '.join(MIAS_CLASS)}")
    entry = table.setdefault(ref, {"tissue": tissue, "lesions": []})
    if klass == "NORM":
        return
    tokens = rest.split()
    severity = tokens[0] if tokens else None
    if severity is not None and severity not in MIAS_SEVERITY:
        raise InputError(where, f"unknown severity {severity!r}; known: {', '.join(MIAS_SEVERITY)}")
    location, coords = tokens[1:], None
    if location and not location[0].startswith("*"):  # "*NOTE 3*": a cluster with no centre given
        try:
            coords = tuple(float(t) for t in location)
        except ValueError:
            coords = ()
        if len(coords) != 3:
            raise InputError(where, f"lesion location must be three numbers X Y RADIUS, got {' '.join(location)!r}")
    entry["lesions"].append((klass, severity, coords))


def load_mias(root: str | Path, salt: str | None = None, skip_bad: bool = False) -> Dataset:
    """Records for every PGM in ``root`` listed in its Info.txt.

    Example:
        >>> ds = load_mias("../shared/data/mini-mias-original")  # doctest: +SKIP
        >>> ds.records[0].findings[0].geometry  # doctest: +SKIP
        'circle'
    """
    root = Path(root)
    info = root / "Info.txt"
    if not info.is_file():
        raise InputError(root, "no Info.txt: not a mini-MIAS folder")
    bad: list[str] | None = [] if skip_bad else None
    table = parse_info(info, bad)
    salt = resolve_salt(salt)
    records, skipped = [], []
    for ref, entry in sorted(table.items()):
        files = [p for p in (root / f"{ref}.pgm", root / f"{ref}.png") if p.is_file()]
        if not files:
            skipped.append(ref)
            continue
        image = files[0]
        width, height = image_size(image)
        number = int(ref[3:])
        findings = []
        for klass, severity, coords in entry["lesions"]:
            category, attributes = MIAS_CLASS[klass]
            finding = Finding(
                category=category,
                pathology=MIAS_SEVERITY.get(severity or "", "unknown"),
                attributes={**attributes, "source_class": klass},
            )
            if coords is not None:
                x, y, r = coords
                finding.geometry, finding.coords = "circle", [x, height - y, r]
            findings.append(finding)
        with rejecting(bad):
            records.append(
                Record(
                    image_id=ref,
                    path=image.name,
                    dataset="mini-mias",
                    patient_key=pseudonymise(str((number + 1) // 2), salt, namespace="mini-mias"),
                    view="MLO",
                    laterality="L" if number % 2 == 0 else "R",
                    density=MIAS_DENSITY[entry["tissue"]],
                    findings=findings,
                    spacing_mm=SPACING_MM * 1024 / max(width, height),
                    width=width,
                    height=height,
                    extra={"source_tissue": entry["tissue"]},
                ).validate(str(image), on_image=True)
            )
    check_unique((r.image_id for r in records), info)
    return Dataset(root=root, name="mini-mias", records=records, skipped=skipped, bad_annotations=bad or [])
