"""The networks drawn as block diagrams: matplotlib always, Graphviz when it is installed."""

from __future__ import annotations

import dataclasses
import io

import keras
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path
from matplotlib.textpath import TextToPath

# Element-wise activation layers folded into the block of the single layer that feeds them.
_ACTIVATIONS = frozenset({"Activation", "ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"})

# Geometry in inches; the axes span the whole figure with one data unit per inch.
_BOX_H = 0.62
_GAP_Y = 0.38
_GAP_X = 0.35
_PAD_X = 0.25
_MIN_BOX_W = 2.8
_TITLE_H = 0.6
_MARGIN = 0.25
_LANE = 0.2

_HEAD = FontProperties(size=11)
_HEAD_BOLD = FontProperties(size=11, weight="bold")
_SUB = FontProperties(size=10)
_TITLE = FontProperties(size=13, weight="bold")

_MEASURE = TextToPath()
_FILL = {"input": "#e6e6e6", "model": "#fde0b8", "params": "#d6e6f7", "plain": "#dcefd9"}


@dataclasses.dataclass
class _Block:
    """One box: a layer plus the activations merged into it."""

    ops: list  # the drawn layer first, then merged activations in order
    shape: str
    params: int
    rank: int = 0
    x: float = 0.0  # centre
    y: float = 0.0  # top edge

    @property
    def name(self) -> str:
        return self.ops[0].name

    def head(self) -> list[tuple[str, FontProperties]]:
        """The first text line as (text, font) segments: names bold, classes plain."""
        segments = []
        for i, op in enumerate(self.ops):
            segments += [("   +   " if i else "", _HEAD), (op.name, _HEAD_BOLD)]
            segments.append(("  " + type(op).__name__, _HEAD))
        return [s for s in segments if s[0]]

    def sub(self) -> str:
        """The second text line: output (or input) shape and parameter count."""
        text = ("input " if _kind(self.ops[0]) == "input" else "") + self.shape
        return text + (f"   ·   {self.params:,} params" if self.params else "")


def _kind(op) -> str:
    if isinstance(op, keras.layers.InputLayer):
        return "input"
    if isinstance(op, keras.Model):
        return "model"
    return "params" if _params(op) else "plain"


def _params(op) -> int:
    # Plain keras.ops in a functional graph are Operations, not Layers, and own no weights.
    return op.count_params() if isinstance(op, keras.layers.Layer) else 0


def _shape(nodes) -> str:
    shapes = []
    for node in nodes:
        outs = [str(tuple(t.shape)) for t in node.output_tensors]
        shapes.append(outs[0] if len(outs) == 1 else "[" + ", ".join(outs) + "]")
    return " | ".join(dict.fromkeys(shapes))


def _graph(model: keras.Model) -> tuple[list[_Block], list[tuple[str, str]]]:
    """Extracts the blocks and the edges between them from the model's functional graph.

    Args:
      model: a functional Keras model.

    Returns:
      The blocks in topological order, each with its rank (row), and the edges as
      (source block name, destination block name) pairs, one per distinct inbound block.

    Raises:
      ValueError: the model has no functional graph (a subclassed or an unbuilt model).
    """
    try:
        outputs = model.outputs
    except AttributeError:  # subclassed models have none; unbuilt Sequential ones raise
        outputs = None
    if not outputs:
        raise ValueError(f"model {model.name!r} has no functional graph to draw")
    # Walk back from the outputs, so only the nodes of this model count: a layer shared with
    # another model (or a nested model's inner layers) has nodes that belong elsewhere.
    inputs = {id(t) for t in model.inputs}
    nodes: dict[int, list] = {}  # id(op) -> its nodes in this model
    parents: dict[int, list] = {}  # id(op) -> the ops feeding it, with repeats
    ops: dict[int, object] = {}
    topo: list[int] = []
    seen: set[int] = set()

    def visit(tensor):
        op, node_index, _ = tensor._keras_history
        node = op._inbound_nodes[node_index]
        if id(node) in seen:
            return
        seen.add(id(node))
        ops[id(op)] = op
        nodes.setdefault(id(op), []).append(node)
        parents.setdefault(id(op), [])
        if id(tensor) not in inputs:
            for t in node.input_tensors:
                visit(t)
                parents[id(op)].append(t._keras_history[0])
        if id(op) not in topo:
            topo.append(id(op))

    for t in outputs:
        visit(t)

    consumers: dict[int, int] = {}
    for key in topo:
        for p in parents[key]:
            consumers[id(p)] = consumers.get(id(p), 0) + 1
    output_ops = {id(t._keras_history[0]) for t in outputs}

    block_of: dict[int, _Block] = {}
    blocks: list[_Block] = []
    for key in topo:
        op, ps = ops[key], parents[key]
        host = block_of.get(id(ps[0])) if len(ps) == 1 else None
        if (
            type(op).__name__ in _ACTIVATIONS
            and len(nodes[key]) == 1
            and host is not None
            and host.ops[-1] is ps[0]
            and _kind(host.ops[0]) != "input"
            and consumers[id(ps[0])] == 1
            and id(ps[0]) not in output_ops
        ):
            host.ops.append(op)
            host.shape = _shape(nodes[key])
            host.params += _params(op)
        else:
            host = _Block([op], _shape(nodes[key]), _params(op))
            blocks.append(host)
        block_of[key] = host

    edges: list[tuple[str, str]] = []
    for key in topo:
        dst = block_of[key]
        for p in parents[key]:
            src = block_of[id(p)]
            if src is not dst and (src.name, dst.name) not in edges:
                edges.append((src.name, dst.name))
    by_name = {b.name: b for b in blocks}
    # Longest path from the inputs; the bound on the rounds stops a cycle that a layer shared
    # within the model could make at the block level.
    for _ in blocks:
        changed = False
        for s, d in edges:
            if by_name[d].rank < by_name[s].rank + 1:
                by_name[d].rank, changed = by_name[s].rank + 1, True
        if not changed:
            break
    return blocks, edges


def _width(segments: list[tuple[str, FontProperties]]) -> list[float]:
    measure = _MEASURE.get_text_width_height_descent
    return [measure(text, font, ismath=False)[0] / 72 for text, font in segments]


def _figure(
    model: keras.Model, dpi: int = 80
) -> tuple[Figure, list[_Block], list[tuple[str, str, list[tuple[float, float]]]]]:
    """Lays out and draws the diagram.

    Args:
      model: a functional Keras model.
      dpi: resolution of the figure.

    Returns:
      The figure, not yet rendered, whose texts are the labels; the placed blocks; and the
      arrows as (source name, destination name, points in inches from the bottom left).
    """
    blocks, edges = _graph(model)
    by_name = {b.name: b for b in blocks}
    box_w = _MIN_BOX_W
    for b in blocks:
        sub = _width([(b.sub(), _SUB)])[0]
        box_w = max(box_w, sum(_width(b.head())) + 2 * _PAD_X, sub + 2 * _PAD_X)

    rows: dict[int, list[_Block]] = {}
    for b in blocks:
        rows.setdefault(b.rank, []).append(b)
    n_rows = max(rows) + 1
    span = max(len(r) for r in rows.values()) * (box_w + _GAP_X) - _GAP_X
    skips = [e for e in edges if by_name[e[1]].rank - by_name[e[0]].rank > 1]
    title = f"{model.name}: {model.count_params():,} parameters"
    lanes = _LANE * len(skips) + (_LANE if skips else 0)
    width = max(span + lanes, _width([(title, _TITLE)])[0]) + 2 * _MARGIN
    height = _TITLE_H + n_rows * (_BOX_H + _GAP_Y) - _GAP_Y + 2 * _MARGIN
    centre = (width - lanes) / 2
    for rank, row in rows.items():
        for i, b in enumerate(row):
            b.x = centre + (i - (len(row) - 1) / 2) * (box_w + _GAP_X)
            b.y = height - _MARGIN - _TITLE_H - rank * (_BOX_H + _GAP_Y)

    fig = Figure(figsize=(width, height), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    ax.text(
        width / 2, height - _MARGIN - 0.15, title, fontproperties=_TITLE, ha="center", va="center"
    )

    for b in blocks:
        ax.add_patch(
            FancyBboxPatch(
                (b.x - box_w / 2, b.y - _BOX_H),
                box_w,
                _BOX_H,
                boxstyle="round,pad=0,rounding_size=0.1",
                facecolor=_FILL[_kind(b.ops[0])],
                edgecolor="#555555",
                linewidth=1,
            )
        )
        segments = b.head()
        widths = _width(segments)
        left = b.x - sum(widths) / 2
        for (text, font), w in zip(segments, widths):
            ax.text(left, b.y - 0.2, text, fontproperties=font, ha="left", va="center")
            left += w
        ax.text(
            b.x,
            b.y - _BOX_H + 0.19,
            b.sub(),
            fontproperties=_SUB,
            ha="center",
            va="center",
            color="#333333",
        )

    # Spread the arrow ends along a box edge when several edges meet there.
    def port(block, names, name):
        step = min(0.4, box_w / (len(names) + 1))
        return block.x + (names.index(name) - (len(names) - 1) / 2) * step

    # Ports run left to right by the other end's position, lane-routed edges rightmost, which
    # keeps arrows from crossing near the boxes.
    def by_other_end(names, here):
        skipped = {s for s, d in skips if d == here} | {d for s, d in skips if s == here}
        return sorted(names, key=lambda n: (n in skipped, by_name[n].x))

    outs = {b.name: by_other_end([d for s, d in edges if s == b.name], b.name) for b in blocks}
    ins = {b.name: by_other_end([s for s, d in edges if d == b.name], b.name) for b in blocks}
    right = max(b.x for b in blocks) + box_w / 2
    arrows = []
    for src_name, dst_name in edges:
        src, dst = by_name[src_name], by_name[dst_name]
        x0, y0 = port(src, outs[src_name], dst_name), src.y - _BOX_H
        x1, y1 = port(dst, ins[dst_name], src_name), dst.y
        if (src_name, dst_name) in skips:
            # An edge that skips rows runs down a lane right of all boxes, through the gaps;
            # outer lanes turn higher in the gap so that two lanes' turns never overlap.
            k = skips.index((src_name, dst_name))
            lane = right + _LANE * (k + 1)
            turn = _GAP_Y * (1 - (k + 1) / (len(skips) + 1))
            points = [
                (x0, y0),
                (x0, y0 - turn),
                (lane, y0 - turn),
                (lane, y1 + _GAP_Y - turn),
                (x1, y1 + _GAP_Y - turn),
                (x1, y1),
            ]
        else:
            points = [(x0, y0), (x1, y1)]
        arrows.append((src_name, dst_name, points))
        codes = [Path.MOVETO] + [Path.LINETO] * (len(points) - 1)
        ax.add_patch(
            FancyArrowPatch(
                path=Path(points, codes),
                arrowstyle="-|>",
                mutation_scale=14,
                color="#333333",
                linewidth=1.2,
            )
        )
    return fig, blocks, arrows


def matplotlib_png(model: keras.Model, *, dpi: int = 80) -> bytes:
    """Draws a functional Keras model as a top-to-bottom block diagram.

    Each layer is a rounded box with its name, class, output shape (an input's shape for an
    ``InputLayer``) and non-zero parameter count; arrows run from every inbound layer. A nested
    model is one box. An element-wise activation layer (e.g. ``LeakyReLU``) fed by a single
    layer that feeds nothing else is merged into that layer's box as ``+ name  Class``. The
    figure grows with the number of rows and the width of the widest label.

    Args:
      model: a functional Keras model (or any model whose graph is built, such as a built
        ``Sequential``).
      dpi: resolution of the PNG in dots per inch.

    Returns:
      The PNG file's bytes.

    Raises:
      ValueError: the model has no functional graph (a subclassed or an unbuilt model).
    """
    fig, _, _ = _figure(model, dpi)
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def graphviz_png(model: keras.Model, *, dpi: int = 60) -> bytes:
    """A network's diagram from `keras.utils.model_to_dot`, as PNG bytes; needs pydot and Graphviz.

    Keras asks Graphviz for orthogonal edges, which crashes some Graphviz versions on tall
    graphs ("Trapezoid-table overflow"); straight splines draw the same picture.
    """
    dot = keras.utils.model_to_dot(model, show_shapes=True, dpi=dpi)
    dot.set("splines", "true")
    return dot.create(format="png")


def diagram_png(model: keras.Model) -> bytes:
    """A network's diagram: Graphviz's where pydot and Graphviz are installed, else ours."""
    try:
        return graphviz_png(model)
    except Exception:  # pydot missing (ImportError), Graphviz missing or failing
        return matplotlib_png(model)
