"""Evaluate a trained run the paper's way: metrics.json, a report.html, and run comparisons."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import numpy as np

from acai.core.walks import PATHS, crossfade
from acai.errors import AcaiError, WorkdirError
from acai.files import write_atomic, write_json
from acai.images import in_batches, to_float
from acai.pegasi import judge as judge_lib
from acai.pegasi import metrics, realism
from acai.pegasi.baselines import dissolve_index
from acai.pegasi.report import HIGHER_BETTER, LABELS, LOWER_BETTER, REALISM_LABELS, fmt, report_html
from acai.training import data as data_lib
from acai.training import lines
from acai.training import run as run_lib
from acai.training.run import Run, heldout_scores

log = logging.getLogger(__name__)

LINE_PAIRS, LINE_STEPS = 256, 16  # the lines evaluation: 256 seeded pairs, 16 images each
CLUSTER_IMAGES = 10_000  # test images whose latents k-means clusters
DEFAULT_OUT = Path("out/evaluate")  # where an export's or the shipped model's metrics go


# --- metrics ---------------------------------------------------------------------------------


def compute_metrics(
    run: Run, data: data_lib.ImageData, *, seed: int = 0, judges=(), split: str = "test"
) -> dict:
    """Every metric of a run on its held-out split; the lines metrics for lines32 runs.

    Args:
      run: a loaded run.
      data: its data; its test split is the one scored.
      seed: seeds the drawn images and pairs.
      judges: `acai.pegasi.realism` judges; with any, and horses and birds in the data, "realism"
        holds `acai.pegasi.realism.realism`'s figures under each.
      split: the name of the scored split ("test" or "validation"), recorded.

    Returns:
      {"step", "images", "advweight", "rmse", "probe_accuracy", "kmeans_accuracy", ...};
      lines32 runs add "mean_distance" and "smoothness" (lerp, the paper's way), their slerp
      versions, and the same two figures for the exact interpolation and the pixel cross-fade
      of the same pairs.
    """
    scores = heldout_scores(run.model, data.test_images, data.test_labels)
    result = {
        "step": run.step,
        **scores,
        "images": len(data.test_images),
        "advweight": run.config.advweight,
        "split": split,
    }
    order = np.random.default_rng(seed).permutation(len(data.test_images))[:CLUSTER_IMAGES]
    latents = _encode(run, data.test_images[order])
    clusters = metrics.kmeans(latents.reshape(len(latents), -1), data.num_classes, seed=seed)
    result["kmeans_accuracy"] = metrics.clustering_accuracy(data.test_labels[order], clusters)
    if run.config.data == lines.LINES_SOURCE:
        result.update(lines_metrics(run, seed=seed))
    if judges and {"horse", "bird"} <= set(data.class_names):
        result["realism"] = realism.realism(run, data, list(judges), seed=seed, split=split)
    return result


def lines_metrics(run: Run, *, seed: int = 0) -> dict:
    """Mean Distance and Smoothness of the run's interpolations between seeded line pairs, and
    the dissolve index of their midpoints (t = 0.5) on the decoded ends: a midpoint that is one
    bar at the middle angle scores as the exact walk's does, a double exposure near 1."""
    reference = lines.reference_lines()
    pairs = lines.line_pairs(LINE_PAIRS, seed=seed)
    exact = lines.exact_line_walk(pairs, LINE_STEPS)
    ends = exact[:, 0], exact[:, -1]  # (I, 32, 32, 1) each
    t = np.linspace(0.0, 1.0, LINE_STEPS, dtype=np.float32)
    result = {}
    za, zb = run.model.encode(ends[0]), run.model.encode(ends[1])
    for path in PATHS:  # every point decoded, the ends too, as the paper's code does
        walks = np.asarray(run.model.decode_path(za, zb, t, path=path)).swapaxes(0, 1)
        scores = lines.line_scores(walks, reference)  # walks: (I, T, H, W, 1)
        (mid,) = np.asarray(run.model.decode_path(za, zb, np.float32([0.5]), path=path))
        scores["dissolve_index"] = float(np.median(dissolve_index(mid, walks[:, 0], walks[:, -1])))
        suffix = "" if path == "lerp" else f"_{path}"  # the paper's figures are lerp's
        result.update({f"{k}{suffix}": v for k, v in scores.items()})
    middle = lines.exact_line_walk(pairs, 3)[:, 1]  # one bar at the middle angle
    result["exact_dissolve_index"] = float(np.median(dissolve_index(middle, *ends)))
    fades = crossfade(*ends, t).swapaxes(0, 1)  # (I, T, ...)
    for name, walks in (("exact", exact), ("crossfade", fades)):
        scores = lines.line_scores(walks, reference)
        result[f"{name}_mean_distance"] = scores["mean_distance"]
        result[f"{name}_smoothness"] = scores["smoothness"]
    return result


def _encode(run: Run, images_uint8: np.ndarray) -> np.ndarray:
    return in_batches(lambda x: run.model.encode(to_float(x)), images_uint8)


# --- acai evaluate ---------------------------------------------------------------------------


def evaluate(
    workdir: str | Path | None,
    *,
    data: str | None = None,
    out: str | Path | None = None,
    pegasi: str | Path | None = None,
    judges=(),
    split: str = "test",
) -> dict:
    """Writes metrics.json and report.html for a trained run, an export or the shipped model.

    Args:
      workdir: a folder `acai train` or `acai export` wrote; None or "pretrained" for the
        shipped model (see `acai.training.run.open`).
      data: the data source, if not the run's own (an export keeps only its file's name).
      out: where the two files go (default: a run's own folder; out/evaluate for an export or
        the shipped model).
      pegasi: a folder `acai pegasus` wrote, shown in the report (default: <workdir>/pegasi,
        if it exists).
      judges: classifier files (`acai classifier`) that judge horse-bird realism, each that
        exists, beside the classifier-free `acai.pegasi.judge.SwdJudge`, which judges always.
      split: "test", or "validation": the run's `validation` photos, which recipe choices are
        made on.

    Returns:
      The metrics, with "files" listing what was written.
    """
    run = run_lib.open(workdir)
    data = split_view(load_data(run, data), split, run.config.validation)
    out = Path(out) if out is not None else run.workdir if run.kind == "run" else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    chosen = judge_lib.from_files(judges, feature_model=run.config.perceptual_model)
    result = compute_metrics(run, data, judges=chosen, split=split)
    write_json(out / "metrics.json", result)
    pegasi = Path(pegasi) if pegasi is not None else run.workdir / "pegasi"
    page = report_html(run, data, result, pegasi_dir=pegasi)
    write_atomic(out / "report.html", page)
    return {**result, "files": [str(out / "metrics.json"), str(out / "report.html")]}


def split_view(data: data_lib.ImageData, split: str, validation: int) -> data_lib.ImageData:
    """The data with `split` as its test split: "test" as it is, or "validation", the
    `validation` training photos per class a run held out
    (`acai.training.data.carve_validation`)."""
    if split == "test":
        return data
    if split != "validation":
        raise AcaiError(f"unknown split '{split}'; pass test or validation")
    if not validation:
        raise AcaiError(
            "this run trained on every training image, so it has no validation split; "
            "judge it on the test split, or train with --set validation=500"
        )
    return data_lib.carve_validation(data, validation)[1]


def load_data(run: Run, data: str | None = None) -> data_lib.ImageData:
    """The data a run is measured on (`acai.training.run.data_source`), checked against its
    images."""
    source = run_lib.data_source(run, data)
    if source is None:
        raise AcaiError(
            f"the {'shipped model' if run.kind == 'pretrained' else 'export'} keeps only its "
            f"data's file name ('{run.config.data}'); pass --data path/to/it"
        )
    data = data_lib.load(source, run.config.classes)
    if data.image_shape != run.image_shape:
        raise WorkdirError(
            f"the run's data '{run.config.data}' now has images of shape {data.image_shape}, "
            f"the run was trained on {run.image_shape}; pass the run's own data"
        )
    return data


def load_metrics(workdir: str | Path) -> dict:
    """A run's metrics.json, computed (and written) first if it is missing or out of date; or,
    from a folder `acai evaluate --out` wrote (no run of its own to compute it again from), the
    metrics.json found there."""
    workdir = Path(workdir)
    path = workdir / "metrics.json"
    try:
        run = run_lib.open(workdir)
    except WorkdirError:
        if path.is_file():
            return _evaluated(path)
        raise
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            if saved.get("step") == run.step and "advweight" in saved:
                return saved
        except ValueError:
            log.warning("'%s' is unreadable; computing the metrics again", path)
    result = compute_metrics(run, load_data(run))
    write_json(path, result)
    return result


def _evaluated(path: Path) -> dict:
    """A metrics.json that `acai evaluate --out` wrote, checked to be one."""
    try:
        saved = json.loads(path.read_text())
    except ValueError:
        saved = None
    if not isinstance(saved, dict) or "step" not in saved or "advweight" not in saved:
        raise AcaiError(
            f"'{path}' is not a metrics.json from acai evaluate; pass a trained run, or a "
            "folder acai evaluate --out wrote"
        )
    return saved


def _column_names(workdirs: list[str | Path]) -> list[str]:
    """Each folder's name, with its parent's where two names are the same (run_a/test and
    run_b/test, from `acai evaluate --split test --out RUN/test`)."""
    paths = [Path(w).resolve() for w in workdirs]
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def compare(workdirs: list[str | Path], *, spread: bool = False) -> str:
    """A plain-text table of the runs' metrics side by side, best of each row marked *: the
    held-out scores, and the realism distances under each judge every run was scored by (the
    same judge file, by hash), with the share of slerp midpoints called horse or bird and
    their mean min(P(horse), P(bird)).

    Args:
      workdirs: two or more runs, exports, or folders `acai evaluate --out` wrote.
      spread: add a column with each row's mean and range over the runs: for seeds of one
        recipe.
    """
    if len(workdirs) < 2:
        raise AcaiError("compare needs two or more runs: acai compare WORKDIR_A WORKDIR_B")
    columns = [load_metrics(w) for w in workdirs]
    table = [("", *_column_names(workdirs), *(["mean (min to max)"] if spread else []))]
    table.append(("step", *[str(c["step"]) for c in columns]))
    table.append(("advweight (lambda)", *[f"{c['advweight']:g}" for c in columns]))
    if any("realism" in c for c in columns):
        table.append(("split", *[c.get("split", "test") for c in columns]))
    rows = []  # (label, values, how one reads, lower is better)
    for key in (*LOWER_BETTER, *HIGHER_BETTER):
        values = [c.get(key) for c in columns]
        if all(v is not None for v in values):
            text = functools.partial(fmt, key)
            rows.append((LABELS.get(key, key), values, text, key in LOWER_BETTER))
    rows += _realism_rows(columns)
    for label, values, text, lower in rows:
        best = (min if lower else max)(values)
        cells = [f"{text(v)}{' *' if v == best else ''}" for v in values]
        mean = sum(values) / len(values)
        extra = [f"{text(mean)} ({text(min(values))} to {text(max(values))})"] if spread else []
        table.append((label, *cells, *extra))
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    lines.append(
        "(* best; lower is better for RMSE, Mean Distance, Smoothness, distances and the dissolve "
        "index)"
    )
    return "\n".join(lines)


def _realism_rows(columns: list[dict]) -> list[tuple]:
    """Rows for every judge that scored every run with the same file (by hash)."""
    judged = [c.get("realism", {}).get("judges", {}) for c in columns]
    rows = []
    for judge in sorted(set.intersection(*(set(j) for j in judged))):
        entries = [j[judge] for j in judged]
        if len({e.get("sha256") for e in entries}) > 1:
            continue  # two files of one name: not the same judge
        for key, label in REALISM_LABELS.items():
            values = [e["distance"].get(key) for e in entries]
            if all(v is not None for v in values):
                rows.append((f"{judge}: {label}", values, "{:.2f}".format, True))
        shares = [e.get("horse_or_bird_share", {}).get("slerp") for e in entries]
        if all(v is not None for v in shares):
            rows.append((f"{judge}: slerp called horse or bird", shares, "{:.1%}".format, False))
        both = [e.get("mean_min_p", {}).get("slerp") for e in entries]
        if all(v is not None for v in both):
            rows.append((f"{judge}: slerp mean min(P)", both, "{:.3f}".format, False))
    indices = [c.get("realism", {}).get("dissolve_index", {}).get("slerp") for c in columns]
    if all(v is not None for v in indices):
        rows.append(("dissolve index, slerp midpoints", indices, "{:.3f}".format, True))
    return rows


def summary(result: dict) -> str:
    """The metrics as "label: value" lines, for the command line; on lines32, the paper's
    figures beside them."""
    keys = [k for k in (*LOWER_BETTER, *HIGHER_BETTER) if k in result]
    out = [f"  {LABELS[k]}: {fmt(k, result[k])}" for k in keys]
    if "mean_distance" in result:
        out.append("  the paper's Table 1 (lerp, 2^24 training images):")
        out += [
            f"    {who}: Mean Distance {fmt('mean_distance', figures['mean_distance'])}, "
            f"Smoothness {fmt('smoothness', figures['smoothness'])}"
            for who, figures in lines.PAPER_FIGURES.items()
        ]
    return "\n".join(out)
