"""The lines benchmark against the training budget: train in stages, score each stage.

    python experiments/lines_curve.py --config experiments/lines32_paper.py \
        --workdir runs/lines_acai_s0 --kimg 64,128,256,512 [--set seed=1 --set advweight=0]

Each stage raises `total_kimg` and resumes the same run (at a constant rate a run trained in
stages is the run trained in one go; a falling rate needs one run per budget), then appends the
paper's Mean Distance and Smoothness of its interpolations to WORKDIR/curve.jsonl. Re-running
skips the stages already scored, so a stopped curve resumes where it stopped.

To read a run as the paper does, score it every 64 kimg and take the median of its last
scores: `--kimg 64:2048:64 --median-of 8` (START:STOP:STEP, STOP included) prints the median of
the scores at 1,600 to 2,048 kimg once they are all in (the paper: the last 20 of 16,384 kimg).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import acai
from acai.core import config as config_lib
from acai.training.lines import median_of_last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="an experiments/*.py file")
    parser.add_argument("--workdir", required=True, help="the run's folder, kept between stages")
    parser.add_argument(
        "--kimg", required=True, help="budgets: comma-separated (64,128,256) or START:STOP:STEP"
    )
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument(
        "--median-of",
        type=int,
        default=0,
        metavar="N",
        help="also print the median of the last N scores, the paper's reading of a run",
    )
    args = parser.parse_args()
    try:
        budgets = parse_budgets(args.kimg)
    except ValueError as error:
        parser.error(f"--kimg {args.kimg}: {error}")
    if args.median_of < 0 or args.median_of > len(budgets):
        parser.error(f"--median-of must be between 0 and the {len(budgets)} budgets of --kimg")

    base = config_lib.apply_overrides(config_lib.load(args.config), args.set)
    if base.lr_schedule != "constant" and len(budgets) > 1:
        parser.error(
            f"lr_schedule={base.lr_schedule} falls over the whole run, so it cannot be trained "
            "in stages; pass one budget to --kimg, or a run per budget"
        )
    workdir = Path(args.workdir)
    log = workdir / "curve.jsonl"
    done = set()
    if log.exists():
        done = {json.loads(line)["kimg"] for line in log.read_text().splitlines() if line}
    try:
        for kimg in budgets:
            if kimg not in done:
                train_and_score(base.replace(total_kimg=kimg), workdir, log)
    except KeyboardInterrupt as stop:  # acai.train checkpoints before it raises this
        print(
            "lines_curve: stopped; the run is checkpointed and the same command resumes it",
            file=sys.stderr,
        )
        return 128 + getattr(stop, "signum", 2)
    if args.median_of:
        rows = [json.loads(line) for line in log.read_text().splitlines() if line]
        reading = median_of_last([r for r in rows if r["kimg"] in budgets], args.median_of)
        print(
            f"median of the {reading['scores']} scores at {reading['from_kimg']:g} to "
            f"{reading['to_kimg']:g} kimg: mean distance {reading['mean_distance']:.3e}, "
            f"smoothness {reading['smoothness']:.3f}",
            flush=True,
        )
    return 0


def train_and_score(config, workdir: Path, log: Path) -> None:
    """Trains the run in `workdir` to `config.total_kimg` and appends its scores to `log`."""
    from acai.pegasi.evaluate import lines_metrics  # loads TensorFlow: after the arguments

    start = time.time()
    acai.train(config, workdir, verbose=2)
    seconds = time.time() - start
    scores = lines_metrics(acai.load_run(workdir))
    row = {"kimg": config.total_kimg, "advweight": config.advweight, "seed": config.seed, **scores}
    row["stage_seconds"] = round(seconds, 1)
    with log.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(
        f"kimg {config.total_kimg:g}: mean distance {scores['mean_distance']:.3e}, "
        f"smoothness {scores['smoothness']:.3f} ({seconds:.0f} s)",
        flush=True,
    )


def parse_budgets(text: str) -> list[float]:
    """The budgets of `--kimg`, ascending: "64,128,256", or "64:512:64" for every 64 up to 512."""
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError("a range is START:STOP:STEP, e.g. 64:2048:64")
        start, stop, step = (float(part) for part in parts)
        if not 0 < start <= stop or step <= 0:
            raise ValueError("START:STOP:STEP needs 0 < START <= STOP and STEP > 0")
        count = int(round((stop - start) / step)) + 1
        return [start + i * step for i in range(count) if start + i * step <= stop + 1e-9]
    budgets = sorted({float(part) for part in text.split(",")})
    if budgets[0] <= 0:
        raise ValueError("every budget must be above 0 kimg")
    return budgets


if __name__ == "__main__":
    sys.exit(main())
