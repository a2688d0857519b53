"""The web app in a real browser (headless Chromium driven by Playwright): the designer's preview follows
its controls and puts a mass where it is dropped; a reader completes a blinded study; the analysis page
shows the numbers computed from the scripted answers; answers survive a restart; a wrong token is refused."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from mammosynth.errors import InputError
from mammosynth.evaluate.reader_study import analyse_reads
from mammosynth.phantom import make_phantom_dataset
from mammosynth.phantom.labelmap import MALIGNANT_MASS

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


class Server:
    """The app under uvicorn in a thread, on a free local port."""

    def __init__(self, folder, translator=None) -> None:
        import uvicorn

        from mammosynth.app.server import create_app

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(folder, translator), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def call(url: str, token: str = "", body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Token": token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    if BROWSER is None:
        pytest.skip("no headless Chromium (make test installs it with apt where it can)")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def test_the_designer_preview_follows_the_controls_and_places_masses(browser, tmp_path):
    server = Server(tmp_path / "app")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(server.url + "/")
        page.wait_for_function("Number(document.body.dataset.previews || 0) >= 1")
        before = page.get_attribute("#labels", "src")
        page.fill("#slider-a", "0.35")
        page.dispatch_event("#slider-a", "input")
        page.wait_for_function(f"document.getElementById('labels').src !== {json.dumps(before)}")
        assert page.evaluate("window.designerParams().outline.a") == pytest.approx(0.35, abs=0.01)  # slider step
        box = page.locator("#labels").bounding_box()
        x, y = 0.25, 0.5  # inside the breast (chest wall on the left)
        count = page.evaluate("Number(document.body.dataset.previews)")
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.wait_for_function(f"Number(document.body.dataset.previews) > {count}")
        params = page.evaluate("window.designerParams()")
        assert len(params["masses"]) == 1 and params["masses"][0]["x"] == pytest.approx(x, abs=0.01)
        status, found = call(server.url + "/api/labels?size=128", body=params)
        labels = np.array(found["labels"])
        assert status == 200 and labels[int(y * 128), int(x * 128)] == MALIGNANT_MASS
        page.select_option("#view", "MLO")
        page.fill("#pectoral-width", "0.6")
        page.dispatch_event("#pectoral-width", "input")
        page.wait_for_function("window.designerParams().pectoral[0] === 0.6 && window.designerParams().view === 'MLO'")
        page.click("li[data-mass='0'] .mass-move")
        box = page.locator("#labels").bounding_box()
        page.mouse.click(box["x"] + 0.15 * box["width"], box["y"] + 0.35 * box["height"])
        page.wait_for_function("Math.abs(window.designerParams().masses[0].x - 0.15) < 0.01")
        page.fill("li[data-mass='0'] .mass-size_mm", "25")
        page.dispatch_event("li[data-mass='0'] .mass-size_mm", "change")
        page.wait_for_function("window.designerParams().masses[0].size_mm === 25")
        moved = np.array(
            call(server.url + "/api/labels?size=128", body=page.evaluate("window.designerParams()"))[1]["labels"]
        )
        assert moved[int(0.35 * 128), int(0.15 * 128)] == MALIGNANT_MASS and moved[64, 32] != MALIGNANT_MASS
        for _ in range(12):  # undo walks back through the size change, move, pectoral, view and placement
            if page.evaluate("window.designerParams().masses.length") == 0:
                break
            page.click("#undo")
        assert page.evaluate("window.designerParams().masses.length") == 0
        assert page.evaluate("window.designerParams().outline.a") == pytest.approx(0.35, abs=0.01)
        page.screenshot(path=str(tmp_path / "designer.png"))
        assert not errors, errors
    finally:
        server.stop()


def test_a_reader_completes_a_blinded_study_and_the_analysis_matches(browser, tmp_path):
    from mammosynth.app import StudyStore

    make_phantom_dataset(tmp_path / "real", n=4, size=64, seed=1)
    make_phantom_dataset(tmp_path / "synthetic", n=4, size=64, seed=2)
    made = StudyStore(tmp_path / "app").create_study(
        "pilot", tmp_path / "real", tmp_path / "synthetic", per_class=3, readers=["ann", "bob"], size=64
    )
    truth = StudyStore(tmp_path / "app").truth_for_tests(made["study"])
    server = Server(tmp_path / "app")
    scripted = []
    try:
        page = browser.new_page()
        page.goto(f"{server.url}/read?token={made['reader_tokens']['ann']}")
        for step in range(6):
            page.wait_for_function(f"document.body.dataset.answered === '{step}'")
            image = page.get_attribute("#image", "src").split("/")[-1].split("?")[0]
            answer = "synthetic" if step % 3 else "real"
            page.check(f"input[name=confidence][value='{1 + step % 5}']")
            page.click(f"#answer-{answer}")
            scripted.append({"reader": "ann", "image": image, "answer": answer, "confidence": 1 + step % 5})
        page.wait_for_function("document.body.dataset.state === 'done'")
        bob = made["reader_tokens"]["bob"]
        status, state = call(server.url + "/api/read/state", bob)
        status, _ = call(
            server.url + "/api/read/answer", bob, {"image": state["next"], "answer": "real", "confidence": 2}
        )
        assert status == 200
        scripted.append({"reader": "bob", "image": state["next"], "answer": "real", "confidence": 2})
        status, again = call(
            server.url + "/api/read/answer", bob, {"image": state["next"], "answer": "synthetic", "confidence": 5}
        )
        assert status == 400 and "already answered" in again["error"]
        status, refused = call(server.url + "/api/read/state", "wrong-token")
        assert status == 403 and "token" in refused["error"]
        page.goto(f"{server.url}/read?token=wrong-token")
        page.wait_for_function("document.body.dataset.state === 'refused'")
    finally:
        server.stop()
    restarted = Server(tmp_path / "app")  # answers live in SQLite
    try:
        page = browser.new_page()
        page.goto(f"{restarted.url}/study/{made['study']}?admin={made['admin_token']}")
        page.wait_for_function("document.body.dataset.state === 'loaded'")
        shown = json.loads(page.evaluate("document.body.dataset.analysis"))
        expected = analyse_reads(scripted, truth)["readers"]
        assert shown == json.loads(json.dumps(expected))
        page.screenshot(path=str(tmp_path / "study.png"))
        status, _ = call(f"{restarted.url}/api/study/{made['study']}/analysis", made["reader_tokens"]["ann"])
        assert status == 403
    finally:
        restarted.stop()


def test_a_translator_adds_the_realistic_image_and_exports_work(tmp_path):
    import base64
    import io

    import pydicom
    from PIL import Image

    from mammosynth import api

    make_phantom_dataset(tmp_path / "data", n=4, size=32, seed=1)
    api.train(tmp_path / "data", tmp_path / "run", model="translation", config="tiny", set=["train.steps=2"])
    server = Server(tmp_path / "app", translator=tmp_path / "run")
    try:
        _, params = call(server.url + "/api/preset/malignant?seed=3")
        assert params["masses"]
        status, preview = call(server.url + "/api/preview?size=128", body=params)
        assert status == 200 and preview["realistic"].startswith("data:image/png;base64,")
        realistic = Image.open(io.BytesIO(base64.b64decode(preview["realistic"].split(",", 1)[1])))
        assert realistic.size == (32, 32)
        request = urllib.request.Request(
            server.url + "/api/export/dicom?size=128",
            data=json.dumps(params).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            (tmp_path / "p.dcm").write_bytes(response.read())
        ds = pydicom.dcmread(tmp_path / "p.dcm")
        assert "SYNTHETIC" in ds.SeriesDescription and ds.pixel_array.shape == (128, 128)
        request = urllib.request.Request(
            server.url + "/api/export/realistic-dicom",
            data=json.dumps(params).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            (tmp_path / "r.dcm").write_bytes(response.read())
        real_looking = pydicom.dcmread(tmp_path / "r.dcm")
        assert real_looking.pixel_array.shape == (32, 32) and real_looking.BurnedInAnnotation == "NO"
        assert "SYNTHETIC" in real_looking.SeriesDescription
        status, error = call(server.url + "/api/preview?size=100", body=params)
        assert status == 422 and "must be one of 128, 256, 512" in error["error"] and error["field"] == "size"
        status, error = call(server.url + "/api/preview", body={**params, "view": "XX"})
        assert status == 422 and "unknown view" in error["error"]
    finally:
        server.stop()
    api.train(
        tmp_path / "data",
        tmp_path / "ldm",
        model="ldm",
        config="tiny",
        set=["train.ae_steps=2", "train.steps=4", "train.checkpoint_every=4", "train.sample_every=1000"],
    )
    diffusion = Server(tmp_path / "app2", translator=tmp_path / "ldm")
    try:
        status, preview = call(diffusion.url + "/api/preview?size=128", body=params)
        assert status == 200 and preview["realistic"].startswith("data:image/png;base64,")
    finally:
        diffusion.stop()
    from mammosynth.app.server import create_app

    api.train(tmp_path / "data", tmp_path / "gan", model="gan", config="tiny", set=["train.steps=2"])
    with pytest.raises(InputError, match="follow a layout"):
        create_app(tmp_path / "app3", translator=tmp_path / "gan")


def test_generation_in_the_browser_shows_a_gallery_zips_it_and_cancels(browser, tmp_path):
    import io
    import zipfile

    from mammosynth import api

    make_phantom_dataset(tmp_path / "data", n=8, size=32, seed=1, lesion="malignant-mass")
    api.train(
        tmp_path / "data", tmp_path / "app" / "models" / "gan-tiny", model="gan", config="tiny", set=["train.steps=4"]
    )
    server = Server(tmp_path / "app")
    try:
        page = browser.new_page()
        page.goto(server.url + "/generate")
        page.wait_for_function("document.body.dataset.models === '1'")
        page.fill("#n", "6")
        page.select_option("#lesion", "malignant-mass")
        page.select_option("#view", "CC")
        page.click("#start")
        page.wait_for_function("document.body.dataset.gallery === '6'", timeout=60_000)
        captions = page.locator("#gallery figcaption").all_text_contents()
        assert len(captions) == 6 and all("view=CC" in c and "pathology=malignant" in c for c in captions)
        href = page.get_attribute("#zip", "href")
        with urllib.request.urlopen(server.url + href, timeout=60) as response:
            archive = zipfile.ZipFile(io.BytesIO(response.read()))
        names = archive.namelist()
        assert sum(n.endswith(".png") and "/images/" in n for n in names) == 6
        assert any(n.endswith("manifest.jsonl") for n in names)
        page.screenshot(path=str(tmp_path / "generate.png"))
        from mammosynth.io.images import write_png

        region = np.zeros((32, 32), np.uint8)
        region[4:12, 20:28] = 255
        write_png(tmp_path / "mask.png", region, bits=8)
        page.set_input_files("#mask", str(tmp_path / "mask.png"))
        page.fill("#n", "2")
        page.click("#start")
        page.wait_for_function("document.body.dataset.gallery === '2'", timeout=60_000)
        captions = page.locator("#gallery figcaption").all_text_contents()
        assert all("lesion_x=0.75" in c and "lesion_y=0.25" in c for c in captions), captions
        page.set_input_files("#mask", [])
        page.fill("#n", "2000")
        page.click("#start")
        page.wait_for_function("document.body.dataset.job === 'running'")
        page.click("#cancel")
        page.wait_for_function("document.body.dataset.job === 'cancelled'", timeout=60_000)
        assert len(list((tmp_path / "app" / "jobs").iterdir())) == 2  # two finished; the cancelled one left nothing
        status, error = call(server.url + "/api/generate", body={"model": "../models", "n": 1})
        assert status == 400 and "unknown model" in error["error"]
    finally:
        server.stop()


def test_a_drawn_fibroglandular_region_shapes_the_label_map_and_paths_are_refused(browser, tmp_path):
    from mammosynth.phantom.labelmap import FIBROGLANDULAR

    server = Server(tmp_path / "app")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(server.url + "/")
        page.wait_for_function("Number(document.body.dataset.previews || 0) >= 1")
        page.select_option("#add-mode", "draw")
        box = page.locator("#labels").bounding_box()
        count = page.evaluate("Number(document.body.dataset.previews)")
        page.mouse.move(box["x"] + 0.08 * box["width"], box["y"] + 0.5 * box["height"])
        page.mouse.down()
        for step in range(1, 11):
            page.mouse.move(box["x"] + (0.08 + 0.02 * step) * box["width"], box["y"] + 0.5 * box["height"])
        page.mouse.up()
        page.wait_for_function(f"Number(document.body.dataset.previews) > {count}")
        params = page.evaluate("window.designerParams()")
        assert params["fgt_mask"].startswith("data:image/png;base64,") and not params["masses"]
        labels = np.array(call(server.url + "/api/labels?size=128", body=params)[1]["labels"])
        row = labels[64]
        assert (row[16:34] == FIBROGLANDULAR).mean() > 0.8  # the stroke, inside the breast
        assert (labels == FIBROGLANDULAR)[:40].sum() == 0  # and nowhere the brush did not go
        status, error = call(
            server.url + "/api/preview", body={**params, "fgt_mask": None, "fgt_mask_path": "/etc/passwd"}
        )
        assert status == 400 and "only name a region drawn in this app" in error["error"]
        status, error = call(server.url + "/api/preview", body={**params, "fgt_mask": "data:image/png;base64,AAAA"})
        assert status == 400 and "not a readable PNG" in error["error"]
        status, error = call(server.url + "/api/export/realistic", body=params)
        assert status == 400 and "no model loaded" in error["error"]
    finally:
        server.stop()
