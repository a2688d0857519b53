"""The designer's preview, measured (run by hand).

    .venv/bin/python benchmarks/bench_app.py [--size 512] [--repeats 20]

Times what one slider move costs on the server: drawing the label map, rendering the phantom and
encoding both PNGs, for the median breast with one mass and one calcification cluster (target: under
200 ms at 512² on 2 cores). Reports median and 90th percentile over ``--repeats`` calls, each with a new
outline value so nothing is cached.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
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
