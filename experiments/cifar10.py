"""The paper's CIFAR-10 run: depth 64, latent 16 on a 4x4 grid, 2^24 images. Meant for a GPU."""

from acai import Config


def get_config() -> Config:
    return Config(
        depth=64,
        latent=16,
        latent_width=4,
        advweight=0.5,
        reg=0.2,
        lr=1e-4,
        batch=64,
        total_kimg=16384,
        epoch_kimg=64,
    )
