"""Files the product writes: strict JSON, atomic writes."""

import math

import numpy as np
import pytest

from acai import files

from .conftest import strict_json


def test_json_is_strict_non_finite_numbers_become_null(tmp_path):
    value = {"nan": math.nan, "inf": [np.float32("inf"), -math.inf], "ok": np.float64(1.5)}
    path = files.write_json(tmp_path / "x.json", {**value, "tuple": (1, np.int64(2))})
    assert strict_json(path) == {"nan": None, "inf": [None, None], "ok": 1.5, "tuple": [1, 2]}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = files.write_atomic(tmp_path / "x.txt", "old")
    with pytest.raises(RuntimeError), files.replacing(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]


def test_every_file_a_training_run_writes_is_strict_json(trained):
    _, workdir, results = trained
    names = sorted(p.name for p in workdir.glob("*.json"))
    assert names == ["config.json", "eval.json", "run.json"]
    assert strict_json(workdir / "eval.json") == files.strict(results)
    for name in names:
        strict_json(workdir / name)
