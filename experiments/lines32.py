"""The paper's lines benchmark in a CPU's hour: its network, step and rate, 1,536 kimg.

`lines32_paper.py` is the paper's own run (2^24 images, about 6.6 hours on a 2-core Xeon with
AMX); this is the same run stopped at 3/32 of its images. There, three of four runs (seeds 0,
1 and 2, seed 0 twice) were under the lines issue's bars (Mean Distance 1.0e-3, Smoothness 0.2),
the fourth at 1.05e-3, and the plain twins 7 to 10 times further (docs/lines.md). About 37
minutes at `acai bench`'s 703 images/s on a 2-core Xeon with AMX. Its plain twin:
--set advweight=0.
"""

from acai import Config


def get_config() -> Config:
    return Config(
        data="lines32",  # generated on the fly, no download
        depth=16,
        latent=16,
        latent_width=2,  # a 2x2x16 latent, as in the paper
        batch=64,
        lr=1e-4,  # the paper's; 3x this stalls at 1.8e-3 (docs/lines.md)
        advweight=0.5,
        reg=0.2,
        total_kimg=1536,  # 3/32 of the paper's 2^24 images
        epoch_kimg=32,
    )
