"""Files: atomic writes, strict JSON (NaN and infinities as null), hashes and fingerprints."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | Path):
    """Yields a temporary path beside `path`, renamed onto `path` when the block succeeds.

    A crash leaves the old file or the new one, never half of one. The temporary name ends
    with the target's name, so writers that check the suffix (.keras, .npz) accept it.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, content: bytes | str) -> Path:
    """Writes bytes or UTF-8 text to `path` atomically."""
    path = Path(path)
    with replacing(path) as tmp:
        if isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        else:
            tmp.write_bytes(content)
    return path


def strict(value):
    """`value` with every non-finite float (NaN, inf) replaced by None, and numpy scalars and
    tuples made plain, so that any JSON parser reads the result."""
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy values
        return strict(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value) -> str:
    """Strict JSON text: indented, keys sorted, non-finite numbers as null."""
    return json.dumps(strict(value), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: str | Path, value) -> Path:
    """Writes `value` as strict JSON (see `dumps`), atomically."""
    return write_atomic(path, dumps(value))


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex: names the exact network or data a run used."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: Path) -> str:
    """Size and modification time of a file, or of every file under a folder."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stats = ((str(p.relative_to(path) if path.is_dir() else p.name), p.stat()) for p in files)
    return hashlib.sha1(
        "\n".join(f"{name}:{st.st_size}:{st.st_mtime_ns}" for name, st in stats).encode()
    ).hexdigest()


def describe_inputs(config) -> dict:
    """What a run reads besides its config, each as its file name and a hash of its bytes:
    the data ("tfds" and "lines32" are named only) and the feature loss's network.

    Args:
      config: an `acai.Config`.

    Returns:
      {"data": {"file", "sha256"}, "perceptual_model": {"file", "sha256"}}; a folder of
      images gets a hash of its file list, sizes and times instead ("fingerprint").
    """

    def describe(source: str) -> dict:
        path = Path(source).expanduser()
        if path.is_file():
            return {"file": path.name, "sha256": sha256_file(path)}
        if path.is_dir():
            return {"file": path.name, "fingerprint": fingerprint(path)}
        return {"file": source}

    inputs = {"data": describe(config.data)}
    if config.perceptual:
        inputs["perceptual_model"] = describe(config.perceptual_model)
    return inputs
