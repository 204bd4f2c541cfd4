"""Every route from an image file to a model gives the same model input, pixel for pixel.

The model used here outputs its own input (flattened), so the scores of the exported
``serving_bytes`` signature are the pixels the graph fed it.
"""

from __future__ import annotations

import io
import pathlib

import keras
import numpy as np
import pytest
from PIL import Image

from keras_cnnkit import io as ckio
from keras_cnnkit.data import (
    DataConfig,
    data_config,
    from_directory,
    from_files,
    load_image_folder,
    read_image,
    read_images,
)

pytestmark = pytest.mark.tensorflow("tf.data pipelines and SavedModel export")

HEIGHT, WIDTH = 24, 32


def _noise(size, seed):
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([(xx * (c + 3) + yy * (5 - c)) % 256 for c in range(3)], -1)
    return np.clip(smooth + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def _write_all(root: pathlib.Path) -> list[pathlib.Path]:
    """One file of every kind the issue names, in a class folder ``root/all``."""
    folder = root / "all"
    folder.mkdir(parents=True)
    files = []

    def save(name, im, **kw):
        path = folder / name
        im.save(path, **kw)
        files.append(path)

    save("a_large.jpg", Image.fromarray(_noise((200, 150), 0)), quality=90)  # 1/4 DCT scale
    save("b_nonsquare.png", Image.fromarray(_noise((90, 40), 1)))
    save("c_small.jpg", Image.fromarray(_noise((12, 10), 2)), quality=95)  # upsampled
    save("d_exact.png", Image.fromarray(_noise((WIDTH, HEIGHT), 3)))
    g16 = (np.linspace(0, 65535, 70 * 50).reshape(50, 70)).astype(np.uint16)
    save("e_16bit.png", Image.fromarray(g16))
    save("f_gray.jpg", Image.fromarray(_noise((64, 48), 4)).convert("L"), quality=90)
    save("g_cmyk.jpg", Image.fromarray(_noise((64, 64), 5)).convert("CMYK"), quality=90)
    save(
        "h_rgba.png",
        Image.fromarray(np.dstack([_noise((40, 30), 6), _noise((40, 30), 7)[..., :1]])),
    )
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    save("i_exif.jpg", Image.fromarray(_noise((80, 50), 8)), quality=90, exif=exif)
    save("j_palette.gif", Image.fromarray(_noise((33, 21), 9)).convert("P"))
    save("k_image.bmp", Image.fromarray(_noise((45, 35), 10)))
    return files


def _echo_model(channels: int) -> keras.Model:
    inputs = keras.Input((HEIGHT, WIDTH, channels))
    return keras.Model(inputs, keras.layers.Flatten()(inputs))


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"color_mode": "grayscale"},
        {"resize_mode": "crop", "interpolation": "bicubic", "antialias": True},
        {"resize_mode": "pad", "interpolation": "area"},
    ],
    ids=["rgb-default", "grayscale", "crop-bicubic-antialias", "pad-area"],
)
def test_every_route_gives_the_same_model_input(tmp_path, settings):
    files = _write_all(tmp_path / "tree")
    channels = 1 if settings.get("color_mode") == "grayscale" else 3
    model = _echo_model(channels)
    recorded = DataConfig(image_size=(HEIGHT, WIDTH), **settings).input_preprocessing()
    ckio.save(model, tmp_path / "m.keras", metadata={"input_preprocessing": recorded})
    loaded = ckio.load(tmp_path / "m.keras")
    cfg = data_config(loaded)
    assert cfg.input_preprocessing() == recorded

    # the tf.data pipeline, from a file list and from the folder
    pipe = from_files(files, data_config=loaded, batch_size=None, shuffle=False)
    by_files = list(pipe.as_numpy_iterator())
    folder = from_directory(tmp_path / "tree", data_config=loaded, batch_size=4, shuffle=False)
    by_folder = np.concatenate([x for x, _ in folder.as_numpy_iterator()])
    assert folder.file_paths == [str(f) for f in files]
    # the Python reader of cnnkit predict, one file and many
    one_by_one = [read_image(f, loaded) for f in files]
    many, kept, _ = read_images(files, loaded)
    assert kept == [str(f) for f in files]
    # the in-memory loader
    arrays = load_image_folder(tmp_path / "tree", image_size=(HEIGHT, WIDTH), **settings).x
    # the exported graph
    ckio.export(loaded.model, tmp_path / "serving", metadata=loaded.metadata)
    import tensorflow as tf

    serve = tf.saved_model.load(str(tmp_path / "serving")).signatures["serving_bytes"]
    scores = serve(image_bytes=tf.constant([f.read_bytes() for f in files]))["scores"].numpy()
    served = scores.reshape(len(files), HEIGHT, WIDTH, channels)

    reference = np.stack(by_files)
    assert reference.shape == (len(files), HEIGHT, WIDTH, channels)
    assert reference.dtype == np.uint8
    for name, route in [
        ("from_directory", by_folder),
        ("read_image", np.stack(one_by_one)),
        ("read_images", np.stack(many)),
        ("load_image_folder", arrays),
        ("serving_bytes", served),
    ]:
        for f, a, b in zip(files, route, reference):
            np.testing.assert_array_equal(
                np.asarray(a, np.float64), b.astype(np.float64), err_msg=f"{name}: {f.name}"
            )


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(values).save(path)
    pixels = read_image(path, DataConfig(image_size=None, color_mode="grayscale"))
    assert pixels[0, :, 0].tolist() == [0, 1, 128, 255]


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_as_pillow_applies_it(tmp_path, orientation):
    from PIL import ImageOps

    pixels = Image.fromarray(_noise((40, 24), orientation))
    upright = tmp_path / "o1.jpg"
    pixels.save(upright, quality=95)
    exif = Image.Exif()
    exif[0x0112] = orientation
    tagged = tmp_path / f"o{orientation}.jpg"
    pixels.save(tagged, quality=95, exif=exif)  # the same compressed pixels, plus the tag
    stored = read_image(upright, DataConfig(image_size=None))
    ours = read_image(tagged, DataConfig(image_size=None))
    im = Image.fromarray(stored)
    im.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(ours, expected)


def test_pixel_limit_and_bad_file_in_the_python_reader_name_the_file(tmp_path, writers):
    big = writers.rgb(tmp_path / "big.png", size=(100, 80))
    with pytest.raises(Exception, match="over the limit max_pixels=5000") as info:
        read_image(big, DataConfig(image_size=(8, 8)), max_pixels=5000)
    assert type(info.value).__name__ == "ImageDecodeError" and str(big) in str(info.value)
    broken = writers.png_bad_zlib(tmp_path / "broken.png")
    good = writers.rgb(tmp_path / "good.jpg")
    images, kept, report = read_images(
        [broken, good], DataConfig(image_size=(8, 8)), on_error="skip"
    )
    assert kept == [str(good)] and len(images) == 1
    assert report.paths == [str(broken)] and "corrupt" in report.reason(str(broken))


def test_the_serving_graph_keeps_the_pixel_limit(tmp_path):
    import tensorflow as tf

    from keras_cnnkit.data import decode_and_resize

    data = io.BytesIO()
    Image.new("RGB", (300, 200)).save(data, "PNG")
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_pixels=1000"):
        decode_and_resize(tf.constant(data.getvalue()), DataConfig(image_size=(8, 8)), 1000)
