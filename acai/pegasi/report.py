"""The report of a run: one self-contained HTML page, and how metrics read in words."""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

import numpy as np

from acai.core.model import strips
from acai.core.walks import PATHS
from acai.images import figure_png, grid, png_bytes, pyplot, to_float, to_uint8
from acai.pegasi import diagrams
from acai.pegasi.realism import random_sheet
from acai.training import data as data_lib
from acai.training.run import Run

REPORT_PAIRS, REPORT_STEPS = 4, 11  # interpolation rows shown in the report
# Shown in this order in tables; lower is better for the first group, higher for the second.
LOWER_BETTER = (
    "rmse",
    "mean_distance",
    "smoothness",
    "mean_distance_slerp",
    "smoothness_slerp",
    "dissolve_index",
    "dissolve_index_slerp",
)
HIGHER_BETTER = ("probe_accuracy", "kmeans_accuracy")

LABELS = {
    "rmse": "reconstruction RMSE (0-255)",
    "probe_accuracy": "latent probe accuracy",
    "kmeans_accuracy": "latent k-means accuracy",
    "mean_distance": "Mean Distance, lerp",
    "smoothness": "Smoothness, lerp",
    "mean_distance_slerp": "Mean Distance, slerp",
    "smoothness_slerp": "Smoothness, slerp",
    "dissolve_index": "dissolve index of the midpoints, lerp",
    "dissolve_index_slerp": "dissolve index of the midpoints, slerp",
}


# The scorecard's rows, in words, for the command line and the report.
SCORECARD_LABELS = {
    "horse_or_bird_share": "called horse or bird",
    "mean_min_p": "mean min(P(horse), P(bird))",
    "best_min_p": "best min(P(horse), P(bird))",
    "mean_critic_alpha": "mean critic alpha",
    "mean_sharpness_vs_real": "sharpness vs real photos",
    "mean_nearest_train_rmse": "nearest training image RMSE",
    "spread_rmse": "spread within the set (RMSE)",
}


# The realism table's rows (acai.pegasi.realism.SETS), in words.
REALISM_LABELS = {
    "real": "real held-out photos (the floor)",  # test or validation: the split judged
    "reconstruction": "reconstructions",
    "slerp": "slerp interpolants, t = 0.5",
    "lerp": "lerp interpolants, t = 0.5",
    "crossfade": "pixel cross-fade of the photos",
    "crossfade_contrast": "the cross-fade, contrast restored",
    "half_cut": "half and half: left the horse, right the bird",
    "crossfade_reconstructions": "cross-fade of the reconstructions",
}

# The dissolve index's rows (acai.pegasi.realism.DISSOLVE_ROWS), in words.
DISSOLVE_LABELS = {
    "slerp": "slerp midpoints",
    "lerp": "lerp midpoints",
    "crossfade_reconstructions": "cross-fade of the reconstructions (a pure dissolve)",
    "unrelated": "an unrelated photo's reconstruction (the floor)",
    "shifted_photo": "a photo moved 2 px, fitted on itself and moved 4 px (a true in-between)",
}


def judge_title(name: str, judge: dict) -> str:
    """One line naming a judge: what it is, and whether it is independent of training."""
    if judge["kind"] == "swd":
        what = "sliced Wasserstein distance of Laplacian-pyramid patches x 1000, no network"
    else:
        accuracy = judge.get("test_accuracy")
        what = f"KID x 1000 in {judge['file']}'s features ({judge['architecture']}"
        what += f", {100 * accuracy:.1f}% test accuracy)" if accuracy is not None else ")"
    if not judge.get("independent", True):
        what += "; NOT independent: a training loss used a network of its family"
    return f"{name}: {what}"


def realism_rows(judge: dict) -> list[tuple[str, ...]]:
    """(set, distance per draw[, called horse or bird, mean min(P)]) rows of one judge."""
    rows = []
    for key, label in REALISM_LABELS.items():
        if key not in judge["distance"]:
            continue
        row = (label, " / ".join(f"{v:.2f}" for v in judge["draws"][key]))
        if "horse_or_bird_share" in judge:
            row += (
                f"{100 * judge['horse_or_bird_share'][key]:.1f}%",
                f"{judge['mean_min_p'][key]:.3f}",
            )
        rows.append(row)
    return rows


REALISM_HEADER = ("", "distance (draws)", "horse or bird", "mean min(P)")


def realism_tables(realism: dict):
    """(title, header, rows) per judge."""
    for name, judge in realism["judges"].items():
        rows = realism_rows(judge)
        yield judge_title(name, judge), REALISM_HEADER[: len(rows[0])], rows


def pegasi_text(manifest: dict, *, t: str) -> str:
    """A batch of pegasi in words: the best one, and the scorecard beside the cross-fade's."""
    best = manifest["images"][0]
    lines = [
        f"acai: {len(manifest['images'])} pegasi (best of {manifest['candidates']} pairs, slerp "
        f"t={t}); classifier accuracy {100 * manifest['classifier_test_accuracy']:.1f}%",
        f"acai: best: horse {best['horse_index']} + bird {best['bird_index']}: "
        f"P(horse) {best['p_horse']:.2f}, P(bird) {best['p_bird']:.2f}, critic alpha "
        f"{best['critic_alpha']:.3f}, sharpness {best['sharpness_vs_real']:.2f}x real, "
        f"nearest training image RMSE {best['nearest_train_rmse']:.1f}",
        f"{'':32s}{'pegasi':>10s}{'cross-fade':>12s}",
    ]
    summary = manifest["summary"]
    for k, a in summary["pegasi"].items():
        lines.append(f"{SCORECARD_LABELS.get(k, k):32s}{a:10.3f}{summary['crossfade'][k]:12.3f}")
    return "\n".join(lines)


def realism_text(realism: dict) -> str:
    """The realism tables as plain text, for the command line."""
    lines = []
    for title, header, rows in realism_tables(realism):
        table = [header, *rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines.append(title)
        lines += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table
        ]
    lines.append(
        f"(against {realism['real_images']} real training horses and birds, on "
        f"{realism['pairs']} random {realism.get('split', 'test')} pairs per draw; lower is "
        "more realistic)"
    )
    if "dissolve_index" in realism:
        lines.append("dissolve index: median R^2 of a fit as a blend of the two reconstructions")
        lines += [f"  {label}: {value}" for label, value in dissolve_rows(realism)]
    return "\n".join(lines)


def dissolve_rows(realism: dict) -> list[tuple[str, str]]:
    """(what, median R^2) rows of the dissolve index; 1 is a pure blend of the two ends."""
    index = realism.get("dissolve_index", {})
    return [(label, f"{index[k]:.3f}") for k, label in DISSOLVE_LABELS.items() if k in index]


def fmt(key: str, value) -> str:
    if key.endswith("accuracy"):
        return f"{100 * value:.1f}%"
    if key.startswith("mean_distance"):
        return f"{1000 * value:.2f}e-3"
    if key.startswith(("smoothness", "dissolve_index")):
        return f"{value:.3f}"
    return f"{value:.2f}"


# --- the report ------------------------------------------------------------------------------


def report_html(run: Run, data: data_lib.ImageData, result: dict, *, pegasi_dir: Path) -> str:
    """The report page: one self-contained HTML file with its pictures inlined."""
    name = html.escape(run.workdir.resolve().name)
    classes = html.escape(", ".join(run.class_names))
    plain = " (the plain autoencoder)" if run.config.advweight == 0 else ""
    sections = [
        ("Metrics", _metrics_table(result)),
        ("Training curves", _curves(run.workdir / "history.csv")),
        ("Reconstructions", _reconstructions(run, data)),
        ("Interpolations", _interpolations(run, data)),
    ]
    if "realism" in result:
        sections.append(("Realism", _realism(result["realism"])))
        split = result["realism"].get("split", "test")
        sections.append(("Random pairs", _random_pairs(run, data, split)))
    if (pegasi_dir / "pegasi.png").is_file():
        sections.append(("Pegasi", _pegasi(pegasi_dir)))
    sections += [("Networks", _networks(run)), ("Config", _config(run))]
    body = "\n".join(f"<h2>{title}</h2>\n{content}" for title, content in sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ACAI report: {name}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }}
img {{ max-width: 100%; height: auto; }}
img.pixels {{ image-rendering: pixelated; }}
figure {{ display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }}
pre {{ background: #f6f6f6; padding: 0.7em; overflow-x: auto; font-size: 12px; }}
.note {{ color: #a33; }}
code.key {{ color: #888; font-size: 11px; }}
</style></head><body>
<h1>ACAI report: {name}</h1>
<p>Step {run.step} ({run.step * run.config.batch / 1024:.0f} kimg) on
<code>{html.escape(str(run.config.data))}</code>, classes {classes};
lambda = {run.config.advweight:g}{plain}.</p>
{body}
</body></html>
"""


def _metrics_table(result: dict) -> str:
    rows = [("held-out images", str(result["images"]))]
    for key in (*LOWER_BETTER, *HIGHER_BETTER):
        if key in result:
            better = "lower" if key in LOWER_BETTER else "higher"
            rows.append((f"{LABELS[key]} ({better} is better)", fmt(key, result[key])))
    if "mean_distance" in result:
        for who in ("exact", "crossfade"):
            rows.append(
                (
                    f"for reference, the {who} interpolation: Mean Distance / Smoothness",
                    f"{fmt('mean_distance', result[f'{who}_mean_distance'])} / "
                    f"{result[f'{who}_smoothness']:.3f}",
                )
            )
        rows.append(
            (
                "for reference, the exact interpolation's dissolve index (a blend: 1)",
                fmt("dissolve_index", result["exact_dissolve_index"]),
            )
        )
        rows.append(
            (
                "interpolations with undefined Smoothness (counted as 0)",
                f"{100 * result['undefined_smoothness']:.1f}%",
            )
        )
    cells = "\n".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    return f"<table>\n{cells}\n</table>"


def _realism(realism: dict) -> str:
    parts = [
        html.escape(
            f"Distance of each set from {realism['real_images']} real training horses and "
            f"birds, lower is more realistic, on {realism['pairs']} random "
            f"{realism.get('split', 'test')} horse-bird pairs per draw, every pair kept; one "
            "figure per independent draw."
        )
    ]
    for title, header, rows in realism_tables(realism):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        cells = "\n".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        parts.append(f"<h3>{html.escape(title)}</h3>\n<table>\n<tr>{head}</tr>\n{cells}\n</table>")
    if dissolve_rows(realism):
        cells = "\n".join(
            f"<tr><td>{html.escape(label)}</td><td>{value}</td></tr>"
            for label, value in dissolve_rows(realism)
        )
        parts.append(
            "<h3>Dissolve index: median R<sup>2</sup> of each image fitted as a blend of the two "
            f"reconstructions (1: a pure blend)</h3>\n<table>\n{cells}\n</table>"
        )
    return "<p>" + parts[0] + "</p>\n" + "\n".join(parts[1:])


def _random_pairs(run: Run, data: data_lib.ImageData, split: str) -> str:
    picture, about = random_sheet(run, data)
    text = html.escape(
        f"{len(about['pairs'])} random {split} horse-bird pairs, every one kept, four to a row: "
        f"the horse, the bird, the {about['path']} midpoint at t = {about['t']:g}, and the "
        "cross-fade of the two photos with its contrast restored (the strongest one-line pixel "
        "trick). Median dissolve index of these midpoints: "
        f"{np.median(about['dissolve_index']):.3f} (1: a pure blend of the two reconstructions)."
    )
    alt = "random pairs beside their contrast-restored cross-fades"
    return f"<p>{text}</p>\n{_img(png_bytes(picture, scale=2), alt, pixels=True)}"


def _curves(history: Path) -> str:
    if not history.is_file():
        return '<p class="note">No history.csv in the run: no training curves.</p>'
    with history.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return '<p class="note">history.csv is empty: no training curves.</p>'
    plt = pyplot()
    epochs = [int(r["epoch"]) + 1 for r in rows]
    panels = [
        ("Reconstruction RMSE (0-255)", ("rmse", "val_rmse")),
        ("Autoencoder losses", ("loss_ae", "loss_ae_critic", "loss_ae_disc")),
        ("Critic losses", ("loss_critic", "loss_critic_real", "loss_disc")),
        ("Latent probe accuracy", ("probe_accuracy", "val_probe_accuracy")),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(13.5, 3.2))
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            if key in rows[0]:
                ax.plot(epochs, [float(r[key]) for r in rows], marker="o", ms=3, label=key)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _img(figure_png(fig), "training curves")


def _reconstructions(run: Run, data: data_lib.ImageData, count: int = 16) -> str:
    order = np.random.default_rng(1).permutation(len(data.test_images))[:count]
    recon = np.asarray(to_uint8(run.model(to_float(data.test_images[order]))))
    picture = grid([data.test_images[order], recon], fill=255)
    return (
        _img(png_bytes(picture, scale=2), "test images over their reconstructions", pixels=True)
        + "<p>Top: held-out images. Bottom: their reconstructions.</p>"
    )


def _interpolations(run: Run, data: data_lib.ImageData) -> str:
    order = np.random.default_rng(2).permutation(len(data.test_images))[: 2 * REPORT_PAIRS]
    a, b = data.test_images[order[:REPORT_PAIRS]], data.test_images[order[REPORT_PAIRS:]]
    t = np.linspace(0.0, 1.0, REPORT_STEPS, dtype=np.float32)
    walks = strips(run.model, to_float(a), to_float(b), t)  # {path: (pairs, T + 2, H, W, C)}
    rows = [np.asarray(to_uint8(walks[path][i])) for i in range(REPORT_PAIRS) for path in PATHS]
    return (
        _img(png_bytes(grid(rows, fill=255), scale=2), "lerp and slerp interpolations", pixels=True)
        + f"<p>{REPORT_PAIRS} held-out pairs, each a lerp row then a slerp row: the first and "
        f"last image are the inputs, between them the decoded path at {REPORT_STEPS} "
        "evenly spaced t from 0 to 1.</p>"
    )


def _pegasi(folder: Path) -> str:
    parts = [_img((folder / "pegasi.png").read_bytes(), "64 pegasi", pixels=True)]
    if (folder / "best_pegasus.png").is_file():
        parts.append(
            _img((folder / "best_pegasus.png").read_bytes(), "the best pegasus", pixels=True)
        )
    text = ""
    if (folder / "pegasi.json").is_file():
        summary = json.loads((folder / "pegasi.json").read_text()).get("summary", {})
        summary = {who: summary[who] for who in ("pegasi", "crossfade") if who in summary}
        keys = list(summary.get("pegasi", {}))
        cells = "".join(
            f'<tr><td>{html.escape(SCORECARD_LABELS.get(k, k))} <code class="key">{k}</code></td>'
            + "".join(f"<td>{summary[who][k]:.3f}</td>" for who in summary)
            + "</tr>"
            for k in keys
        )
        names = {"pegasi": "pegasi", "crossfade": "pixel cross-fade"}
        head = "".join(f"<th>{names[who]}</th>" for who in summary)
        text = f"<table><tr><th>scorecard</th>{head}</tr>{cells}</table>"
    return "".join(f"<figure>{p}</figure>" for p in parts) + text


def _networks(run: Run) -> str:
    parts, missing = [], None
    for net in (run.model.encoder, run.model.decoder, run.model.critic):
        try:
            png = diagrams.diagram_png(net)
            parts.append(
                f"<figure>{_img(png, net.name)}<figcaption>{net.name}</figcaption></figure>"
            )
        except Exception as e:  # drawing failed: the text summary says the same in words
            missing = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            parts.append(f"<h3>{net.name}</h3><pre>{html.escape(text_summary(net))}</pre>")
    note = ""
    if missing:
        note = (
            f'<p class="note">No diagrams ({html.escape(missing)}): the networks are shown '
            "as text summaries.</p>"
        )
    return note + "\n".join(parts)


def text_summary(net) -> str:
    """`net.summary()` as a string."""
    lines = []
    net.summary(print_fn=lambda line, **_: lines.append(line), line_length=100)
    return "\n".join(lines)


def _config(run: Run) -> str:
    return f"<pre>{html.escape(run.config.to_json())}</pre>"


def _img(png: bytes, alt: str, *, pixels: bool = False) -> str:
    src = base64.b64encode(png).decode("ascii")
    cls = ' class="pixels"' if pixels else ""
    return f'<img{cls} alt="{html.escape(alt)}" src="data:image/png;base64,{src}">'
