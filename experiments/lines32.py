"""The paper's lines benchmark in a CPU's hour: its network and step, 512 kimg at 3x its rate.

The paper's own run is `lines32_paper.py` (2^24 images, about 6.6 hours on a 2-core Xeon with
AMX). Here the budget is 1/32 of that: lr 3e-4 (1e-3 diverges), with a moving average of the
weights for the walks. What it reaches, per seed, and the curve against the budget:
docs/lines.md. Its plain twin: --set advweight=0.
"""

from acai import Config


def get_config() -> Config:
    return Config(
        data="lines32",  # generated on the fly, no download
        depth=16,
        latent=16,
        latent_width=2,  # a 2x2x16 latent, as in the paper
        batch=64,
        lr=3e-4,  # 3x the paper's 1e-4; 1e-3 ran away after 32 kimg
        ema=0.999,  # walks decoded with the weights' average over the last ~64 kimg
        total_kimg=512,  # 1/32 of the paper's 2^24 images; lr 3e-4 gained nothing from 512 to 1024
        epoch_kimg=32,
    )
