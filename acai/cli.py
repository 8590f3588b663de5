"""The `acai` command: parse the arguments, call one library function, print the result."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback

from acai import __version__, native_logs
from acai.core import config as config_lib
from acai.errors import AcaiError
from acai.pegasi.settings import PEGASI_CANDIDATES, PEGASI_T, check_t_steps

DEFAULT_CLASSIFIER = os.path.join("runs", "classifier", "classifier.keras")


def _config(args) -> config_lib.Config:
    config = config_lib.load(args.config)
    overrides = list(args.set or [])
    if getattr(args, "data", None):
        overrides.append(f"data={args.data}")
    return config_lib.apply_overrides(config, overrides)


def cmd_train(args) -> int:
    config = _config(args)  # bad settings fail here, before data or WORKDIR are touched
    from acai.training import trainer as train_lib

    workdir = args.workdir or os.path.join("runs", _run_name(args.config))
    train_lib.train(config, workdir, verbose=args.verbose)
    return 0


def cmd_bench(args) -> int:
    if args.steps < 1 or args.rounds < 1:
        raise AcaiError("--steps and --rounds must be at least 1")
    config = _config(args)
    from acai.bench import bench as bench_lib

    options = {"steps": args.steps, "rounds": args.rounds, "reference": args.reference}
    result = bench_lib.bench(config, profile=args.profile, **options)
    print(json.dumps(result))
    return 0


def cmd_export(args) -> int:
    if args.workdir_arg and args.workdir and args.workdir_arg != args.workdir:
        raise AcaiError(f"two WORKDIRs ('{args.workdir_arg}' and '{args.workdir}'); pass one")
    workdir = args.workdir_arg or args.workdir
    if not workdir:
        raise AcaiError("pass the run to export: acai export WORKDIR --out OUT")
    from acai.pegasi import export as export_lib

    result = export_lib.export(workdir, args.out, overwrite=args.overwrite)
    print(f"acai: exported step {result['step']} of {workdir} to {result['out']}")
    for name, size in result["sizes"].items():
        print(f"  {name:15s}{size / 1e3:12,.1f} kB")
    return 0


def cmd_provenance(args) -> int:
    from acai.pegasi import export as export_lib

    lines, warning = export_lib.provenance(args.export, data=args.data)
    print(f"acai: {args.export or 'the shipped model'} was trained on:")
    for line in lines:
        print(f"  {line}")
    if warning:
        print(f"acai: warning: {warning}", file=sys.stderr)
    return 0


def cmd_classifier(args) -> int:
    if args.epochs is not None and args.epochs < 1:
        raise AcaiError(f"--epochs must be at least 1, not {args.epochs}")
    if args.validation < 0:
        raise AcaiError(f"--validation must be 0 or more, not {args.validation}")
    from acai.training import classifier as classifier_lib

    epochs = {} if args.epochs is None else {"epochs": args.epochs}
    info = classifier_lib.train(
        args.data,
        args.out,
        seed=args.seed,
        validation=args.validation,
        architecture=args.architecture,
        verbose=args.verbose,
        **epochs,
    )
    print(
        f"acai: classifier test accuracy {100 * info['test_accuracy']:.1f}% on "
        f"{info['test_images']} images; wrote {args.out}"
    )
    return 0


def cmd_interpolate(args) -> int:
    check_t_steps(args.t, args.steps)  # before TensorFlow loads: a quick refusal
    from acai.pegasi import pegasus

    run, data, judge = pegasus.setup(args.workdir, args.classifier, data=args.data)
    import numpy as np

    rng = np.random.default_rng(args.seed)
    horse = pegasus.pick(args.horse, data=data, want="horse", any_class=args.any_class, rng=rng)
    bird = pegasus.pick(args.bird, data=data, want="bird", any_class=args.any_class, rng=rng)
    result = pegasus.walk(run, judge, horse, bird, t=args.t, steps=args.steps, out=args.out)
    model = "the shipped model" if args.workdir is None else str(run.workdir)
    print(f"acai: {horse.description} -> {bird.description}, t={args.t}, {model}, step {run.step}")
    print(_side_by_side(result["lerp"], result["slerp"]))
    if judge.classifier is None:
        print(
            f"acai: no classifier at {args.classifier}, so no P(horse)/P(bird); "
            "train one with: make classifier"
        )
    for path in result["files"]:
        print(path)
    return 0


def cmd_pegasus(args) -> int:
    ts = _t_values(args.t)
    for t in ts:
        check_t_steps(t, 2)  # before TensorFlow loads: a quick refusal
    from acai.pegasi import pegasus
    from acai.pegasi.report import pegasi_text, realism_text

    run, data, judge = pegasus.setup(
        args.workdir, args.classifier, data=args.data, need_data=True, need_classifier=True
    )
    manifest = pegasus.pegasi(
        run,
        judge,
        data,
        n=args.n,
        t=ts,
        candidates=max(args.candidates, args.n),
        seed=args.seed,
        prefer_white=args.white,
        out=args.out or os.path.join(args.workdir, "pegasi"),
    )
    print(pegasi_text(manifest, t=args.t))
    print(realism_text(manifest["realism"]))
    for path in manifest["files"]:
        print(path)
    return 0


def cmd_evaluate(args) -> int:
    from acai.pegasi import evaluate as evaluate_lib
    from acai.pegasi import judge as judge_lib
    from acai.pegasi.report import realism_text

    judges = args.judges or [str(judge_lib.JUDGE_PATH), DEFAULT_CLASSIFIER]
    result = evaluate_lib.evaluate(
        args.workdir,
        data=args.data,
        out=args.out,
        pegasi=args.pegasi,
        judges=judges,
        split=args.split,
    )
    print(f"acai: step {result['step']} of {args.workdir}")
    print(evaluate_lib.summary(result))
    if "realism" in result:
        print(realism_text(result["realism"]))
    for path in result["files"]:
        print(path)
    return 0


def cmd_compare(args) -> int:
    from acai.pegasi import evaluate as evaluate_lib

    print(evaluate_lib.compare(args.workdirs, spread=args.spread))
    return 0


def cmd_demo(args) -> int:
    if not 0 <= args.port <= 65535:  # before TensorFlow loads: a quick refusal
        raise AcaiError(f"--port {args.port} is not a port; pass 1-65535, or 0 for any free one")
    from acai.pegasi import demo as demo_lib

    server = demo_lib.start(
        args.workdir, classifier=args.classifier, data=args.data, host=args.host, port=args.port
    )
    info = server.info
    print(f"acai: {info['model']}, step {info['step']}")
    if not info["classifier"]:
        print(f"acai: no classifier at {args.classifier}, so no P(horse)/P(bird); make classifier")
    if not demo_lib.is_loopback(args.host):
        print(f"acai: listening on {args.host}: other machines can reach this page")
    print(f"acai: the demo is at {server.url} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("acai: demo stopped")
    finally:
        server.server_close()
    return 0


def _t_values(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise AcaiError(
            f"--t '{text}' is not a number or a comma-separated list of numbers, "
            "e.g. --t 0.5 or --t 0.4,0.5,0.6"
        ) from None


def _side_by_side(lerp_scores: dict, slerp_scores: dict) -> str:
    lines = [f"{'':24s}{'lerp':>9s}{'slerp':>9s}"]
    for key in lerp_scores:
        if lerp_scores[key] == lerp_scores[key]:  # NaN: not measured (no training images)
            lines.append(f"{key:24s}{lerp_scores[key]:9.3f}{slerp_scores[key]:9.3f}")
    return "\n".join(lines)


def _run_name(config_path: str | None) -> str:
    if not config_path:
        return "default"
    return os.path.splitext(os.path.basename(config_path))[0]


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="an experiments/*.py file (default: the paper's settings)")
    parser.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="override a config field, e.g. --set depth=32 (repeatable)",
    )


SHIPPED = "'pretrained' (the shipped model)"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acai", description="Adversarially constrained autoencoder interpolation (ACAI)."
    )
    parser.add_argument("--version", action="version", version=f"acai {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    # every command takes --debug after its name too: `acai train --debug` as `acai --debug train`
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, help=help, parents=[debug])

    p = command("train", help="train or resume a run in WORKDIR")
    _add_config_args(p)
    p.add_argument("--data", help="'tfds', a CIFAR-10 archive, or an image folder (or its tar)")
    p.add_argument("--workdir", help="the run's folder (default: runs/<config name>)")
    p.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0 silent, 1 progress bar, 2 one line per epoch",
    )
    p.set_defaults(func=cmd_train)

    p = command("bench", help="time training steps on synthetic data")
    _add_config_args(p)
    p.add_argument("--steps", type=int, default=20, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds of each way of stepping")
    p.add_argument(
        "--reference",
        action="store_true",
        help="also time a plain Keras train step of the same networks in one tf.function",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="trace STEPS more steps into DIR (TensorBoard's Profile tab) and add op times",
    )
    p.set_defaults(func=cmd_bench)

    p = command("export", help="a trained run as .keras files and a SavedModel")
    p.add_argument(
        "workdir_arg", nargs="?", metavar="WORKDIR", help=f"a trained run, an export, or {SHIPPED}"
    )
    p.add_argument("--workdir", help="the same, as an option")
    p.add_argument("--out", required=True, help="the export folder to create")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT")
    p.set_defaults(func=cmd_export)

    p = command("provenance", help="the data and networks an export was trained on")
    p.add_argument("export", nargs="?", metavar="EXPORT", help="default: the shipped model")
    p.add_argument("--data", help="warn unless this is the data the export was trained on")
    p.set_defaults(func=cmd_provenance)

    p = command("classifier", help="train the CIFAR-10 classifier that scores pegasi")
    p.add_argument("--data", default="tfds", help="as for train")
    p.add_argument("--out", default=DEFAULT_CLASSIFIER, help="where classifier.keras goes")
    p.add_argument(
        "--epochs", type=int, help="passes over the data (default: about 85%% test accuracy)"
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the weights and the augmentation")
    p.add_argument(
        "--validation",
        type=int,
        default=0,
        help="training images per class left out, as the config field (for a feature loss)",
    )
    p.add_argument(
        "--architecture",
        choices=("plain", "resnet"),
        default="plain",
        help="plain: the feature loss's family; resnet: the independent realism judge",
    )
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    p.set_defaults(func=cmd_classifier)

    p = command("interpolate", help="a pegasus from one horse and one bird")
    _add_pegasus_args(p, out="out/pegasus", workdir=None)
    choices = "'sample' (a shipped photo), 'random', a test-set index, or an image file"
    p.add_argument("--horse", default="sample", help=choices)
    p.add_argument("--bird", default="sample", help=choices)
    p.add_argument("--steps", type=int, default=11, help="points on the lerp and slerp strips")
    p.add_argument("--any-class", action="store_true", help="accept indices of any class")
    p.set_defaults(func=cmd_interpolate)

    p = command("pegasus", help="a batch of pegasi and the best one")
    _add_pegasus_args(
        p,
        out=None,
        workdir="runs/cifar10_cpu",
        t_help="0 the horse, 1 the bird; a list keeps each pair's best",
    )
    p.add_argument("--n", type=int, default=64, help="pegasi in the batch (64: an 8x8 grid)")
    p.add_argument(
        "--candidates", type=int, default=PEGASI_CANDIDATES, help="horse-bird pairs to rank"
    )
    p.add_argument("--white", action="store_true", help="prefer white pegasi")
    p.set_defaults(func=cmd_pegasus)

    p = command("evaluate", help="metrics.json and report.html for a trained run")
    p.add_argument("workdir", metavar="WORKDIR", help=f"a trained run, an export, or {SHIPPED}")
    p.add_argument("--data", help="the data source, if not the run's own (an export's: pass it)")
    p.add_argument(
        "--out", help="where the two files go (default: WORKDIR; out/evaluate for an export)"
    )
    p.add_argument("--pegasi", help="a folder from acai pegasus to show (default: WORKDIR/pegasi)")
    p.add_argument(
        "--judge",
        "--classifier",
        dest="judges",
        action="append",
        metavar="FILE",
        help="a classifier (acai classifier) that judges horse-bird realism; repeat for more "
        "(default: runs/judge/classifier.keras and runs/classifier/classifier.keras, those "
        "that exist); the classifier-free SWD judge comes with them",
    )
    p.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="score the test photos, or the validation photos the run held out (choose on "
        "validation, report on test)",
    )
    p.set_defaults(func=cmd_evaluate)

    p = command("demo", help="a local page for making pegasi by hand")
    p.add_argument(
        "--workdir", help="a trained run or an export (default: the model shipped with acai)"
    )
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    p.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: this machine only)"
    )
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER, help="from acai classifier")
    p.add_argument("--data", help="random pairs from this data's test split (default: samples)")
    p.set_defaults(func=cmd_demo)

    p = command("compare", help="two or more runs' metrics side by side")
    p.add_argument(
        "workdirs",
        nargs="+",
        metavar="WORKDIR",
        help="trained runs, or folders acai evaluate --out wrote (to compare test scores)",
    )
    p.add_argument(
        "--spread",
        action="store_true",
        help="add each row's mean and range over the runs (seeds of one recipe)",
    )
    p.set_defaults(func=cmd_compare)
    return parser


def _add_pegasus_args(
    p: argparse.ArgumentParser, *, out: str | None, workdir: str | None, t_help: str = ""
) -> None:
    p.add_argument(
        "--workdir",
        default=workdir,
        help=f"a trained run or an export (default: {workdir or 'the model shipped with acai'})",
    )
    p.add_argument("--data", help="the data source, if not the run's own (indices refer to it)")
    p.add_argument("--out", default=out, help=f"output folder (default: {out or 'WORKDIR/pegasi'})")
    if t_help:
        p.add_argument("--t", default=",".join(map(str, PEGASI_T)), help=t_help)
    else:
        p.add_argument("--t", type=float, default=0.5, help="0 is the horse, 1 the bird")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER, help="from acai classifier")


def main(argv: list[str] | None = None) -> int:
    """The `acai` command; with `argv` None (a real command line) TensorFlow's logs are hidden.

    Exit codes: 0 success, 2 a problem with the input (one line on stderr), 1 anything else,
    128 + N when stopped by signal N.
    """
    args = make_parser().parse_args(argv)
    quiet = argv is None and not args.debug and os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0"
    filtering = native_logs.quiet() if quiet else None
    try:
        return _run(args)
    finally:
        if filtering:
            native_logs.restore(*filtering)


def _run(args) -> int:
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
        print(
            f"acai: error: {type(e).__name__}: {message} (re-run with --debug for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
