"""tf.distribute: 2 replicas on 2 logical CPU devices match one device step for step."""

import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np


def test_mirrored_over_two_replicas_matches_one_device(tmp_path):
    script = Path(__file__).with_name("distributed_check.py")
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "ckpt")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(report)  # shown by pytest when an assertion fails
    assert report["replicas"] == 2 and report["steps"] == 3
    assert report["weights_moved"] > 1e-4  # training did change the weights
    # Same initial weights, alphas and batches: losses and weights agree to float32 round-off.
    assert report["loss_diff"] < 1e-5 and report["weight_diff"] < 1e-5
    # The moving average of the weights is updated once per step, alike on both replicas.
    assert report["average_diff"] < 1e-5 and report["average_lag"] > 1e-5
    # Reversing the whole batch on one device pairs other images: the check can tell.
    assert report["ungrouped_weight_diff"] > 100 * max(report["weight_diff"], 1e-7)
    # A checkpoint written with 2 replicas restores exactly on 1 device.
    assert report["restore_diff"] == 0.0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tf_config(workers, index):
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def test_two_local_workers_match_one_device(tmp_path, monkeypatch):
    script = Path(__file__).with_name("multiworker_check.py")
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), "worker", str(tmp_path / f"worker{i}.npz")],
            env={**os.environ, "TF_CONFIG": _tf_config(workers, i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    # The one-device reference needs no cluster: it runs in this process, under the default
    # strategy, while the two workers train, instead of in a third TensorFlow process.
    try:
        monkeypatch.syspath_prepend(str(script.parent))  # the script imports fixed_alpha
        importlib.import_module("multiworker_check").main("single", str(tmp_path / "single.npz"))
    except BaseException:
        for process in processes:
            process.kill()
        raise
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    reports = [np.load(tmp_path / f"{name}.npz") for name in ("worker0", "worker1", "single")]
    assert [int(r["replicas"]) for r in reports] == [2, 2, 1]
    assert [int(r["step"]) for r in reports] == [3, 3, 3]
    assert float(reports[2]["moved"]) > 1e-4  # training did change the weights
    weights = [k for k in reports[2].files if k.startswith("w")]
    for report in reports[:2]:  # every worker holds the one-device result
        np.testing.assert_allclose(report["losses"], reports[2]["losses"], rtol=1e-5, atol=1e-6)
        for key in weights:
            np.testing.assert_allclose(report[key], reports[2][key], rtol=1e-5, atol=1e-5)


def test_xla_is_turned_off_for_several_replicas(caplog):
    from acai.training import devices

    one, two = SimpleNamespace(num_replicas_in_sync=1), SimpleNamespace(num_replicas_in_sync=2)
    assert devices.xla_for(one, True) is True and devices.xla_for(two, False) is False
    with caplog.at_level("WARNING"):
        assert devices.xla_for(two, True) is False
    assert "XLA is off" in caplog.text
