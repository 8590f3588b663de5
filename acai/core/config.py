"""The run configuration: one frozen dataclass, its defaults, validation and overrides."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import types
import typing
from pathlib import Path

from acai.errors import ConfigError

IMAGE_SIZE = 32  # every data source here yields 32x32 images
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
JIT_CHOICES = ("auto", "on", "off")
STRATEGIES = ("auto", "none", "mirrored", "multi_worker", "tpu")
PATHS = ("lerp", "slerp")  # the walks between two latents, by name, everywhere in acai
DISC_LOSSES = ("nonsaturating", "hinge")  # the realism discriminator's GAN loss
# What the realism discriminator is shown as fakes: "both" reconstructions and decoded mixes, or
# "mixes" only, as in AMR (Beckham et al., 2019), so that its term is on the walks alone.
DISC_FAKES = ("both", "mixes")
LR_SCHEDULES = ("constant", "cosine")  # how every optimizer's rate moves over the run


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """Everything one ACAI run depends on; the paper's CIFAR-10 settings are the defaults."""

    # Data: "tfds" (tensorflow-datasets CIFAR-10), "lines32", or a local path.
    data: str = "tfds"
    classes: tuple[str, ...] = ()  # empty: every class
    # Training images per class held out as a validation split, never trained on (the same
    # photos in every run: `acai.training.data.carve_validation`); recipe choices are made on them.
    validation: int = 0
    # Networks.
    depth: int = 64
    latent: int = 16
    latent_width: int = 4
    advdepth: int = 0  # critic depth; 0 means the same as `depth`
    # Off by default (not in the paper): layers of 1x1 convolutions with leaky ReLU that the
    # decoder applies to each latent position before its own (`acai.core.networks.decoder`), so
    # that it is further from linear in its latent and a mix of two codes need not decode to a
    # blend of their images.
    decoder_mlp: int = 0
    # Losses: advweight is the paper's lambda (0 gives the plain autoencoder), reg its gamma.
    advweight: float = 0.5
    reg: float = 0.2
    # The path between two latents that the critic's regulariser and the autoencoder's
    # adversarial term mix along: "lerp" (the paper) or "slerp", the path `interpolate` walks.
    mix: str = "lerp"
    # Off by default (not in the paper): a feature (perceptual) reconstruction loss, the mean
    # squared difference of a fixed classifier's ReLU activations on the image and its
    # reconstruction, weighted by `perceptual`; `perceptual_model` is an `acai classifier` file.
    perceptual: float = 0.0
    perceptual_model: str = ""
    # Off by default (not in the paper): an adversarial realism loss. A discriminator (the
    # critic's architecture, its own weights and Adam) learns to tell the training images from
    # their reconstructions and interpolants; the autoencoder adds `discweight` times its
    # GAN loss (`disc_loss`), so that both look like photos. `disc_r1` weighs an R1 penalty
    # (gamma / 2 times the squared gradient norm of its score on real photos; 0 is off),
    # `disc_depth` is its first-level channels (0: the critic's), and it has its own Adam:
    # `disc_lr` (0: the same as `lr`), `disc_beta1` and `disc_beta2`. `disc_fakes="mixes"`
    # shows it decoded mixes only, and leaves the reconstructions to their own losses.
    discweight: float = 0.0
    disc_loss: str = "nonsaturating"
    disc_fakes: str = "both"
    disc_r1: float = 0.0
    disc_depth: int = 0
    disc_lr: float = 0.0
    disc_beta1: float = 0.5
    disc_beta2: float = 0.999
    # Off by default (not in the paper): the weight of a critic loss on dissolves, pixel blends
    # of two reconstructions that the critic learns to read as the mix they are
    # (`acai.core.parts.Dissolves`), so that decoded mixes which blend their ends are punished.
    critic_dissolves: float = 0.0
    # Off by default (not in the paper): the same with each blend's contrast put back, as the
    # contrast-restored cross-fade does (`acai.core.parts.ContrastDissolves`), so that a mix
    # cannot pass for a photo by keeping its contrast alone. Either weight works alone.
    critic_dissolves_contrast: float = 0.0
    # Off by default (not in the paper): the decay of a moving average of the encoder's and
    # decoder's weights (e.g. 0.999), kept beside them; encoding, decoding, evaluation and
    # export use the average, which swings less between checkpoints than the weights do.
    ema: float = 0.0
    # Optimisation. 1 kimg = 1024 images, as in the paper. `lr_schedule`: "constant" (the paper)
    # or "cosine", every rate falling from its own to 0 along a half cosine over total_kimg (so
    # a cosine run cannot be resumed with another total_kimg).
    lr: float = 1e-4
    lr_schedule: str = "constant"
    batch: int = 64
    total_kimg: float = 16384
    epoch_kimg: float = 64  # one Keras epoch: progress report, checkpoint, image grids
    # Speed.
    precision: str = "auto"
    jit_compile: str = "auto"
    steps_per_execution: int = 0  # training steps per call into the device; 0: auto
    strategy: str = "auto"
    # Bookkeeping.
    seed: int = 0
    keep_checkpoints: int = 2

    def __post_init__(self):
        _check_types(self)
        checks = [
            ("validation", self.validation >= 0, "must be 0 (none) or more"),
            ("depth", self.depth >= 1, "must be at least 1"),
            ("latent", self.latent >= 1, "must be at least 1"),
            ("advdepth", self.advdepth >= 0, "must be 0 (same as depth) or more"),
            ("decoder_mlp", self.decoder_mlp >= 0, "must be 0 (off) or more"),
            ("advweight", self.advweight >= 0, "must be 0 or more"),
            ("reg", 0 <= self.reg <= 1, "must be in [0, 1]"),
            ("perceptual", self.perceptual >= 0, "must be 0 (off) or more"),
            ("discweight", self.discweight >= 0, "must be 0 (off) or more"),
            ("disc_r1", self.disc_r1 >= 0, "must be 0 (off) or more"),
            ("critic_dissolves", self.critic_dissolves >= 0, "must be 0 (off) or more"),
            (
                "critic_dissolves_contrast",
                self.critic_dissolves_contrast >= 0,
                "must be 0 (off) or more",
            ),
            ("disc_depth", self.disc_depth >= 0, "must be 0 (the critic's) or more"),
            ("disc_lr", self.disc_lr >= 0, "must be 0 (the same as lr) or more"),
            ("disc_beta1", 0 <= self.disc_beta1 < 1, "must be in [0, 1)"),
            ("disc_beta2", 0 <= self.disc_beta2 < 1, "must be in [0, 1)"),
            ("ema", 0 <= self.ema < 1, "must be in [0, 1): 0 (off) or a decay such as 0.999"),
            (
                "perceptual_model",
                bool(self.perceptual_model) or not self.perceptual,
                "must name a classifier (from acai classifier) when perceptual is on",
            ),
            ("lr", self.lr > 0, "must be positive"),
            ("batch", self.batch >= 2, "must be at least 2 (ACAI mixes pairs in a batch)"),
            ("total_kimg", self.total_kimg > 0, "must be positive"),
            ("epoch_kimg", self.epoch_kimg > 0, "must be positive"),
            ("keep_checkpoints", self.keep_checkpoints >= 1, "must be at least 1"),
            ("steps_per_execution", self.steps_per_execution >= 0, "must be 0 (auto) or more"),
            ("precision", self.precision in PRECISIONS, f"must be one of {', '.join(PRECISIONS)}"),
            (
                "jit_compile",
                self.jit_compile in JIT_CHOICES,
                f"must be one of {', '.join(JIT_CHOICES)}",
            ),
            ("mix", self.mix in PATHS, f"must be one of {', '.join(PATHS)}"),
            (
                "lr_schedule",
                self.lr_schedule in LR_SCHEDULES,
                f"must be one of {', '.join(LR_SCHEDULES)}",
            ),
            (
                "disc_loss",
                self.disc_loss in DISC_LOSSES,
                f"must be one of {', '.join(DISC_LOSSES)}",
            ),
            (
                "disc_fakes",
                self.disc_fakes in DISC_FAKES,
                f"must be one of {', '.join(DISC_FAKES)}",
            ),
            ("strategy", self.strategy in STRATEGIES, f"must be one of {', '.join(STRATEGIES)}"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"config field '{name}' = {getattr(self, name)!r} {rule}")
        w = self.latent_width
        if w < 1 or IMAGE_SIZE % w or (IMAGE_SIZE // w) & (IMAGE_SIZE // w - 1):
            raise ConfigError(
                f"config field 'latent_width' = {w} must divide {IMAGE_SIZE} by a power of two "
                "(1, 2, 4, 8, 16 or 32)"
            )

    @property
    def scales(self) -> int:
        """Number of 2x down-sampling levels between the image and the latent."""
        return int(math.log2(IMAGE_SIZE // self.latent_width))

    @property
    def critic_depth(self) -> int:
        return self.advdepth or self.depth

    @property
    def steps_per_epoch(self) -> int:
        return max(1, round(self.epoch_kimg * 1024 / self.batch))

    @property
    def total_steps(self) -> int:
        return max(1, round(self.total_kimg * 1024 / self.batch))

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(
                f"unknown config field '{unknown[0]}'; known fields: {', '.join(field_names())}"
            )
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Config)]


def _field_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _check_types(config: Config) -> None:
    for name, kind in _field_types().items():
        value = getattr(config, name)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(config, name, float(value))  # 1 is a fine learning rate too
            continue
        expected = tuple if typing.get_origin(kind) is tuple else kind
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"config field '{name}' = {value!r} has the wrong type; expected {_type_name(kind)}"
            )
        if expected is tuple and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"config field '{name}' must be a list of class names")


def _type_name(kind) -> str:
    return "a comma-separated list" if typing.get_origin(kind) is tuple else kind.__name__


def parse_override(text: str) -> tuple[str, object]:
    """Parses one `field=value` command-line override into its typed value.

    Args:
      text: for example "depth=32", "lr=2e-4" or "classes=horse,bird".

    Returns:
      The field name and the value converted to the field's type.
    """
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep:
        raise ConfigError(f"override '{text}' is not of the form field=value (e.g. depth=32)")
    kinds = _field_types()
    if name not in kinds:
        raise ConfigError(f"unknown config field '{name}'; known fields: {', '.join(kinds)}")
    kind = kinds[name]
    raw = raw.strip()
    try:
        if typing.get_origin(kind) is tuple:
            return name, tuple(p.strip() for p in raw.split(",") if p.strip())
        if kind is int:
            return name, int(raw)
        if kind is float:
            return name, float(raw)
    except ValueError:
        raise ConfigError(f"config field '{name}' needs {_type_name(kind)}, not '{raw}'") from None
    return name, raw


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Returns `config` with each `field=value` override applied and validated."""
    return config.replace(**dict(parse_override(o) for o in overrides))


def load(path: str | None) -> Config:
    """Loads a config from an experiments file defining `get_config()`, or the defaults.

    Args:
      path: a Python file such as `experiments/cifar10_cpu.py`, or None for the defaults.

    Returns:
      The validated config.
    """
    if path is None:
        return Config()
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file '{path}' does not exist; pass e.g. experiments/cifar10.py")
    spec = importlib.util.spec_from_file_location(f"acai_experiment_{file.stem}", file)
    module = types.ModuleType(spec.name)
    module.__file__ = str(file)
    try:
        spec.loader.exec_module(module)
    except ConfigError:
        raise
    except Exception as e:  # a user's file: any error in it is a config error
        raise ConfigError(f"config file '{path}' failed to load: {type(e).__name__}: {e}") from e
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file '{path}' must define get_config() returning acai.Config")
    config = module.get_config()
    if not isinstance(config, Config):
        raise ConfigError(f"get_config() in '{path}' must return acai.Config, not {type(config)}")
    return config
