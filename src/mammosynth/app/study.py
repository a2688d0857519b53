"""Blinded reader studies, stored in SQLite (they survive a server restart): a study draws equal numbers of
real and synthetic images, re-encodes every one the same way (8-bit grayscale PNG of one size, no
metadata, an opaque random name), and gives each reader a token and a private random order. Answers are
unique per reader and image, so nothing is counted twice; a reader who comes back continues where they
stopped. Tokens are stored only as SHA-256 hashes.

Written on the standard library's ``sqlite3``: the schema is four small tables and needs no ORM."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np

from mammosynth.datasets import load_dataset
from mammosynth.errors import InputError
from mammosynth.evaluate.reader_study import ANSWERS, analyse_reads
from mammosynth.io.atomic import atomic_write
from mammosynth.io.images import encode_png, read_image
from mammosynth.preprocess.resize import resize_image

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (id TEXT PRIMARY KEY, name TEXT, admin_hash TEXT, size INTEGER, seed INTEGER,
                                    created TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, study TEXT, synthetic INTEGER, source TEXT);
CREATE TABLE IF NOT EXISTS readers (id TEXT PRIMARY KEY, study TEXT, name TEXT, token_hash TEXT UNIQUE,
                                    sequence TEXT);
CREATE TABLE IF NOT EXISTS answers (reader TEXT, image TEXT, answer TEXT, confidence INTEGER, density TEXT,
                                    birads TEXT, at TEXT DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (reader, image));
"""
DENSITY_CHOICES = ("A", "B", "C", "D")
BIRADS_CHOICES = ("1", "2", "3", "4", "5")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def blinded_png(pixels: np.ndarray, size: int) -> bytes:
    """The one encoding every study image gets: ``size``² 8-bit grayscale PNG without metadata chunks."""
    pixels = np.asarray(pixels, np.float32)
    return encode_png(resize_image(pixels, size, size) if pixels.shape != (size, size) else pixels, bits=8)


class StudyStore:
    """All studies under one folder: ``studies.sqlite`` and ``images/<opaque id>.png``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        (self.folder / "images").mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "studies.sqlite"
        with closing(self._connect()) as db, db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def create_study(
        self,
        name: str,
        real: str | Path,
        synthetic: str | Path,
        per_class: int = 20,
        readers: list[str] | None = None,
        size: int = 256,
        seed: int = 0,
    ) -> dict:
        """Draw ``per_class`` images from each dataset (fewer if one is smaller: the two stay equal), blind
        them, and make an admin token and one token per reader name. Returns the tokens — the only time
        they are shown. The synthetic class takes only records marked synthetic when its folder has any
        (an expanded dataset also holds the real images it started from), the real class never takes them;
        both classes must have one native size, since a resized image gives itself away."""
        readers = readers or ["reader-1"]
        if len(set(readers)) != len(readers) or not all(r.strip() for r in readers):
            raise InputError(None, "reader names must be distinct and non-empty")
        if per_class < 1 or not 64 <= size <= 1024:
            raise InputError(None, "a study needs per_class ≥ 1 and an image size of 64–1024")
        rng = np.random.default_rng(seed)
        sets = []
        for synthetic_flag, folder in enumerate((real, synthetic)):
            dataset = load_dataset(folder)
            records = [r for r in dataset.records if not r.synthetic]
            if synthetic_flag and any(r.synthetic for r in dataset.records):
                records = [r for r in dataset.records if r.synthetic]
            if not records:
                raise InputError(folder, "no real (unmarked) images here for the real class of a study")
            sets.append((dataset, records))
        count = min(per_class, len(sets[0][1]), len(sets[1][1]))
        chosen, sizes = [], []
        for synthetic_flag, (dataset, records) in enumerate(sets):
            picked = [records[int(k)] for k in rng.permutation(len(records))[:count]]
            pixels = [read_image(dataset.image_path(r)).pixels for r in picked]
            sizes.append({p.shape for p in pixels})
            chosen.append([(synthetic_flag, r, p) for r, p in zip(picked, pixels, strict=True)])
        if len(sizes[0] | sizes[1]) > 1:
            shown = {
                name: ", ".join(f"{w}×{h}" for h, w in sorted(found))
                for name, found in zip(("real", "synthetic"), sizes, strict=True)
            }
            raise InputError(
                synthetic,
                f"images differ in native size (real {shown['real']}, synthetic "
                f"{shown['synthetic']}); resizing would give the answer away: prepare both at one size",
            )
        study = secrets.token_hex(8)
        admin = secrets.token_urlsafe(24)
        rows = []
        for synthetic_flag, record, image in (item for group in chosen for item in group):
            folder = (real, synthetic)[synthetic_flag]
            opaque = secrets.token_hex(12)
            with atomic_write(self.folder / "images" / f"{opaque}.png", "wb") as handle:
                handle.write(blinded_png(image, size))
            rows.append((opaque, study, synthetic_flag, f"{Path(folder).name}:{record.image_id}"))
        tokens = {}
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO studies (id, name, admin_hash, size, seed) VALUES (?, ?, ?, ?, ?)",
                (study, name, _hash(admin), size, seed),
            )
            db.executemany("INSERT INTO images VALUES (?, ?, ?, ?)", rows)
            ids = [r[0] for r in rows]
            for reader in readers:
                token = secrets.token_urlsafe(24)
                order = [ids[i] for i in rng.permutation(len(ids))]
                db.execute(
                    "INSERT INTO readers VALUES (?, ?, ?, ?, ?)",
                    (secrets.token_hex(8), study, reader, _hash(token), json.dumps(order)),
                )
                tokens[reader] = token
        return {
            "study": study,
            "name": name,
            "images": len(rows),
            "per_class": count,
            "admin_token": admin,
            "reader_tokens": tokens,
        }

    def _reader(self, db: sqlite3.Connection, token: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM readers WHERE token_hash = ?", (_hash(token or ""),)).fetchone()
        if row is None or not hmac.compare_digest(row["token_hash"], _hash(token or "")):
            raise PermissionError("unknown reader token")
        return row

    def _study_for_admin(self, db: sqlite3.Connection, study: str, token: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM studies WHERE id = ?", (study,)).fetchone()
        if row is None or not hmac.compare_digest(row["admin_hash"], _hash(token or "")):
            raise PermissionError("unknown study or wrong admin token")
        return row

    def reader_state(self, token: str) -> dict:
        """Where a reader stands: answered, total and the next image's opaque id (None when done)."""
        with closing(self._connect()) as db:
            reader = self._reader(db, token)
            order = json.loads(reader["sequence"])
            answered = {r["image"] for r in db.execute("SELECT image FROM answers WHERE reader = ?", (reader["id"],))}
            study = db.execute("SELECT name FROM studies WHERE id = ?", (reader["study"],)).fetchone()
        remaining = [i for i in order if i not in answered]
        return {
            "study": study["name"],
            "reader": reader["name"],
            "answered": len(answered),
            "total": len(order),
            "next": remaining[0] if remaining else None,
        }

    def image(self, token: str, image: str) -> bytes:
        """The blinded PNG of an image in the reader's study (nothing else is reachable)."""
        with closing(self._connect()) as db:
            reader = self._reader(db, token)
            if image not in json.loads(reader["sequence"]):
                raise PermissionError("image not in this reader's study")
        return (self.folder / "images" / f"{image}.png").read_bytes()

    def answer(
        self,
        token: str,
        image: str,
        answer: str,
        confidence: int,
        density: str | None = None,
        birads: str | None = None,
    ) -> dict:
        """Record one answer; a second answer to the same image is refused (nothing counts twice)."""
        if answer not in ANSWERS:
            raise InputError(None, f"answer must be one of {', '.join(ANSWERS)}")
        if not isinstance(confidence, int) or not 1 <= confidence <= 5:
            raise InputError(None, "confidence must be a whole number 1–5")
        if density not in (None, "", *DENSITY_CHOICES) or birads not in (None, "", *BIRADS_CHOICES):
            raise InputError(None, "density must be A–D and BI-RADS 1–5 when given")
        with closing(self._connect()) as db, db:
            reader = self._reader(db, token)
            if image not in json.loads(reader["sequence"]):
                raise PermissionError("image not in this reader's study")
            try:
                db.execute(
                    "INSERT INTO answers (reader, image, answer, confidence, density, birads) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (reader["id"], image, answer, confidence, density or None, birads or None),
                )
            except sqlite3.IntegrityError:
                raise InputError(None, "this image was already answered") from None
        return self.reader_state(token)

    @staticmethod
    def _truth(db: sqlite3.Connection, study: str) -> dict[str, bool]:
        return {
            r["id"]: bool(r["synthetic"])
            for r in db.execute("SELECT id, synthetic FROM images WHERE study = ?", (study,))
        }

    def _answers(self, db: sqlite3.Connection, study: str) -> tuple[list[dict], dict[str, bool]]:
        truth = self._truth(db, study)
        answers = [
            dict(r)
            for r in db.execute(
                "SELECT readers.name AS reader, answers.image AS image, answer, confidence, density, birads, at "
                "FROM answers JOIN readers ON readers.id = answers.reader WHERE readers.study = ? "
                "ORDER BY readers.name, at, answers.image",
                (study,),
            )
        ]
        return answers, truth

    def analysis(self, study: str, admin_token: str) -> dict:
        """:func:`~mammosynth.evaluate.reader_study.analyse_reads` of the study's answers so far."""
        with closing(self._connect()) as db:
            row = self._study_for_admin(db, study, admin_token)
            answers, truth = self._answers(db, study)
        found = analyse_reads(answers, truth)
        found["study"] = {
            "id": study,
            "name": row["name"],
            "images": len(truth),
            "synthetic_images": sum(truth.values()),
        }
        return found

    def export_csv(self, study: str, admin_token: str) -> str:
        """Every answer with the truth, one row each (reader names, opaque image ids, no source paths)."""
        with closing(self._connect()) as db:
            self._study_for_admin(db, study, admin_token)
            answers, truth = self._answers(db, study)
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["reader", "image", "truth", "answer", "confidence", "density", "birads", "answered_at"])
        for a in answers:
            writer.writerow(
                [
                    a["reader"],
                    a["image"],
                    "synthetic" if truth[a["image"]] else "real",
                    a["answer"],
                    a["confidence"],
                    a["density"] or "",
                    a["birads"] or "",
                    a["at"],
                ]
            )
        return text.getvalue()

    def image_order_for_tests(self, token: str) -> list[str]:
        """A reader's image order (test and admin helper; readers only ever see ``next``)."""
        with closing(self._connect()) as db:
            return json.loads(self._reader(db, token)["sequence"])

    def truth_for_tests(self, study: str) -> dict[str, bool]:
        """Image → is synthetic, for tests that script answers."""
        with closing(self._connect()) as db:
            return self._truth(db, study)
