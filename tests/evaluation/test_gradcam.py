"""Grad-CAM class activation maps: the right layer, the right maths, and maps that move with the
object."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

from keras_cnnkit.backbones import build_classifier
from keras_cnnkit.errors import DataError, SpecError
from keras_cnnkit.evaluation import (
    ClassActivationMap,
    find_feature_layer,
    grad_cam,
    overlay_heatmap,
    plot_shift_gradcam,
    shift_images,
)
from keras_cnnkit.experiments.translation import CONV_SPEC
from keras_cnnkit.models import cifar10_classic, cifar10_fast, conv_stack

SMALL = {"stages": [{"filters": 8, "pool": "max"}, 16], "head": {"pooling": "avg"}}


def _blob_images(n=4, size=16, channels=1, seed=0):
    """Bright squares at random places on a dark background."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size, channels), np.uint8)
    for img in x:
        r, c = rng.integers(0, size - 5, 2)
        img[r : r + 5, c : c + 5] = 255
    return x


@pytest.fixture(scope="module")
def digits_model():
    """The translation demo's conv stack trained on centered digits (about 10 s on 2 cores)."""
    from keras_cnnkit.datasets.digits import load_digits_canvas

    keras.utils.set_random_seed(0)
    data = load_digits_canvas(seed=0)
    model = conv_stack(CONV_SPEC, input_shape=data.x_train.shape[1:], name="conv_stack")
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(data.x_train, data.y_train, epochs=20, batch_size=64, verbose=0)
    accuracy = float(np.mean(model.predict(data.x_test, verbose=0).argmax(-1) == data.y_test))
    assert accuracy > 0.9, f"the digits model did not learn (test accuracy {accuracy:.3f})"
    return model, data


def test_heatmap_peak_follows_the_shifted_digit(digits_model):
    """Shift the digits; the maps' peaks move with them, within one feature-map cell (4 px)."""
    model, data = digits_model
    x, y = data.x_test[:200], data.y_test[:200]
    centered = grad_cam(model, x, class_index=y)
    right = model.predict(x, verbose=0).argmax(-1) == y
    for dx, dy in [(6, 0), (0, -6), (-6, 6), (8, -8), (4, 4)]:
        moved_x = shift_images(x, dx, dy)
        shifted = grad_cam(model, moved_x, class_index=y)
        # digits recognized at both places: the map explains what the model found
        ok = right & (model.predict(moved_x, verbose=0).argmax(-1) == y)
        assert ok.sum() >= 50, (dx, dy, ok.sum())
        moved = np.array(
            [np.subtract(shifted.peak(i), centered.peak(i)) for i in np.flatnonzero(ok)]
        )
        error = np.abs(moved - [dy, dx]).max(axis=1)
        assert np.median(error) <= 4, (dx, dy, np.sort(error))
        # the typical movement, axis by axis, is the shift
        typical = np.median(moved, axis=0)
        print(
            f"shift ({dx:+d}, {dy:+d}): peaks moved by {typical[::-1]} (dx, dy), median error "
            f"{np.median(error)} px over {ok.sum()} digits"
        )
        assert np.abs(typical - [dy, dx]).max() <= 3, (dx, dy, typical)


def test_maps_match_a_direct_gradient_computation():
    """The same numbers as Grad-CAM written out with one tape over the whole model."""
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the reference computation uses tf.GradientTape")
    model = conv_stack(SMALL, input_shape=(16, 16, 1), num_classes=3)
    x = _blob_images(3)
    cam = grad_cam(model, x, class_index=[0, 1, 2], alpha=0.0)
    assert cam.layer == "stage2_conv1"

    logits = keras.Model(model.inputs, [model.get_layer("stage2_conv1").output, model.output])
    model.get_layer("head").out_act.activation = keras.activations.linear
    try:
        with tf.GradientTape() as tape:
            fmap, scores = logits(x)
            picked = tf.reduce_sum(scores * tf.one_hot([0, 1, 2], 3), axis=-1)
        grads = tape.gradient(picked, fmap).numpy()
    finally:
        model.get_layer("head").out_act.activation = keras.activations.softmax
    raw = np.maximum((grads.mean(axis=(1, 2), keepdims=True) * fmap.numpy()).sum(-1), 0)
    expected = raw / raw.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(cam.coarse, expected, rtol=1e-4, atol=1e-5)
    cell = 16 // raw.shape[1]
    for i in range(3):  # the resized map peaks in the cell where the coarse one does
        peak = np.unravel_index(expected[i].argmax(), expected[i].shape)
        assert peak == tuple(np.array(cam.peak(i)) // cell)
    np.testing.assert_allclose(cam.scores, picked.numpy(), rtol=1e-5, atol=1e-6)


def test_saturated_softmax_still_gives_a_map_and_the_model_is_unchanged():
    spec = {**SMALL, "head": {"pooling": "avg", "logit_scale": 1e4}}
    model = conv_stack(spec, input_shape=(16, 16, 1), num_classes=3)
    x = _blob_images(2)
    before = model.predict(x, verbose=0)
    assert np.all((before == 0) | (before == 1)), "the softmax is not saturated"
    cam = grad_cam(model, x)
    assert np.all(cam.heatmaps.max(axis=(1, 2)) > 0.5)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)
    np.testing.assert_array_equal(cam.class_index, before.argmax(-1))


def test_mixed_precision_model_gives_the_float32_map():
    float32 = conv_stack(SMALL, input_shape=(16, 16, 1), num_classes=3)
    mixed = conv_stack(SMALL, input_shape=(16, 16, 1), num_classes=3, dtype="mixed_bfloat16")
    mixed.set_weights(float32.get_weights())
    x = _blob_images(3)
    expected = grad_cam(float32, x, class_index=[0, 1, 2])
    cam = grad_cam(mixed, x, class_index=[0, 1, 2])
    assert cam.heatmaps.dtype == np.float32
    np.testing.assert_allclose(cam.coarse, expected.coarse, atol=0.1)
    np.testing.assert_allclose(cam.scores, expected.scores, rtol=0.05, atol=0.05)


def test_result_shapes_overlays_and_png_files(tmp_path):
    model = conv_stack(SMALL, input_shape=(16, 16, 3), num_classes=4)
    x = _blob_images(3, channels=3)
    cam = grad_cam(model, x, class_index=2)
    assert isinstance(cam, ClassActivationMap) and len(cam) == 3
    assert cam.heatmaps.shape == (3, 16, 16) and cam.heatmaps.dtype == np.float32
    assert cam.heatmaps.min() >= 0 and cam.heatmaps.max() <= 1
    assert cam.overlays.shape == (3, 16, 16, 3) and cam.overlays.dtype == np.uint8
    assert cam.class_index.tolist() == [2, 2, 2]
    single = grad_cam(model, x[0], class_index=2)
    np.testing.assert_allclose(single.heatmaps[0], cam.heatmaps[0], atol=1e-5)

    paths = cam.save([tmp_path / f"cam{i}.png" for i in range(3)])
    for path, overlay in zip(paths, cam.overlays):
        with Image.open(path) as img:
            np.testing.assert_array_equal(np.asarray(img.convert("RGB")), overlay)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam0.png", "cam1.png", "cam2.png"]
    with pytest.raises(DataError, match="2 paths for 3"):
        cam.save([tmp_path / "a.png", tmp_path / "b.png"])


def test_overlay_blends_image_and_colours():
    image = np.full((2, 2), 200, np.uint8)
    heat = np.array([[0.0, 1.0], [0.5, 0.0]])
    assert overlay_heatmap(image, heat, alpha=0.0)[0, 1].tolist() == [200, 200, 200]
    assert overlay_heatmap(image, heat, alpha=1.0)[0, 1].tolist() == [128, 0, 0]  # dark red
    assert overlay_heatmap(image, heat, alpha=1.0)[0, 0].tolist() == [0, 0, 128]  # dark blue
    with pytest.raises(DataError, match=r"image \(2, 2\) and heatmap \(3, 3\)"):
        overlay_heatmap(image, np.zeros((3, 3)))


@pytest.mark.parametrize(
    ("build", "layer"),
    [
        (lambda: cifar10_classic(), "stage2_conv2"),
        (lambda: cifar10_fast(), "stage3_res1"),
        (lambda: conv_stack(SMALL, input_shape=(16, 16, 3)), "stage2_conv1"),
    ],
    ids=["cifar10_classic", "cifar10_fast", "conv_stack"],
)
def test_library_models_find_their_last_feature_map(build, layer):
    model = build()
    assert find_feature_layer(model) == layer
    shape = model.input_shape[1:]
    x = np.random.default_rng(0).integers(0, 256, (1, *shape), dtype=np.uint8)
    cam = grad_cam(model, x)
    assert cam.layer == layer and cam.heatmaps.shape == (1, *shape[:2])


def test_a_classifier_inside_test_time_augmentation_is_read_inside():
    from keras_cnnkit.layers import TestTimeAugmentation

    inner = conv_stack(SMALL, input_shape=(16, 16, 1), num_classes=3)
    inputs = keras.Input((16, 16, 1), dtype="uint8", name="images")
    wrapped = keras.Model(inputs, TestTimeAugmentation(inner, level=1, name="tta")(inputs))
    assert find_feature_layer(wrapped) == "stage2_conv1"
    x = _blob_images(2)
    cam = grad_cam(wrapped, x, class_index=[0, 2])
    # the wrapped classifier's map of the image itself (not of the mirrored view)
    np.testing.assert_allclose(cam.coarse, grad_cam(inner, x, class_index=[0, 2]).coarse)


def test_cifar10_airbench_gets_a_map_at_the_image_size():
    from keras_cnnkit.models import cifar10_airbench

    model = cifar10_airbench()
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    cam = grad_cam(model, x)
    assert cam.heatmaps.shape == (2, 32, 32) and cam.coarse.shape[1:] == (3, 3)
    assert cam.class_index.tolist() == model.predict(x, verbose=0).argmax(-1).tolist()


@pytest.mark.parametrize("train_batchnorm", [False, True], ids=["inference_mode", "direct"])
def test_backbone_classifier_maps_at_the_input_size(train_batchnorm):
    keras.utils.set_random_seed(3)
    model = build_classifier(
        "mobilenetv2",
        3,
        input_shape=(None, None, 3),
        image_size=(64, 64),
        weights=None,
        train_batchnorm=train_batchnorm,
    )
    expected = "mobilenetv2_inference" if not train_batchnorm else model.layers[-2].name
    assert find_feature_layer(model) == expected
    x = _blob_images(2, size=48, channels=3)  # resized to 64x64 inside the model
    cams = [grad_cam(model, x, class_index=k) for k in range(3)]
    assert cams[0].heatmaps.shape == (2, 48, 48)
    # gradients reach the backbone's feature map for at least one class of each image
    assert np.all(np.max([c.heatmaps.max(axis=(1, 2)) for c in cams], axis=0) == 1.0)


def test_layer_argument_and_errors():
    model = conv_stack(SMALL, input_shape=(16, 16, 1), num_classes=3)
    x = _blob_images(1)
    assert grad_cam(model, x, layer="stage1_conv1").layer == "stage1_conv1"
    with pytest.raises(SpecError, match="no layer 'nope'.*stage1_conv1"):
        grad_cam(model, x, layer="nope")
    with pytest.raises(SpecError, match="class index 3 out of range for 3 classes"):
        grad_cam(model, x, class_index=3)
    with pytest.raises(DataError, match=r"got shape \(16, 16\)"):
        grad_cam(model, x[0, :, :, 0])

    inputs = keras.Input((8, 8, 1))
    dense = keras.Model(
        inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)), name="dense_net"
    )
    with pytest.raises(SpecError, match="'dense_net' has no convolutional feature map"):
        grad_cam(dense, np.zeros((1, 8, 8, 1)))
    with pytest.raises(SpecError, match="functional keras.Model"):
        find_feature_layer(keras.layers.Dense(2))


def test_shift_sheet_is_a_png_with_one_panel_per_shift_and_image(tmp_path):
    model = conv_stack(SMALL, input_shape=(16, 16, 1), num_classes=3)
    path = plot_shift_gradcam(
        model, _blob_images(1)[0], tmp_path / "sheet.png", shifts=[(-2, 0), (0, 0), (2, 0)]
    )
    with Image.open(path) as img:
        assert img.size == (3 * 64 + 2 * 4, 14 + 64)
    path = plot_shift_gradcam(model, _blob_images(2), tmp_path / "two.png", class_index=[0, 1])
    with Image.open(path) as img:
        assert img.size == (3 * 64 + 2 * 4, 14 + 2 * 64 + 4)
        # the middle column shows the unshifted first image, blended with its map
        first = np.asarray(img.convert("RGB"))[14 : 14 + 64 : 4, 68 : 68 + 64 : 4]
    np.testing.assert_array_equal(first, grad_cam(model, _blob_images(2), [0, 1]).overlays[0])
    with pytest.raises(DataError, match="images must be"):
        plot_shift_gradcam(model, np.zeros((16, 16)), tmp_path / "x.png")


def test_translation_demo_writes_the_overlays_beside_its_heatmap(tmp_path):
    from keras_cnnkit.experiments import run_translation_experiment

    result = run_translation_experiment(tmp_path, epochs=1, max_shift=4, shift_step=4)
    assert result.gradcam_path == tmp_path / "gradcam_shifts.png"
    assert result.heatmap_path.parent == result.gradcam_path.parent
    with Image.open(result.gradcam_path) as img:  # 4 shifts x 4 digits of 32x32, scaled 4x
        assert img.size == (4 * 128 + 3 * 4, 14 + 4 * 128 + 3 * 4)
