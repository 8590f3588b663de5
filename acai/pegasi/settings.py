"""The pegasi's defaults and input checks, shared by the library and the command line; light,
so the command checks its input before TensorFlow loads."""

from __future__ import annotations

from acai.errors import ConfigError

PEGASI_T = (0.3, 0.4, 0.5, 0.6, 0.7)  # a batch of pegasi: each pair keeps its best t of these
PEGASI_CANDIDATES = 2048  # distinct horse-bird pairs ranked for a batch


def check_t_steps(t: float, steps: int) -> None:
    """Refuses a position off the horse-to-bird path, or a strip of fewer than 2 points."""
    if not 0.0 <= t <= 1.0:
        raise ConfigError(f"T={t} is outside [0, 1]; 0 is the horse, 1 the bird, 0.5 halfway")
    if steps < 2:
        raise ConfigError(f"STEPS={steps} is too few; a strip needs at least 2 points (both ends)")
