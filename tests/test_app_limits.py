"""The web app under hostile requests (no browser): bodies over the limit are refused as they stream in,
chunked ones included; malformed or out-of-range bodies get 422 naming the field, never 500; CPU work runs
off the event loop, so a page answers while previews are busy, and previews past the queue's bound get 429."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request

import pytest

from mammosynth.app import server as app_server
from test_app import Server, call


def post_raw(port: int, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    status, data = response.status, response.read()
    connection.close()
    return status, json.loads(data) if data else {}


def post_chunked(port: int, path: str, chunks) -> tuple[int, bytes]:
    """POST a body with Transfer-Encoding: chunked (no Content-Length); returns the status and the response
    (what the server answered, also when it stopped reading part-way)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.putrequest("POST", path)
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    try:
        for chunk in chunks:
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading: what it answered is still there
    response = connection.getresponse()
    status, data = response.status, response.read()
    connection.close()
    return status, data


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("app"))
    yield server
    server.stop()


def test_bodies_over_the_limit_are_refused_as_they_stream_in(app):
    limit = app_server.MAX_BODY_BYTES
    status, data = post_raw(app.port, "/api/preview", b"x", {"Content-Length": str(limit + 1)})
    assert status == 413 and "over" in data["error"]
    # a chunked body declares no length: it is counted as it arrives and refused past the limit
    chunk = b" " * 65_536
    status, data = post_chunked(app.port, "/api/preview", (chunk for _ in range(200)))  # 13 MB offered
    assert status == 413 and b"over 1000 kB" in data
    # and a chunked body under the limit is read as usual
    body = json.dumps({"view": "MLO", "seed": 3}).encode()
    status, data = post_chunked(app.port, "/api/labels?size=128", [body[:10], body[10:]])
    assert status == 200 and len(json.loads(data)["labels"]) == 128
    status, _ = call(app.url + "/api/bounds")
    assert status == 200  # the server is still there


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (b"{not json", "request body", "is not valid JSON"),
        (b"", "request body", "is empty"),
        (b"[1, 2]", "request body", "must be a JSON object, got list"),
        (b'"CC"', "request body", "must be a JSON object, got str"),
        (b"\xff\xfe", "request body", "is not valid JSON"),
        (b'{"field_mm": 0}', "designer", "field_mm must be at least 10 and at most 1000, got 0"),
        (b'{"seed": -1}', "designer", "seed must be at least 0"),
        (b'{"seed": "abc"}', "designer", "seed must be a number, got 'abc'"),
        (b'{"seed": 1.5}', "designer", "seed must be a whole number"),
        (b'{"outline": {"a": NaN}}', "designer", "outline.a must be a finite number, got nan"),
        (b'{"outline": [1]}', "designer", "outline must be an object of named fields, got list"),
        (b'{"masses": [{"size_mm": -3}]}', "designer", "masses[0].size_mm must be above 0"),
        (b'{"masses": [{"x": "left"}]}', "designer", "masses[0].x must be a number"),
        (b'{"masses": [{"kind": "huge"}]}', "designer", "unknown masses[0].kind 'huge'"),
        (
            b'{"calcifications": [{"count": 200000}]}',
            "designer",
            "calcifications[0].count must be at least 1 and at most 1000",
        ),
        (b'{"masses": ' + json.dumps([{}] * 21).encode() + b"}", "designer", "masses may hold at most 20 entries"),
        (b'{"pectoral": [0.5]}', "designer", "pectoral must be two numbers"),
        (b'{"colour": 3}', "designer", "unknown key 'colour'"),
        (b'{"view": "XX"}', "designer", "unknown view 'XX'"),
    ],
)
def test_malformed_bodies_get_422_naming_the_field(app, body, field, says):
    status, data = post_raw(app.port, "/api/preview", body)
    assert status == 422, data
    assert data["field"] == field and says in data["error"], data


def test_malformed_generate_and_answer_bodies_get_422(app):
    for body, says in (
        ({"model": "m", "n": "5"}, "n must be a number, got '5'"),
        ({"model": "m", "n": 5, "seed": -2}, "seed must be at least 0"),
        ({"model": "m", "n": 5, "steps": 10**9}, "steps must be at least 1 and at most 1000"),
        ({"model": "m", "n": 5, "guidance": float("inf")}, "guidance must be a finite number"),
        ({"model": "m", "n": 5, "conditions": ["CC"]}, "conditions must be an object"),
        ({"model": "m", "n": 5, "extra": 1}, "unknown key 'extra'"),
    ):
        status, data = post_raw(app.port, "/api/generate", json.dumps(body).encode())
        assert status == 422 and says in data["error"], (body, data)
    status, data = post_raw(app.port, "/api/read/answer", b"[]")
    assert status == 422 and "must be a JSON object" in data["error"]
    status, data = post_raw(app.port, "/api/preview?size=abc", b"{}")
    assert status == 422 and data["field"] == "size"


def test_previews_run_off_the_event_loop_and_the_queue_is_bounded(tmp_path, monkeypatch):
    """A preview is held inside its worker (the renderer waits on an event): while it is held, a page and
    the bounds still answer (they could not if the preview blocked the event loop); previews beyond
    MAX_PREVIEWS running + MAX_WAITING waiting are refused with 429; released, the held ones complete."""
    release, entered = threading.Event(), threading.Semaphore(0)
    real_render = app_server.render_phantom

    def held_render(params, labels):
        entered.release()
        release.wait(timeout=120)
        return real_render(params, labels)

    monkeypatch.setattr(app_server, "render_phantom", held_render)
    server = Server(tmp_path / "app")
    results: list[int] = []
    try:
        held = app_server.MAX_PREVIEWS + app_server.MAX_WAITING
        threads = [
            threading.Thread(target=lambda: results.append(call(server.url + "/api/preview?size=128", body={})[0]))
            for _ in range(held)
        ]
        for thread in threads:
            thread.start()
        for _ in range(app_server.MAX_PREVIEWS):  # the two workers are inside the renderer, holding
            assert entered.acquire(timeout=60)
        with urllib.request.urlopen(server.url + "/read", timeout=30) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
        assert call(server.url + "/api/bounds")[0] == 200
        busy = server.server.config.app.state.busy
        for _ in range(1200):  # wait (up to a minute) until all of them are in, running or waiting
            if busy["running"] == held:
                break
            time.sleep(0.05)
        assert busy["running"] == held
        status, data = call(server.url + "/api/preview?size=128", body={})
        assert status == 429 and "busy" in data["error"]
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=120)
        server.stop()
    assert results.count(200) == held
