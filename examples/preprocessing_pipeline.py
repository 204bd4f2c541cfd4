"""Build a tf.data input pipeline from a folder of images (``<dir>/<class>/<image>``).

Decodes, resizes and augments (normalization belongs inside the model), holds out a stable
validation split and reports files that could not be read. ``--smoke`` writes a few small
JPEG/PNG images into a temporary folder first (one of them corrupt, to show
``--on-error skip``).

    python examples/preprocessing_pipeline.py --data-dir path/to/images --image-size 224
    python examples/preprocessing_pipeline.py --smoke
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile

import numpy as np

from keras_cnnkit.data import SkipReport, from_directory


def make_folder(root: pathlib.Path, per_class: int = 6) -> pathlib.Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(["circle", "square"]):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)
            pixels[..., c] = 255
            ext = "jpg" if i % 2 else "png"
            Image.fromarray(pixels).save(folder / f"{name}_{i}.{ext}")
    (root / "square" / "broken.jpg").write_bytes(b"not an image")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder of <class>/<image> files")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--validation-split", type=float, default=0.2)
    parser.add_argument("--on-error", choices=["raise", "skip"], default="skip")
    parser.add_argument("--smoke", action="store_true", help="a few generated images")
    args = parser.parse_args()

    if args.smoke:
        root = make_folder(pathlib.Path(tempfile.mkdtemp(prefix="pipeline-")))
        size, batch = 32, 4
    elif args.data_dir:
        root, size, batch = pathlib.Path(args.data_dir), args.image_size, args.batch_size
    else:
        parser.error("--data-dir is required (or --smoke)")

    train, val = from_directory(
        root,
        image_size=(size, size),
        augment={"flip": True, "translate": 0.1},
        batch_size=batch,
        seed=0,
        validation_split=args.validation_split,
        subset="both",
        on_error=args.on_error,
    )
    for name, ds in (("train", train), ("validation", val)):
        images = 0
        for x, _labels in ds:
            images += int(x.shape[0])
            shape, dtype = x.shape[1:], x.dtype.name
        print(f"{name}: {images} images, each {tuple(shape)} {dtype}")
    report = getattr(train, "report", None)
    if isinstance(report, SkipReport):
        print(report.summary())


if __name__ == "__main__":
    main()
