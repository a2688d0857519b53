"""The designer's preview, measured (run by hand).

    .venv/bin/python benchmarks/bench_app.py [--size 512] [--repeats 20]
    .venv/bin/python benchmarks/bench_app.py --soak 60 [--clients 6]

Times what one slider move costs on the server: drawing the label map, rendering the phantom and
encoding both PNGs, for the median breast with one mass and one calcification cluster (target: under
200 ms at 512² on 2 cores). Reports median and 90th percentile over ``--repeats`` calls, each with a new
outline value so nothing is cached.

``--soak SECONDS`` starts the app on loopback and keeps ``--clients`` threads posting the heaviest preview
the bounds allow (512 px, 20 masses, 20 clusters of 1,000 calcifications) for that long, while one reader
fetches the reading page and ``/api/bounds`` every 100 ms: the reader's latency (median, 99th percentile,
max) and the previews' answers (200 / 429) show whether CPU work stays off the event loop.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mammosynth.app.server import _png, preset
from mammosynth.phantom.labelmap import draw_label_map, to_colour
from mammosynth.phantom.params import CalcCluster, Mass
from mammosynth.phantom.render import render_phantom


def soak(seconds: float, clients: int) -> dict:
    import socket
    import tempfile
    import threading
    import urllib.error
    import urllib.request

    import uvicorn

    from mammosynth.app.server import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="mammosynth-soak-")
    server = uvicorn.Server(uvicorn.Config(create_app(folder), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    heavy = preset("median").to_dict()
    heavy["masses"] = [{"x": 0.1 + 0.03 * k, "y": 0.5, "size_mm": 20} for k in range(20)]
    heavy["calcifications"] = [{"x": 0.2 + 0.02 * k, "y": 0.4, "count": 1000} for k in range(20)]
    body = json.dumps(heavy).encode()
    end = time.perf_counter() + seconds
    answers: dict[int, int] = {}
    reader_ms: list[float] = []
    preview_ms: list[float] = []

    def client() -> None:
        while time.perf_counter() < end:
            request = urllib.request.Request(
                url + "/api/preview?size=512", data=body, headers={"Content-Type": "application/json"}
            )
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=300) as response:
                    status = response.status
                    response.read()
            except urllib.error.HTTPError as error:
                status = error.code
                time.sleep(0.2)
            answers[status] = answers.get(status, 0) + 1
            if status == 200:
                preview_ms.append(1000 * (time.perf_counter() - start))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    while time.perf_counter() < end:
        for path in ("/read", "/api/bounds"):
            start = time.perf_counter()
            with urllib.request.urlopen(url + path, timeout=300) as response:
                response.read()
            reader_ms.append(1000 * (time.perf_counter() - start))
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    server.should_exit = True
    return {
        "seconds": seconds,
        "preview_clients": clients,
        "preview_answers": answers,
        "preview_ms_median": round(float(np.median(preview_ms)), 1) if preview_ms else None,
        "reader_requests": len(reader_ms),
        "reader_ms_median": round(float(np.median(reader_ms)), 1),
        "reader_ms_p99": round(float(np.percentile(reader_ms, 99)), 1),
        "reader_ms_max": round(float(np.max(reader_ms)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of the loopback soak (0: the timing)")
    parser.add_argument("--clients", type=int, default=6, help="soak: threads posting heavy previews")
    args = parser.parse_args()
    if args.soak > 0:
        print(json.dumps(soak(args.soak, args.clients), indent=1))
        return
    params = preset("median")
    params.masses.append(Mass(x=0.3, y=0.5))
    params.calcifications.append(CalcCluster(x=0.2, y=0.4))
    times = {"labels": [], "render": [], "encode": [], "total": []}
    for k in range(args.repeats):
        params.outline.a = 0.45 + 0.005 * k
        start = time.perf_counter()
        labels = draw_label_map(params, args.size)
        drawn = time.perf_counter()
        image = render_phantom(params, labels)
        rendered = time.perf_counter()
        _png(to_colour(labels, 1))
        _png(image)
        done = time.perf_counter()
        for key, value in (
            ("labels", drawn - start),
            ("render", rendered - drawn),
            ("encode", done - rendered),
            ("total", done - start),
        ):
            times[key].append(1000 * value)
    print(
        json.dumps(
            {
                "size": args.size,
                **{f"{k}_ms_median": round(float(np.median(v)), 1) for k, v in times.items()},
                "total_ms_p90": round(float(np.percentile(times["total"], 90)), 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
