"""Class activation maps (Grad-CAM): where in the image a classifier found its evidence."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import pathlib
from collections.abc import Iterator, Sequence

import keras
import numpy as np

from keras_cnnkit.errors import DataError, SpecError

_CONV_TYPES = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.Conv2DTranspose,
)

# Anchor colours of the "jet" colour map (blue, cyan, yellow, red), so that the
# overlays need no matplotlib.
_JET = np.array(
    [[0.0, 0.0, 0.5], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0],
     [0.5, 0.0, 0.0]],
    np.float32,
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ClassActivationMap:
    """What :func:`grad_cam` computed for a batch of images.

    Attributes:
        heatmaps: ``float32`` maps ``(n, height, width)`` in ``0..1`` at the
            images' resolution (1 where the evidence for the class is strongest).
        overlays: ``uint8`` RGB images ``(n, height, width, 3)``: each image with
            its heatmap blended over it in the "jet" colours (red is strongest).
        class_index: The class each map explains ``(n,)``.
        scores: The model's output for that class ``(n,)``.
        layer: Name of the layer whose feature map was weighted.
        coarse: The maps at the feature map's resolution ``(n, rows, columns)``,
            before resizing to the images (one value per feature-map cell).
    """

    heatmaps: np.ndarray
    overlays: np.ndarray
    class_index: np.ndarray
    scores: np.ndarray
    layer: str
    coarse: np.ndarray

    def __len__(self) -> int:
        return len(self.heatmaps)

    def peak(self, i: int = 0) -> tuple[int, int]:
        """``(row, column)`` of the strongest point of heatmap ``i``."""
        heatmap = self.heatmaps[i]
        row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
        return int(row), int(col)

    def save(self, paths: Sequence[str | pathlib.Path]) -> list[pathlib.Path]:
        """Write each overlay to a PNG file.

        Args:
            paths: One path per image.

        Returns:
            The paths written.

        Raises:
            DataError: If the number of paths differs from the number of images.
        """
        if len(paths) != len(self):
            raise DataError(f"{len(paths)} paths for {len(self)} class activation maps")
        return [write_png(overlay, path) for overlay, path in zip(self.overlays, paths)]


def write_png(image: np.ndarray, path: str | pathlib.Path) -> pathlib.Path:
    """Write an ``uint8`` image to a PNG file atomically (a temporary file, then a rename).

    Args:
        image: ``(height, width)`` or ``(height, width, 3)`` ``uint8`` pixels.
        path: The PNG file.

    Returns:
        The path written.
    """
    from PIL import Image

    from keras_cnnkit.io._files import write_bytes

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())
    return pathlib.Path(path)


def _as_batch(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise DataError(
            f"images must be (height, width, channels) or (n, height, width, channels), "
            f"got shape {images.shape}"
        )
    return images


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """Map values in ``0..1`` to ``uint8`` RGB colours of the "jet" colour map.

    Args:
        heatmap: Any shape, values in ``0..1`` (clipped).

    Returns:
        ``uint8`` array of shape ``heatmap.shape + (3,)``.

    Example:
        >>> colorize(np.array([0.0, 1.0])).tolist()
        [[0, 0, 128], [128, 0, 0]]
    """
    h = np.clip(np.asarray(heatmap, np.float32), 0.0, 1.0) * (len(_JET) - 1)
    low = np.minimum(np.floor(h).astype(int), len(_JET) - 2)
    frac = (h - low)[..., None]
    rgb = _JET[low] * (1 - frac) + _JET[low + 1] * frac
    return np.round(rgb * 255).astype(np.uint8)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a heatmap, in "jet" colours, over an image.

    Args:
        image: ``(height, width)`` or ``(height, width, channels)`` pixels in ``0..255``
            (grey images are shown in grey, more than 3 channels use the first 3).
        heatmap: ``(height, width)`` values in ``0..1``.
        alpha: Weight of the heatmap colours (0 shows the image alone).

    Returns:
        The ``uint8`` RGB overlay ``(height, width, 3)``.

    Raises:
        DataError: If the image and the heatmap differ in height or width.

    Example:
        >>> out = overlay_heatmap(np.zeros((4, 4, 1), "uint8"), np.ones((4, 4)), alpha=1.0)
        >>> out[0, 0].tolist()
        [128, 0, 0]
    """
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[:2] != np.shape(heatmap):
        raise DataError(f"image {image.shape[:2]} and heatmap {np.shape(heatmap)} differ in size")
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    rgb = np.clip(rgb, 0, 255)
    blended = (1 - alpha) * rgb + alpha * colorize(heatmap).astype(np.float32)
    return np.round(np.clip(blended, 0, 255)).astype(np.uint8)


def _contains_conv(layer) -> bool:
    return any(isinstance(sub, _CONV_TYPES) for sub in layer._flatten_layers(include_self=True))


def _output(model: keras.Model, layer):
    """The tensor ``layer`` outputs in ``model``'s graph (``None`` unless exactly one).

    ``layer.output`` would not do: for a nested model it is the output of the
    nested model's own graph, not of its call inside ``model``.
    """
    outputs = [
        node.outputs
        for nodes in model._nodes_by_depth.values()
        for node in nodes
        if node.operation is layer
    ]
    if len(outputs) != 1 or len(outputs[0]) != 1:
        return None
    return outputs[0][0]


def _spatial(model: keras.Model, layer) -> bool:
    tensor = _output(model, layer)
    return tensor is not None and len(tensor.shape) == 4


def _functional(model) -> bool:
    return isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth")


def _classifier(model: keras.Model) -> keras.Model:
    """The functional model whose feature maps Grad-CAM reads.

    ``model`` itself, unless all its convolutions sit inside one wrapped classifier
    (a :class:`~keras_cnnkit.layers.TestTimeAugmentation` averaging the wrapped
    model's views): then that classifier, which sees the image itself.
    """
    if not _functional(model):
        raise SpecError(
            f"class activation maps need a functional keras.Model, got {type(model).__name__}"
        )
    if any(_spatial(model, layer) and _contains_conv(layer) for layer in model.layers):
        return model
    wrapped = [
        layer.layer
        for layer in model.layers
        if _functional(getattr(layer, "layer", None)) and _contains_conv(layer)
    ]
    if (
        len(wrapped) == 1
        and len(wrapped[0].inputs) == 1
        and tuple(wrapped[0].output.shape[1:]) == tuple(model.output.shape[1:])
    ):
        return _classifier(wrapped[0])
    return model


def find_feature_layer(model: keras.Model) -> str:
    """Name of the layer whose feature map Grad-CAM weighs: the last one after a convolution.

    That is the last top-level layer with a 4-D output at or after the first layer
    containing a convolution: the last stage block of a
    :func:`~keras_cnnkit.conv_stack` or CIFAR-10 network (or the activation after
    it), or the backbone (inside its :class:`~keras_cnnkit.backbones.InferenceMode`
    wrapper or not) of a :func:`~keras_cnnkit.build_classifier` model. A model whose
    classifier runs inside a :class:`~keras_cnnkit.layers.TestTimeAugmentation`
    wrapper is read inside it (the name is that of a layer of the wrapped model).

    Args:
        model: A functional Keras model.

    Returns:
        The layer name.

    Raises:
        SpecError: If the model is not functional or has no convolutional feature map.

    Example:
        >>> from keras_cnnkit import conv_stack
        >>> find_feature_layer(conv_stack({"stages": [4, 8]}, input_shape=(16, 16, 3)))
        'stage2_conv1'
    """
    classifier = _classifier(model)
    found, after_conv = None, False
    for layer in classifier.layers:
        after_conv = after_conv or _contains_conv(layer)
        if after_conv and _spatial(classifier, layer):
            found = layer.name
    if found is None:
        raise SpecError(
            f"model {model.name!r} has no convolutional feature map (no layer with a 4-D "
            f"output containing a convolution); its layers: "
            f"{[layer.name for layer in model.layers]}"
        )
    return found


@contextlib.contextmanager
def _logits(head: keras.Model) -> Iterator[None]:
    """Score classes before the final softmax or sigmoid (as Grad-CAM defines it).

    A saturated softmax has zero gradients, so the output activation of the
    head's last layer (an Activation layer, such as a ``ClassifierHead``'s, or a
    Dense layer's activation) is the identity while the block runs.
    """
    last = head.layers[-1]
    candidates = [
        sub
        for sub in last._flatten_layers(include_self=True)
        if isinstance(sub, (keras.layers.Activation, keras.layers.Dense))
        and getattr(sub.activation, "__name__", "") in ("softmax", "sigmoid")
    ]
    candidates.sort(key=lambda sub: not isinstance(sub, keras.layers.Activation))
    swapped = [(sub, sub.activation) for sub in candidates[:1]]
    for sub, _ in swapped:
        sub.activation = keras.activations.linear
    try:
        yield
    finally:
        for sub, activation in swapped:
            sub.activation = activation


def _input_gradient(fn, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fn(x)`` (a vector) and the gradient of its sum with respect to ``x``."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            values = fn(tensor)
            total = tf.reduce_sum(values)
        return np.asarray(values), np.asarray(tape.gradient(total, tensor))
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(v):
            values = fn(v)
            return jnp.sum(values), values

        grad, values = jax.grad(total, has_aux=True)(jnp.asarray(x))
        return np.asarray(values), np.asarray(grad)
    if backend == "torch":
        import torch

        tensor = torch.tensor(x, requires_grad=True)
        values = fn(tensor)
        values.sum().backward()
        return values.detach().cpu().numpy(), tensor.grad.cpu().numpy()
    raise SpecError(f"class activation maps need gradients, which backend {backend!r} lacks")


def _resize(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    height, width = size
    return np.stack(
        [
            np.asarray(
                Image.fromarray(m.astype(np.float32), mode="F").resize(
                    (width, height), Image.Resampling.BILINEAR
                )
            )
            for m in maps
        ]
    )


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    class_index: int | Sequence[int] | None = None,
    *,
    layer: str | None = None,
    alpha: float = 0.45,
) -> ClassActivationMap:
    """Grad-CAM class activation maps of a classifier: where it sees each class.

    The feature map of ``layer`` (the last convolutional one by default, see
    :func:`find_feature_layer`) is weighted channel by channel with the spatial
    mean of the gradient of the class score (before the softmax) and summed;
    negative evidence is dropped (ReLU), the map is scaled to ``0..1`` and
    resized to the image (Selvaraju et al., 2017). Works for any
    :func:`~keras_cnnkit.conv_stack`, CIFAR-10 network or
    :func:`~keras_cnnkit.build_classifier` model, on the TensorFlow, JAX and
    PyTorch backends.

    Args:
        model: A functional Keras classifier taking images.
        images: One image ``(height, width, channels)`` or a batch
            ``(n, height, width, channels)``, as the model takes them (raw pixels).
        class_index: The class to explain: one for all images, one per image, or
            ``None`` for each image's predicted class.
        layer: Name of a top-level layer with a 4-D output; the last convolutional
            one when ``None``.
        alpha: Weight of the heatmap colours in the overlays.

    Returns:
        A :class:`ClassActivationMap` with the heatmaps, the overlays and the
        classes explained.

    Raises:
        SpecError: If the model has no convolutional feature map, ``layer`` is
            not a layer with a 4-D output, or a class index is out of range.
        DataError: If ``images`` is not 3-D or 4-D.

    Example:
        >>> from keras_cnnkit import conv_stack
        >>> model = conv_stack({"stages": [8, 16]}, input_shape=(16, 16, 1), num_classes=3)
        >>> cam = grad_cam(model, np.zeros((16, 16, 1), "uint8"), class_index=0)
        >>> cam.heatmaps.shape, cam.overlays.shape, cam.layer
        ((1, 16, 16), (1, 16, 16, 3), 'stage2_conv1')
    """
    images = _as_batch(images)
    name = find_feature_layer(model) if layer is None else layer
    whole, model = model, _classifier(model)
    try:
        target = model.get_layer(name)
    except ValueError:
        raise SpecError(
            f"model {model.name!r} has no layer {name!r}; layers with a 4-D output: "
            f"{[lay.name for lay in model.layers if _spatial(model, lay)]}"
        ) from None
    if not _spatial(model, target):
        raise SpecError(f"layer {name!r} of model {model.name!r} has no 4-D output")
    if len(model.inputs) != 1:
        raise SpecError(f"model {model.name!r} has {len(model.inputs)} inputs; Grad-CAM needs one")
    tensor = _output(model, target)
    features = keras.Model(model.inputs[0], tensor)
    head = keras.Model(tensor, model.output)
    raw, images = images, images.astype(keras.backend.standardize_dtype(model.inputs[0].dtype))
    fmap = np.asarray(features(images, training=False)).astype(np.float32)

    num_classes = int(model.output.shape[-1])
    if class_index is None:  # the class the whole model predicts (test-time views included)
        inputs = raw.astype(keras.backend.standardize_dtype(whole.inputs[0].dtype))
        classes = np.asarray(whole(inputs, training=False)).argmax(-1)
    else:
        classes = np.broadcast_to(np.asarray(class_index, dtype=int), (len(images),)).copy()
    bad = [int(c) for c in classes if not 0 <= c < num_classes]
    if bad:
        raise SpecError(f"class index {bad[0]} out of range for {num_classes} classes")

    onehot = keras.ops.convert_to_tensor(np.eye(num_classes, dtype=np.float32)[classes])
    with _logits(head):
        scores, grads = _input_gradient(
            lambda f: keras.ops.sum(
                keras.ops.cast(head(f, training=False), "float32") * onehot, axis=-1
            ),
            fmap,
        )
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cams = np.maximum((weights * fmap).sum(axis=-1), 0.0)
    peak = cams.reshape(len(cams), -1).max(axis=1).reshape(-1, 1, 1)
    cams = np.divide(cams, peak, out=np.zeros_like(cams), where=peak > 0)
    heatmaps = np.clip(_resize(cams, images.shape[1:3]), 0.0, 1.0).astype(np.float32)
    overlays = np.stack([overlay_heatmap(i, h, alpha) for i, h in zip(images, heatmaps)])
    scores = np.asarray(scores, np.float32)
    return ClassActivationMap(heatmaps, overlays, classes, scores, name, cams.astype(np.float32))


def plot_shift_gradcam(
    model: keras.Model,
    images: np.ndarray,
    path: str | pathlib.Path,
    *,
    shifts: Sequence[tuple[int, int]] = ((-6, -6), (0, 0), (6, 6)),
    class_index: int | Sequence[int] | None = None,
    scale: int = 4,
    fill: float = 0,
) -> pathlib.Path:
    """Draw the Grad-CAM overlays of images at several shifts, one row per image, to a PNG.

    Shows whether what the model looks at moves with the object: each panel is
    an image shifted by ``(dx, dy)`` (see :func:`shift_images`) with its class
    activation map, the peak marked by a white cross. Needs only Pillow.

    Args:
        model: A classifier accepted by :func:`grad_cam`.
        images: One image ``(height, width, channels)`` or several
            ``(n, height, width, channels)``, as the model takes them.
        path: The PNG file to write.
        shifts: ``(dx, dy)`` shifts, one column each.
        class_index: The class to explain in each row (one for all rows, or one
            per row); the class predicted for the unshifted image when ``None``.
        scale: Each pixel becomes ``scale x scale`` pixels (nearest neighbour).
        fill: Value of the pixels uncovered by a shift.

    Returns:
        The path written.

    Raises:
        DataError: If ``images`` is not 3-D or 4-D.

    Example:
        >>> import os, tempfile
        >>> from keras_cnnkit import conv_stack
        >>> model = conv_stack({"stages": [8, 16]}, input_shape=(16, 16, 1), num_classes=3)
        >>> path = os.path.join(tempfile.mkdtemp(), "cam.png")
        >>> plot_shift_gradcam(model, np.zeros((16, 16, 1), "uint8"), path).name
        'cam.png'
    """
    from PIL import Image, ImageDraw

    from keras_cnnkit.evaluation.shift import shift_images

    images = _as_batch(images)
    if class_index is None:
        class_index = grad_cam(model, images).class_index
    classes = np.broadcast_to(np.asarray(class_index, dtype=int), (len(images),))
    height, width = images.shape[1:3]
    label_height, gap = 14, 4
    cell_w, cell_h = width * scale + gap, height * scale + gap
    sheet = Image.new(
        "RGB", (len(shifts) * cell_w - gap, label_height + len(images) * cell_h - gap), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for k, (dx, dy) in enumerate(shifts):
        draw.text((k * cell_w + 2, 1), f"dx {dx:+d}, dy {dy:+d}", fill="black")
        cam = grad_cam(model, shift_images(images, dx, dy, fill), class_index=classes)
        for row in range(len(images)):
            left, top = k * cell_w, label_height + row * cell_h
            panel = Image.fromarray(cam.overlays[row]).resize(
                (width * scale, height * scale), Image.Resampling.NEAREST
            )
            sheet.paste(panel, (left, top))
            r, c = cam.peak(row)
            cx, cy = left + c * scale + scale // 2, top + r * scale + scale // 2
            draw.line([(cx - 4, cy), (cx + 4, cy)], fill="white", width=1)
            draw.line([(cx, cy - 4), (cx, cy + 4)], fill="white", width=1)
    return write_png(np.asarray(sheet), path)
