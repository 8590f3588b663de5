import pickle
import socket
import tarfile

import numpy as np
import pytest
from PIL import Image

from acai import DataError
from acai.training import data as data_lib


def test_image_folder_loads_both_splits_in_class_order(image_tree):
    data = data_lib.load(str(image_tree))
    assert data.class_names == ("bird", "horse")
    assert data.train_images.shape == (48, 32, 32, 3) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (12, 32, 32, 3)
    assert np.bincount(data.train_labels).tolist() == [24, 24]
    # bird images were drawn blue, horse images red
    birds = data.train_images[data.train_labels == 0]
    assert birds[..., 2].mean() > birds[..., 0].mean()


def test_tar_gz_of_a_folder_matches_the_folder(image_tree, tmp_path):
    archive = tmp_path / "images.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(image_tree, arcname="cifar10")
    a, b = data_lib.load(str(image_tree)), data_lib.load(str(archive))
    np.testing.assert_array_equal(a.train_images, b.train_images)
    np.testing.assert_array_equal(a.test_labels, b.test_labels)


def test_second_load_comes_from_the_cache_until_a_file_changes(image_tree):
    first = data_lib.load(str(image_tree))
    assert len(list(data_lib.cache_dir().glob("data-*.npz"))) == 1
    cached = list(data_lib.cache_dir().glob("data-*.npz"))[0]
    cached_time = cached.stat().st_mtime_ns
    second = data_lib.load(str(image_tree))
    np.testing.assert_array_equal(first.train_images, second.train_images)
    assert cached.stat().st_mtime_ns == cached_time  # read, not rewritten
    Image.new("RGB", (32, 32), (0, 255, 0)).save(image_tree / "train" / "bird" / "0000.png")
    third = data_lib.load(str(image_tree))
    assert third.train_images[0, 0, 0].tolist() == [0, 255, 0]


def test_official_python_pickles(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), b"labels": [0, 7, 2]}
        (folder / name).write_bytes(pickle.dumps(batch))
    data = data_lib.load(str(tmp_path))
    assert data.train_images.shape == (15, 32, 32, 3) and data.test_images.shape == (3, 32, 32, 3)
    assert data.class_names[7] == "horse"
    raw = pickle.loads((folder / "test_batch").read_bytes())[b"data"][0]
    np.testing.assert_array_equal(data.test_images[0][..., 0].ravel(), raw[:1024])  # red plane


def test_class_filter_keeps_and_renumbers(image_tree):
    data = data_lib.load(str(image_tree), classes=("horse",))
    assert data.class_names == ("horse",)
    assert set(data.train_labels.tolist()) == {0} and len(data.train_images) == 24
    with pytest.raises(DataError, match="unknown class 'pegasus'.*bird, horse"):
        data_lib.load(str(image_tree), classes=("pegasus",))


def test_odd_images_are_converted_and_bad_files_skipped(tmp_path, caplog):
    root = tmp_path / "odd"
    folder = root / "train" / "bird"
    folder.mkdir(parents=True)
    Image.new("L", (64, 64), 128).save(folder / "grey.png")
    Image.new("RGBA", (40, 20), (255, 0, 0, 0)).save(folder / "clear.png")
    Image.new("P", (1, 1)).save(folder / "palette.gif")
    (folder / "notes.txt").write_text("not an image")
    (folder / "cut.png").write_bytes((folder / "grey.png").read_bytes()[:40])
    with caplog.at_level("WARNING"):
        data = data_lib.load(str(root))
    assert len(data.train_images) + len(data.test_images) == 3
    assert "skipped 2 files" in caplog.text
    assert "no test/ split" in caplog.text


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def _mkdir(path):
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: _mkdir(p / "empty"), "no train/<class>/ images"),
        (lambda p: _write(p / "x.bin", b"\0" * 100), "neither a folder nor"),
        (lambda p: _write(p / "x.tar.gz", b"\x1f\x8b\x08" + b"\0" * 50), "neither a folder nor"),
    ],
)
def test_bad_paths_are_one_clear_error(tmp_path, make, words):
    with pytest.raises(DataError, match=words):
        data_lib.load(str(make(tmp_path)))


def test_folder_without_readable_images_is_an_error(tmp_path):
    folder = tmp_path / "junk" / "train" / "horse"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"not really a jpeg")
    with pytest.raises(DataError, match="no readable images"):
        data_lib.load(str(tmp_path / "junk"))


def test_tfds_without_network_fails_fast(tmp_path, monkeypatch):
    # A port on the loopback interface that nothing listens on: connecting is refused at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(data_lib, "TFDS_DOWNLOAD_HOST", ("127.0.0.1", port))
    with pytest.raises(DataError, match="cannot be downloaded.*DATA="):
        data_lib.load_tfds(data_dir=str(tmp_path / "tfds"))


def test_train_dataset_batches_shuffled_scaled_images():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1).repeat(2, axis=1)
    labels = np.arange(10, dtype=np.int32)
    ds = data_lib.train_dataset(images, labels, batch=4, seed=0)
    x, y = next(iter(ds))
    assert tuple(x.shape) == (4, 2, 1, 1) and float(x.numpy().max()) <= 1.0
    np.testing.assert_allclose(x.numpy()[:, 0, 0, 0], y.numpy() / 127.5 - 1, rtol=1e-6)
    with pytest.raises(DataError, match="lower batch"):
        data_lib.train_dataset(images, labels, batch=64, seed=0)


def test_train_dataset_hands_each_images_own_rows_of_the_per_image_arrays():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    labels = np.arange(10, dtype=np.int32)
    maps = (np.arange(10, dtype=np.float32) * 10, np.arange(20, dtype=np.float32).reshape(10, 2))
    batches = iter(data_lib.train_dataset(images, labels, batch=4, seed=1, per_image=maps))
    for _ in range(5):  # across epochs: reshuffled, still aligned
        x, y, (first, second) = next(batches)
        np.testing.assert_array_equal(first.numpy(), y.numpy() * 10)
        np.testing.assert_array_equal(second.numpy(), maps[1][y.numpy()])
        np.testing.assert_allclose(x.numpy()[:, 0, 0, 0], y.numpy() / 127.5 - 1, rtol=1e-6)


def test_the_validation_split_is_fixed_per_class_and_never_in_training(image_tree):
    data = data_lib.load(str(image_tree))
    rest, validation = data_lib.carve_validation(data, 5)
    assert np.bincount(validation.test_labels).tolist() == [5, 5]
    assert len(rest.train_images) == len(data.train_images) - 10
    np.testing.assert_array_equal(rest.test_images, data.test_images)
    np.testing.assert_array_equal(validation.train_images, rest.train_images)
    held = {im.tobytes() for im in validation.test_images}
    assert not held & {im.tobytes() for im in rest.train_images}
    # the same photos when another class is dropped first: the split is per class
    horses = data_lib.select_classes(data, ("horse",))
    _, horse_val = data_lib.carve_validation(horses, 5)
    horse = data.class_names.index("horse")
    assert {im.tobytes() for im in horse_val.test_images} == {
        im.tobytes() for im in validation.test_images[validation.test_labels == horse]
    }
    with pytest.raises(DataError, match="too few"):
        data_lib.carve_validation(data, len(data.train_images))
