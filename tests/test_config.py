import pytest

from acai import Config, ConfigError
from acai.core import config as config_lib


def test_defaults_are_the_papers_cifar10_settings():
    c = Config()
    assert (c.depth, c.latent, c.latent_width, c.batch) == (64, 16, 4, 64)
    assert (c.advweight, c.reg, c.lr, c.total_kimg) == (0.5, 0.2, 1e-4, 16384)
    assert c.scales == 3
    assert c.total_steps == 16384 * 1024 // 64


@pytest.mark.parametrize("width, scales", [(1, 5), (2, 4), (4, 3), (8, 2), (32, 0)])
def test_latent_width_sets_the_number_of_scales(width, scales):
    assert Config(latent_width=width).scales == scales


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("latent_width", 3, "latent_width"),
        ("latent_width", 12, "power of two"),
        ("lr", -1e-4, "'lr'"),
        ("depth", 0, "'depth'"),
        ("batch", 1, "'batch'"),
        ("precision", "float8", "'precision'"),
        ("jit_compile", "maybe", "'jit_compile'"),
        ("mix", "cubic", "'mix'.*lerp, slerp"),
        ("disc_loss", "wasserstein", "'disc_loss'.*nonsaturating, hinge"),
        ("disc_fakes", "reconstructions", "'disc_fakes'.*both, mixes"),
        ("disc_r1", -1.0, "'disc_r1'"),
        ("disc_beta1", 1.0, "'disc_beta1'"),
        ("disc_lr", -1e-3, "'disc_lr'"),
        ("lr_schedule", "linear", "'lr_schedule'.*constant, cosine"),
        ("critic_dissolves", -1.0, "'critic_dissolves'"),
        ("critic_dissolves_contrast", -0.5, "'critic_dissolves_contrast'"),
        ("depth", "64", "wrong type"),
        ("depth", 6.5, "wrong type"),
        ("depth", True, "wrong type"),
    ],
)
def test_bad_values_are_refused_naming_the_field(field, value, words):
    with pytest.raises(ConfigError, match=words):
        Config(**{field: value})


def test_an_int_is_accepted_for_a_float_field():
    assert Config(lr=1).lr == 1.0 and isinstance(Config(lr=1).lr, float)


def test_overrides_are_typed():
    c = config_lib.apply_overrides(Config(), ["depth=32", "lr=2e-4", "classes=horse, bird"])
    assert (c.depth, c.lr, c.classes) == (32, 2e-4, ("horse", "bird"))


@pytest.mark.parametrize(
    "override, words",
    [
        ("dpeth=3", "unknown config field 'dpeth'"),
        ("depth", "field=value"),
        ("depth=big", "needs int"),
        ("latent_width=5", "latent_width"),
    ],
)
def test_bad_overrides_name_the_problem(override, words):
    with pytest.raises(ConfigError, match=words):
        config_lib.apply_overrides(Config(), [override])


def test_json_round_trip_and_unknown_fields():
    c = Config(classes=("horse", "bird"), depth=8)
    assert Config.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="unknown config field 'colour'"):
        Config.from_dict({**c.to_dict(), "colour": "red"})


def test_experiment_files_load(tmp_path):
    assert config_lib.load("experiments/cifar10.py") == Config()
    cpu = config_lib.load("experiments/cifar10_cpu.py")
    assert cpu.depth < Config().depth
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config(:\n")
    with pytest.raises(ConfigError, match="failed to load"):
        config_lib.load(str(broken))
    with pytest.raises(ConfigError, match="does not exist"):
        config_lib.load(str(tmp_path / "missing.py"))
