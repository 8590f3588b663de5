"""The networks' block diagrams drawn with matplotlib: the PNG, its size, labels and arrows."""

import io

import keras
import numpy as np
import pytest
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from PIL import Image

from acai.core.networks import critic, encoder
from acai.pegasi.diagrams import _figure, _graph
from acai.pegasi.diagrams import matplotlib_png as diagram_png


def _chain(n_dense: int) -> keras.Model:
    """An input followed by n_dense Dense layers: n_dense + 1 layers, no activations merged."""
    x = keras.Input((4,), name="x")
    h = x
    for i in range(n_dense):
        h = keras.layers.Dense(3 + i, name=f"dense{i}")(h)
    return keras.Model(x, h, name="chain")


def _branch() -> keras.Model:
    x = keras.Input((4,), name="x")
    left = keras.layers.Dense(5, name="left")(x)
    right = keras.layers.Dense(5, name="right")(x)
    return keras.Model(x, keras.layers.Add(name="sum")([left, right]), name="branch")


def _residual() -> keras.Model:
    x = keras.Input((4,), name="x")
    h = keras.layers.Dense(4, name="d0")(x)
    h = keras.layers.Dense(4, name="d1")(h)
    return keras.Model(x, keras.layers.Add(name="skip_sum")([x, h]), name="residual")


def _image(model: keras.Model) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(diagram_png(model))).convert("L"))


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _arrows(fig) -> list[FancyArrowPatch]:
    return [p for ax in fig.axes for p in ax.patches if isinstance(p, FancyArrowPatch)]


def test_png_decodes_to_a_non_blank_image():
    pixels = _image(_chain(3))
    assert pixels.ndim == 2 and min(pixels.shape) > 100
    assert (pixels < 128).mean() > 0.005  # dark text and lines
    assert (pixels > 200).mean() > 0.5  # on a light background


def test_height_grows_with_the_number_of_layers():
    short, tall = _image(_chain(2)), _image(_chain(11))
    assert len(_chain(2).layers) == 3 and len(_chain(11).layers) == 12
    assert tall.shape[0] > 3 * short.shape[0]


def test_dpi_scales_the_image():
    assert _image(_chain(2)).shape[0] * 2 == pytest.approx(
        np.asarray(Image.open(io.BytesIO(diagram_png(_chain(2), dpi=160)))).shape[0], abs=2
    )


@pytest.mark.parametrize(
    "model",
    [
        _chain(11),
        encoder((32, 32, 3), depth=16, latent=16, scales=3),
        critic((32, 32, 3), depth=16, latent=16, scales=3),
    ],
    ids=["chain", "encoder", "critic"],
)
def test_every_layer_is_drawn_with_its_output_shape(model):
    texts = _texts(_figure(model)[0])
    assert f"{model.name}: {model.count_params():,} parameters" in texts
    for layer in model.layers:
        assert layer.name in texts
        assert f"  {type(layer).__name__}" in texts
        assert any(str(tuple(layer.output.shape)) in t for t in texts), layer.name


def test_blocks_show_shapes_and_parameter_counts():
    model = critic((32, 32, 3), depth=16, latent=16, scales=3)
    texts = _texts(_figure(model)[0])
    body = model.get_layer("critic_body")
    assert "  Functional" in texts
    assert f"(None, 4, 4, 16)   ·   {body.count_params():,} params" in texts
    assert "input (None, 32, 32, 3)" in texts
    assert "(None, 256)" in texts  # no parameter suffix on a weightless layer


def test_activations_merge_into_the_layer_above():
    model = encoder((32, 32, 3), depth=16, latent=16, scales=3)
    blocks, edges = _graph(model)
    merged = {b.name: [op.name for op in b.ops] for b in blocks}
    assert merged["down0_a"] == ["down0_a", "down0_a_act"]
    assert merged["latent"] == ["latent", "to_float32"]
    assert merged["pool0"] == ["pool0"]
    assert len(blocks) == 13 and len(edges) == 12  # a chain of 13 boxes


def test_branch_draws_an_arrow_from_each_inbound_block():
    model = _branch()
    blocks, edges = _graph(model)
    assert set(edges) == {("x", "left"), ("x", "right"), ("left", "sum"), ("right", "sum")}
    assert {b.name: b.rank for b in blocks} == {"x": 0, "left": 1, "right": 1, "sum": 2}

    fig, placed, arrows = _figure(model)
    assert len(_arrows(fig)) == len(arrows) == 4
    at = {b.name: b for b in placed}
    left, right, add = at["left"], at["right"], at["sum"]
    assert left.y == right.y and left.x < right.x  # the branches sit side by side
    into_add = {src: points for src, dst, points in arrows if dst == "sum"}
    assert set(into_add) == {"left", "right"}
    for src, points in into_add.items():
        (x0, y0), (_, y1) = points[0], points[-1]
        assert x0 == pytest.approx(at[src].x) and y0 < at[src].y  # leaves its own box's bottom
        assert y1 == pytest.approx(add.y)  # and ends on the top edge of the Add box
    assert into_add["left"][-1][0] < add.x < into_add["right"][-1][0]  # on distinct ports


def test_skip_connection_is_routed_around_the_boxes():
    model = _residual()
    _, edges = _graph(model)
    assert ("x", "skip_sum") in edges and ("d1", "skip_sum") in edges
    fig, placed, arrows = _figure(model)
    assert len(_arrows(fig)) == 4
    (skip,) = [points for src, dst, points in arrows if (src, dst) == ("x", "skip_sum")]
    box = next(p for p in fig.axes[0].patches if isinstance(p, FancyBboxPatch))
    right_edge = max(b.x for b in placed) + box.get_width() / 2
    assert max(x for x, _ in skip) > right_edge  # its lane passes right of every box
    d0 = next(b for b in placed if b.name == "d0")
    # Its horizontal runs lie in the gaps between rows, never across a box.
    ys = [y for _, y in skip[1:-1]]
    assert all(not (d0.y - box.get_height() <= y <= d0.y) for y in ys)


def test_shared_layer_outside_the_model_is_ignored():
    body = encoder((32, 32, 3), depth=4, latent=4, scales=1, name="shared")
    x = keras.Input((32, 32, 3), name="other")
    keras.Model(x, body(x), name="user")  # gives body's layers no new nodes, body one more
    blocks, edges = _graph(body)
    assert blocks[0].name == "images" and all(len(b.ops) <= 2 for b in blocks)
    assert len(edges) == len(blocks) - 1


def test_a_model_without_a_graph_is_refused():
    with pytest.raises(ValueError, match="no functional graph"):
        diagram_png(keras.Sequential([keras.layers.Dense(3)], name="unbuilt"))
