"""CIFAR-10 on a 2-core CPU: the paper's model at a quarter width, about 15 minutes in all."""

from acai import Config


def get_config() -> Config:
    return Config(
        depth=16,  # a quarter of the paper's 64: about 10x fewer operations per image
        latent=16,
        latent_width=4,
        advweight=0.5,
        reg=0.2,
        lr=1e-4,
        batch=64,
        total_kimg=96,  # 6 epochs of 16 kimg: about 13 minutes at 125 images/s
        epoch_kimg=16,
        precision="auto",  # mixed_bfloat16 only on CPUs with native bfloat16 (AVX-512 BF16, AMX)
    )
