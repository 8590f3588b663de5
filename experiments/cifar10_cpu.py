"""CIFAR-10 on a 2-core CPU: the paper's model at a quarter width, about 15 minutes in all."""

from acai import Config


def get_config() -> Config:
    # Everything else is the paper's setting (the Config defaults, spelled out in cifar10.py).
    return Config(
        depth=16,  # a quarter of the paper's 64: about 10x fewer operations per image
        total_kimg=96,  # 6 epochs of 16 kimg: about 13 minutes at 125 images/s
        epoch_kimg=16,
        precision="auto",  # mixed_bfloat16 only on CPUs with native bfloat16 (AVX-512 BF16, AMX)
    )
