"""Pegasi from a compact latent: ACAI with a feature reconstruction loss, horses and birds only.

The latent is 8x8x16 (1,024 numbers, a third of the 3,072 pixels), so the autoencoder cannot
copy its input and its interpolants have to be made, not cross-faded. Needs the feature
loss's classifier first: acai classifier --data ... --seed 1 --epochs 4 --validation 500 --out
runs/perceptual/classifier.keras (a second classifier, of the plain family, so that no judge
that scores pegasi is the network the decoder was trained against, and one that has not seen
the validation photos). About 20 minutes on a 2-core CPU with AVX-512 BF16 and AMX, about 32
without AMX (docs/judges.md, "Advweight 1.0"), about 2 hours in float32 on one with AVX2 only
(docs/speed.md). Its plain twin: --set advweight=0.
"""

from acai import Config


def get_config() -> Config:
    # The paper's ACAI step and networks; what differs is chosen for pegasi in a CPU hour, on
    # the validation photos (docs/judges.md).
    return Config(
        classes=("horse", "bird"),  # the decoder spends its capacity on the two animals
        validation=500,  # photos of each class held out, to choose on (never trained on)
        depth=16,
        latent=16,
        latent_width=8,  # 8x8x16 = 1,024 numbers
        mix="slerp",  # the critic sees the path the pegasi walk
        perceptual=1.0,  # 0.1 left the midpoints level with a cross-fade to the resnet judge
        perceptual_model="runs/perceptual/classifier.keras",
        lr=3e-4,  # 3x the paper's rate: the budget is about 6% of the paper's images
        total_kimg=1024,  # 384 kimg left its slerp interpolants less realistic than a cross-fade
        ema=0.999,  # sample from the weights' average over about the last 64 kimg
        advweight=1.0,  # 0.5 (the paper's) left the midpoints less often read as both animals
        epoch_kimg=16,
    )
