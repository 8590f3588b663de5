"""`acai export`: the SavedModel serves without acai, acai.keras trains on, OUT is all or none."""

import shutil
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import acai
from acai import WorkdirError, cli
from acai.core.model import ACAI, OPTIMIZERS
from acai.pegasi import export as export_lib

from .conftest import strict_json

# Runs in a fresh interpreter that imports only TensorFlow and NumPy.
SERVE = """
import sys

import numpy as np
import tensorflow as tf

served = tf.saved_model.load(sys.argv[1])
given = np.load(sys.argv[2])
t = tf.constant(0.3)
default = served.signatures["serving_default"]
np.savez(
    sys.argv[3],
    interpolate=served.interpolate(given["a"], given["b"], t).numpy(),
    encode=served.encode(given["a"]).numpy(),
    decode=served.decode(given["z"]).numpy(),
    serving_default=default(images_a=given["a"], images_b=given["b"], t=t)["output_0"].numpy(),
)
assert "acai" not in sys.modules
"""

# Runs in a fresh interpreter that imports only Keras and NumPy.
NETWORKS = """
import sys

import keras
import numpy as np

given = np.load(sys.argv[1])
folder = sys.argv[2]
nets = {name: keras.saving.load_model(f"{folder}/{name}.keras") for name in
        ("encoder", "decoder", "critic")}
np.savez(
    sys.argv[3],
    encoder=nets["encoder"].predict(given["x"], verbose=0),
    decoder=nets["decoder"].predict(given["z"], verbose=0),
    critic=nets["critic"].predict(given["x"], verbose=0),
)
assert "acai" not in sys.modules
"""


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The session's tiny trained run (read, never changed), exported once for the module:
    (workdir, out, result)."""
    _, workdir, _ = trained
    out = tmp_path_factory.mktemp("exported") / "out"
    return workdir, out, export_lib.export(workdir, out)


def run_python(script, *args):
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result


def run_acai(*args):
    return subprocess.run(
        [sys.executable, "-m", "acai.cli", *args], capture_output=True, text=True, timeout=300
    )


def assert_one_line_error(result, words):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("acai: error:")]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_export_writes_every_artefact_and_the_metadata(exported):
    workdir, out, result = exported
    assert sorted(p.name for p in out.iterdir()) == sorted(export_lib.ARTEFACTS)
    assert leftovers(out.parent) == []
    metadata = strict_json(out / "metadata.json")
    assert metadata == {k: v for k, v in result.items() if k not in ("out", "sizes")}
    assert metadata["step"] == 8 and metadata["acai_version"] == acai.__version__
    assert metadata["class_names"] == ["bird", "horse"]
    assert metadata["image_shape"] == [32, 32, 3] and metadata["latent_shape"] == [16, 16, 4]
    config = strict_json(workdir / "config.json")
    assert metadata["config"] == {**config, "data": "images"}  # the folder's name, not its path
    assert metadata["pixel_scaling"]["to_model"] == "x / 127.5 - 1"
    assert metadata["saved_model"]["serving_default"] == "interpolate"
    assert set(result["sizes"]) == set(export_lib.ARTEFACTS)
    assert all(size > 0 for size in result["sizes"].values())


def test_saved_model_matches_keras_in_a_process_without_acai(exported, tmp_path):
    _, out, _ = exported
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (2, 5, 32, 32, 3), dtype=np.uint8)
    z = rng.normal(size=(5, 16, 16, 4)).astype(np.float32)
    np.savez(tmp_path / "given.npz", a=a, b=b, z=z)
    run_python(SERVE, out / "saved_model", tmp_path / "given.npz", tmp_path / "served.npz")
    served = np.load(tmp_path / "served.npz")

    # The same functions, traced in this process around the reloaded acai.keras.
    model = keras.saving.load_model(out / "acai.keras")
    fns = {k: tf.function(f) for k, f in export_lib.endpoint_functions(model).items()}
    interpolated = fns["interpolate"](a, b, tf.constant(0.3)).numpy()
    assert served["interpolate"].dtype == np.uint8 and served["interpolate"].shape == a.shape
    np.testing.assert_array_equal(served["interpolate"], interpolated)
    np.testing.assert_array_equal(served["serving_default"], interpolated)
    np.testing.assert_array_equal(served["decode"], fns["decode"](z).numpy())
    assert served["encode"].dtype == np.float32 and served["encode"].shape == (5, 16, 16, 4)
    np.testing.assert_allclose(served["encode"], fns["encode"](a).numpy(), rtol=0, atol=1e-5)


def test_acai_keras_reloads_trains_one_more_step_and_saves_again(exported, tmp_path):
    workdir, out, _ = exported
    run = acai.load_run(workdir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(out / "acai.keras")
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []
    unnamed = [{**m.get_config(), "name": None} for m in (model, run.model)]
    assert isinstance(model, ACAI) and unnamed[0] == unnamed[1]
    for a, b in zip(run.model.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert model.compiled and model.optimizer is model.ae_optimizer
    assert len({id(getattr(model, name)) for name in OPTIMIZERS}) == 3
    for name in OPTIMIZERS:  # three Adams with their states, not fresh optimizers
        theirs, ours = getattr(run.model, name), getattr(model, name)
        assert isinstance(ours, keras.optimizers.Adam)
        for a, b in zip(theirs.variables, ours.variables, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(model.step.numpy()) == 8 and int(model.ae_optimizer.iterations.numpy()) == 8

    x = np.linspace(-1, 1, 8 * 32 * 32 * 3, dtype=np.float32).reshape(8, 32, 32, 3)
    model.fit(x, np.array([0, 1] * 4), batch_size=8, epochs=1, verbose=0)
    assert int(model.step.numpy()) == 9
    assert [int(getattr(model, n).iterations.numpy()) for n in OPTIMIZERS] == [9, 9, 9]
    model.save(tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras")
    assert int(again.step.numpy()) == 9 and int(again.probe_optimizer.iterations.numpy()) == 9
    for a, b in zip(model.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_network_files_load_with_keras_alone(exported, tmp_path):
    workdir, out, _ = exported
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    z = rng.normal(size=(3, 16, 16, 4)).astype(np.float32)
    np.savez(tmp_path / "given.npz", x=x, z=z)
    run_python(NETWORKS, tmp_path / "given.npz", out, tmp_path / "outputs.npz")
    outputs = np.load(tmp_path / "outputs.npz")
    model = acai.load_run(workdir).model
    np.testing.assert_allclose(outputs["encoder"], model.encoder(x), rtol=0, atol=1e-5)
    np.testing.assert_allclose(outputs["decoder"], model.decoder(z), rtol=0, atol=1e-5)
    np.testing.assert_allclose(outputs["critic"], model.critic(x), rtol=0, atol=1e-5)


# --- bad input -------------------------------------------------------------------------------


def _no_checkpoints(workdir):
    shutil.rmtree(workdir / "checkpoints")


def _all_torn(workdir):
    for part in (workdir / "checkpoints").glob("ckpt-*"):
        part.write_bytes(b"junk")


def _empty_state(workdir):
    (workdir / "checkpoints" / "checkpoint").write_text("")


@pytest.mark.parametrize(
    "breakage, words",
    [
        (_no_checkpoints, "has no checkpoint yet"),
        (_all_torn, "no readable checkpoint"),
        (_empty_state, "unreadable run or checkpoint"),
    ],
)
def test_a_workdir_without_a_readable_checkpoint_is_refused(exported, tmp_path, breakage, words):
    workdir = tmp_path / "run"
    shutil.copytree(exported[0], workdir)
    breakage(workdir)
    with pytest.raises(WorkdirError, match=words):
        export_lib.export(workdir, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_an_existing_out_is_left_alone(exported, tmp_path):
    workdir = exported[0]
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(export_lib.ExportError, match="already exists; pass --overwrite"):
        export_lib.export(workdir, out)
    with pytest.raises(export_lib.ExportError, match="not an acai export"):
        export_lib.export(workdir, out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"
    assert leftovers(tmp_path) == []


def test_overwrite_swaps_exports_and_a_failure_keeps_the_old_one(
    exported, tmp_path, monkeypatch, capsys
):
    workdir = exported[0]
    out = tmp_path / "out"
    shutil.copytree(exported[1], out)
    (out / "old.txt").write_text("from the earlier export")

    def broken(model):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(export_lib, "serving_archive", broken)  # after the .keras files
        with pytest.raises(OSError, match="disk full"):
            export_lib.export(workdir, out, overwrite=True)
    assert (out / "old.txt").exists() and leftovers(tmp_path) == []

    assert cli.main(["export", str(workdir), "--out", str(out), "--overwrite"]) == 0
    assert "acai: exported step 8" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(export_lib.ARTEFACTS)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_move_into_place_swaps_folders(tmp_path, monkeypatch, exchange):
    staging, out = tmp_path / ".out.tmp-x", tmp_path / "out"
    for folder, name in ((staging, "new"), (out, "old")):
        folder.mkdir()
        (folder / name).write_text(name)
    if not exchange:
        monkeypatch.setattr(export_lib, "_exchange", lambda a, b: False)
    export_lib._move_into_place(staging, out)
    assert [p.name for p in out.iterdir()] == ["new"]
    assert [p.name for p in staging.iterdir()] == ["old"]  # for the caller to delete
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.tmp-x", "out"]


def test_command_line_errors_are_one_line(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert_one_line_error(run_acai("export", str(tmp_path), "--out", str(out)), "already exists")
    assert_one_line_error(run_acai("export", "--out", str(tmp_path / "new")), "pass the run")
    result = run_acai("export", "a", "--workdir", "b", "--out", str(tmp_path / "new"))
    assert_one_line_error(result, "two WORKDIRs")


def test_an_exports_config_names_files_not_folders_of_the_training_machine():
    config = acai.Config(
        data="/home/me/data/cifar10-images.tar.gz",
        perceptual=0.1,
        perceptual_model="/home/me/runs/perceptual/classifier.keras",
    )
    values = export_lib.portable_config(config)
    assert values["data"] == "cifar10-images.tar.gz"
    assert values["perceptual_model"] == "classifier.keras"
    assert export_lib.portable_config(acai.Config())["perceptual_model"] == ""  # off


def test_an_export_records_its_data_and_warns_about_other_data(exported, tmp_path):
    from pathlib import Path

    from acai.files import fingerprint

    workdir, out, _ = exported
    config = strict_json(workdir / "config.json")
    recorded = strict_json(out / "metadata.json")["inputs"]
    assert recorded == {
        "data": {"file": "images", "fingerprint": fingerprint(Path(config["data"]))}
    }
    lines, warning = export_lib.provenance(out, data=config["data"])
    assert warning is None and lines == [
        f"data: images (fingerprint {recorded['data']['fingerprint'][:16]})"
    ]
    other = tmp_path / "other.tar.gz"
    other.write_bytes(b"not the same data")
    _, warning = export_lib.provenance(out, data=str(other))
    assert "is not the data" in warning and "will differ" in warning
    result = run_acai("provenance", str(out), "--data", str(other))
    assert result.returncode == 0 and "data: images" in result.stdout
    assert "acai: warning:" in result.stderr and "is not the data" in result.stderr


def test_a_run_with_a_feature_loss_records_that_networks_hash(tmp_path):
    from acai import Config
    from acai.files import describe_inputs

    network = tmp_path / "features.keras"
    network.write_bytes(b"weights")
    inputs = describe_inputs(Config(data="tfds", perceptual=0.1, perceptual_model=str(network)))
    assert inputs["data"] == {"file": "tfds"}  # a named source: nothing to hash
    expected = "9a129038d9a00aed0cf6a7ea059ca50a813449061ab87848cf1a13eafdf33b2c"
    assert inputs["perceptual_model"] == {"file": "features.keras", "sha256": expected}


def test_the_shipped_model_and_an_export_export_again_unchanged(tmp_path):
    from acai.training.run import PRETRAINED_MODEL

    result = run_acai("export", "pretrained", "--out", str(tmp_path / "shipped"))
    assert result.returncode == 0, result.stderr
    export_lib.export(tmp_path / "shipped", tmp_path / "again")  # an export of an export
    shipped = strict_json(PRETRAINED_MODEL / "metadata.json")
    for folder in ("shipped", "again"):
        meta = strict_json(tmp_path / folder / "metadata.json")
        assert meta["step"] == shipped["step"]
        assert acai.Config.from_dict(meta["config"]) == acai.Config.from_dict(shipped["config"])
        assert meta["class_names"] == shipped["class_names"]
    original = keras.saving.load_model(PRETRAINED_MODEL / "acai.keras")
    again = keras.saving.load_model(tmp_path / "again" / "acai.keras")
    for a, b in zip(original.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
