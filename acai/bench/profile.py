"""Where a traced step's time goes: by network, forward and backward, and by op type."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import tensorflow as tf

# the step's networks, as their ops are named in a profile ("features": the feature loss's)
NETWORKS = ("encoder", "decoder", "critic", "probe", "discriminator", "features")


def profile_step(timer, folder: str | Path, *, steps: int, top: int = 12) -> dict:
    """Traces one call of `timer` (a `step_timer` of `steps` steps) with TensorFlow's profiler
    into `folder` and sums its ops' time per step.

    Returns:
      {"ms_per_step": op time per step, both compute threads together; "by_network": ms per
      step for each network (`encoder`, `decoder`, `critic`, `features`: the feature loss's
      classifier, ...) forward and backward ("other": ops of no network, such as the custom
      gradients and the losses); "by_op_type": the `top` op types}.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # ships with TensorFlow

    tf.profiler.experimental.start(str(folder))
    try:
        timer()
    finally:
        tf.profiler.experimental.stop()
    traces = Path(folder).glob("plugins/profile/*/*.xplane.pb")
    newest = max(traces, key=lambda path: path.stat().st_mtime)
    space = xplane_pb2.XSpace.FromString(newest.read_bytes())
    events = [
        (plane.event_metadata[event.metadata_id].name, event.duration_ps / 1e9 / steps)
        for plane in space.planes
        for line in plane.lines
        if line.name.startswith("tf_Compute")  # TensorFlow's op threads
        for event in line.events
    ]
    by_network, by_type = collections.Counter(), collections.Counter()
    for name, ms in events:
        op, _, op_type = name.rpartition(":")
        if not op or op_type == "Process":  # "Process" spans a whole graph, not one op
            continue
        by_network[op_network(op)] += ms
        by_type[op_type] += ms
    return {
        "ms_per_step": round(sum(by_type.values()), 1),
        "by_network": {k: round(v, 2) for k, v in by_network.most_common(top)},
        "by_op_type": {k: round(v, 2) for k, v in by_type.most_common(top)},
    }


def op_network(op: str) -> str:
    """The network an op of a traced step belongs to, from its name: "decoder backward" for
    "gradient_tape/decoder_3/conv1/Conv2DBackpropInput", "other" for ops of no network."""
    parts = op.split("/")
    for part in parts:
        name = re.sub(r"_\d+$", "", part)
        if name in NETWORKS:
            return f"{name} backward" if "gradient" in op.lower() else name
    return "other"
