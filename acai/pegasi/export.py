"""`export(workdir, out)`: a trained run as Keras files, a TensorFlow SavedModel and metadata."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from acai import __version__
from acai.errors import AcaiError, WorkdirError
from acai.files import write_json

# The endpoint TensorFlow Serving answers when a request names no signature. Interpolation is
# what ACAI is for, and it is the one endpoint that turns images into images in one call.
SERVING_DEFAULT = "interpolate"
PIXEL_SCALING = {
    "to_model": "x / 127.5 - 1",  # uint8 [0, 255] -> float32 [-1, 1]
    "to_uint8": "clip(round((y + 1) * 127.5), 0, 255)",  # round half to even, as tf.round
}
ARTEFACTS = (
    "acai.keras",
    "encoder.keras",
    "decoder.keras",
    "critic.keras",
    "saved_model",
    "metadata.json",
)


class ExportError(AcaiError):
    """OUT cannot be written or replaced."""


def export(workdir: str | Path, out: str | Path, *, overwrite: bool = False) -> dict:
    """Exports a run's newest readable checkpoint (or an export, or the shipped model) into the
    folder OUT, all or nothing.

    Everything is written into a hidden folder beside OUT and renamed into place at the end,
    so OUT is never half-written; an existing OUT is swapped for the new one in one step where
    the system allows it (Linux), else by two renames.

    Args:
      workdir: a folder `train` or `export` wrote; None or "pretrained" for the shipped model.
      out: the export folder to create: acai.keras, encoder.keras, decoder.keras, critic.keras,
        saved_model/ and metadata.json.
      overwrite: replace OUT if it exists (only an earlier export or an empty folder).

    Returns:
      The metadata written to metadata.json, plus "out" and "sizes" (bytes per artefact).
    """
    out = Path(out)
    check_out(out, overwrite=overwrite)  # before the run is loaded
    from acai.training import run as run_lib

    run = run_lib.open(workdir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _chmod_as_umask(staging)  # mkdtemp makes it private
        metadata = write_artefacts(run, staging)
        check_out(out, overwrite=overwrite)  # it may have appeared in the meantime
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # a failed attempt, or the replaced export
    return {**metadata, "out": str(out), "sizes": artefact_sizes(out)}


def check_out(out: Path, *, overwrite: bool) -> None:
    """Refuses an existing OUT unless `overwrite`, and never replaces anything but an export."""
    if not (out.exists() or out.is_symlink()):
        return
    if not overwrite:
        raise ExportError(f"'{out}' already exists; pass --overwrite to replace it")
    if out.is_symlink() or not out.is_dir():
        raise ExportError(f"'{out}' is not a folder; pass another OUT")
    if any(out.iterdir()) and not (out / "metadata.json").is_file():
        raise ExportError(
            f"'{out}' is not an acai export (no metadata.json); refusing to replace it, "
            "pass another OUT"
        )


def write_artefacts(run, directory: Path) -> dict:
    """Writes every artefact of `run` (a loaded `acai.training.run.Run`) into `directory`.

    Returns:
      The metadata, as written to metadata.json.
    """
    from acai.core import networks

    model = run.model
    model.save(directory / "acai.keras")
    (encoder, decoder), critic = model.sampler, model.critic  # the averages, with ema
    for name, network in (("encoder", encoder), ("decoder", decoder), ("critic", critic)):
        networks.with_keras_layers(network).save(directory / f"{name}.keras")
    serving_archive(model).write_out(str(directory / "saved_model"), verbose=False)
    metadata = make_metadata(run)
    write_json(directory / "metadata.json", metadata)
    return metadata


def endpoint_signatures(model) -> dict:
    """The SavedModel endpoints' inputs, name -> {argument: tf.TensorSpec}, default first."""
    import tensorflow as tf

    images = tf.TensorSpec((None, *model.image_shape), tf.uint8)
    latents = tf.TensorSpec((None, *model.latent_shape), tf.float32)
    return {
        "interpolate": {"images_a": images, "images_b": images, "t": tf.TensorSpec((), tf.float32)},
        "encode": {"images": images},
        "decode": {"latents": latents},
    }


def endpoint_functions(model) -> dict:
    """The SavedModel endpoints as Python functions of uint8 images, scaling included."""
    from acai.images import to_float, to_uint8

    def interpolate(images_a, images_b, t):
        return to_uint8(model.interpolate(to_float(images_a), to_float(images_b), t))

    def encode(images):
        return model.encode(to_float(images))

    def decode(latents):
        return to_uint8(model.decode(latents))

    return {"interpolate": interpolate, "encode": encode, "decode": decode}


def serving_archive(model):
    """A `keras.export.ExportArchive` with the encode, decode and interpolate endpoints.

    Only the encoder and decoder weights go in; the first endpoint added, SERVING_DEFAULT,
    doubles as "serving_default".
    """
    import keras

    archive = keras.export.ExportArchive()
    for net in model.sampler:  # the moving averages, for a model trained with ema
        archive.track(net)
    functions, signatures = endpoint_functions(model), endpoint_signatures(model)
    for name in sorted(functions, key=lambda n: n != SERVING_DEFAULT):
        archive.add_endpoint(name, functions[name], list(signatures[name].values()))
    return archive


def make_metadata(run) -> dict:
    """What a client needs besides the weights: versions, step, config, classes, scaling."""
    import keras
    import tensorflow as tf

    def describe(spec):
        return f"{spec.dtype.name} {spec.shape.as_list()}"

    outputs = {"interpolate": "uint8 images", "encode": "float32 latents", "decode": "uint8 images"}
    endpoints = {
        name: {"inputs": {arg: describe(s) for arg, s in specs.items()}, "output": outputs[name]}
        for name, specs in endpoint_signatures(run.model).items()
    }
    return {
        "acai_version": __version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "step": run.step,
        "config": portable_config(run.config),
        "class_names": list(run.class_names),
        "image_shape": list(run.image_shape),
        "latent_shape": list(run.model.latent_shape),
        "pixel_scaling": PIXEL_SCALING,
        "inputs": run.inputs,  # the data and the loss networks it trained on, with hashes
        "saved_model": {"serving_default": SERVING_DEFAULT, "endpoints": endpoints},
    }


def portable_config(config) -> dict:
    """The config as a dict, with local paths (the data, the feature loss's classifier) cut to
    their file names: an export travels, and the folders of the machine that trained it mean
    nothing elsewhere."""
    values = config.to_dict()
    if values["data"] not in ("tfds", "lines32"):
        values["data"] = Path(values["data"]).name
    if values["perceptual_model"]:
        values["perceptual_model"] = Path(values["perceptual_model"]).name
    return values


def artefact_sizes(out: Path) -> dict:
    """Bytes on disk (file sizes, summed over folders) of each artefact in `out`."""

    def size(path: Path) -> int:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size

    return {name: size(out / name) for name in ARTEFACTS}


def _chmod_as_umask(path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)


def _move_into_place(staging: Path, out: Path) -> None:
    """Renames `staging` to `out`; an existing `out` ends up in `staging`, for deletion."""
    if not out.exists():
        os.rename(staging, out)
    elif not _exchange(staging, out):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old)  # OUT is missing from here to the next rename
        try:
            os.rename(staging, out)
        except BaseException:
            os.rename(old, out)
            raise
        os.rename(old, staging)


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths in one atomic step (Linux renameat2); False where that is unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # kernel or file system says no
        return False
    raise OSError(code, os.strerror(code), str(b))


def provenance(folder: str | Path | None, data: str | None = None) -> tuple[list[str], str | None]:
    """What an export (or, None, the shipped model) was trained on, and whether `data` is it.

    Args:
      folder: an `acai export` folder, or None for the model in the package.
      data: a data source to compare with the recorded one.

    Returns:
      (lines describing each recorded input, a warning when `data` is not the recorded data or
      nothing was recorded; else None).
    """
    from acai.core.config import Config
    from acai.files import describe_inputs
    from acai.training.run import PRETRAINED_MODEL

    name = f"'{folder}'" if folder is not None else "the shipped model"
    folder = Path(folder) if folder is not None else PRETRAINED_MODEL
    try:
        inputs = json.loads((folder / "metadata.json").read_text()).get("inputs", {})
    except (OSError, ValueError) as e:
        raise WorkdirError(f"'{folder}' is not a readable acai export ({e})") from None
    lines = [
        f"{role}: {item['file']} ({_digest(item)})" for role, item in sorted(inputs.items())
    ] or [f"{name} records no inputs (exported before acai recorded them)"]
    if data is None:
        return lines, None
    given = describe_inputs(Config(data=data))["data"]
    recorded = inputs.get("data")
    if recorded is None:
        return lines, f"cannot tell whether '{data}' is the data {name} was made from"
    if _digest(given) != _digest(recorded):
        return lines, (
            f"'{data}' ({_digest(given)}) is not the data {name} was made from "
            f"({recorded['file']}, {_digest(recorded)}): the model made from it will differ"
        )
    return lines, None


def _digest(item: dict) -> str:
    for key in ("sha256", "fingerprint"):
        if key in item:
            return f"{key} {item[key][:16]}"
    return "no hash: a named source"
