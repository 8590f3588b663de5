"""The lines benchmark against the training budget: train in stages, score each stage.

    python experiments/lines_curve.py --config experiments/lines32_paper.py \
        --workdir runs/lines_acai_s0 --kimg 64,128,256,512 [--set seed=1 --set advweight=0]

Each stage raises `total_kimg` and resumes the same run (at a constant rate a run trained in
stages is the run trained in one go; a falling rate needs one run per budget), then appends the
paper's Mean Distance and Smoothness of its interpolations to WORKDIR/curve.jsonl. Re-running
skips the stages already scored, so a stopped curve resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import acai
from acai.core import config as config_lib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="an experiments/*.py file")
    parser.add_argument("--workdir", required=True, help="the run's folder, kept between stages")
    parser.add_argument("--kimg", required=True, help="comma-separated budgets, e.g. 64,128,256")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()

    from acai.pegasi.evaluate import lines_metrics  # TensorFlow loads here, after the arguments

    base = config_lib.apply_overrides(config_lib.load(args.config), args.set)
    if base.lr_schedule != "constant" and "," in args.kimg:
        parser.error(
            f"lr_schedule={base.lr_schedule} falls over the whole run, so it cannot be trained "
            "in stages; pass one budget to --kimg, or a run per budget"
        )
    workdir = Path(args.workdir)
    log = workdir / "curve.jsonl"
    done = set()
    if log.exists():
        done = {json.loads(line)["kimg"] for line in log.read_text().splitlines() if line}
    for kimg in sorted(float(k) for k in args.kimg.split(",")):
        if kimg in done:
            continue
        start = time.time()
        acai.train(base.replace(total_kimg=kimg), workdir, verbose=2)
        seconds = time.time() - start
        scores = lines_metrics(acai.load_run(workdir))
        row = {"kimg": kimg, "advweight": base.advweight, "seed": base.seed, **scores}
        row["stage_seconds"] = round(seconds, 1)
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(
            f"kimg {kimg:g}: mean distance {scores['mean_distance']:.3e}, "
            f"smoothness {scores['smoothness']:.3f} ({seconds:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
