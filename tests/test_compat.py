"""What was saved before the package split still loads and decodes the same strips."""

from pathlib import Path

import numpy as np
import pytest

from acai.training import run as run_lib
from acai.training.lines import draw_lines

FIXTURES = Path(__file__).parent / "data" / "compat"


@pytest.fixture(scope="module")
def strips():
    return dict(np.load(FIXTURES / "strips.npz"))


def decoded(run, start, end, t):
    return {
        path: np.asarray(run.model.interpolate(start, end, t, path=path))[:, 0]
        for path in ("lerp", "slerp")
    }


@pytest.mark.parametrize("folder", ["old_run", "old_export"])
def test_an_old_run_and_its_export_decode_the_strips_they_did(folder, strips):
    run = run_lib.open(FIXTURES / folder)
    assert run.step == 16
    ends = draw_lines([0.3, 2.0])
    now = decoded(run, ends[:1], ends[1:], strips["t"])
    for path in ("lerp", "slerp"):
        np.testing.assert_allclose(now[path], strips[f"run_{path}"], atol=1e-5)


def test_the_shipped_model_decodes_the_strip_it_did(strips):
    run = run_lib.open(None)
    now = decoded(
        run, strips["pretrained_horse"][None], strips["pretrained_bird"][None], strips["t"]
    )
    for path in ("lerp", "slerp"):
        np.testing.assert_allclose(now[path], strips[f"pretrained_{path}"], atol=1e-5)
