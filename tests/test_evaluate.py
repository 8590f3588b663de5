import functools
import json
import shutil
import sys

import numpy as np
import pytest

import acai
from acai.errors import AcaiError
from acai.images import save_png
from acai.pegasi import diagrams, evaluate
from acai.training import data as data_lib

from .conftest import run_side_by_side, strict_json


@pytest.fixture
def run_copy(trained, tmp_path):
    _, workdir, _ = trained
    return shutil.copytree(workdir, tmp_path / "run")


def test_evaluate_writes_metrics_and_a_self_contained_report(run_copy):
    result = evaluate.evaluate(run_copy)
    saved = strict_json(run_copy / "metrics.json")
    assert saved["step"] == result["step"] == 8
    assert 0 <= saved["kmeans_accuracy"] <= 1 and 0 <= saved["probe_accuracy"] <= 1
    assert saved["rmse"] > 0 and "mean_distance" not in saved  # lines metrics: lines32 only
    page = (run_copy / "report.html").read_text()
    for heading in (
        "Metrics",
        "Training curves",
        "Reconstructions",
        "Interpolations",
        "Networks",
        "Config",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert page.count('src="data:image/png;base64,') >= 3  # curves, reconstructions, rows
    assert "<h2>Pegasi</h2>" not in page  # none made yet
    assert not list(run_copy.glob(".*tmp*"))


def test_report_draws_the_networks_without_graphviz(run_copy, monkeypatch):
    def no_graphviz(net):
        raise ImportError("You must install pydot (`pip install pydot`) for `plot_model`.")

    monkeypatch.setattr(diagrams, "graphviz_png", no_graphviz)
    evaluate.evaluate(run_copy)
    page = (run_copy / "report.html").read_text()
    networks = page[page.index("<h2>Networks</h2>") : page.index("<h2>Config</h2>")]
    for name in ("encoder", "decoder", "critic"):
        assert f'<img alt="{name}" src="data:image/png;base64,' in networks
    assert "No diagrams" not in page and "<pre>" not in networks


def test_report_falls_back_to_text_summaries_when_no_diagram_can_be_drawn(run_copy, monkeypatch):
    def no_graphviz(net):
        raise ImportError("You must install pydot (`pip install pydot`) for `plot_model`.")

    monkeypatch.setattr(diagrams, "diagram_png", no_graphviz)
    evaluate.evaluate(run_copy)
    page = (run_copy / "report.html").read_text()
    assert "No diagrams (You must install pydot" in page
    assert page.count("<pre>") >= 3 and "Total params" in page  # three summaries


def test_report_shows_pegasi_made_for_the_run(run_copy):
    folder = run_copy / "pegasi"
    folder.mkdir()
    save_png(np.zeros((96, 96, 3), np.uint8), folder / "pegasi.png")
    save_png(np.zeros((32, 32, 3), np.uint8), folder / "best_pegasus.png")
    (folder / "pegasi.json").write_text(
        json.dumps(
            {
                "summary": {
                    "pegasi": {"horse_or_bird_share": 0.7},
                    "crossfade": {"horse_or_bird_share": 0.6},
                }
            }
        )
    )
    evaluate.evaluate(run_copy)
    page = (run_copy / "report.html").read_text()
    assert "<h2>Pegasi</h2>" in page and "horse_or_bird_share" in page and "0.700" in page
    assert "called horse or bird" in page and "pixel cross-fade" in page  # rows in words


def test_compare_puts_runs_side_by_side_and_marks_the_best(run_copy, tmp_path):
    other = shutil.copytree(run_copy, tmp_path / "plain")
    config = strict_json(other / "config.json")
    (other / "config.json").write_text(json.dumps({**config, "advweight": 0.0}))
    table = evaluate.compare([run_copy, other])
    lines = table.splitlines()
    assert lines[0].split() == ["run", "plain"]
    assert lines[2].split()[-2:] == ["0.5", "0"]  # the lambda row
    assert "reconstruction RMSE" in table and "*" in table
    assert (other / "metrics.json").is_file()  # computed once, reused next time


def test_compare_shows_each_shared_judges_realism_and_the_spread_over_seeds(run_copy, tmp_path):
    runs = [run_copy, shutil.copytree(run_copy, tmp_path / "seed1")]
    evaluate.compare(runs)  # writes each run's metrics.json

    def judged(slerp, crossfade, share, sha, min_p=None):
        distance = {"slerp": slerp, "crossfade": crossfade, "reconstruction": 20.0}
        entry = {"distance": distance, "horse_or_bird_share": {"slerp": share}, "sha256": sha}
        if min_p is not None:
            entry["mean_min_p"] = {"slerp": min_p}
        return entry

    for run, slerp, sha, min_p in zip(runs, (28.0, 30.0), ("aaa", "bbb"), (0.04, 0.05)):
        metrics = strict_json(run / "metrics.json")
        judges = {
            "kid judge.keras": judged(slerp, 27.0, 0.6, "same", min_p),
            "swd": judged(60, 195, 0.5, sha),
        }
        metrics["realism"] = {"judges": judges}
        (run / "metrics.json").write_text(json.dumps(metrics))
    table = evaluate.compare(runs, spread=True)
    row = next(
        line
        for line in table.splitlines()
        if "kid judge.keras: slerp interpolants, t = 0.5" in line
    )
    assert row.split()[-7:] == ["28.00", "*", "30.00", "29.00", "(28.00", "to", "30.00)"]
    assert (
        "kid judge.keras: pixel cross-fade of the photos" in table
        and "slerp called horse or bird" in table
    )
    min_p = next(line for line in table.splitlines() if "slerp mean min(P)" in line)
    assert min_p.split()[-7:] == ["0.040", "0.050", "*", "0.045", "(0.040", "to", "0.050)"]
    assert "swd:" not in table  # two files under one name are not one judge


def test_compare_reads_the_folders_evaluate_out_wrote(tmp_path):
    # acai evaluate RUN --split test --out RUN/test, for two runs: the test scores side by side,
    # each column named by its run, and nothing computed again (no run lies in those folders).
    folders = []
    for run, rmse in (("run_a", 12.0), ("run_b", 13.0)):
        folder = tmp_path / run / "test"
        folder.mkdir(parents=True)
        metrics = {"step": 8, "advweight": 1.0, "rmse": rmse, "split": "test"}
        (folder / "metrics.json").write_text(json.dumps(metrics))
        folders.append(folder)
    lines = evaluate.compare(folders).splitlines()
    assert lines[0].split() == ["run_a/test", "run_b/test"]
    rmse = next(line for line in lines if "reconstruction RMSE" in line)
    assert rmse.split()[-3:] == ["12.00", "*", "13.00"]


@pytest.mark.parametrize("text", ["{}", "not json", '{"step": 8}'])
def test_compare_refuses_a_metrics_json_that_evaluate_did_not_write(tmp_path, text):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(text)
    with pytest.raises(AcaiError, match="not a metrics.json from acai evaluate"):
        evaluate.compare([tmp_path / "a", tmp_path / "b"])


def test_lines_run_reports_mean_distance_and_smoothness(tmp_path, monkeypatch):
    # Smaller sizes, the same code: 2048 training and 512 test lines instead of 65536 and
    # 5000, and 64 seeded evaluation pairs instead of 256.
    small = functools.partial(data_lib.load_lines, train=2048, test=512)
    monkeypatch.setattr(data_lib, "load_lines", small)
    monkeypatch.setattr(evaluate, "LINE_PAIRS", 64)
    config = acai.Config(
        data="lines32",
        depth=4,
        latent=4,
        latent_width=2,
        batch=8,
        total_kimg=16 / 1024,
        epoch_kimg=16 / 1024,
        precision="float32",
    )
    acai.train(config, tmp_path / "lines", verbose=0)
    result = evaluate.evaluate(tmp_path / "lines")
    for key in ("mean_distance", "smoothness", "mean_distance_slerp", "smoothness_slerp"):
        assert np.isfinite(result[key]) and result[key] >= 0
    # the references are computed on the same pairs: exact ~0, cross-fade clearly worse
    assert result["exact_mean_distance"] < 1e-4
    assert result["crossfade_smoothness"] > 0.5
    # the dissolve index of the midpoints, and of one bar at the middle angle for reference
    for key in ("dissolve_index", "dissolve_index_slerp"):
        assert 0 <= result[key] <= 1
    assert result["exact_dissolve_index"] < 0.1
    page = (tmp_path / "lines" / "report.html").read_text()
    assert "Mean Distance, lerp" in page and "dissolve index of the midpoints, lerp" in page


def test_commands_refuse_bad_input_in_one_line(tmp_path):
    acai_cli = [sys.executable, "-m", "acai.cli"]
    one, missing = run_side_by_side(
        [*acai_cli, "compare", str(tmp_path)],
        [*acai_cli, "evaluate", str(tmp_path / "nothing")],
        timeout=120,
    )
    assert one.returncode == 2 and "compare needs two or more runs" in one.stderr
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in one.stderr + missing.stderr


def test_evaluate_accepts_the_shipped_model_and_an_export(image_tree, tmp_path):
    from acai.training.run import PRETRAINED_MODEL

    with pytest.raises(acai.AcaiError, match=r"file name \('cifar10-images.tar.gz'\).*--data"):
        evaluate.evaluate(PRETRAINED_MODEL, out=tmp_path / "nodata")
    shipped = evaluate.evaluate("pretrained", data=str(image_tree), out=tmp_path / "shipped")
    exported = evaluate.evaluate(PRETRAINED_MODEL, data=str(image_tree), out=tmp_path / "export")
    step = strict_json(PRETRAINED_MODEL / "metadata.json")["step"]
    assert shipped["step"] == exported["step"] == step
    assert shipped["rmse"] == pytest.approx(exported["rmse"])  # the same model, both ways
    assert 0 < shipped["rmse"] < 128
    assert (tmp_path / "shipped" / "report.html").is_file()
    assert not (PRETRAINED_MODEL / "metrics.json").exists()  # the package is left alone
