"""The `acai` command: bad input is one line on stderr, exit code 2, no traceback."""

import subprocess
import sys

import pytest

from acai import cli, native_logs

from .conftest import run_side_by_side


def run_acai(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "acai.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line_error(result, words):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("acai: error:")]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["--set", "dpeth=3"], "unknown config field 'dpeth'"),
        (["--set", "latent_width=5"], "latent_width"),
        (["--set", "lr=-1"], "'lr'"),
        (["--config", "experiments/nope.py"], "does not exist"),
    ],
)
def test_bad_settings_fail_before_any_work(tmp_path, args, words):
    workdir = tmp_path / "run"
    result = run_acai("train", "--workdir", str(workdir), *args)
    assert_one_line_error(result, words)
    assert not workdir.exists()


def test_bad_data_is_one_line_and_leaves_the_workdir_alone(tmp_path, image_tree):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("keep me")
    train = [sys.executable, "-m", "acai.cli", "train", "--workdir", str(workdir)]
    missing, unknown_class = run_side_by_side(
        [*train, "--data", str(tmp_path / "missing")],
        [*train, "--data", str(image_tree), "--set", "classes=horse,pegasus"],
    )
    assert_one_line_error(missing, "does not exist")
    assert_one_line_error(unknown_class, "unknown class 'pegasus'")
    assert (workdir / "notes.txt").read_text() == "keep me"


def test_argument_parsing():
    args = cli.make_parser().parse_args(["train", "--set", "depth=8", "--set", "lr=1e-3"])
    assert args.set == ["depth=8", "lr=1e-3"] and args.func is cli.cmd_train
    with pytest.raises(SystemExit):
        cli.make_parser().parse_args(["fly"])


def test_errors_are_the_only_line_on_stderr(tmp_path):
    result = run_acai("export", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"acai: error: '{tmp_path / 'missing'}' does not exist; pass a trained WORKDIR (make "
        "train), an export, or 'pretrained' for the shipped model"
    ]


@pytest.mark.parametrize(
    "line",
    [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1795975659.029364    7034 cudart_stub.cc:31] Could not find cuda drivers",
        "E0000 00:00:1764000000.123456    2222 meta_optimizer.cc:967] remapper failed: INVALID",
    ],
)
def test_tensorflow_native_log_lines_are_recognised(line):
    assert native_logs.NATIVE_LOG_LINE.match(line.encode())


@pytest.mark.parametrize(
    "line",
    ["acai: error: bad", "Traceback (most recent call last):", "F0000 00:00:1.0 1 x.cc:1] no"],
)
def test_other_lines_pass_the_filter(line):
    assert not native_logs.NATIVE_LOG_LINE.match(line.encode())


def test_the_filter_forwards_what_a_dying_process_wrote():
    script = (
        "import os\n"
        "from acai import native_logs\n"
        "native_logs.quiet()\n"
        "os.write(2, b'I0000 00:00:1.5 12 x.cc:3] chatter\\n')\n"
        "os.write(2, b'last words\\n')\n"
        "os.abort()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode != 0 and result.stderr.decode().splitlines() == ["last words"]


def test_help_does_not_load_tensorflow():
    script = (
        "import sys\n"
        "from acai import cli\n"
        "try:\n"
        "    cli.main(['train', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "--set FIELD=VALUE" in result.stdout, result.stderr


@pytest.mark.parametrize(
    "argv, words",
    [
        (["interpolate", "--t", "2"], "T=2.0 is outside [0, 1]"),
        (["interpolate", "--steps", "1"], "STEPS=1 is too few"),
        (["pegasus", "--workdir", "run", "--t", "0.5,7"], "T=7.0 is outside [0, 1]"),
    ],
)
def test_a_bad_t_or_steps_is_refused_before_tensorflow_loads(argv, words):
    script = (
        "import sys\n"
        "from acai import cli\n"
        f"code = cli.main({argv!r})\n"
        "assert code == 2, code\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert words in result.stderr
