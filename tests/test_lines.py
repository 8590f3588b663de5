"""lines32: drawn as the original code draws it, and the paper's Mean Distance and Smoothness."""

import importlib.util
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from acai.core.walks import crossfade
from acai.pegasi.baselines import dissolve_index
from acai.training import data as data_lib
from acai.training import lines


@pytest.fixture(scope="module")
def reference():
    return lines.reference_lines(2000)  # a coarser grid keeps the tests fast


def test_lines_cover_every_angle_and_stay_in_range():
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    images = lines.draw_lines(angles)
    assert images.shape == (64, 32, 32, 1) and images.dtype == np.float32
    assert images.min() == -1.0 and images.max() == 1.0
    # 2 px wide and 15 px long, as the original draws it: 22 to 30 pixels' worth of coverage
    lit = ((images + 1) / 2).sum(axis=(1, 2, 3))
    assert np.all((lit > 21) & (lit < 30.1)), lit
    # the line points the right way: at angle 0 it lies right of the centre, at pi/2 above it
    right, up = lines.draw_lines([0.0, np.pi / 2])[..., 0]
    assert right[15:17, 20:31].min() > 0.9 and right[:, :14].max() == -1.0
    assert up[2:14, 15:17].min() > 0.9 and up[18:, :].max() == -1.0


def test_lines_data_set_is_seeded_with_uniform_angles_and_sector_labels():
    data = data_lib.load("lines32")
    assert data.image_shape == (32, 32, 1) and data.num_classes == 10
    assert len(data.train_images) == lines.LINES_TRAIN
    counts = np.bincount(data.train_labels, minlength=10)
    assert counts.min() > 0.9 * counts.mean()  # every sector, in equal shares
    np.testing.assert_array_equal(data.test_images[:50], data_lib.load("lines32").test_images[:50])
    assert lines.line_labels([0.0, np.pi, 2 * np.pi - 1e-9]).tolist() == [0, 5, 9]


def test_nearest_line_finds_the_angle_of_a_true_line(reference):
    angles = np.array([0.3, 2.0, 5.9])
    distance, found = lines.nearest_lines(lines.draw_lines(angles), reference)
    assert np.all(distance < 1e-3)
    np.testing.assert_allclose(found, angles, atol=2 * np.pi / 2000)


def test_smoothness_is_zero_for_even_steps_and_high_for_a_jump():
    even = np.linspace(0.5, 1.5, 16)
    jump = np.r_[np.full(8, 0.5), np.full(8, 1.5)]
    wrapped = np.mod(np.linspace(6.0, 6.8, 16), 2 * np.pi)  # crosses 2 pi: unwrapped first
    scores = lines.smoothness([even, jump, wrapped, np.full(16, 1.0)])
    np.testing.assert_allclose(scores[[0, 2]], 0.0, atol=1e-9)
    assert scores[1] == pytest.approx(1 - 1 / 15)
    assert np.isnan(scores[3])  # no change at all: undefined


def test_undefined_smoothness_counts_as_zero_in_the_mean(reference):
    still = np.repeat(lines.draw_lines([1.0])[:, None], 16, axis=1)  # (1, 16, 32, 32, 1)
    t = np.linspace(0, 1, 16)
    jump = crossfade(lines.draw_lines([1.0]), lines.draw_lines([2.5]), t).swapaxes(0, 1)
    scores = lines.line_scores(np.concatenate([still, jump]), reference)
    assert scores["undefined_smoothness"] == 0.5
    _, angles = lines.nearest_lines(jump[0], reference)
    assert scores["smoothness"] == pytest.approx(lines.smoothness(angles[None])[0] / 2)
    assert scores["smoothness"] > 0.4


def test_exact_interpolation_scores_zero_and_a_cross_fade_clearly_worse(reference):
    pairs = lines.line_pairs(32, seed=1)
    exact = lines.exact_line_walk(pairs)
    fade = crossfade(exact[:, 0], exact[:, -1], np.linspace(0, 1, 16)).swapaxes(0, 1)
    good, bad = lines.line_scores(exact, reference), lines.line_scores(fade, reference)
    assert good["mean_distance"] < 1e-4 and good["smoothness"] < 0.02
    assert bad["mean_distance"] > 20 * good["mean_distance"]
    assert bad["smoothness"] > 0.5


def test_the_dissolve_index_tells_one_turned_bar_from_two_faded_ones():
    walks = lines.exact_line_walk(lines.line_pairs(64, seed=1), 3)  # t = 0, 0.5, 1
    first, middle, last = walks[:, 0], walks[:, 1], walks[:, 2]
    fade = crossfade(first, last, np.float32([0.5]))[0]
    # one bar at the middle angle is mostly not a blend of the end bars; their fade is one
    assert np.median(dissolve_index(middle, first, last)) < 0.1
    assert np.median(dissolve_index(fade, first, last)) > 0.999


def test_line_pairs_are_fixed_by_the_seed():
    np.testing.assert_array_equal(lines.line_pairs(8), lines.line_pairs(8))
    assert not np.array_equal(lines.line_pairs(8, seed=1), lines.line_pairs(8))


def test_shape_dtype_and_range():
    images = lines.draw_lines(np.linspace(0, 2 * np.pi, 50))
    assert images.shape == (50, 32, 32, 1)
    assert images.dtype == np.float32
    assert images.min() == -1.0 and images.max() == 1.0
    assert lines.draw_lines([0.3], size=16).shape == (1, 16, 16, 1)


def test_lit_pixel_counts_over_many_angles():
    images = lines.draw_lines(np.arange(20_000) * (2 * np.pi / 20_000))
    lit = (images > -1).reshape(len(images), -1).sum(axis=1)
    full = (images == 1).reshape(len(images), -1).sum(axis=1)
    assert lit.min() == 30 and lit.max() == 45  # measured against the original
    assert full.min() >= 10 and full.max() == 30


@pytest.mark.parametrize("angle", [0.0, np.pi / 2, np.pi, 3 * np.pi / 2, 1.0, 4.0])
def test_start_point_is_lit(angle):
    image = lines.draw_lines([angle])[0, :, :, 0]
    # The start point (16, 16) is the corner shared by the four central pixels: the bar covers
    # at least a quarter of one of them (a central pixel is lit, not the background's -1).
    assert image[15:17, 15:17].max() >= -0.5


def test_angle_zero_points_right():
    image = lines.draw_lines([0.0])[0, :, :, 0]
    rows, cols = np.nonzero(image > -1)
    assert set(rows) == {15, 16}
    assert cols.min() == 16 and cols.max() == 30
    assert np.all(image[image > -1] == 1)  # 2 x 15 fully covered pixels


def test_angle_half_pi_points_up():
    image = lines.draw_lines([np.pi / 2])[0, :, :, 0]
    rows, cols = np.nonzero(image > -1)
    assert set(cols) == {15, 16}
    assert rows.min() == 1 and rows.max() == 15


def test_exact_values_match_original():
    image = lines.draw_lines([np.pi / 8])[0, :, :, 0]
    expected = {
        (9, 29): -0.644660940672626,
        (10, 27): -0.3015151901650057,
        (10, 28): 0.5269119345811859,
        (11, 25): 0.041630560342614586,
        (15, 16): 0.5857864376269042,
        (16, 16): 1.0,
    }
    for (row, col), value in expected.items():
        assert image[row, col] == np.float32(value)
    image = lines.draw_lines([1.0])[0, :, :, 0]
    assert image[3, 24] == np.float32(0.2441295442368947)
    assert image[15, 15] == np.float32(-0.9262778478029929)


def test_mean_smoothness_is_nan_when_every_interpolation_is_undefined(reference):
    still = np.repeat(lines.draw_lines([1.0, 2.0])[:, None], 16, axis=1)  # (2, 16, 32, 32, 1)
    scores = lines.line_scores(still, reference)
    assert scores["undefined_smoothness"] == 1.0 and np.isnan(scores["smoothness"])


def _scores(kimgs, distances):
    return [
        {"kimg": k, "mean_distance": d, "smoothness": 0.1 + d} for k, d in zip(kimgs, distances)
    ]


def test_median_of_last_reads_only_the_latest_scores_whatever_their_order():
    rows = _scores([512, 64, 128, 448, 384], [1.0, 30.0, 7.0, 3.0, 2.0])
    reading = lines.median_of_last(rows, 3)
    # the last three by budget are 384, 448 and 512 kimg: 2, 3 and 1, median 2
    assert reading["mean_distance"] == 2.0 and reading["smoothness"] == pytest.approx(2.1)
    assert (reading["scores"], reading["from_kimg"], reading["to_kimg"]) == (3, 384, 512)
    assert lines.median_of_last(rows, 1)["mean_distance"] == 1.0


def test_median_of_last_refuses_a_run_with_too_few_scores():
    with pytest.raises(ValueError, match="needs 20; the run has 5"):
        lines.median_of_last(_scores(range(64, 384, 64), [1.0] * 5))
    with pytest.raises(ValueError, match="at least one"):
        lines.median_of_last(_scores([64], [1.0]), 0)


CURVE = Path(__file__).resolve().parents[1] / "experiments" / "lines_curve.py"


def load_curve():
    spec = importlib.util.spec_from_file_location("lines_curve", CURVE)
    curve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curve)
    return curve


def test_lines_curve_budgets_are_a_list_or_a_range_with_its_stop():
    curve = load_curve()
    assert curve.parse_budgets("256,64,128,64") == [64.0, 128.0, 256.0]
    assert curve.parse_budgets("64:320:64") == [64.0, 128.0, 192.0, 256.0, 320.0]
    assert curve.parse_budgets("64:300:64") == [64.0, 128.0, 192.0, 256.0]
    assert curve.parse_budgets("32:32:8") == [32.0]


@pytest.mark.parametrize(
    "kimg, median_of, said",
    [
        ("64:128", 0, "a range is START:STOP:STEP"),
        ("128:64:64", 0, "0 < START <= STOP"),
        ("0,64", 0, "above 0 kimg"),
        ("64,x", 0, "could not convert"),
        ("64:256:64", 5, "between 0 and the 4 budgets"),
    ],
)
def test_lines_curve_refuses_bad_budgets_in_one_line_before_training(
    tmp_path, kimg, median_of, said
):
    command = [sys.executable, str(CURVE), "--config", "experiments/lines32.py"]
    command += ["--workdir", str(tmp_path / "run"), "--kimg", kimg, "--median-of", str(median_of)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=CURVE.parents[1])
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()


def test_lines_curve_stopped_says_how_to_resume_in_one_line(tmp_path, monkeypatch, capsys):
    from acai.training.trainer import Interrupted

    def stopped(config, workdir, verbose):
        raise Interrupted(signal.SIGTERM)  # what acai.train raises once it has checkpointed

    curve = load_curve()
    monkeypatch.setattr(curve.acai, "train", stopped)
    workdir = tmp_path / "run"
    argv = ["lines_curve.py", "--config", "experiments/lines32.py", "--workdir", str(workdir)]
    monkeypatch.setattr(sys, "argv", [*argv, "--kimg", "64,128"])
    monkeypatch.chdir(CURVE.parents[1])
    assert curve.main() == 128 + signal.SIGTERM
    said = capsys.readouterr().err.strip().splitlines()
    assert said == ["lines_curve: stopped; the run is checkpointed and the same command resumes it"]
    assert not (workdir / "curve.jsonl").exists()
