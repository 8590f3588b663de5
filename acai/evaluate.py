"""Evaluate a trained run the paper's way: metrics.json, a report.html, and run comparisons."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
import os
from pathlib import Path

import numpy as np

from acai import data as data_lib
from acai import metrics
from acai.errors import AcaiError, WorkdirError
from acai.trainer import Run, evaluate_heldout, load_run, write_json

log = logging.getLogger(__name__)

LINE_PAIRS, LINE_STEPS = 256, 16  # the lines evaluation: 256 seeded pairs, 16 images each
CLUSTER_IMAGES = 10_000  # test images whose latents k-means clusters
REPORT_PAIRS, REPORT_STEPS = 4, 11  # interpolation rows shown in the report
# Shown in this order in tables; lower is better for the first group, higher for the second.
LOWER_BETTER = ("rmse", "mean_distance", "smoothness", "mean_distance_slerp", "smoothness_slerp")
HIGHER_BETTER = ("probe_accuracy", "kmeans_accuracy")


# --- metrics ---------------------------------------------------------------------------------


def compute_metrics(run: Run, data: data_lib.ImageData, *, seed: int = 0) -> dict:
    """Every metric of a run on its held-out split; the lines metrics for lines32 runs.

    Returns:
      {"step", "images", "advweight", "rmse", "probe_accuracy", "kmeans_accuracy", ...};
      lines32 runs add "mean_distance" and "smoothness" (lerp, the paper's way), their slerp
      versions, and the same two figures for the exact interpolation and the pixel cross-fade
      of the same pairs.
    """
    result = {**evaluate_heldout(run.model, data, batch=256), "advweight": run.config.advweight}
    order = np.random.default_rng(seed).permutation(len(data.test_images))[:CLUSTER_IMAGES]
    latents = _encode(run, data.test_images[order])
    clusters = metrics.kmeans(latents.reshape(len(latents), -1), data.num_classes, seed=seed)
    result["kmeans_accuracy"] = metrics.clustering_accuracy(data.test_labels[order], clusters)
    if run.config.data == data_lib.LINES_SOURCE:
        result.update(lines_metrics(run, seed=seed))
    return result


def lines_metrics(run: Run, *, seed: int = 0) -> dict:
    """Mean Distance and Smoothness of the run's interpolations between seeded line pairs."""
    reference = metrics.reference_lines()
    exact = metrics.exact_line_walk(metrics.line_pairs(LINE_PAIRS, seed=seed), LINE_STEPS)
    ends = exact[:, 0], exact[:, -1]  # (I, 32, 32, 1) each
    t = np.linspace(0.0, 1.0, LINE_STEPS, dtype=np.float32)
    result = {}
    for suffix, spherical in (("", False), ("_slerp", True)):
        walks = np.asarray(run.model.interpolate(*ends, t, spherical=spherical))  # (T, I, ...)
        scores = metrics.line_scores(walks.swapaxes(0, 1), reference)
        result.update({f"{k}{suffix}": v for k, v in scores.items()})
    for name, walks in (("exact", exact), ("crossfade", metrics.crossfade_walk(*ends, LINE_STEPS))):
        scores = metrics.line_scores(walks, reference)
        result[f"{name}_mean_distance"] = scores["mean_distance"]
        result[f"{name}_smoothness"] = scores["smoothness"]
    return result


def _encode(run: Run, images_uint8: np.ndarray, batch: int = 500) -> np.ndarray:
    return np.concatenate([
        np.asarray(run.model.encode(data_lib.to_float(images_uint8[i : i + batch])))
        for i in range(0, len(images_uint8), batch)
    ])  # fmt: skip


# --- acai evaluate ---------------------------------------------------------------------------


def evaluate(workdir: str | Path, *, out: str | Path | None = None,
             pegasi: str | Path | None = None) -> dict:  # fmt: skip
    """Writes metrics.json and report.html for a trained run.

    Args:
      workdir: a folder `acai train` wrote.
      out: where the two files go (default: the run's folder).
      pegasi: a folder `acai pegasus` wrote, shown in the report (default: <workdir>/pegasi,
        if it exists).

    Returns:
      The metrics, with "files" listing what was written.
    """
    run = load_run(workdir)
    data = data_lib.load(run.config.data, run.config.classes)
    if data.image_shape != run.image_shape:
        raise WorkdirError(
            f"the run's data '{run.config.data}' now has images of shape {data.image_shape}, "
            f"the run was trained on {run.image_shape}; pass the run's own data"
        )
    out = Path(out) if out is not None else run.workdir
    out.mkdir(parents=True, exist_ok=True)
    result = compute_metrics(run, data)
    write_json(out / "metrics.json", result)
    pegasi = Path(pegasi) if pegasi is not None else run.workdir / "pegasi"
    page = report_html(run, data, result, pegasi_dir=pegasi)
    tmp = out / ".report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out / "report.html")
    return {**result, "files": [str(out / "metrics.json"), str(out / "report.html")]}


def load_metrics(workdir: str | Path) -> dict:
    """A run's metrics.json, computed (and written) first if it is missing or out of date."""
    workdir = Path(workdir)
    path = workdir / "metrics.json"
    run = load_run(workdir)
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            if saved.get("step") == run.step and "advweight" in saved:
                return saved
        except ValueError:
            log.warning("'%s' is unreadable; computing the metrics again", path)
    result = compute_metrics(run, data_lib.load(run.config.data, run.config.classes))
    write_json(path, result)
    return result


def compare(workdirs: list[str | Path]) -> str:
    """A plain-text table of the runs' metrics side by side, best of each row marked *."""
    if len(workdirs) < 2:
        raise AcaiError("compare needs two or more runs: acai compare WORKDIR_A WORKDIR_B")
    columns = [load_metrics(w) for w in workdirs]
    rows = [("step", [str(c["step"]) for c in columns]),
            ("advweight (lambda)", [f"{c['advweight']:g}" for c in columns])]  # fmt: skip
    for key in (*LOWER_BETTER, *HIGHER_BETTER):
        values = [c.get(key) for c in columns]
        if any(v is None for v in values):
            continue
        best = (min if key in LOWER_BETTER else max)(values)
        rows.append((_LABELS.get(key, key), [f"{_fmt(key, v)}{' *' if v == best else ''}"
                                             for v in values]))  # fmt: skip
    header = ("", *[Path(w).name for w in workdirs])
    table = [header, *[(name, *cells) for name, cells in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    lines.append("(* best; lower is better for RMSE, Mean Distance and Smoothness)")
    return "\n".join(lines)


_LABELS = {
    "rmse": "reconstruction RMSE (0-255)",
    "probe_accuracy": "latent probe accuracy",
    "kmeans_accuracy": "latent k-means accuracy",
    "mean_distance": "Mean Distance, lerp",
    "smoothness": "Smoothness, lerp",
    "mean_distance_slerp": "Mean Distance, slerp",
    "smoothness_slerp": "Smoothness, slerp",
}


def summary(result: dict) -> str:
    """The metrics as "label: value" lines, for the command line."""
    keys = [k for k in (*LOWER_BETTER, *HIGHER_BETTER) if k in result]
    return "\n".join(f"  {_LABELS[k]}: {_fmt(k, result[k])}" for k in keys)


def _fmt(key: str, value) -> str:
    if key.endswith("accuracy"):
        return f"{100 * value:.1f}%"
    if key.startswith("mean_distance"):
        return f"{1000 * value:.2f}e-3"
    return f"{value:.3f}" if key.startswith("smoothness") else f"{value:.2f}"


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
            rows.append((f"{_LABELS[key]} ({better} is better)", _fmt(key, result[key])))
    if "mean_distance" in result:
        for who in ("exact", "crossfade"):
            rows.append((f"for reference, the {who} interpolation: Mean Distance / Smoothness",
                         f"{_fmt('mean_distance', result[f'{who}_mean_distance'])} / "
                         f"{result[f'{who}_smoothness']:.3f}"))  # fmt: skip
        rows.append(("interpolations with undefined Smoothness (counted as 0)",
                     f"{100 * result['undefined_smoothness']:.1f}%"))  # fmt: skip
    cells = "\n".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                      for k, v in rows)  # fmt: skip
    return f"<table>\n{cells}\n</table>"


def _curves(history: Path) -> str:
    if not history.is_file():
        return '<p class="note">No history.csv in the run: no training curves.</p>'
    with history.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return '<p class="note">history.csv is empty: no training curves.</p>'
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) + 1 for r in rows]
    panels = [("Reconstruction RMSE (0-255)", ("rmse", "val_rmse")),
              ("Autoencoder losses", ("loss_ae", "loss_ae_critic")),
              ("Critic losses", ("loss_critic", "loss_critic_real")),
              ("Latent probe accuracy", ("probe_accuracy", "val_probe_accuracy"))]  # fmt: skip
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
    return _img(_figure_png(fig), "training curves")


def _reconstructions(run: Run, data: data_lib.ImageData, count: int = 16) -> str:
    order = np.random.default_rng(1).permutation(len(data.test_images))[:count]
    x = data_lib.to_float(data.test_images[order])
    recon = np.asarray(data_lib.to_uint8(run.model(x)))
    grid = _rows([data.test_images[order], recon])
    return (_img(_png(grid, scale=2), "test images over their reconstructions", pixels=True)
            + "<p>Top: held-out images. Bottom: their reconstructions.</p>")  # fmt: skip


def _interpolations(run: Run, data: data_lib.ImageData) -> str:
    order = np.random.default_rng(2).permutation(len(data.test_images))[: 2 * REPORT_PAIRS]
    a, b = data.test_images[order[:REPORT_PAIRS]], data.test_images[order[REPORT_PAIRS:]]
    t = np.linspace(0.0, 1.0, REPORT_STEPS, dtype=np.float32)
    walks = [  # lerp, slerp: (T, pairs, H, W, C) each
        np.asarray(data_lib.to_uint8(run.model.interpolate(
            data_lib.to_float(a), data_lib.to_float(b), t, spherical=spherical)))
        for spherical in (False, True)
    ]  # fmt: skip
    rows = [np.concatenate([a[i : i + 1], walk[:, i], b[i : i + 1]])
            for i in range(REPORT_PAIRS) for walk in walks]  # fmt: skip
    return (_img(_png(_rows(rows), scale=2), "lerp and slerp interpolations", pixels=True)
            + f"<p>{REPORT_PAIRS} held-out pairs, each a lerp row then a slerp row: the first and "
            f"last image are the inputs, between them the decoded path at {REPORT_STEPS} "
            "evenly spaced t from 0 to 1.</p>")  # fmt: skip


def _pegasi(folder: Path) -> str:
    parts = [_img((folder / "pegasi.png").read_bytes(), "64 pegasi", pixels=True)]
    if (folder / "best_pegasus.png").is_file():
        parts.append(_img((folder / "best_pegasus.png").read_bytes(), "the best pegasus",
                          pixels=True))  # fmt: skip
    text = ""
    if (folder / "pegasi.json").is_file():
        summary = json.loads((folder / "pegasi.json").read_text()).get("summary", {})
        summary = {who: summary[who] for who in ("pegasi", "crossfade") if who in summary}
        keys = list(summary.get("pegasi", {}))
        cells = "".join(f"<tr><td>{html.escape(k)}</td>"
                        + "".join(f"<td>{summary[who][k]:.3f}</td>" for who in summary) + "</tr>"
                        for k in keys)  # fmt: skip
        head = "".join(f"<th>{html.escape(who)}</th>" for who in summary)
        text = f"<table><tr><th>scorecard</th>{head}</tr>{cells}</table>"
    return "".join(f"<figure>{p}</figure>" for p in parts) + text


def _networks(run: Run) -> str:
    parts, missing = [], None
    for net in (run.model.encoder, run.model.decoder, run.model.critic):
        try:
            png = diagram_png(net)
            parts.append(
                f"<figure>{_img(png, net.name)}<figcaption>{net.name}</figcaption></figure>"
            )
        except Exception as e:  # pydot missing (ImportError), Graphviz missing or failing
            missing = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            parts.append(f"<h3>{net.name}</h3><pre>{html.escape(text_summary(net))}</pre>")
    note = ""
    if missing:
        note = (f'<p class="note">No diagrams ({html.escape(missing)}): the networks are shown '
                "as text summaries. For diagrams install Graphviz (apt install graphviz) and "
                "pydot (pip install pydot).</p>")  # fmt: skip
    return note + "\n".join(parts)


def text_summary(net) -> str:
    """`net.summary()` as a string."""
    lines = []
    net.summary(print_fn=lambda line, **_: lines.append(line), line_length=100)
    return "\n".join(lines)


def diagram_png(net) -> bytes:
    """A network's diagram from `keras.utils.model_to_dot`, as PNG bytes.

    Keras asks Graphviz for orthogonal edges, which crashes some Graphviz versions on tall
    graphs ("Trapezoid-table overflow"); straight splines draw the same picture.
    """
    import keras

    dot = keras.utils.model_to_dot(net, show_shapes=True, dpi=60)
    dot.set("splines", "true")
    return dot.create(format="png")


def _config(run: Run) -> str:
    return f"<pre>{html.escape(run.config.to_json())}</pre>"


# --- pictures --------------------------------------------------------------------------------


def _rows(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of (n_i, H, W, C) uint8 images -> one picture, short rows padded with white."""
    width = max(len(r) for r in rows)
    h, w, c = rows[0].shape[1:]
    grid = np.full((len(rows), width, h, w, c), 255, np.uint8)
    for i, r in enumerate(rows):
        grid[i, : len(r)] = r
    return grid.transpose(0, 2, 1, 3, 4).reshape(len(rows) * h, width * w, c)


def _png(image: np.ndarray, *, scale: int = 1) -> bytes:
    from PIL import Image

    image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "PNG")
    return buffer.getvalue()


def _figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def _img(png: bytes, alt: str, *, pixels: bool = False) -> str:
    src = base64.b64encode(png).decode("ascii")
    cls = ' class="pixels"' if pixels else ""
    return f'<img{cls} alt="{html.escape(alt)}" src="data:image/png;base64,{src}">'
