import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from acai import AcaiError
from acai.images import to_float, to_uint8
from acai.pegasi import judge as judge_lib
from acai.pegasi import pegasus as interp
from acai.pegasi.realism import DISSOLVE_ROWS, SETS
from acai.training import classifier as classifier_lib
from acai.training import data as data_lib
from acai.training import run as run_lib

from .conftest import run_side_by_side, strict_json


@pytest.fixture(scope="module")
def pegasus_kit(trained, tmp_path_factory):
    """The tiny trained run, its data, and a classifier trained for one epoch on it."""
    config, workdir, _ = trained
    path = tmp_path_factory.mktemp("classifier") / "classifier.keras"
    classifier_lib.train(config.data, path, epochs=1, batch=8, verbose=0)
    run = run_lib.load_run(workdir)
    data = data_lib.load(config.data)
    judge = judge_lib.make_judge(run, data, classifier_lib.Classifier(path))
    return run, data, judge, path


# --- the pure scores -------------------------------------------------------------------------


def test_sharpness_ranks_an_image_above_its_blur():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3)).astype(np.float64)
    blurred = (
        images + np.roll(images, 1, 1) + np.roll(images, 1, 2) + np.roll(images, 1, (1, 2))
    ) / 4
    assert (judge_lib.sharpness(images) > 2 * judge_lib.sharpness(blurred)).all()
    assert judge_lib.sharpness(np.full((1, 8, 8, 3), 77.0))[0] == 0


def test_nearest_distance_and_spread():
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (10, 4, 4, 3)).astype(np.uint8)
    d = judge_lib.nearest_distance(pool[[3, 7]], pool)
    np.testing.assert_allclose(d, 0, atol=1e-2)
    shifted = np.clip(pool[:1].astype(np.int32) + 10, 0, 255)
    assert 0 < judge_lib.nearest_distance(shifted, pool)[0] <= 10.01
    assert judge_lib.spread(np.repeat(pool[:1], 5, 0)) == pytest.approx(0, abs=1e-2)
    assert judge_lib.spread(pool) > 10


def test_combined_score_prefers_a_torn_classifier_and_a_calm_critic():
    base = judge_lib.combined_score(
        np.array([0.5]), np.array([0.5]), np.array([0.0]), np.array([1.0])
    )
    assert base[0] == pytest.approx(1.0)
    assert (
        judge_lib.combined_score(
            np.array([0.9]), np.array([0.1]), np.array([0.0]), np.array([1.0])
        )[0]
        < base[0]
    )
    assert (
        judge_lib.combined_score(
            np.array([0.5]), np.array([0.5]), np.array([0.4]), np.array([1.0])
        )[0]
        < base[0]
    )
    white = judge_lib.whiteness(np.full((1, 4, 4, 3), 250, np.uint8))
    assert white[0] == 1 and judge_lib.whiteness(np.zeros((1, 4, 4, 3), np.uint8))[0] == 0


def test_the_ranking_penalises_a_blend_of_the_two_ends_only_beyond_a_true_in_between():
    torn = [np.array([0.5])] * 2 + [np.array([0.0]), np.array([1.0])]
    blends = [judge_lib.combined_score(*torn, blend=np.array([b]))[0] for b in (0.6, 0.85, 1.0)]
    assert blends == pytest.approx([1.0, 0.9, 0.8])


# --- picking inputs --------------------------------------------------------------------------


def test_pick_checks_index_range_class_and_files(pegasus_kit, tmp_path):
    _, data, _, _ = pegasus_kit  # test split: 6 birds (0-5), then 6 horses (6-11)
    assert interp.pick("7", data=data, want="horse").index == 7
    with pytest.raises(AcaiError, match="test image 0 is a bird, not a horse"):
        interp.pick("0", data=data, want="horse")
    assert interp.pick("0", data=data, want="horse", any_class=True).index == 0
    with pytest.raises(AcaiError, match="out of range.*0-11"):
        interp.pick("12", data=data, want="horse")
    with pytest.raises(AcaiError, match="out of range"):
        interp.pick("-1", data=data, want="horse")
    picked = interp.pick("random", data=data, want="bird", rng=np.random.default_rng(0))
    assert data.test_labels[picked.index] == data.class_names.index("bird")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(AcaiError, match="not an image file"):
        interp.pick(str(tmp_path / "notes.txt"), data=data, want="bird")
    Image.new("1", (5000, 5000)).save(tmp_path / "huge.png")
    with pytest.raises(AcaiError, match="huge.png': too many pixels: this PNG is 5000x5000"):
        interp.pick(str(tmp_path / "huge.png"), data=data, want="bird")
    Image.new("LA", (50, 90), (200, 128)).save(tmp_path / "odd.png")
    picked = interp.pick(str(tmp_path / "odd.png"), data=data, want="bird")
    assert picked.image.shape == (32, 32, 3) and picked.image.dtype == np.uint8


# --- end to end on the tiny model ------------------------------------------------------------


def test_walk_writes_the_pegasus_and_the_strip(pegasus_kit, tmp_path):
    run, data, judge, _ = pegasus_kit
    horse = interp.pick("7", data=data, want="horse")
    bird = interp.pick("1", data=data, want="bird")
    result = interp.walk(run, judge, horse, bird, t=0.5, steps=5, out=tmp_path)
    # the PNG is the slerp pegasus at t, each pixel 8x8
    shown = np.asarray(Image.open(tmp_path / "pegasus.png").convert("RGB"))[::8, ::8]
    z = run.model.encode(to_float(np.stack([horse.image, bird.image])))
    expected = np.asarray(to_uint8(run.model.decode_path(z[:1], z[1:], 0.5, path="slerp")))[0]
    assert np.abs(shown.astype(int) - expected).max() <= 1
    strip = Image.open(tmp_path / "strip.png")
    assert strip.size[0] > 2 * strip.size[1]  # a wide strip: 7 columns, 2 rows
    # the scores at t are the judge's for that image
    assert result["slerp"]["sharpness"] == pytest.approx(judge_lib.sharpness(expected[None])[0])
    # slerp keeps the latent norm; lerp's midpoint is shorter than the ends
    assert result["slerp"]["latent_norm_vs_ends"] > result["lerp"]["latent_norm_vs_ends"]
    assert strict_json(tmp_path / "pegasus.json")["t"] == 0.5


def test_pegasi_keeps_the_best_distinct_pairs(pegasus_kit, tmp_path):
    run, data, judge, _ = pegasus_kit
    manifest = interp.pegasi(run, judge, data, n=4, candidates=9, t=0.5, out=tmp_path)
    images = manifest["images"]
    assert len(images) == 4
    assert len({(m["horse_index"], m["bird_index"]) for m in images}) == 4
    assert [m["score"] for m in images] == sorted((m["score"] for m in images), reverse=True)
    horse_label = data.class_names.index("horse")
    assert all(data.test_labels[m["horse_index"]] == horse_label for m in images)
    assert Image.open(tmp_path / "pegasi.png").size == (2 * 32 * 3, 2 * 32 * 3)
    assert Image.open(tmp_path / "best_pegasus.png").size == (256, 256)
    assert set(manifest["summary"]) == {"pegasi", "crossfade"}
    with pytest.raises(AcaiError, match="candidates"):
        interp.pegasi(run, judge, data, n=10, candidates=4, out=tmp_path / "x")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--t", "1.5"], "outside [0, 1]"),
        (["--steps", "1"], "at least 2"),
    ],
)
def test_interpolate_command_refuses_bad_settings(args, words, tmp_path):
    command = [
        sys.executable,
        "-m",
        "acai.cli",
        "interpolate",
        "--workdir",
        str(tmp_path),
        "--horse",
        "7",
        "--bird",
        "1",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "t, words",
    [
        ("0.4,abc", "comma-separated list"),
        ("0.4,1.5", "outside [0, 1]"),
    ],
)
def test_pegasus_command_refuses_a_bad_t_list(t, words, tmp_path):
    command = [sys.executable, "-m", "acai.cli", "pegasus", "--workdir", str(tmp_path), "--t", t]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "pegasi").exists()


def test_interpolate_command_end_to_end(trained, pegasus_kit, tmp_path):
    _, workdir, _ = trained
    classifier = pegasus_kit[3]
    base = [
        sys.executable,
        "-m",
        "acai.cli",
        "interpolate",
        "--workdir",
        str(workdir),
        "--classifier",
        str(classifier),
        "--out",
        str(tmp_path / "out"),
    ]
    # The refused command stops before writing anything, so both can run at once.
    ok, wrong = run_side_by_side(
        [*base, "--horse", "7", "--bird", "2"], [*base, "--horse", "2", "--bird", "7"]
    )
    assert ok.returncode == 0, ok.stderr
    assert "latent_norm_vs_ends" in ok.stdout and str(tmp_path / "out" / "strip.png") in ok.stdout
    assert wrong.returncode == 2 and "is a bird, not a horse" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_pegasi_keeps_each_pairs_best_t(pegasus_kit, tmp_path):
    run, data, judge, _ = pegasus_kit
    one = interp.pegasi(run, judge, data, n=3, candidates=9, t=0.5, out=tmp_path / "one")
    many = interp.pegasi(
        run, judge, data, n=3, candidates=9, t=(0.3, 0.5, 0.7), out=tmp_path / "many"
    )
    assert many["t"] == [0.3, 0.5, 0.7] and {m["t"] for m in many["images"]} <= {0.3, 0.5, 0.7}
    # the same candidate pairs (same seed), each now at its best t: the best can only improve
    assert many["images"][0]["score"] >= one["images"][0]["score"]
    # realism on random pairs, every one kept: all 6 x 6 test pairs of this tiny data set
    saved = strict_json(tmp_path / "one" / "pegasi.json")
    assert saved["realism"]["pairs"] == 36
    assert {j["kind"] for j in saved["realism"]["judges"].values()} == {"kid", "swd"}
    assert all(len(j["distance"]) == len(SETS) for j in saved["realism"]["judges"].values())
    index = saved["realism"]["dissolve_index"]
    assert set(index) == set(DISSOLVE_ROWS)
    assert index["unrelated"] < index["crossfade_reconstructions"]  # a blend reads as one
    # random pairs, every one kept, beside their contrast-restored cross-fades: 6 x 6 pairs in
    # this tiny data set, 4 to a row of horse, bird, midpoint and fade
    random = saved["random"]
    assert len(random["pairs"]) == len(random["dissolve_index"]) == 36
    assert len({tuple(p) for p in random["pairs"]}) == 36 and random["path"] == "slerp"
    horse, bird = judge_lib.horse_and_bird(data)
    assert all(
        data.test_labels[h] == horse and data.test_labels[b] == bird for h, b in random["pairs"]
    )
    assert all(-1.0 <= r <= 1.0 for r in random["dissolve_index"])
    sheet = Image.open(tmp_path / "one" / "random_pegasi.png")
    assert sheet.size == (2 * (4 * (4 * 32 + 4) - 4), 2 * (9 * (32 + 4) - 4))
    assert str(tmp_path / "one" / "random_pegasi.png") in one["files"]


def test_evaluate_reports_realism_under_each_judge_with_its_hash(trained, pegasus_kit, tmp_path):
    import hashlib
    import shutil

    from acai.pegasi import evaluate

    run_copy = shutil.copytree(trained[1], tmp_path / "run")
    result = evaluate.evaluate(run_copy, judges=[pegasus_kit[3]])
    saved = strict_json(run_copy / "metrics.json")
    judges = saved["realism"]["judges"]
    assert saved["realism"]["draws"] == 2 and saved["split"] == "test"
    kid_judge = next(j for j in judges.values() if j["kind"] == "kid")
    assert kid_judge["sha256"] == hashlib.sha256(pegasus_kit[3].read_bytes()).hexdigest()
    assert kid_judge["file"] == "classifier.keras" and kid_judge["architecture"] == "plain"
    assert kid_judge["independent"]  # this run has no feature loss
    swd_judge = judges["swd"]
    assert swd_judge["distance"] == pytest.approx(result["realism"]["judges"]["swd"]["distance"])
    # the cross-fade of two different photos is far from real photos to every judge
    for judge in judges.values():
        assert judge["distance"]["crossfade"] > judge["distance"]["real"]
    page = (run_copy / "report.html").read_text()
    assert "<h2>Realism</h2>" in page and "pixel cross-fade of the photos" in page
    assert "sliced Wasserstein" in page
    assert "<h2>Random pairs</h2>" in page and "36 random test horse-bird pairs" in page
    without = evaluate.evaluate(run_copy, judges=[tmp_path / "no-such-classifier.keras"])
    assert list(without["realism"]["judges"]) == ["swd"]  # no network needed


def test_a_judge_that_is_the_runs_feature_loss_is_refused(pegasus_kit, tmp_path):
    path = pegasus_kit[3]  # a plain classifier
    with pytest.raises(AcaiError, match="the run's own feature-loss network"):
        judge_lib.from_files([path], feature_model=path)
    judges = judge_lib.from_files([path], feature_model=None)
    assert [j.kind for j in judges] == ["kid", "swd"] and judges[0].describe()["independent"]
    # a judge of the feature loss's family (another file) is kept, marked not independent
    features = tmp_path / "features.keras"
    features.write_bytes(b"another network's weights")
    for family, independent in (("plain", False), ("resnet", True)):
        features.with_suffix(".json").write_text(json.dumps({"architecture": family}))
        judge, swd = judge_lib.from_files([path], feature_model=features)
        assert judge.describe()["independent"] is independent and swd.describe()["independent"]


def test_validation_split_is_refused_for_a_run_without_one(trained, tmp_path):
    import shutil

    from acai.pegasi import evaluate

    run_copy = shutil.copytree(trained[1], tmp_path / "run")
    with pytest.raises(AcaiError, match="no validation split"):
        evaluate.evaluate(run_copy, split="validation")


# --- the scorecard: real photos must rank above blurred copies and cross-fades ---------------


def _striped_world(root, rng):
    """horse: thin horizontal stripes, bird: thin vertical ones, cat: smooth colour fields.

    Stripes of period 2 px are what a blur removes and what a cross-fade of a horse and a
    bird turns into a plaid, so a classifier trained here knows the classes by fine texture.
    """
    from PIL import Image

    def image(kind):
        colours = rng.uniform(30, 225, (2, 3))
        yy, xx = np.mgrid[0:32, 0:32]
        if kind == "cat":
            ramp = (xx + yy * rng.uniform(-1, 1)) / 64 + 0.25
            pixels = colours[0] * ramp[..., None] + colours[1] * (1 - ramp[..., None])
        else:
            stripe = (yy if kind == "horse" else xx) % 2
            pixels = np.where(stripe[..., None] == 1, colours[0], colours[1])
        return np.clip(pixels + rng.normal(0, 4, (32, 32, 3)), 0, 255).astype(np.uint8)

    for split, count in (("train", 64), ("test", 24)):
        for kind in ("bird", "cat", "horse"):
            folder = root / split / kind
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(image(kind)).save(folder / f"{i}.png")
    return root


def _blur(images, sigma=1.5):
    from PIL import Image, ImageFilter

    return np.stack(
        [np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(sigma))) for im in images]
    )


def test_scorecard_ranks_real_photos_above_blurred_copies_and_cross_fades(tmp_path):
    rng = np.random.default_rng(0)
    world = _striped_world(tmp_path / "world", rng)
    path = tmp_path / "classifier.keras"
    info = classifier_lib.train(str(world), path, epochs=8, batch=16, verbose=0)
    assert info["test_accuracy"] > 0.85  # the judge must know the classes for this to mean much
    data = data_lib.load(str(world))
    judge = judge_lib.Judge(None, classifier_lib.Classifier(path), data.train_images, 1.0)
    horse, bird = (
        data.test_images[data.test_labels == data.class_names.index(name)]
        for name in ("horse", "bird")
    )
    photos = np.concatenate([horse, bird])
    fades = ((horse.astype(np.float32) + bird) / 2).round().astype(np.uint8)  # 50/50, same pairs
    real = judge_lib.scorecard(judge, photos)
    blurred = judge_lib.scorecard(judge, _blur(photos))
    faded = judge_lib.scorecard(judge, fades)
    # what a blur must cost: sharpness, and with it the classifier's recognition
    assert real["mean_sharpness_vs_real"] > 4 * blurred["mean_sharpness_vs_real"]
    assert real["horse_or_bird_share"] > blurred["horse_or_bird_share"] + 0.3
    # what averaging two photos must cost: sharpness, and the batch's spread
    assert real["mean_sharpness_vs_real"] > 1.5 * faded["mean_sharpness_vs_real"]
    assert real["spread_rmse"] > faded["spread_rmse"]
    # and a real horse or bird is one animal: the torn-between-both figure belongs to the fades
    assert faded["mean_min_p"] > real["mean_min_p"]


def test_best_distinct_uses_each_photo_once_while_it_can():
    pairs = np.array([[1, 10], [1, 11], [2, 10], [2, 12], [3, 13]])
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    assert interp.best_distinct(pairs, score, 3).tolist() == [0, 3, 4]  # horse 1 once, bird 10 once
    # only two distinct pairs exist among the first four: the best of the rest fills the third
    # place, and the three come best first
    assert interp.best_distinct(pairs[:4], score[:4], 3).tolist() == [0, 1, 3]


# --- realism (KID) ---------------------------------------------------------------------------


def test_realism_image_sets_are_built_from_the_same_pairs(pegasus_kit):
    from acai.pegasi import realism

    run, data, _, _ = pegasus_kit
    pairs = realism.draw_pairs(data, 8, np.random.default_rng(0))
    horse, bird = data.class_names.index("horse"), data.class_names.index("bird")
    assert (data.test_labels[pairs[:, 0]] == horse).all()
    assert (data.test_labels[pairs[:, 1]] == bird).all()
    assert len({tuple(p) for p in pairs}) == 8
    sets = realism.image_sets(realism.decode_pairs(run, data, pairs))
    assert set(sets) == set(realism.SETS)
    assert all(
        images.shape == (8, 32, 32, 3) and images.dtype == np.uint8 for images in sets.values()
    )
    photos = data.test_images[pairs]  # (8, 2, 32, 32, 3)
    np.testing.assert_array_equal(sets["real"][0::2], photos[0::2, 0])
    np.testing.assert_array_equal(sets["real"][1::2], photos[1::2, 1])
    fade = photos.astype(np.float64).mean(axis=1)
    assert np.abs(sets["crossfade"] - fade).max() <= 1.0  # rounding to uint8 only
    assert not np.array_equal(sets["slerp"], sets["crossfade"])


def test_realism_reports_every_set_and_two_draws_under_each_judge(pegasus_kit):
    from acai.pegasi import realism

    run, data, _, path = pegasus_kit
    classifier = classifier_lib.Classifier(path)
    judges = [judge_lib.ClassifierJudge(classifier), judge_lib.SwdJudge()]
    result = realism.realism(run, data, judges, pairs=6, real=20, draws=2)
    assert list(result["judges"]) == [judges[0].name, "swd"]
    for judge in result["judges"].values():
        assert set(judge["distance"]) == set(realism.SETS)
        for draws in judge["draws"].values():
            assert len(draws) == 2 and np.isfinite(draws).all()
        moves = max(max(d) - min(d) for d in judge["draws"].values())
        assert judge["moves"] == pytest.approx(moves, abs=1e-3)
    kid = result["judges"][judges[0].name]
    assert all(0 <= v <= 1 for v in kid["horse_or_bird_share"].values())
    assert all(0 <= v <= 0.5 for v in kid["mean_min_p"].values())
    assert "horse_or_bird_share" not in result["judges"]["swd"]
    features = classifier.features(data.test_images[:3])
    assert features.shape[0] == 3 and features.ndim == 2
    # the features feed the classifier's last layer: they give its logits back
    images = data.test_images[:3]
    direct = classifier.model.predict(to_float(images), verbose=0)
    np.testing.assert_allclose(classifier.model.get_layer("logits")(features), direct, atol=1e-4)
    # the probabilities are those of the mean logits of each image and its mirror image
    mirrored = classifier.model.predict(to_float(images[:, :, ::-1]), verbose=0)
    mean = (direct + mirrored) / 2
    expected = np.exp(mean) / np.exp(mean).sum(1, keepdims=True)
    np.testing.assert_allclose(classifier.probabilities(images), expected, atol=1e-5)
    np.testing.assert_allclose(
        classifier.features_and_probabilities(images)[1], expected, atol=1e-5
    )
