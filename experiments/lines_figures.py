"""The lines benchmark's two pictures: the curves of `lines_curve.py` runs, and their walks.

    python experiments/lines_figures.py --acai runs/lines_s0 runs/lines_s1 \
        --plain runs/lines_plain_s0 runs/lines_plain_s1 --out docs

writes OUT/lines_curve.png (Mean Distance and Smoothness against the training budget, one line
per run, labelled with its rate, schedule and seed; a run of a single stage is one point) and
OUT/lines_walks.png (lerp walks between the same pairs of lines: the exact walk,
the first ACAI run, the first plain run). Without --plain, the walks are the exact walk and
the first ACAI run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

PAIRS, STEPS = 6, 10  # walks in the picture, points on each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acai", nargs="+", required=True, help="ACAI runs of lines_curve.py")
    parser.add_argument("--plain", nargs="*", default=[], help="their plain twins")
    parser.add_argument("--out", default="docs", help="the folder for the two PNGs")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves(args.acai, args.plain, out / "lines_curve.png")
    walks([args.acai[0], *args.plain[:1]], out / "lines_walks.png")


def curves(acai_runs, plain_runs, path: Path) -> None:
    from acai.core.config import Config
    from acai.images import figure_png, pyplot
    from acai.training.lines import PAPER_FIGURES

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    runs = [(run, "ACAI", "o-") for run in acai_runs] + [
        (run, "plain", "s--") for run in plain_runs
    ]
    colours = plt.get_cmap("tab10").colors
    for i, (run, name, style) in enumerate(runs):
        rows = [json.loads(line) for line in (Path(run) / "curve.jsonl").read_text().splitlines()]
        config = Config.from_dict(json.loads((Path(run) / "config.json").read_text()))
        schedule = ", cosine" if config.lr_schedule == "cosine" else ""
        dissolves = ", critic shown dissolves" if config.critic_dissolves else ""
        label = f"{name}, lr {config.lr:g}{schedule}{dissolves}, seed {config.seed}"
        kimg = [r["kimg"] for r in rows]
        for ax, key in zip(axes, ("mean_distance", "smoothness")):
            values = [r[key] for r in rows]
            ax.plot(kimg, values, style, color=colours[i % 10], alpha=0.85, label=label)
    for ax, key, label in zip(
        axes, ("mean_distance", "smoothness"), ("Mean Distance", "Smoothness")
    ):
        for who, colour in (("ACAI", "black"), ("plain autoencoder", "grey")):
            ax.axhline(
                PAPER_FIGURES[who][key],
                color=colour,
                ls=":",
                lw=1,
                label=f"the paper's {who}, 16,384 kimg",
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("training images (kimg)")
        ax.set_title(f"{label} (lerp; lower is better)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    path.write_bytes(figure_png(fig, dpi=100))


def walks(runs, path: Path) -> None:
    from acai.images import grid, png_bytes, to_uint8
    from acai.training import lines
    from acai.training.run import open as open_run

    exact = lines.exact_line_walk(lines.line_pairs(PAIRS, seed=3), STEPS)  # (P, T, 32, 32, 1)
    t = np.linspace(0.0, 1.0, STEPS, dtype=np.float32)
    rows = []
    decoded = []
    for run in runs:
        model = open_run(run).model
        za, zb = model.encode(exact[:, 0]), model.encode(exact[:, -1])
        decoded.append(np.asarray(model.decode_path(za, zb, t, path="lerp")).swapaxes(0, 1))
    for i in range(PAIRS):  # per pair: the exact walk, ACAI's, the plain autoencoder's if given
        rows += [exact[i], *(walk[i] for walk in decoded)]
    picture = grid([np.repeat(np.asarray(to_uint8(r)), 3, axis=-1) for r in rows], fill=128)
    path.write_bytes(png_bytes(picture, scale=2))


if __name__ == "__main__":
    main()
