"""``mammosynth serve``: the local web app (FastAPI + uvicorn) — the parametric breast designer and the
blinded reader study. Pages are plain HTML with inline script (no CDN, works offline); every action is
an HTTP call the tests drive in headless Chromium.

Safety: binds to 127.0.0.1 unless told otherwise; study data needs a token (readers) or the admin token
(analysis); request bodies are size-bounded; no value from a request becomes a file-system path (images
are looked up by opaque ids in the database)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import time
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mammosynth import validate as check
from mammosynth.app.jobs import MAX_IMAGES, Jobs
from mammosynth.app.study import StudyStore
from mammosynth.errors import InputError
from mammosynth.io.images import encode_png
from mammosynth.phantom.labelmap import draw_label_map, prepared_label_map, to_colour
from mammosynth.phantom.params import MASS_KINDS, MASS_SHAPES, PhantomParams
from mammosynth.phantom.render import render_phantom
from mammosynth.phantom.sampling import outline_stats, sample_params

MAX_BODY_BYTES = 1_000_000
PREVIEW_SIZES = (128, 256, 512)
MAX_PREVIEWS = 2  # previews, exports and generation requests computed at once (worker threads)
MAX_WAITING = 8  # more waiting than this are refused (429) rather than queued without bound


def _or(value, default):
    return default if value is None else value


def _size(size: int) -> int:
    if size not in PREVIEW_SIZES:
        raise RequestError("size", f"must be one of {', '.join(map(str, PREVIEW_SIZES))}, got {size}")
    return size


def _png(array: np.ndarray, bits: int = 8) -> bytes:
    return encode_png(np.asarray(array), bits=bits)


def _uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


MAX_MASK_BYTES = 512_000


def store_mask(uri: object, uploads: Path, what: str) -> Path:
    """Check a PNG data URI (size, format, dimensions) and store it as a binary mask under ``uploads``,
    named by its content's hash; returns the stored path."""
    prefix = "data:image/png;base64,"
    if not isinstance(uri, str) or not uri.startswith(prefix):
        raise InputError("designer", f"{what} must be a PNG data URI")
    try:
        data = base64.b64decode(uri[len(prefix) :], validate=True)
    except ValueError:
        raise InputError("designer", f"{what} is not valid base64") from None
    if len(data) > MAX_MASK_BYTES:
        raise InputError("designer", f"{what} is over {MAX_MASK_BYTES // 1000} kB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or max(image.size) > 1024:
                raise InputError("designer", f"{what} must be a PNG of at most 1024 px")
            mask = np.asarray(image.convert("L")) > 127
    except OSError:
        raise InputError("designer", f"{what} is not a readable PNG") from None
    target = uploads / (hashlib.sha256(data).hexdigest()[:32] + ".png")
    if not target.is_file():
        from mammosynth.io.images import write_png

        write_png(target, mask.astype(np.uint8) * 255, bits=8)
    return target


class RequestError(InputError):
    """A request whose body or query is malformed or out of bounds: HTTP 422 naming the field."""


class BodyLimit:
    """ASGI middleware that caps every request body at ``limit`` bytes as it streams in: a declared
    ``Content-Length`` over the limit is refused before reading, and a chunked body (no length) is counted
    chunk by chunk and refused once it passes the limit, so no body over it is ever held in memory."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            response = JSONResponse({"error": f"request body over {self.limit // 1000} kB"}, status_code=413)
            return await response(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, f"request body over {self.limit // 1000} kB")
            return message

        return await self.app(scope, counted, send)


async def json_object(request: Request) -> dict:
    """The request body as a JSON object (dict), or one 422 line saying what is wrong with it."""
    raw = await request.body()
    if not raw.strip():
        raise RequestError("request body", "is empty; send a JSON object")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RequestError("request body", "is not valid JSON") from None
    if not isinstance(value, dict):
        raise RequestError("request body", f"must be a JSON object, got {type(value).__name__}")
    return value


def _params(body: dict, uploads: Path) -> PhantomParams:
    """Designer parameters from a request body. A drawn fibroglandular region arrives as a PNG data URI
    (``fgt_mask``), is checked and stored content-addressed under ``uploads``; a ``fgt_mask_path`` from the
    browser is accepted only when it names such a stored file (no request path reaches anything else).
    Every value is checked (:meth:`PhantomParams.from_dict`): a bad one is a 422 naming its field."""
    body = dict(body)
    drawn = body.pop("fgt_mask", None)
    given = body.get("fgt_mask_path")
    if given is not None:
        resolved = Path(str(given)).resolve()
        if resolved.parent != uploads.resolve() or not resolved.is_file():
            raise InputError("designer", "fgt_mask_path may only name a region drawn in this app")
    if drawn:
        body["fgt_mask_path"] = str(store_mask(drawn, uploads, "the drawn region"))
    try:
        return PhantomParams.from_dict(body, "designer")
    except InputError as exc:
        raise RequestError(exc.path, exc.problem) from None


def preset(name: str, seed: int = 0) -> PhantomParams:
    """Designer presets: ``random`` (any draw), ``median`` (the real-data median outline), ``normal`` /
    ``benign`` / ``malignant`` (a draw from the empirical distribution of that class of real breasts)."""
    if name == "median":
        return sample_params(seed, view="CC", laterality="L", density="B", mode="median")
    if name == "random":
        return sample_params(seed, mode="uniform")
    lesions = {"normal": "none", "benign": "benign-mass", "malignant": "malignant-mass"}
    if name not in lesions:
        raise InputError("preset", f"unknown preset {name!r}; known: random, median, normal, benign, malignant")
    return sample_params(seed, lesion=lesions[name])


def realistic(pipeline, params: PhantomParams, steps: int = 20) -> np.ndarray:
    """The designed breast through a generator that follows a layout: a translator (or a GAN built on label
    maps) renders the label map; a latent diffusion model or a layout GAN follows its spatial channels; each
    with the breast's conditions."""
    from mammosynth.models.conditioning import spatial_from_labels, validate_conditions

    framed, _ = prepared_label_map(params, pipeline.size)
    lesion = "none"
    if params.masses:
        lesion = f"{params.masses[0].kind}-mass"
    elif params.calcifications:
        lesion = "calcification"
    conditions = validate_conditions(
        {"view": params.view, "laterality": params.laterality, "density": params.density, "lesion": lesion}, "designer"
    )
    return pipeline.sample(
        [conditions],
        [params.seed],
        sampler="ddim",
        steps=steps,
        guidance=3.0,
        spatial=spatial_from_labels(framed)[None],
        labels=framed[None] if pipeline.uses_labels else None,
    )[0]


def create_app(folder: str | Path, translator: str | Path | None = None, device: str = "auto") -> FastAPI:
    """The app over the folder ``folder`` (studies, models, jobs, uploads); ``translator`` (a translation or
    latent diffusion checkpoint) adds the realistic image to the designer's preview."""
    store = StudyStore(folder)
    jobs = Jobs(folder)
    uploads = Path(folder) / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    pipeline = None
    if translator is not None:
        from mammosynth.generate.pipeline import load_pipeline

        pipeline = load_pipeline(str(translator), device)
        if not pipeline.follows_layout:
            raise InputError(
                translator,
                "the designer previews through a model that can follow a layout (translation, latent diffusion, "
                f"a GAN with model.spatial); this is a {pipeline.family!r} checkpoint that does not",
            )
    app = FastAPI(title="mammosynth", docs_url=None, redoc_url=None)
    pages = resources.files("mammosynth.app").joinpath("pages")

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    busy = {"running": 0}  # requests in off_loop, running or waiting (app.state.busy: tests and monitoring)
    app.state.busy = busy
    workers = asyncio.Semaphore(MAX_PREVIEWS)

    async def off_loop(work, *args):
        """CPU work (drawing, rendering, sampling a model) in a worker thread, never on the event loop, at
        most ``MAX_PREVIEWS`` at once; more than ``MAX_WAITING`` waiting are refused with 429."""
        if busy["running"] >= MAX_PREVIEWS + MAX_WAITING:
            raise HTTPException(429, "the server is busy with other previews; try again in a moment")
        busy["running"] += 1
        try:
            async with workers:
                return await run_in_threadpool(work, *args)
        finally:
            busy["running"] -= 1

    @app.exception_handler(RequestError)
    async def request_error(_request: Request, exc: RequestError):
        return JSONResponse({"error": str(exc), "field": exc.path}, status_code=422)

    @app.exception_handler(InputError)
    async def input_error(_request: Request, exc: InputError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body"))
        return JSONResponse({"error": f"{field}: {first.get('msg', 'invalid')}", "field": field}, status_code=422)

    @app.exception_handler(PermissionError)
    async def refused(_request: Request, exc: PermissionError):
        return JSONResponse({"error": str(exc) or "forbidden"}, status_code=403)

    @app.get("/", response_class=HTMLResponse)
    def designer_page() -> str:
        return pages.joinpath("designer.html").read_text()

    @app.get("/api/bounds")
    def bounds() -> dict:
        stats = outline_stats()["classes"]["all"]
        names = outline_stats()["names"]
        return {
            "outline": {n: [lo, hi] for n, lo, hi in zip(names, stats["min"], stats["max"], strict=True)},
            "mass_kinds": MASS_KINDS,
            "mass_shapes": MASS_SHAPES,
            "realistic": pipeline is not None,
        }

    @app.get("/api/preset/{name}")
    def get_preset(name: str, seed: int = 0) -> dict:
        return preset(name, seed).to_dict()

    def preview_work(body: dict, size: int) -> dict:
        started = time.perf_counter()
        params = _params(body, uploads)
        labels = draw_label_map(params, size)
        phantom = render_phantom(params, labels)
        out = {
            "labels": _uri(_png(to_colour(labels, 1))),
            "phantom": _uri(_png(phantom)),
            "realistic": None,
            "label_counts": {int(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True), strict=True)},
        }
        if pipeline is not None:
            out["realistic"] = _uri(_png(realistic(pipeline, params)))
        out["milliseconds"] = round(1000 * (time.perf_counter() - started), 1)
        return out

    @app.post("/api/preview")
    async def preview(request: Request, size: int = 256) -> dict:
        return await off_loop(preview_work, await json_object(request), _size(size))

    @app.post("/api/labels")
    async def labels_array(request: Request, size: int = 256) -> dict:
        """The integer label map as nested lists (tests and scripts check where things landed)."""
        body, size = await json_object(request), _size(size)
        return await off_loop(lambda: {"labels": draw_label_map(_params(body, uploads), size).tolist()})

    @app.post("/api/export/{kind}")
    async def export(kind: str, request: Request, size: int = 512) -> Response:
        return await off_loop(export_work, kind, await json_object(request), _size(size))

    def export_work(kind: str, body: dict, size: int) -> Response:
        params = _params(body, uploads)
        labels = draw_label_map(params, size)
        if kind == "params":
            return Response(
                json.dumps(params.to_dict(), indent=1),
                media_type="application/json",
                headers={"Content-Disposition": 'attachment; filename="phantom.json"'},
            )
        if kind == "labels":
            data = _png(labels.astype(np.float32) / 255.0)
        elif kind in ("labels-colour1", "labels-colour2"):
            data = _png(to_colour(labels, int(kind[-1])))
        elif kind == "phantom":
            data = _png(render_phantom(params, labels), bits=16)
        elif kind in ("realistic", "realistic-dicom") and pipeline is None:
            raise InputError("designer", "no model loaded: start serve with --model to export the realistic image")
        elif kind == "realistic":
            data = _png(realistic(pipeline, params), bits=16)
        elif kind in ("dicom", "realistic-dicom"):
            import tempfile

            from mammosynth.io.dicom import write_dicom

            pixels, spacing = render_phantom(params, labels), params.field_mm / size
            what = "mammosynth parametric phantom"
            if kind == "realistic-dicom":
                pixels, spacing = realistic(pipeline, params), None
                what = f"mammosynth {pipeline.family} image of a designed breast"
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "image.dcm"
                write_dicom(
                    path,
                    pixels,
                    view=params.view,
                    laterality=params.laterality,
                    patient_key="synthetic-designer",
                    spacing_mm=spacing,
                    synthetic=True,
                    description=what,
                )
                return Response(
                    path.read_bytes(),
                    media_type="application/dicom",
                    headers={"Content-Disposition": f'attachment; filename="{kind}.dcm"'},
                )
        else:
            raise InputError("designer", f"unknown export {kind!r}")
        return Response(
            data, media_type="image/png", headers={"Content-Disposition": f'attachment; filename="{kind}.png"'}
        )

    @app.get("/read", response_class=HTMLResponse)
    def reader_page() -> str:
        return pages.joinpath("reader.html").read_text()

    @app.get("/api/read/state")
    def read_state(x_token: str = Header("")) -> dict:
        return store.reader_state(x_token)

    @app.get("/api/read/image/{image}")
    def read_image(image: str, token: str = "") -> Response:
        if not image.isalnum():
            raise HTTPException(404)
        return Response(store.image(token, image), media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/read/answer")
    async def read_answer(request: Request, x_token: str = Header("")) -> dict:
        body = await json_object(request)
        return await run_in_threadpool(
            store.answer,
            x_token,
            str(body.get("image", "")),
            str(body.get("answer", "")),
            body.get("confidence"),
            body.get("density"),
            body.get("birads"),
        )

    @app.get("/study/{study}", response_class=HTMLResponse)
    def study_page(study: str) -> str:
        return pages.joinpath("study.html").read_text()

    @app.get("/api/study/{study}/analysis")
    def analysis(study: str, x_token: str = Header("")) -> dict:
        return store.analysis(study, x_token)

    @app.get("/api/study/{study}/answers.csv")
    def answers_csv(study: str, token: str = "") -> PlainTextResponse:
        return PlainTextResponse(
            store.export_csv(study, token),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="answers.csv"'},
        )

    @app.get("/generate", response_class=HTMLResponse)
    def generate_page() -> str:
        return pages.joinpath("generate.html").read_text()

    @app.get("/api/models")
    def models() -> list[dict]:
        return jobs.models()

    @app.post("/api/generate")
    async def generate(request: Request) -> dict:
        body = await json_object(request)
        return await off_loop(generate_work, body)

    def generate_work(body: dict) -> dict:
        from mammosynth.models.conditioning import validate_conditions

        where = "generate form"
        try:
            check.mapping(
                body, where, "request body", ("model", "n", "seed", "conditions", "guidance", "steps", "mask")
            )
            conditions = check.mapping(body.get("conditions") or {}, where, "conditions")
            conditions = {k: v for k, v in conditions.items() if v not in (None, "")}
            validate_conditions(conditions, where)
            model = check.text(body.get("model", ""), where, "model", 200)
            n = check.number(body.get("n"), where, "n", lo=1, hi=MAX_IMAGES, integer=True)
            given = {k: body.get(k) for k in ("seed", "guidance", "steps")}  # null or absent: the default
            seed = check.number(_or(given["seed"], 0), where, "seed", lo=0, hi=2**63 - 1, integer=True)
            guidance = check.number(_or(given["guidance"], 3.0), where, "guidance", lo=0, hi=50)
            steps = check.number(_or(given["steps"], 50), where, "steps", lo=1, hi=1000, integer=True)
        except InputError as exc:
            raise RequestError(exc.path, exc.problem) from None
        mask = store_mask(body["mask"], uploads, "the lesion mask") if body.get("mask") else None
        job = jobs.start(model, n, seed=seed, conditions=conditions, guidance=guidance, steps=steps, mask=mask)
        return jobs.status(job)

    @app.get("/api/jobs/{job}")
    def job_status(job: str) -> dict:
        return jobs.status(job)

    @app.post("/api/jobs/{job}/cancel")
    def job_cancel(job: str) -> dict:
        return jobs.cancel(job)

    @app.get("/api/jobs/{job}/gallery")
    def gallery(job: str) -> list[dict]:
        from mammosynth.datasets import iter_manifest

        return [
            {
                "image_id": r.image_id,
                "url": f"/api/jobs/{job}/image/{r.image_id}",
                "provenance": r.extra.get("provenance"),
            }
            for r in iter_manifest(jobs.folder(job))
        ]

    @app.get("/api/jobs/{job}/image/{image_id}")
    def job_image(job: str, image_id: str) -> Response:
        from mammosynth.datasets import iter_manifest
        from mammosynth.io.images import read_image as load

        root = jobs.folder(job)
        for record in iter_manifest(root):
            if record.image_id == image_id:
                return Response(_png(load(root / record.path).pixels), media_type="image/png")
        raise HTTPException(404)

    @app.get("/api/jobs/{job}/zip")
    def job_zip(job: str) -> Response:
        return Response(
            jobs.zip(job),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="mammosynth-{job}.zip"'},
        )

    return app


def serve(
    folder: str | Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    translator: str | Path | None = None,
    device: str = "auto",
) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(folder, translator, device), host=host, port=port, log_level="warning")
