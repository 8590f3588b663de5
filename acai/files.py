"""Files: atomic writes and strict JSON (NaN and infinities written as null)."""

from __future__ import annotations

import contextlib
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
