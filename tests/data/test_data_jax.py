"""The pipelines run under the JAX backend and give the pixels they give under TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow("the reference pixels come from the TensorFlow backend")

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    from keras_cnnkit.data import DataConfig, from_arrays, from_directory, read_image

    root, out = sys.argv[1], sys.argv[2]
    assert keras.backend.backend() == "{backend}", keras.backend.backend()
    plain = from_directory(root, image_size=(16, 12), resize_mode="crop", batch_size=16,
                           shuffle=False)
    augmented = from_directory(root, image_size=(16, 12), batch_size=16, seed=3,
                               augment={{"flip": True, "translate": 0.1, "mixup": 0.2}})
    late = from_directory(root, image_size=(64, 64), batch_size=16, seed=3,
                          augment={{"flip": True}})
    arrays = from_arrays(np.arange(4 * 8 * 8 * 3).reshape(4, 8, 8, 3) % 256, [0, 1, 0, 1],
                         image_size=4, color_mode="grayscale", batch_size=4, shuffle=False)
    np.savez(
        out,
        plain=next(iter(plain))[0], augmented=next(iter(augmented))[0],
        augmented_y=next(iter(augmented))[1], late=next(iter(late))[0],
        arrays=next(iter(arrays))[0],
        read=read_image(plain.file_paths[0], DataConfig(image_size=(16, 12))),
    )
    """
)


def _run(backend: str, root, out):
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = SCRIPT.format(backend=backend)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(root), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


def test_pipelines_under_jax_give_the_tensorflow_pixels(image_tree, tmp_path):
    on_tf = _run("tensorflow", image_tree, tmp_path / "tf.npz")
    on_jax = _run("jax", image_tree, tmp_path / "jax.npz")
    for key in ("plain", "augmented", "augmented_y", "late", "arrays", "read"):
        assert on_jax[key].shape == on_tf[key].shape, key
        np.testing.assert_array_equal(on_jax[key], on_tf[key], err_msg=key)
    assert on_tf["plain"].dtype == np.uint8 and on_tf["augmented"].dtype == np.float32
