import keras
import numpy as np
import pytest
from PIL import Image

from keras_cnnkit.errors import DataError
from keras_cnnkit.evaluation import (
    plot_shift_heatmaps,
    shift_images,
    shift_robustness,
    summary_table,
)


def test_shift_images_moves_content_without_wrapping():
    x = np.zeros((1, 5, 5, 1), "uint8")
    x[0, 2, 2, 0] = 9
    right_down = shift_images(x, 2, 1)
    assert right_down[0, 3, 4, 0] == 9 and right_down.sum() == 9
    left_up = shift_images(x, -3, -2)
    assert left_up.sum() == 0  # shifted out, not wrapped around
    np.testing.assert_array_equal(shift_images(x, 0, 0), x)
    assert shift_images(x, 1, 0, fill=7)[0, 0, 0, 0] == 7


def _center_pixel_model(size):
    """A dense model reading only the center pixel, and a shift-invariant max-pooling one."""
    inputs = keras.Input((size, size, 1))
    flat = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(2, use_bias=False)
    dense_out = dense(flat)
    w = np.zeros((size * size, 2), "float32")
    w[(size // 2) * size + size // 2] = [-1.0, 1.0]
    dense.set_weights([w])
    pooled = keras.layers.GlobalMaxPooling2D()(inputs)
    conv_out = keras.layers.Dense(2)(pooled)
    conv_model = keras.Model(inputs, conv_out)
    conv_model.layers[-1].set_weights(
        [np.array([[-1.0, 1.0]], "float32"), np.array([0.5, 0.0], "float32")]
    )
    return keras.Model(inputs, dense_out), conv_model


def test_shift_robustness_separates_dense_from_pooled_models(tmp_path):
    size = 9
    x = np.zeros((20, size, size, 1), "float32")
    y = np.arange(20) % 2
    x[y == 1, size // 2, size // 2, 0] = 1.0  # class 1: a dot in the center
    dense, pooled = _center_pixel_model(size)
    r_dense = shift_robustness(dense, x, y, shifts=2)
    r_pooled = shift_robustness(pooled, x, y, shifts=2)
    assert len(r_dense.shifts) == 25
    assert r_dense.centered == 1.0 and r_pooled.centered == 1.0
    assert r_dense.shifted_mean == pytest.approx(0.5)  # the dot left the pixel it reads
    assert r_pooled.shifted_mean == 1.0 and r_pooled.worst == 1.0
    table = r_dense.to_markdown()
    assert table.splitlines()[0].startswith("| dy \\ dx | -2 | -1 | +0 | +1 | +2 |")
    assert "| +0 | 0.500 | 0.500 | 1.000 | 0.500 | 0.500 |" in table
    summary = summary_table({"dense": r_dense, "pooled": r_pooled})
    assert "| pooled | 1.000 | 1.000 | 1.000 |" in summary
    png = plot_shift_heatmaps({"dense": r_dense, "pooled": r_pooled}, tmp_path / "h.png")
    with Image.open(png) as img:
        assert img.format == "PNG" and img.width > 400


def test_shift_list_and_pairs():
    dense, _ = _center_pixel_model(5)
    x, y = np.zeros((2, 5, 5, 1), "float32"), np.array([0, 0])
    assert shift_robustness(dense, x, y, shifts=[-1, 1]).shifts == (
        (-1, -1),
        (1, -1),
        (-1, 1),
        (1, 1),
    )
    assert shift_robustness(dense, x, y, shifts=[(0, 0), (3, 0)]).shifts == ((0, 0), (3, 0))


def test_bad_input():
    dense, _ = _center_pixel_model(5)
    with pytest.raises(DataError, match="4-D"):
        shift_robustness(dense, np.zeros((2, 5, 5)), np.zeros(2))
    with pytest.raises(DataError, match="2 images, 3 labels"):
        shift_robustness(dense, np.zeros((2, 5, 5, 1)), np.zeros(3))
    with pytest.raises(DataError, match="pair"):
        shift_robustness(dense, np.zeros((2, 5, 5, 1)), np.zeros(2), shifts=[(1, 2, 3)])
