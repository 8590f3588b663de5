import csv
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import acai
from acai import WorkdirError
from acai.core import model as model_lib
from acai.core import networks
from acai.training import callbacks as cb
from acai.training import devices
from acai.training import run as run_lib

from .conftest import strict_json


def steps_logged(workdir):
    with open(workdir / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def copy_of(trained, tmp_path):
    shutil.copytree(trained[1], tmp_path / "run")
    return tmp_path / "run"


def test_train_writes_a_run_and_resumes_it(trained, tmp_path):
    tiny_config, _, results = trained
    workdir = copy_of(trained, tmp_path)
    assert results["step"] == tiny_config.total_steps == 8
    assert results["images"] == 12 and 0 <= results["probe_accuracy"] <= 1
    assert 0 < results["rmse"] < 255
    assert strict_json(workdir / "eval.json") == results
    assert acai.Config.from_dict(strict_json(workdir / "config.json")) == tiny_config
    assert sorted(p.name for p in (workdir / "samples").glob("*.png")) == [
        "step_00000004.png",
        "step_00000008.png",
    ]
    assert list((workdir / "logs").rglob("events.out.tfevents*"))
    assert steps_logged(workdir) == [0, 1]
    with open(workdir / "history.csv") as f:
        assert float(next(csv.DictReader(f))["images_per_second"]) > 0

    # Asking for one more epoch resumes at step 8, not 0.
    longer = tiny_config.replace(total_kimg=96 / 1024)
    assert acai.train(longer, workdir, verbose=0)["step"] == 12
    assert steps_logged(workdir) == [0, 1, 2]
    run = acai.load_run(workdir)
    assert run.step == 12 and run.class_names == ("bird", "horse")
    assert tuple(run.model(np.zeros((1, 32, 32, 3), np.float32)).shape) == (1, 32, 32, 3)


def test_resume_restores_weights_and_optimizer_state(trained):
    workdir = trained[1]
    first = run_lib.load_run(workdir).model
    second = run_lib.load_run(workdir).model
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(second.ae_optimizer.iterations.numpy()) == 8
    moments = [v for v in second.ae_optimizer.variables if "momentum" in v.path]
    assert moments and any(np.abs(v.numpy()).sum() > 0 for v in moments)


def test_a_different_model_in_the_same_workdir_is_refused(trained, tmp_path):
    tiny_config = trained[0]
    workdir = copy_of(trained, tmp_path)
    saved = (workdir / "config.json").read_text()
    with pytest.raises(WorkdirError, match="depth=4, not 8"):
        acai.train(tiny_config.replace(depth=8), workdir, verbose=0)
    assert (workdir / "config.json").read_text() == saved


def test_a_locked_workdir_is_refused(tiny_config, tmp_path):
    workdir = tmp_path / "run"
    with run_lib.workdir_lock(workdir):
        with pytest.raises(WorkdirError, match="in use"):
            acai.train(tiny_config, workdir, verbose=0)
    assert not (workdir / "checkpoints").exists()


def test_a_corrupt_newest_checkpoint_falls_back_to_the_older_one(trained, tmp_path, caplog):
    workdir = copy_of(trained, tmp_path)
    for part in (workdir / "checkpoints").glob("ckpt-8.data-*"):
        part.write_bytes(b"\0" * part.stat().st_size)  # torn: right size, wrong bytes
    for part in (workdir / "checkpoints").glob("ckpt-8.index"):
        part.write_bytes(b"junk")
    with caplog.at_level("WARNING"):
        run = run_lib.load_run(workdir)
    assert run.step == 4
    assert "ckpt-8 is unreadable" in caplog.text


def test_load_run_needs_a_trained_workdir(tmp_path):
    with pytest.raises(WorkdirError, match="not a training run"):
        run_lib.load_run(tmp_path)


def test_sample_grid_layout(tiny_config):
    model = model_lib.build(
        tiny_config, image_shape=(32, 32, 3), num_classes=2, precision="float32", jit=False
    )
    images = np.linspace(-1, 1, 8 * 32 * 32 * 3, dtype=np.float32).reshape(8, 32, 32, 3)
    grid = cb.sample_grid(model, images)
    width = cb.SAMPLE_STEPS + 2
    assert grid.shape == (32 * (2 + 2 * 4), 32 * width, 3) and grid.dtype == np.uint8
    # Row 0 holds the originals; each interpolation row starts with image i and ends with i + 4.
    np.testing.assert_array_equal(grid[:32, :32], np.round((images[0] + 1) * 127.5))
    row = grid[64:96]
    np.testing.assert_array_equal(row[:, -32:], np.round((images[4] + 1) * 127.5))


def test_precision_and_xla_auto_choices():
    assert devices.resolve_precision("float32") == "float32"
    assert devices.resolve_precision("auto") in ("float32", "mixed_bfloat16", "mixed_float16")
    assert devices.resolve_jit("on") is True and devices.resolve_jit("off") is False


def test_load_run_names_a_torn_run_file(trained, tmp_path):
    workdir = copy_of(trained, tmp_path)
    (workdir / "run.json").write_text('{"image_shape": [32, 32, 3]}')
    with pytest.raises(WorkdirError, match="unreadable run.*class_names"):
        run_lib.load_run(workdir)


def test_the_seed_fixes_the_first_weights_and_the_run(trained, tmp_path):
    config, workdir, _ = trained

    def weights(folder):
        return [w.numpy() for w in run_lib.load_run(folder).model.weights]

    acai.train(config, tmp_path / "again", verbose=0)
    acai.train(config.replace(seed=1), tmp_path / "other", verbose=0)
    first, again, other = weights(workdir), weights(tmp_path / "again"), weights(tmp_path / "other")
    assert len(first) == len(again) == len(other)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert sum(not np.array_equal(a, c) for a, c in zip(first, other)) > len(first) // 2


def test_a_run_with_the_feature_loss_trains_and_loads_without_its_classifier(tiny_config, tmp_path):
    from acai.training import classifier as classifier_lib

    path = tmp_path / "judge" / "classifier.keras"
    classifier_lib.train(tiny_config.data, path, epochs=1, batch=8, verbose=0)
    config = tiny_config.replace(perceptual=0.1, perceptual_model=str(path))
    results = acai.train(config, tmp_path / "run", verbose=0)
    assert results["step"] == config.total_steps
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(float(row["loss_ae_features"]) > 0 for row in rows)
    path.unlink()  # a trained run needs the classifier no more: it is not in the checkpoint
    assert acai.load_run(tmp_path / "run").step == config.total_steps


def test_a_run_with_a_discriminator_trains_resumes_and_exports(tiny_config, tmp_path):
    from acai.pegasi import export as export_lib

    config = tiny_config.replace(discweight=0.05)
    acai.train(config.replace(total_kimg=32 / 1024), tmp_path / "run", verbose=0)
    results = acai.train(config, tmp_path / "run", verbose=0)  # resumes its optimizer too
    assert results["step"] == config.total_steps
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(float(row["loss_disc"]) > 0 for row in rows)
    model = acai.load_run(tmp_path / "run").model
    assert int(model.disc_optimizer.iterations.numpy()) == config.total_steps
    export_lib.export(tmp_path / "run", out=tmp_path / "export")
    again = keras.saving.load_model(tmp_path / "export" / "acai.keras")
    for w0, w1 in zip(model.discriminator.weights, again.discriminator.weights):
        np.testing.assert_array_equal(w0.numpy(), w1.numpy())


def test_a_missing_perceptual_model_is_refused_before_the_workdir_is_made(tiny_config, tmp_path):
    config = tiny_config.replace(perceptual=0.1, perceptual_model=str(tmp_path / "none.keras"))
    with pytest.raises(acai.ConfigError, match="none.keras' does not exist; train it first"):
        acai.train(config, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()
    with pytest.raises(acai.ConfigError, match="must name a classifier"):
        tiny_config.replace(perceptual=0.1)


def test_a_run_with_a_moving_average_trains_resumes_and_exports_the_average(tiny_config, tmp_path):
    from acai.images import to_float
    from acai.pegasi import export as export_lib

    config = tiny_config.replace(ema=0.9)
    acai.train(config.replace(total_kimg=32 / 1024), tmp_path / "run", verbose=0)
    results = acai.train(config, tmp_path / "run", verbose=0)  # resumes the average too
    assert results["step"] == config.total_steps
    model = acai.load_run(tmp_path / "run").model
    assert any(
        not np.array_equal(a.numpy(), w.numpy())
        for a, w in zip(model.ema_decoder.weights, model.decoder.weights)
    )
    export_lib.export(tmp_path / "run", out=tmp_path / "export")
    again = keras.saving.load_model(tmp_path / "export" / "acai.keras")
    for w0, w1 in zip(model.ema_decoder.weights, again.ema_decoder.weights):
        np.testing.assert_array_equal(w0.numpy(), w1.numpy())
    served = tf.saved_model.load(str(tmp_path / "export" / "saved_model"))
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    averaged = np.asarray(model.encode(to_float(images)))
    np.testing.assert_allclose(served.encode(images).numpy(), averaged, atol=1e-4)
    encoder = keras.saving.load_model(tmp_path / "export" / "encoder.keras")
    np.testing.assert_allclose(np.asarray(encoder(to_float(images))), averaged, atol=1e-5)


def test_a_cosine_rate_falls_from_lr_to_zero_over_the_run_for_every_optimizer(tiny_config):
    config = tiny_config.replace(
        lr=1e-3, lr_schedule="cosine", total_kimg=1, batch=64, discweight=0.1
    )
    assert config.total_steps == 16
    rate = networks.learning_rate(config, 1e-3)
    assert [float(rate(s)) for s in (0, 8, 16, 32)] == pytest.approx([1e-3, 5e-4, 0, 0], abs=1e-9)
    assert networks.learning_rate(config.replace(lr_schedule="constant"), 1e-3) == 1e-3

    model = model_lib.build(
        config, image_shape=(32, 32, 3), num_classes=2, precision="float32", jit=False
    )
    for name in model.optimizer_names:  # the three of the paper and the discriminator's
        optimizer = getattr(model, name)
        optimizer.iterations.assign(8)  # the rate reads the step count a checkpoint restores
        assert float(optimizer.learning_rate) == pytest.approx(5e-4), name


def test_a_cosine_run_resumes_only_over_the_budget_its_rate_falls_over(tiny_config, tmp_path):
    cosine = tiny_config.replace(lr_schedule="cosine", total_kimg=2)
    (tmp_path / "config.json").write_text(cosine.to_json())
    run_lib.check_resume(tmp_path, cosine)  # the same budget: it resumes
    with pytest.raises(WorkdirError, match="pass total_kimg=2 to resume"):
        run_lib.check_resume(tmp_path, cosine.replace(total_kimg=4))
    constant = tiny_config.replace(total_kimg=2)
    (tmp_path / "config.json").write_text(constant.to_json())
    run_lib.check_resume(
        tmp_path, constant.replace(total_kimg=4)
    )  # a constant rate: longer is fine
