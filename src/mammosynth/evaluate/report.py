"""The evaluation's HTML report: one self-contained file (every image and plot embedded as a PNG data URI,
no external script, style or font) with side-by-side grids, histograms, the moment and shape tables,
spectra, the feature space, the two-sample test's extremes, nearest-neighbour pairs and the privacy,
conditional and utility tables. Plots are drawn with matplotlib's object API (no global pyplot state).

A few lines of inline script count the images that decoded and write the count on ``<body>``
(``data-images-loaded``), so a headless browser can check the report renders."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mammosynth.evaluate.mix import mix_note
from mammosynth.evaluate.moments import MOMENTS
from mammosynth.io.atomic import atomic_write
from mammosynth.io.images import encode_png

REAL_COLOUR, SYNTHETIC_COLOUR = "#1f77b4", "#d62728"
UNCHECKABLE = "not checkable: the classifier is not clearly above chance on real images"

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.cards{display:flex;flex-wrap:wrap;gap:.8em}
.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;min-width:11em}.card b{font-size:1.4em;display:block}
.pair{display:flex;gap:1.5em;flex-wrap:wrap}.pair figure{margin:0}figcaption{font-size:.9em;color:#555}
.note{color:#555;font-size:.92em;max-width:60em}img{max-width:100%;image-rendering:auto}.bad{color:#b00}
.good{color:#070}code{background:#f3f3f3;padding:0 .2em}
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.getElementsByTagName("img"), loaded = 0;
  for (var i = 0; i < images.length; i++) { if (images[i].complete && images[i].naturalWidth > 0) { loaded++; } }
  document.body.setAttribute("data-images-loaded", String(loaded));
  document.body.setAttribute("data-images-total", String(images.length));
});
"""


def _png(array: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(np.asarray(array), bits=8)).decode("ascii")


def _figure_png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_grid(images: np.ndarray, columns: int = 4, tile_px: int = 128, gap_px: int = 2) -> np.ndarray:
    """Tile (N, H, W) images in [0, 1] into one array, each resized to ``tile_px`` (white gaps).

    Example:
        >>> image_grid(np.zeros((5, 32, 32)), columns=4, tile_px=16, gap_px=1).shape
        (33, 67)
    """
    from mammosynth.preprocess.resize import resize_image

    rows = max(1, -(-len(images) // columns))
    grid = np.ones((rows * tile_px + (rows - 1) * gap_px, columns * tile_px + (columns - 1) * gap_px), np.float32)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        tile = resize_image(np.asarray(image, np.float32), tile_px, tile_px) if image.shape != (tile_px,) * 2 else image
        grid[
            r * (tile_px + gap_px) : r * (tile_px + gap_px) + tile_px,
            c * (tile_px + gap_px) : c * (tile_px + gap_px) + tile_px,
        ] = tile
    return grid


def _img(src: str, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img src="{src}" alt="{html.escape(alt)}"{size}>'


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_number(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _histogram_plot(real: np.ndarray, synthetic: np.ndarray) -> str:
    figure = Figure(figsize=(6, 3))
    ax = figure.add_subplot()
    bins = np.linspace(0, 1, 65)
    ax.hist(real, bins=bins, density=True, alpha=0.55, color=REAL_COLOUR, label="real")
    ax.hist(synthetic, bins=bins, density=True, alpha=0.55, color=SYNTHETIC_COLOUR, label="synthetic")
    ax.set_xlabel("breast-region intensity")
    ax.set_ylabel("density")
    ax.legend()
    return _figure_png(figure)


def _moment_plot(real: np.ndarray, synthetic: np.ndarray) -> str:
    figure = Figure(figsize=(10, 2.6))
    for k, name in enumerate(MOMENTS):
        ax = figure.add_subplot(1, len(MOMENTS), k + 1)
        parts = ax.boxplot([real[:, k], synthetic[:, k]], showfliers=False, patch_artist=True)
        for patch, colour in zip(parts["boxes"], (REAL_COLOUR, SYNTHETIC_COLOUR), strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.5)
        ax.set_xticks([1, 2], ["real", "syn."])
        ax.set_title(name, fontsize=10)
    figure.tight_layout()
    return _figure_png(figure)


def _spread_plot(real: list[float], synthetic: list[float], label: str) -> str:
    figure = Figure(figsize=(5, 2.8))
    ax = figure.add_subplot()
    values = np.concatenate([real, synthetic]) if len(real) + len(synthetic) else np.zeros(1)
    bins = np.linspace(values.min(), values.max() + 1e-9, 30)
    ax.hist(real, bins=bins, density=True, alpha=0.55, color=REAL_COLOUR, label="real")
    ax.hist(synthetic, bins=bins, density=True, alpha=0.55, color=SYNTHETIC_COLOUR, label="synthetic")
    ax.set_xlabel(label)
    ax.legend()
    return _figure_png(figure)


def _feature_plot(real: np.ndarray, synthetic: np.ndarray) -> str:
    joined = np.concatenate([real, synthetic])
    centred = joined - joined.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:2].T
    figure = Figure(figsize=(4.5, 4))
    ax = figure.add_subplot()
    ax.scatter(*projected[len(real) :].T, s=6, alpha=0.5, color=SYNTHETIC_COLOUR, label="synthetic")
    ax.scatter(*projected[: len(real)].T, s=6, alpha=0.6, color=REAL_COLOUR, label="real")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend()
    return _figure_png(figure)


def _nn_plot(synthetic: list[float], reference: list[float], threshold: float, reference_label: str) -> str:
    figure = Figure(figsize=(6, 3))
    ax = figure.add_subplot()
    bins = np.linspace(min(min(synthetic), min(reference)), 1, 40)
    ax.hist(reference, bins=bins, density=True, alpha=0.55, color=REAL_COLOUR, label=reference_label)
    ax.hist(synthetic, bins=bins, density=True, alpha=0.55, color=SYNTHETIC_COLOUR, label="synthetic → train")
    ax.axvline(threshold, color="k", linestyle="--", label="copy threshold")
    ax.set_xlabel("correlation with the nearest training image")
    ax.legend(fontsize=8)
    return _figure_png(figure)


def _utility_plot(arms: dict) -> str:
    figure = Figure(figsize=(5, 2.8))
    ax = figure.add_subplot()
    names = [name for name, arm in arms.items() if "auc" in arm]
    aucs = [arms[n]["auc"] for n in names]
    low = [arms[n]["auc"] - (arms[n]["auc_ci95"] or [arms[n]["auc"]] * 2)[0] for n in names]
    high = [(arms[n]["auc_ci95"] or [arms[n]["auc"]] * 2)[1] - arms[n]["auc"] for n in names]
    ax.bar(names, aucs, yerr=[low, high], capsize=6, color=[REAL_COLOUR, "#9467bd", SYNTHETIC_COLOUR][: len(names)])
    ax.axhline(0.5, color="k", linestyle=":", linewidth=1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("AUC on held-out real")
    return _figure_png(figure)


def _pairs(pairs: list, synthetic: np.ndarray, train: np.ndarray, tile_px: int = 96) -> str:
    figures = []
    for s, t, corr in pairs:
        both = image_grid(np.stack([synthetic[s], train[t]]), columns=2, tile_px=tile_px)
        figures.append(
            f"<figure>{_img(_png(both), f'synthetic {s} and training image {t}')}"
            f"<figcaption>synthetic #{s} · train #{t} · r = {corr:.3f}</figcaption></figure>"
        )
    return '<div class="pair">' + "".join(figures) + "</div>"


def _card(title: str, value, note: str = "") -> str:
    return f'<div class="card">{html.escape(title)}<b>{_number(value)}</b>{html.escape(note)}</div>'


def _skipped(section: dict | None) -> str | None:
    if section is None:
        return "not run"
    return section.get("skipped") if isinstance(section, dict) else None


def render_report(
    result: dict,
    real: np.ndarray,
    synthetic: np.ndarray,
    train: np.ndarray | None = None,
    plots: dict | None = None,
    seed: int = 0,
) -> str:
    """The report's HTML text. ``plots`` may hold per-image arrays computed by the suite:
    ``real_moments`` / ``synthetic_moments`` (N, 5), ``real_beta`` / ``synthetic_beta``, ``real_features`` /
    ``synthetic_features``; sections whose inputs are missing are left out."""
    plots = plots or {}
    rng = np.random.default_rng(seed)
    fidelity, realism = result["fidelity"], result["realism_c2st"]
    features = fidelity.get("features", {})
    memo = result.get("memorisation")
    inputs = result["inputs"]
    train_note = (
        f" The generator's training set is split <b>{html.escape(str(inputs.get('train_split')))}</b> "
        f"({inputs.get('train_images')} images, {inputs.get('train_patients')} patients); no patient is on "
        "both sides."
        if inputs.get("train_images")
        else " <span class=bad>No training set was given: memorisation is not checked and the feature "
        "encoder learned the real set itself.</span>"
    )
    parts = [
        f"<h1>mammosynth evaluation</h1><p class=note>{inputs['synthetic_images']} synthetic images "
        f"(<code>{html.escape(inputs['synthetic'])}</code>) against {inputs['real_images']} real images of "
        f"{inputs.get('real_patients', '?')} patients, split <b>{html.escape(str(inputs.get('real_split')))}"
        f"</b> of <code>{html.escape(inputs['real'])}</code>, at {inputs['image_size'][1]}×"
        f"{inputs['image_size'][0]}.{train_note} Every number, with its n, is in <code>evaluation.json</code> "
        "beside this file.</p>"
    ]
    interval = realism.get("auc_ci95")
    n_note = f" n = {realism['test_images']} held-out" + (
        f", 95 % CI {interval[0]:.2f}–{interval[1]:.2f}" if interval else ""
    )
    fid = features.get("frechet") or {}
    cards = [
        _card("C2ST AUC", realism["auc"], f" (0.5 = indistinguishable;{n_note})"),
        _card(
            "KID (own encoder)", features.get("kernel_distance"), f" ± {_number(features.get('kernel_distance_std'))}"
        ),
        _card(
            "FID (own encoder)",
            features.get("frechet_distance") if fid.get("value") is not None else f"n < {fid.get('min_images', '?')}",
            "" if not fid.get("ci95") else f" (95 % CI {_number(fid['ci95'][0])}–{_number(fid['ci95'][1])})",
        ),
        _card("precision / recall", f"{result['diversity']['precision']:.2f} / {result['diversity']['recall']:.2f}"),
        _card("coverage", result["diversity"]["coverage"]),
    ]
    lesions = result.get("realism_lesions") or {}
    if "auc" in lesions:
        lo, hi = lesions["auc_ci95"]
        cards.append(
            _card(
                f"lesion C2ST AUC ({lesions['patch_px']}² patches)",
                lesions["auc"],
                f" ({lesions['real_lesions']} real / {lesions['synthetic_lesions']} synthetic lesions, "
                f"95 % CI {lo:.2f}–{hi:.2f})",
            )
        )
    if memo and memo.get("copies") is not None:
        cards.append(_card("look copied", f"{memo['copies']} of {memo['images']}"))
    utility = result.get("utility") or {}
    for arm in ("real", "real+synthetic", "synthetic"):
        if "auc" in utility.get("arms", {}).get(arm, {}):
            cards.append(_card(f"utility AUC, {arm}", utility["arms"][arm]["auc"]))
    parts.append('<div class="cards">' + "".join(cards) + "</div>")

    pick_real = rng.permutation(len(real))[:16]
    pick_synthetic = rng.permutation(len(synthetic))[:16]
    pick_real_many = np.sort(rng.permutation(len(real))[:256])
    pick_synthetic_many = np.sort(rng.permutation(len(synthetic))[:256])
    parts.append(
        "<h2>Side by side</h2><div class=pair>"
        f"<figure>{_img(_png(image_grid(real[pick_real])), 'real images')}<figcaption>real (random 16)"
        "</figcaption></figure>"
        f"<figure>{_img(_png(image_grid(synthetic[pick_synthetic])), 'synthetic images')}"
        "<figcaption>synthetic (random 16)</figcaption></figure></div>"
    )

    parts.append("<h2>Fidelity</h2>")
    parts.append(
        f"<p>Histogram (Jensen–Shannon) distance of breast intensities: "
        f"<b>{_number(fidelity['histogram_js_distance'])}</b></p>"
    )
    shown_real, shown_synthetic = real[pick_real_many], synthetic[pick_synthetic_many]  # ≤ 256 images a set
    parts.append(
        _img(
            _histogram_plot(shown_real[shown_real > 0.02], shown_synthetic[shown_synthetic > 0.02]),
            "intensity histograms (up to 256 images a set)",
        )
    )
    moments = fidelity["moments"]
    parts.append(
        "<h3>First five moments of the breast region (per image)</h3>"
        "<p class=note>As in the CC publication: two-sample tests per moment; a p-value under 0.05 says "
        "the sets differ in that moment. Gap: difference of medians in real interquartile ranges.</p>"
    )
    parts.append(
        _table(
            ["moment", "real median", "synthetic median", "gap (IQR)", "KS statistic", "KS p", "Mann–Whitney p"],
            [
                [
                    name,
                    m["real_median"],
                    m["synthetic_median"],
                    m["median_gap_iqr"],
                    m["ks_statistic"],
                    m["ks_pvalue"],
                    m["mannwhitney_pvalue"],
                ]
                for name, m in moments.items()
            ],
        )
    )
    reference = fidelity.get("moments_training_reference")
    if reference:
        first = reference[MOMENTS[0]]
        parts.append(
            f"<p class=note>The floor of these tests on this split: the generator's own training images "
            f"({html.escape(reference['split'])}, {reference['train_images']} images) in the synthetic set's "
            f"place, in {first['draws']} draws of one training image of the same view and density for each "
            f"synthetic image ({_number(100 * first['matched_share'])} % found one). A moment that such draws "
            "often fail is failed by real images on this split; the whole training set's p (unmatched) shows "
            "how far the split's mix alone moves it.</p>"
        )
        parts.append(
            _table(
                ["moment", "training median", "whole training set KS p", "draws: median KS p", "draws with p < 0.01"],
                [
                    [name, m["train_median"], m["whole_set_ks_pvalue"], m["median_ks_pvalue"], m["fail_share"]]
                    for name, m in reference.items()
                    if isinstance(m, dict)
                ],
            )
        )
    if "real_moments" in plots:
        parts.append(_img(_moment_plot(plots["real_moments"], plots["synthetic_moments"]), "moment box plots"))
    beta = fidelity["spectrum_beta"]
    parts.append(
        f"<h3>Power-spectrum exponent β of breast texture</h3><p>median β real "
        f"<b>{_number(beta['real_median'])}</b>, synthetic <b>{_number(beta['synthetic_median'])}</b> "
        f"({beta['patch_px']}-pixel patches wholly inside the breast)</p>"
    )
    if plots.get("real_beta") and plots.get("synthetic_beta"):
        parts.append(_img(_spread_plot(plots["real_beta"], plots["synthetic_beta"], "β"), "spectrum exponents"))
    shape = fidelity.get("shape")
    if shape:
        area = shape["area"]
        rows = [["breast area fraction", area["real_median"], area["synthetic_median"], area["ks_pvalue"]]]
        outline = shape.get("outline", {})
        if "parameters" in outline:
            rows += [
                [f"outline {name}", v["real_median"], v["synthetic_median"], v["ks_pvalue"]]
                for name, v in outline["parameters"].items()
            ]
        parts.append("<h3>Breast shape</h3>" + _table(["statistic", "real median", "synthetic median", "KS p"], rows))
        if "skipped" in outline:
            parts.append(f"<p class=note>Outline parameters: {html.escape(outline['skipped'])}</p>")
        elif outline:
            parts.append(
                f"<p class=note>Outline parameters of the CC model fitted to {outline['fitted'][0]} real and "
                f"{outline['fitted'][1]} synthetic CC images (median IoU {outline['fit_iou_median'][0]:.2f}"
                f" / {outline['fit_iou_median'][1]:.2f}).</p>"
            )
    radiomics = fidelity.get("radiomics")
    if radiomics:
        parts.append(
            f"<p>Fréchet Radiomics Distance: <b>{_number(radiomics.get('frd'))}</b> "
            f"{html.escape(radiomics.get('skipped', ''))}</p>"
        )

    parts.append("<h2>Feature space, diversity and coverage</h2>")
    diversity = result["diversity"]
    parts.append(
        f"<p class=note>Features: {html.escape(str(features.get('extractor')))}, trained on "
        f"{html.escape(str(features.get('encoder_trained_on')))}. Distances are comparable only between "
        f"evaluations that use the same extractor. n = {diversity.get('real_images')} real, "
        f"{diversity.get('synthetic_images')} synthetic. KID is unbiased at any n; FID is shown only from "
        f"{fid.get('min_images', '?')} images per set (it is biased upwards below).</p>"
    )
    collapse = result.get("mode_collapse", {})
    parts.append(
        _table(
            [
                "FID",
                "KID",
                "precision",
                "recall",
                "density",
                "coverage",
                "NN-distance ratio",
                "near-duplicate share",
                "mode collapse suspected",
            ],
            [
                [
                    features.get("frechet_distance"),
                    features.get("kernel_distance"),
                    diversity["precision"],
                    diversity["recall"],
                    diversity["density"],
                    diversity["coverage"],
                    collapse.get("nn_distance_ratio"),
                    collapse.get("near_duplicate_share"),
                    collapse.get("collapse_suspected"),
                ]
            ],
        )
    )
    if "real_features" in plots:
        parts.append(_img(_feature_plot(plots["real_features"], plots["synthetic_features"]), "feature space"))
    counts = result["counts"]
    rows = []
    for field in ("view", "laterality", "density"):
        for value in sorted(set(counts["real"][field]) | set(counts["synthetic"][field])):
            rows.append(
                [f"{field} {value}", counts["real"][field].get(value, 0), counts["synthetic"][field].get(value, 0)]
            )
    for value in sorted(set(counts["real"]["findings"]) | set(counts["synthetic"]["findings"])):
        rows.append(
            [
                f"finding {value}",
                counts["real"]["findings"].get(value, 0),
                counts["synthetic"]["findings"].get(value, 0),
            ]
        )
    parts.append("<h3>Counts per condition</h3>" + _table(["condition", "real", "synthetic"], rows))

    parts.append(
        "<h2>Realism: two-sample classifier test</h2><p class=note>A small CNN trained to tell real "
        "from synthetic on half the images, scored on the other half: the machine stand-in for an "
        "expert reading study. AUC 0.5 means it cannot tell them apart; 1.0, always.</p>"
    )
    mix = realism.get("mix")
    twins = realism.get("source") == "held-out twins"
    if twins:
        parts.append(
            f"<p class=note>Tested on held-out twins: {realism.get('repeat', '?')} synthetic images generated "
            "for each held-out record's own conditions (view, laterality, density, finding), so the test runs "
            "in the held-out set's mix; the images are in <code>held-out-twins/</code>. The synthetic set "
            "evaluated here is in its own mix of view × finding"
            + (f" ({mix['total_variation']:.2f} from the held-out set's in total variation)" if mix else "")
            + ".</p>"
        )
    elif mix:
        parts.append(f"<p class=note>{html.escape(mix_note(mix))}</p>")
    patients = realism.get("real_patients") or {}
    parts.append(
        _table(
            [
                "held-out accuracy",
                "AUC",
                "AUC 95 % interval",
                "train / test images",
                "real patients train / test",
                "split",
            ],
            [
                [
                    realism["accuracy"],
                    realism["auc"],
                    "–"
                    if not realism.get("auc_ci95")
                    else f"{realism['auc_ci95'][0]:.3f} – {realism['auc_ci95'][1]:.3f}",
                    f"{realism['train_images']} / {realism['test_images']}",
                    f"{patients.get('train', '–')} / {patients.get('test', '–')}",
                    realism.get("split", "–"),
                ]
            ],
        )
    )
    if not twins:  # the twins' extremes index the twins, which are not in this report
        parts.append(
            "<div class=pair>"
            f"<figure>{_img(_png(image_grid(synthetic[realism['most_synthetic']])), 'most synthetic')}"
            "<figcaption>judged most synthetic</figcaption></figure>"
            f"<figure>{_img(_png(image_grid(synthetic[realism['least_synthetic']])), 'least synthetic')}"
            "<figcaption>judged least synthetic (most real)</figcaption></figure></div>"
        )

    conditional = result.get("conditional")
    if conditional:
        parts.append(
            "<h2>Conditional correctness</h2><p class=note>Independent classifiers trained on the real "
            "images check what each synthetic image requested. A field is checkable only when its "
            "classifier beats chance on held-out real images.</p>"
        )
        rows = []
        for field, found in conditional.get("fields", {}).items():
            if "skipped" in found:
                rows.append([field, "–", "–", "–", "–", found["skipped"]])
            else:
                rows.append(
                    [
                        field,
                        found["real_accuracy"],
                        found["chance"],
                        found["synthetic_images"],
                        found["agreement"] if found["checkable"] else "–",
                        "" if found["checkable"] else UNCHECKABLE,
                    ]
                )
        parts.append(
            _table(["field", "real held-out accuracy", "chance", "synthetic images", "agreement", "note"], rows)
        )
        verifier = conditional.get("verifier")
        if verifier and "skipped" not in verifier:
            parts.append(
                _table(
                    [
                        "lesion requests",
                        "lesion present",
                        "kind matches",
                        "inside requested region",
                        "normal requests kept clean",
                    ],
                    [
                        [
                            verifier["lesion_requests"],
                            verifier["lesion_present"],
                            verifier["kind_matches"],
                            verifier["inside_requested_region"],
                            verifier["normal_clean"],
                        ]
                    ],
                )
            )
        elif verifier:
            parts.append(f"<p class=note>Lesion kind and position: {html.escape(verifier['skipped'])}</p>")

    if memo is not None and memo.get("skipped"):
        parts.append(f"<h2>Privacy and memorisation</h2><p class=note>{html.escape(memo['skipped'])}</p>")
    if memo is not None and train is not None and not memo.get("skipped"):
        parts.append(
            f"<h2>Privacy and memorisation</h2><p><b>{memo['copies']} of {memo['images']}</b> synthetic "
            f"images look copied (correlation with the nearest training image above "
            f"{memo['threshold']:.3f}: {html.escape(memo['threshold_from'])}).</p>"
        )
        features_memo = memo.get("feature_space")
        if features_memo:
            parts.append(
                f"<p>In the feature space: <b>{features_memo['copies']} of {features_memo['images']}</b> "
                f"closer to a training image than half the closest held-out distance (median nearest "
                f"distance {features_memo['synthetic_nn_distance_median']:.3f} synthetic vs "
                f"{features_memo['reference_nn_distance_median']:.3f} reference).</p>"
            )
        parts.append(
            _img(
                _nn_plot(
                    memo["synthetic_nn_correlation"],
                    memo["reference_nn_correlation"],
                    memo["threshold"],
                    "held-out patient → training patient"
                    if memo.get("held_out_images")
                    else "training patient → another",
                ),
                "nearest-neighbour correlations",
            )
        )
        shown = memo["pairs"][:8] or memo["closest"][:4]
        title = "Flagged pairs" if memo["pairs"] else "Closest pairs (none flagged)"
        parts.append(f"<h3>{title}: synthetic beside its nearest training image</h3>" + _pairs(shown, synthetic, train))
        reid = result.get("reidentification")
        if reid and "skipped" not in reid:
            verdict = (
                '<span class="bad">better than chance</span>'
                if reid["better_than_chance"]
                else '<span class="good">no better than chance</span>'
            )
            parts.append(
                f"<h3>Re-identification test</h3><p>Linking each synthetic image to its nearest real image "
                f"lands on a training image {reid['link_rate']:.1%} of the time against "
                f"{reid['chance']:.1%} by chance: {verdict} (p = {_number(reid['p_value'])}).</p>"
            )
            parts.append(
                _table(
                    ["links to train", "link rate", "chance", "p", "patients linked", "most links to one patient"],
                    [
                        [
                            reid["links_to_train"],
                            reid["link_rate"],
                            reid["chance"],
                            reid["p_value"],
                            f"{reid['train_patients_linked']} of {reid['train_patients']}",
                            reid["most_links_to_one_patient"],
                        ]
                    ],
                )
            )
        elif reid:
            parts.append(f"<p class=note>Re-identification test: {html.escape(reid['skipped'])}</p>")

    if utility:
        parts.append("<h2>Utility</h2>")
        if "skipped" in utility:
            parts.append(f"<p class=note>{html.escape(utility['skipped'])}</p>")
        else:
            parts.append(
                f"<p class=note>Task: {html.escape(utility['task'])}; one small CNN, {utility['steps']} "
                f"steps, same seeds for every arm; tested on {utility['test_images']} held-out real images "
                f"({utility['test_lesions']} with lesions) of {utility['test_patients']} patients none of "
                "whom is in training.</p>"
            )
            rows = [
                [
                    arm,
                    found["train_images"],
                    found.get("lesion"),
                    found.get("auc"),
                    "–" if not found.get("auc_ci95") else f"{found['auc_ci95'][0]:.3f} – {found['auc_ci95'][1]:.3f}",
                    found.get("skipped", ""),
                ]
                for arm, found in utility["arms"].items()
            ]
            parts.append(_table(["training set", "images", "with lesions", "AUC", "95 % interval", "note"], rows))
            if any("auc" in arm for arm in utility["arms"].values()):
                parts.append(_img(_utility_plot(utility["arms"]), "utility AUCs"))

    provenance = {key: result[key] for key in ("mammosynth", "python", "seed", "inputs", "settings") if key in result}
    parts.append("<h2>Reproducibility</h2><pre>" + html.escape(json.dumps(provenance, indent=1)) + "</pre>")
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>mammosynth evaluation</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}<script>{_SCRIPT}</script></body></html>"
    )


def write_report(path: str | Path, *args, **kwargs) -> Path:
    """:func:`render_report` written atomically to ``path``."""
    path = Path(path)
    with atomic_write(path, "w") as handle:
        handle.write(render_report(*args, **kwargs))
    return path
