"""``cnnkit explain``: Grad-CAM overlays of image files, read as the model was trained to."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_cnnkit import io as ckio
from keras_cnnkit.cli.main import main
from keras_cnnkit.models import conv_stack

pytestmark = pytest.mark.tensorflow("files are decoded by the data layer's TensorFlow ops")

SPEC = {"stages": [{"filters": 8, "pool": "max"}, 16], "head": {"pooling": "avg"}}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    model = conv_stack(SPEC, input_shape=(24, 24, 3), num_classes=3)
    path = root / "model.keras"
    ckio.save(model, path, {"class_names": ["cat", "dog", "frog"]})
    return path


def _images(folder, n=3, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"img{i}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def test_explain_writes_one_overlay_per_image(saved_model, tmp_path, capsys):
    paths = _images(tmp_path / "in")
    out = tmp_path / "out"
    code = main(["explain", str(saved_model), *map(str, paths), "--out", str(out)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for path, line in zip(paths, lines):
        written = out / f"{path.stem}.gradcam.png"
        assert line.startswith(f"{path} -> {written}  class ")
        assert line.split("  class ")[1].split()[0] in {"cat", "dog", "frog"}
        with Image.open(written) as img:  # the model's input size, in colour
            assert img.size == (24, 24) and img.mode == "RGB"


def test_explain_a_named_class_in_a_folder(saved_model, tmp_path, capsys):
    _images(tmp_path / "in" / "sub", n=2)
    out = tmp_path / "out"
    assert main(["explain", str(saved_model), str(tmp_path / "in"), "--out", str(out)]
                + ["--class", "frog"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("  class frog  " in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["img0.gradcam.png", "img1.gradcam.png"]


def test_explain_bad_inputs_are_named(saved_model, tmp_path, capsys):
    good = _images(tmp_path / "in", n=1)[0]
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "out"

    assert main(["explain", str(saved_model), str(good), str(bad), "--out", str(out)]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert not out.exists() or not list(out.glob("broken*"))

    argv = ["explain", str(saved_model), str(good), str(bad), "--out", str(out)]
    assert main([*argv, "--skip-bad-files"]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "broken.png" in captured.err
    assert (out / "img0.gradcam.png").is_file() and not (out / "broken.gradcam.png").exists()

    assert main([*argv[:3], "--out", str(out), "--class", "horse"]) == 2
    assert "--class 'horse' is not one of ['cat', 'dog', 'frog'] or an index in 0..2" in (
        capsys.readouterr().err
    )
    assert main(["explain", str(tmp_path / "missing.keras"), str(good), "--out", str(out)]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_explain_help_loads_no_tensorflow():
    code = (
        "import sys\n"
        "from keras_cnnkit.cli.main import main\n"
        "try:\n    main(['explain', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--out DIR" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "False False"


def test_explain_a_saved_backbone_classifier(tmp_path, capsys):
    """A .keras backbone classifier (backbone inside InferenceMode, resizing inside)."""
    from keras_cnnkit.backbones import build_classifier

    model = build_classifier(
        "mobilenetv2", 2, input_shape=(None, None, 3), image_size=(64, 64), weights=None
    )
    path = tmp_path / "mobilenet.keras"
    ckio.save(model, path, {"class_names": ["a", "b"]})
    (image,) = _images(tmp_path / "in", n=1, size=(50, 40))
    assert main(["explain", str(path), str(image), "--out", str(tmp_path / "out")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image} -> ") and line.split("  class ")[1].split()[0] in {"a", "b"}
    with Image.open(tmp_path / "out" / "img0.gradcam.png") as img:
        assert img.size == (50, 40)  # the file's own size: the model resizes inside
