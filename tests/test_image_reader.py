"""Every reader turns a file into the same 8-bit RGB: 16-bit samples scaled with rounding,
modes converted with a note, and one pixel limit in our words (no Pillow bomb text)."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from neuralcodec.errors import InputError
from neuralcodec.io.images import read_rgb8, scale_16_to_8

GRADIENT = np.array([0, 13107, 26214, 39321, 52428, 65535], dtype=np.uint16)


def test_scale_rounds_to_nearest():
    assert scale_16_to_8(GRADIENT).tolist() == [0, 51, 102, 153, 204, 255]
    v = np.arange(65536, dtype=np.uint16)
    assert np.array_equal(scale_16_to_8(v), np.round(v.astype(np.float64) * 255 / 65535).astype(np.uint8))


def test_16bit_gray_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "g16.png"
    Image.fromarray(np.tile(GRADIENT, (3, 1))).save(path)
    assert Image.open(path).mode == "I;16"
    image = read_rgb8(path)
    assert image.pixels.dtype == np.uint8 and image.pixels.shape == (3, 6, 3)
    assert image.pixels[1, :, 0].tolist() == [0, 51, 102, 153, 204, 255]   # convert("RGB"): 0, 255, 255...
    assert (image.pixels[..., 0] == image.pixels[..., 2]).all()
    assert "16-bit" in image.note and "scaled to 8 bits" in image.note


@pytest.mark.parametrize("channels,ext", [(3, "png"), (4, "png"), (3, "tif"), (2, "png")])
def test_16bit_colour_is_read_at_full_depth(tmp_path, channels, ext):
    imagecodecs = pytest.importorskip("imagecodecs")
    rng = np.random.default_rng(channels)
    samples = rng.integers(0, 65536, (5, 7, channels)).astype(np.uint16)
    samples[0, 0, 0] = 32895      # 128.5 * 257 - 1: rounds down, where the high byte gives 128
    path = tmp_path / f"c16.{ext}"
    imagecodecs.imwrite(str(path), samples)
    image = read_rgb8(path)
    colour = samples[..., :3] if channels >= 3 else np.repeat(samples[..., :1], 3, axis=2)
    assert np.array_equal(image.pixels, scale_16_to_8(colour))
    assert "16-bit samples" in image.note
    assert ("alpha dropped" in image.note) == (channels in (2, 4))


def test_8bit_rgb_has_no_note_and_modes_are_named(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    image = read_rgb8(tmp_path / "rgb.png")
    assert np.array_equal(image.pixels, rgb) and image.note == "" and image.pixels.flags.writeable
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    assert "RGBA; converting to RGB (alpha dropped)" in read_rgb8(tmp_path / "rgba.png").note
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    assert "grayscale; converting to RGB" in read_rgb8(tmp_path / "gray.png").note


def test_float_samples_are_refused_in_one_line(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(InputError, match="floating-point samples are not supported"):
        read_rgb8(tmp_path / "f.tif")


def _png_header_only(path, width, height):
    """A PNG whose header claims width x height (no pixel data): a decompression bomb's shape."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_pixel_limit_is_ours_and_an_option(tmp_path):
    bomb = _png_header_only(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(InputError) as exc:
        read_rgb8(bomb)
    text = str(exc.value)
    assert "20000x20000 is 400000000 pixels, above the limit of 268435456 pixels (16384x16384)" in text
    assert "--max-pixels" in text and "decompression" not in text.lower()
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(small)
    with pytest.raises(InputError, match=r"20x10 is 200 pixels, above the limit of 100 pixels \(10x10\)"):
        read_rgb8(small, max_pixels=100)
    assert read_rgb8(small, max_pixels=200).pixels.shape == (10, 20, 3)
    # a limit above Pillow's own bomb threshold (2 x 89.5 Mpixel) is honoured: our check is the
    # only one, and it passes; the file then fails as what it is (no pixel data)
    with pytest.raises(InputError) as exc:
        read_rgb8(bomb, max_pixels=20000 * 20000)
    assert "above the limit" not in str(exc.value) and "decompression" not in str(exc.value).lower()
    assert Image.MAX_IMAGE_PIXELS is not None    # Pillow's global setting is restored


def test_every_reader_gives_the_same_pixels(tmp_path):
    """CLI, evaluation, training and calibration readers all scale 16-bit files."""
    from neuralcodec.io.image_files import read_image
    from neuralcodec.eval.inputs import load_image
    from neuralcodec.export.int8 import calibration_images
    from neuralcodec.train.data import load_image as train_image

    folder = tmp_path / "imgs"
    folder.mkdir()
    path = folder / "g16.png"
    Image.fromarray(np.tile(GRADIENT, (4, 1))).save(path)
    want = read_rgb8(path).pixels
    for pixels in (read_image(path, quiet=True), load_image(path), train_image(path),
                   calibration_images(folder, 1)[0]):
        assert np.array_equal(pixels, want)
