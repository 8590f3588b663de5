"""The `acai` command: bad input is one line on stderr, exit code 2, no traceback."""

import subprocess
import sys

import pytest

from acai import cli


def run_acai(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "acai.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)  # fmt: skip


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
    result = run_acai("train", "--workdir", str(workdir), "--data", str(tmp_path / "missing"))
    assert_one_line_error(result, "does not exist")
    result = run_acai("train", "--workdir", str(workdir), "--data", str(image_tree),
                      "--set", "classes=horse,pegasus")  # fmt: skip
    assert_one_line_error(result, "unknown class 'pegasus'")
    assert (workdir / "notes.txt").read_text() == "keep me"


def test_argument_parsing():
    args = cli.make_parser().parse_args(["train", "--set", "depth=8", "--set", "lr=1e-3"])
    assert args.set == ["depth=8", "lr=1e-3"] and args.func is cli.cmd_train
    with pytest.raises(SystemExit):
        cli.make_parser().parse_args(["fly"])
