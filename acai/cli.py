"""The `acai` command: parse the arguments, call one library function, print the result."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback

from acai import __version__
from acai import config as config_lib
from acai.errors import AcaiError


def _config(args) -> config_lib.Config:
    config = config_lib.load(args.config)
    overrides = list(args.set or [])
    if getattr(args, "data", None):
        overrides.append(f"data={args.data}")
    return config_lib.apply_overrides(config, overrides)


def cmd_train(args) -> int:
    config = _config(args)  # bad settings fail here, before TensorFlow loads
    from acai import trainer as train_lib

    workdir = args.workdir or os.path.join("runs", _run_name(args.config))
    train_lib.train(config, workdir, verbose=args.verbose)
    return 0


def cmd_bench(args) -> int:
    if args.steps < 1 or args.rounds < 1:
        raise AcaiError("--steps and --rounds must be at least 1")
    config = _config(args)
    from acai import bench as bench_lib

    result = bench_lib.bench(config, steps=args.steps, rounds=args.rounds)
    print(json.dumps(result))
    return 0


def _run_name(config_path: str | None) -> str:
    if not config_path:
        return "default"
    return os.path.splitext(os.path.basename(config_path))[0]


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and TensorFlow logs")  # fmt: skip
    parser.add_argument("--config", help="an experiments/*.py file (default: the paper's settings)")
    parser.add_argument(
        "--set", action="append", metavar="FIELD=VALUE",
        help="override a config field, e.g. --set depth=32 (repeatable)",
    )  # fmt: skip


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acai", description="Adversarially constrained autoencoder interpolation (ACAI)."
    )
    parser.add_argument("--version", action="version", version=f"acai {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("train", help="train or resume a run in WORKDIR")
    _add_config_args(p)
    p.add_argument("--data", help="'tfds', a CIFAR-10 archive, or an image folder (or its tar)")
    p.add_argument("--workdir", help="the run's folder (default: runs/<config name>)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="0 silent, 1 progress bar, 2 one line per epoch")  # fmt: skip
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("bench", help="time training steps on synthetic data")
    _add_config_args(p)
    p.add_argument("--steps", type=int, default=20, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds of fit and of the bare step")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if not args.debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
    logging.basicConfig(format="acai: %(message)s", level=logging.WARNING)
    logging.getLogger("acai").setLevel(logging.DEBUG if args.debug else logging.INFO)
    try:
        return args.func(args)
    except AcaiError as e:
        if args.debug:
            traceback.print_exc()
        print(f"acai: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print("acai: interrupted", file=sys.stderr)
        return 128 + getattr(e, "signum", 2)
    except Exception as e:  # anything else is a bug or the system's problem (disk, memory)
        if args.debug:
            traceback.print_exc()
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"acai: error: {type(e).__name__}: {message} (re-run with --debug for details)",
              file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
