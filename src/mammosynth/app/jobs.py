"""Generation jobs of the web app: each runs :func:`~mammosynth.generate.dataset.generate_dataset` in a
background thread into ``jobs/<id>`` (written atomically: a cancelled or failed job leaves nothing),
reports progress, and can be cancelled between batches. Models are the run folders under ``models/``,
picked by name — a request never names a path."""

from __future__ import annotations

import io
import secrets
import threading
import zipfile
from pathlib import Path

from mammosynth.errors import InputError
from mammosynth.families import family, generator_names
from mammosynth.generate.dataset import generate_dataset
from mammosynth.training.checkpoint import find_checkpoint, open_checkpoint

MAX_IMAGES = 2000


class Cancelled(Exception):
    """Raised from the progress callback to stop a job."""


class Jobs:
    """Models under ``folder/models`` and generation jobs under ``folder/jobs``."""

    def __init__(self, folder: str | Path) -> None:
        self.models_dir = Path(folder) / "models"
        self.jobs_dir = Path(folder) / "jobs"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, dict] = {}
        self.lock = threading.Lock()

    def models(self) -> list[dict]:
        """Run folders with a checkpoint of a generator family."""
        found = []
        for run in sorted(p for p in self.models_dir.iterdir() if p.is_dir()):
            if find_checkpoint(run) is None:
                continue
            checkpoint = open_checkpoint(run)
            if checkpoint.family in generator_names():
                found.append(
                    {
                        "name": run.name,
                        "family": checkpoint.family,
                        "step": checkpoint.step,
                        "image_size": checkpoint.state["model"].get("image_size"),
                    }
                )
        return found

    def start(
        self,
        model: str,
        n: int,
        seed: int = 0,
        conditions: dict | None = None,
        guidance: float = 3.0,
        steps: int = 50,
        mask: Path | None = None,
    ) -> str:
        """Start a job (``mask``: a stored lesion-region PNG of the model's size); returns its id."""
        names = {m["name"]: m for m in self.models()}
        if model not in names:
            raise InputError(None, f"unknown model {model!r}; available: {', '.join(names) or 'none'}")
        if not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
            raise InputError(None, f"count must be 1–{MAX_IMAGES}")
        job = secrets.token_hex(8)
        state = {"id": job, "model": model, "n": n, "done": 0, "state": "running", "error": None, "cancel": False}
        with self.lock:
            self.jobs[job] = state

        def progress(done: int, total: int) -> None:
            state["done"] = done
            if state["cancel"]:
                raise Cancelled

        def run() -> None:
            try:
                generate_dataset(
                    self.models_dir / model,
                    self.jobs_dir / job,
                    n=n,
                    conditions=conditions or {},
                    seed=seed,
                    guidance=guidance,
                    steps=steps,
                    mask=mask,
                    layout="phantom" if family(names[model]["family"]).needs_layout else "none",
                    progress=progress,
                    device="cpu",
                )
                state["state"] = "done"
            except Cancelled:
                state["state"] = "cancelled"
            except InputError as exc:
                state["state"], state["error"] = "failed", str(exc)
            except Exception as exc:  # a job must report, not kill the server thread silently
                state["state"], state["error"] = "failed", f"{type(exc).__name__}: {exc}"

        threading.Thread(target=run, daemon=True).start()
        return job

    def status(self, job: str) -> dict:
        with self.lock:
            if job not in self.jobs:
                raise InputError(None, f"unknown job {job!r}")
            return {k: v for k, v in self.jobs[job].items() if k != "cancel"}

    def cancel(self, job: str) -> dict:
        with self.lock:
            if job not in self.jobs:
                raise InputError(None, f"unknown job {job!r}")
            self.jobs[job]["cancel"] = True
        return self.status(job)

    def folder(self, job: str) -> Path:
        if self.status(job)["state"] != "done":
            raise InputError(None, "the job has not finished")
        return self.jobs_dir / job

    def zip(self, job: str) -> bytes:
        """The job's dataset folder (record-schema layout) as a zip."""
        root = self.folder(job)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    archive.write(path, f"mammosynth-{job}/{path.relative_to(root)}")
        return buffer.getvalue()
