"""The in-model preprocessing layer: serializable, and the same steps as the pipeline."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_cnnkit._deprecation import KerasCnnkitDeprecationWarning
from keras_cnnkit.data import ImagePreprocessing, from_directory, make_augmentation
from keras_cnnkit.errors import SpecError
from tests._helpers.checks import check_keras_roundtrip, check_layer

pytestmark = pytest.mark.tensorflow("tf.data pipelines and tf.image resizing")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"image_size": (8, 6), "normalize": "torch"},
        {"image_size": 8, "resize_mode": "crop", "center_crop": 0.8, "normalize": "caffe"},
        {"image_size": 8, "resize_mode": "pad", "interpolation": "nearest", "antialias": True},
        {"image_size": 8, "normalize": {"mean": [120.0, 110.0, 100.0], "std": [60.0, 60.0, 60.0]}},
    ],
)
def test_image_preprocessing_layer(tmp_path, kwargs):
    size = kwargs["image_size"]
    h, w = (size, size) if isinstance(size, int) else size
    check_layer(
        ImagePreprocessing,
        kwargs,
        input_shape=(2, 12, 16, 3),
        expected_output_shape=(2, h, w, 3),
        tmp_path=tmp_path,
        input_dtype="uint8",
    )


def test_image_preprocessing_rejects_bad_arguments():
    with pytest.raises(SpecError, match="resize_mode"):
        ImagePreprocessing(8, resize_mode="fit")
    with pytest.raises(SpecError, match="center_crop"):
        ImagePreprocessing(8, center_crop=1.5)
    with pytest.raises(SpecError, match="image_size"):
        ImagePreprocessing((8, 0))
    with pytest.raises(SpecError, match="interpolation"):
        ImagePreprocessing(8, interpolation="cubic")


def test_saved_model_does_its_own_preprocessing(image_tree, tmp_path):
    """A model with the pipeline's preprocessing layer takes raw images of any size."""
    with pytest.warns(KerasCnnkitDeprecationWarning):
        ds = from_directory(
            image_tree, image_size=16, normalize="dataset", shuffle=False, batch_size=12
        )
    layer = ds.preprocessing_layer
    assert layer.normalize["mean"] == ds.normalization.mean
    inputs = keras.Input((None, None, 3), dtype="uint8")
    x = layer(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    raw = np.random.default_rng(0).integers(0, 256, (3, 30, 20, 3), dtype=np.uint8)
    loaded = check_keras_roundtrip(model, raw, tmp_path)
    assert isinstance(loaded.layers[1], ImagePreprocessing)
    # the pipeline's normalized batch equals the layer applied to the resized uint8 images
    plain = from_directory(image_tree, image_size=16, shuffle=False, batch_size=12)
    (x_norm, _), (x_raw, _) = next(iter(ds)), next(iter(plain))
    np.testing.assert_allclose(
        np.asarray(layer.normalization(x_raw)), np.asarray(x_norm), rtol=1e-5, atol=1e-5
    )


def test_augmentation_layers_are_seeded_keras_layers():
    layers, mix = make_augmentation({"flip": True, "translate": 0.1, "mixup": 0.2}, seed=5)
    assert [type(layer).__name__ for layer in layers] == ["RandomFlip", "RandomTranslation"]
    assert type(mix).__name__ == "MixUp"
    x = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    a = [make_augmentation({"translate": 0.3}, seed=5)[0][0](x, training=True) for _ in range(2)]
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(a[1]))
    own = keras.layers.RandomFlip("vertical", seed=1)
    assert make_augmentation([own])[0] == [own]
    with pytest.raises(SpecError, match="not both"):
        make_augmentation({"mixup": 0.2, "cutmix": 1.0})
