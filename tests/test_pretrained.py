"""The model in the box: the shipped export loads anywhere and makes a pegasus with no data."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from acai.core import config as config_lib
from acai.training import run as run_lib

from .conftest import run_side_by_side, strict_json

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter that imports only TensorFlow, NumPy and PIL: the sixteen sample
# photos through the SavedModel's default endpoint, at t = 0 (each photo's own reconstruction),
# t = 1 (the partner's) and t = 0.5.
SERVE = """
import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

served = tf.saved_model.load(sys.argv[1])
files = sorted(Path(sys.argv[2]).glob("*.jpg"))
photos = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
default = served.signatures["serving_default"]

def at(a, b, t):
    out = default(images_a=a, images_b=b, t=tf.constant(t))["output_0"].numpy()
    assert out.shape == a.shape and out.dtype == np.uint8, (out.shape, out.dtype)
    return out.astype(np.float64)

def rmse(x, y):
    return np.sqrt(((x - y) ** 2).mean(axis=(1, 2, 3))).tolist()

start, end = at(photos, photos[::-1], 0.0), at(photos[::-1], photos, 1.0)
mid = at(photos, photos[::-1], 0.5)
assert "acai" not in sys.modules
print(json.dumps({
    "reconstruction": rmse(start, photos),
    "ends_differ": float(np.abs(start - end).max()),
    "mid_to_ends": rmse(mid, start) + rmse(mid, start[::-1]),
    "mean_image": float(np.sqrt(((photos - photos.mean(0)) ** 2).mean())),
}))
"""
RECONSTRUCTION_RMSE = 25  # 0-255; measured 6.4 to 20.4 per photo, 13.4 over the sixteen


def test_the_shipped_export_serves_with_tensorflow_alone_and_reconstructs_the_samples():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVE,
            str(run_lib.PRETRAINED_MODEL / "saved_model"),
            str(run_lib.SAMPLES),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(scores["reconstruction"]) == 16
    assert max(scores["reconstruction"]) < RECONSTRUCTION_RMSE < scores["mean_image"]
    assert scores["ends_differ"] == 0  # t = 0 and t = 1 are the two photos' own decodes
    assert min(scores["mid_to_ends"]) > 10  # the midpoint is neither photo's reconstruction


def test_the_shipped_model_is_what_its_config_file_makes():
    metadata = strict_json(run_lib.PRETRAINED_MODEL / "metadata.json")
    claimed = config_lib.load(str(ROOT / "experiments" / "pegasus.py")).to_dict()
    shipped = dict(metadata["config"])
    # file names: no folder of the machine that trained it
    assert "/" not in shipped["data"] and "/" not in shipped["perceptual_model"]
    claimed["perceptual_model"] = Path(claimed["perceptual_model"]).name
    # fields added since it was trained read as their defaults, as when a run is loaded
    shipped = config_lib.Config.from_dict(shipped).to_dict()
    # Every field but the data source (where the trainer's copy of CIFAR-10 was) and the fields
    # that change how fast it trains, not what it learns.
    ignored = {"data", *run_lib.RESUMABLE_CHANGES} - {"total_kimg"}
    assert {k: v for k, v in shipped.items() if k not in ignored} == {
        k: v for k, v in claimed.items() if k not in ignored
    }
    assert metadata["step"] * shipped["batch"] == round(claimed["total_kimg"] * 1024)


def test_the_box_holds_at_most_10_mb():
    size = sum(p.stat().st_size for p in run_lib.PRETRAINED.rglob("*") if p.is_file())
    assert size <= 10 * 2**20, size


def test_load_pretrained_interpolates_the_sample_photos():
    run = run_lib.load_pretrained()
    horse = np.asarray(Image.open(run_lib.SAMPLES / "horse_0.jpg").convert("RGB"), np.float32)
    bird = np.asarray(Image.open(run_lib.SAMPLES / "bird_0.jpg").convert("RGB"), np.float32)
    a, b = horse[None] / 127.5 - 1, bird[None] / 127.5 - 1
    walk = np.asarray(run.model.interpolate(a, b, np.linspace(0, 1, 3, dtype=np.float32)))
    assert walk.shape == (3, 1, 32, 32, 3)
    ends = np.asarray(run.model(np.concatenate([a, b])))
    np.testing.assert_allclose(walk[[0, 2], 0], ends, atol=1e-4)  # t = 0 and 1: the two decodes


def test_interpolate_with_no_workdir_uses_the_shipped_model(tmp_path):
    big = Image.fromarray(np.full((300, 200, 3), 180, np.uint8))
    big.save(tmp_path / "horse.jpg")
    Image.open(run_lib.SAMPLES / "bird_1.jpg").save(tmp_path / "bird.png")
    acai_cli = [sys.executable, "-m", "acai.cli", "interpolate"]
    # The second command is refused before it writes anything, so both can run at once.
    result, without_data = run_side_by_side(
        [
            *acai_cli,
            "--out",
            str(tmp_path / "out"),
            "--horse",
            str(tmp_path / "horse.jpg"),
            "--bird",
            str(tmp_path / "bird.png"),
        ],
        [*acai_cli, "--horse", "7000"],
        cwd=tmp_path,  # no runs/ folder and no classifier here
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the shipped model" in result.stdout and "Traceback" not in result.stderr
    for name in ("pegasus.png", "pegasus_smooth.png", "strip.png", "pegasus.json"):
        assert (tmp_path / "out" / name).is_file()
    assert Image.open(tmp_path / "out" / "pegasus.png").size == (256, 256)
    assert without_data.returncode == 2 and "comes without data" in without_data.stderr
