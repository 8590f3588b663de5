"""Shared fixtures: tiny image folders and configs small enough to train in seconds."""

import os
import subprocess

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from acai import Config

CLASSES = ("bird", "horse")


def write_image_tree(root, *, per_class=(24, 6), size=32, seed=0):
    """Writes train|test/<class>/*.png: each class a colour with noise, so classes differ."""
    rng = np.random.default_rng(seed)
    for split, count in zip(("train", "test"), per_class):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                base = np.array([200, 40, 40]) if label else np.array([40, 60, 200])
                pixels = np.clip(base + rng.normal(0, 30, (size, size, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root


def strict_json(path):
    """Reads a JSON file the way strict parsers do: NaN and Infinity are refused."""
    import json

    def refuse(name):
        raise ValueError(f"{path} holds {name}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def run_side_by_side(*commands, timeout=300, **popen_args):
    """Runs independent commands at the same time and returns their CompletedProcess, in order.

    Each `acai` command spends its first seconds loading TensorFlow on one core; two started
    together use both cores of a small machine.
    """
    processes = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen_args)
        for c in commands
    ]
    try:
        results = []
        for command, process in zip(commands, processes):
            out, err = process.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(command, process.returncode, out, err))
        return results
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    # Decoded data sets go to a temporary folder, never to the user's cache.
    os.environ["ACAI_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACAI_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def image_tree(tmp_path):
    return write_image_tree(tmp_path / "images")


def tiny_config_for(image_tree):
    """A config that trains in seconds: 2 epochs of 4 steps of 8 images, depth 4, one
    down-sampling level (a 16x16x4 latent: a small graph to trace)."""
    return Config(
        data=str(image_tree),
        depth=4,
        latent=4,
        latent_width=16,
        batch=8,
        total_kimg=64 / 1024,
        epoch_kimg=32 / 1024,
        precision="float32",
    )


@pytest.fixture
def tiny_config(image_tree):
    return tiny_config_for(image_tree)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny run trained once per session: (config, workdir, results). Copy it to change it."""
    import acai

    root = tmp_path_factory.mktemp("trained")
    config = tiny_config_for(write_image_tree(root / "images"))
    results = acai.train(config, root / "run", verbose=0)
    return config, root / "run", results
