"""The paper's lines run (Table 1): the original code's `--dataset=lines32 --latent_width=2
--depth=16 --latent=16` with its defaults (batch 64, lr 1e-4, advweight 0.5, reg 0.2, the critic
as deep as the autoencoder, 2^24 images). About 6.6 hours on a 2-core Xeon with AMX. Its rate
is what matters: by 1,536 kimg three of four runs were under the lines issue's bars (1.0e-3,
0.2), where 3x the rate stalls at 1.8e-3 (docs/lines.md). Its plain twin: --set advweight=0.
"""

from acai import Config


def get_config() -> Config:
    return Config(
        data="lines32",
        depth=16,
        latent=16,
        latent_width=2,  # a 2x2x16 latent: 64 numbers
        batch=64,
        lr=1e-4,
        advweight=0.5,
        reg=0.2,
        total_kimg=16384,  # 2^24 images
        epoch_kimg=32,
    )
