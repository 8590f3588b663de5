"""The one image reader: photos read as a person sees them, and too many pixels refused."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from acai.images import GROUND, TooManyPixels, decode_image


def encoded(image: Image.Image, kind: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def blank_png(width: int, height: int) -> bytes:
    """A valid black 1-bit PNG of any size, written a row at a time (no pixels in memory)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_a_wide_image_is_centre_cropped_and_an_unreadable_one_refused():
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 255  # a white square in the middle of a black strip
    out = decode_image(encoded(Image.fromarray(wide), "PNG"))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8 and out.min() > 200
    with pytest.raises(ValueError, match="not a readable image"):
        decode_image(b"hello")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    photo = encoded(Image.fromarray(noise), "JPEG")
    with pytest.raises(ValueError, match="truncated"):
        decode_image(photo[: len(photo) // 2])


def test_the_exif_orientation_is_applied():
    stored = np.zeros((64, 96, 3), np.uint8)
    stored[:, :32] = (230, 20, 20)  # red on the stored image's left, blue elsewhere
    stored[:, 32:] = (20, 20, 230)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show": the left edge goes to the top
    upright = decode_image(encoded(Image.fromarray(stored), "JPEG", exif=exif, quality=95))
    red, blue = upright[..., 0].astype(int), upright[..., 2].astype(int)
    assert (red[:6] > 180).all() and (blue[:6] < 80).all()  # the top is red
    assert (blue[-6:] > 180).all() and (red[-6:] < 80).all()  # the bottom blue
    as_stored = decode_image(encoded(Image.fromarray(stored), "JPEG", quality=95))
    assert (as_stored[:, :6, 0] > 180).all() and (as_stored[:6, -6:, 0] < 80).all()


def test_a_16_bit_png_keeps_its_greys():
    grey = np.full((64, 128), 32 * 257, np.uint16)
    grey[:, 64:] = 224 * 257  # dark left, light right, in 16 bits
    image = Image.fromarray(grey)
    data = encoded(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    out = decode_image(data).astype(int)
    np.testing.assert_allclose(out[:, :8], 32, atol=1)
    np.testing.assert_allclose(out[:, -8:], 224, atol=1)
    assert (out[..., 0] == out[..., 2]).all()


def test_a_cmyk_jpeg_is_read_in_colour():
    red = Image.new("CMYK", (80, 80), (0, 255, 255, 0))  # no cyan, all magenta and yellow
    data = encoded(red, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = decode_image(data).astype(int)
    assert (np.abs(out - (255, 0, 0)) < 12).all(), out.mean((0, 1))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_composited_over_white(mode):
    pixels = np.zeros((64, 64, 4), np.uint8)
    pixels[:, :32] = (0, 0, 0, 255)  # opaque black on the left
    pixels[:, 32:] = (0, 255, 0, 0)  # transparent green on the right
    image = Image.fromarray(pixels, "RGBA")
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "P":
        image = image.convert("RGB").convert("P")
        image.info["transparency"] = image.getpixel((63, 0))  # the right side's index
    data = encoded(image, "PNG")
    assert (
        Image.open(io.BytesIO(data)).mode == mode
        and Image.open(io.BytesIO(data)).has_transparency_data
    )
    out = decode_image(data).astype(int)
    assert (out[:, :12] < 5).all()  # black where it is opaque
    assert (out[:, -12:] == GROUND).all()  # the ground where it is clear
    half = Image.fromarray(np.full((8, 8, 4), (0, 0, 0, 128), np.uint8), "RGBA")
    np.testing.assert_allclose(decode_image(encoded(half, "PNG")), 127, atol=1)


def test_a_13000_pixel_square_png_is_refused_before_it_is_decoded():
    data = blank_png(13000, 13000)
    assert len(data) < 2**20
    with pytest.raises(TooManyPixels, match="this PNG is 13000x13000") as caught:
        decode_image(data)
    assert "save it as a JPEG" in str(caught.value)
    bomb = blank_png(20000, 10000)  # over twice PIL's own bound: PIL refuses it on opening
    with pytest.raises(TooManyPixels, match="this PNG has over"):
        decode_image(bomb)
    assert decode_image(blank_png(4096, 3072)).max() == 0  # the largest PNG read


def test_a_large_jpeg_is_read_at_reduced_size():
    gradient = np.linspace(0, 255, 2400, dtype=np.float32)
    photo = np.stack(np.broadcast_arrays(gradient[None, :], gradient[:, None], 128), -1)
    big = Image.fromarray(photo.astype(np.uint8))  # 2400x2400
    out = decode_image(encoded(big, "JPEG"), max_pixels=400 * 400)  # read at 300x300
    expected = np.asarray(big.resize((32, 32), Image.Resampling.LANCZOS)).astype(int)
    assert np.abs(out.astype(int) - expected).max() < 12
    with pytest.raises(TooManyPixels, match="this PNG is 2400x2400; .* save it as a JPEG"):
        decode_image(encoded(big, "PNG"), max_pixels=400 * 400)
    with pytest.raises(TooManyPixels, match="this JPEG is 2400x2400, 300x300 at the smallest"):
        decode_image(encoded(big, "JPEG"), max_pixels=200 * 200)


def test_sheet_lays_each_group_out_whole_with_gaps_between_groups_and_rows():
    from acai.images import sheet

    first = np.stack([np.full((2, 3, 1), 10 + i, np.uint8) for i in range(5)])  # (5, 2, 3, 1)
    second = np.stack([np.full((2, 3, 1), 50 + i, np.uint8) for i in range(5)])
    picture = sheet([first, second], per_row=2, gap=1, fill=255)
    # 3 rows of 2 groups, each group 2 x 6 pixels: (3 * 3 - 1) x (2 * 7 - 1)
    assert picture.shape == (8, 13, 1) and picture.dtype == np.uint8
    assert (picture[0:2, 0:3] == 10).all() and (picture[0:2, 3:6] == 50).all()  # group 0
    assert (picture[0:2, 7:10] == 11).all() and (picture[0:2, 10:13] == 51).all()  # group 1
    assert (picture[3:5, 0:3] == 12).all() and (picture[6:8, 3:6] == 54).all()  # groups 2, 4
    assert (picture[:, 6] == 255).all() and (picture[2] == 255).all()  # the gaps
    assert (picture[6:8, 7:13] == 255).all()  # the short last row
