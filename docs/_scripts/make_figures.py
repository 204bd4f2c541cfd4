"""Draw the figures of the documentation into docs/_static/figures/.

Two kinds, both committed:

* diagrams (SVG, a few seconds, no training): what ``build_classifier`` builds (read
  from a model it builds), the data pipeline's stages, and a training run's outputs and
  checkpoint slots (read from ``keras_cnnkit.training``);
* pictures from the translation-invariance demo (PNG, about two minutes on 2 CPU
  cores), into docs/_static/examples/: the accuracy-per-shift heatmap and Grad-CAM
  overlays of shifted digits, as ``cnnkit demo`` and examples/translation_invariance.py
  write them.

    python docs/_scripts/make_figures.py             # everything
    python docs/_scripts/make_figures.py diagrams    # the SVGs only
    python docs/_scripts/make_figures.py --out DIR diagrams

``tests/docs/test_figures.py`` checks that the committed diagrams are what this script
draws from the code as it is.
"""

from __future__ import annotations

import argparse
import html
import os
import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIGURES = ROOT / "docs" / "_static" / "figures"
EXAMPLE_PICTURES = ROOT / "docs" / "_static" / "examples"  # what the examples write
DIAGRAMS = ("build_classifier.svg", "pipeline.svg", "run_outputs.svg")
DEMO_PICTURES = ("shift_heatmap.png", "gradcam_shifts.png")

FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
LINE = 15  # pixels per text line
COLOURS = {
    "input": "#e8f1fb",
    "prep": "#fdf3e1",
    "net": "#e7f6ea",
    "head": "#f8e8ee",
    "file": "#f2f2f2",
    "state": "#eeeafb",
}


# --- a tiny SVG writer: boxes of text and arrows between them -------------------------------


class Svg:
    def __init__(self, width: int, height: int, title: str):
        self.width, self.height = width, height
        self.items = [f"<title>{html.escape(title)}</title>"]

    def box(self, x, y, w, lines, colour, *, bold_first=True, dashed=False) -> tuple:
        h = LINE * len(lines) + 12
        dash = " stroke-dasharray='5,3'" if dashed else ""
        self.items.append(
            f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='6' fill='{colour}' "
            f"stroke='#555'{dash}/>"
        )
        for i, text in enumerate(lines):
            weight = " font-weight='bold'" if bold_first and i == 0 else ""
            self.items.append(
                f"<text x='{x + 8}' y='{y + 18 + i * LINE}' font-size='12'{weight}>"
                f"{html.escape(text)}</text>"
            )
        return x, y, w, h

    def text(self, x, y, text, size=12, anchor="start", italic=False):
        style = " font-style='italic'" if italic else ""
        self.items.append(
            f"<text x='{x}' y='{y}' font-size='{size}' text-anchor='{anchor}'{style}>"
            f"{html.escape(text)}</text>"
        )

    def arrow(self, x1, y1, x2, y2):
        self.items.append(
            f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='#333' "
            f"stroke-width='1.5' marker-end='url(#head)'/>"
        )

    def frame(self, x, y, w, h, label):
        self.items.append(
            f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='10' fill='none' "
            f"stroke='#888' stroke-dasharray='6,4'/>"
        )
        self.text(x + 10, y + 16, label, size=12, italic=True)

    def render(self) -> str:
        marker = (
            "<defs><marker id='head' markerWidth='8' markerHeight='8' refX='7' refY='4' "
            "orient='auto'><path d='M0,0 L8,4 L0,8 z' fill='#333'/></marker></defs>"
        )
        body = "\n".join(self.items)
        return (
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{self.width}' "
            f"height='{self.height}' viewBox='0 0 {self.width} {self.height}' {FONT}>\n"
            f"<rect width='100%' height='100%' fill='white'/>\n{marker}\n{body}\n</svg>\n"
        )


def _shape(shape) -> str:
    """``(batch, height, width, channels)`` with ``?`` for a size the model leaves open."""
    sizes = ["?" if s is None else str(s) for s in shape[1:]]
    return "(batch, " + ", ".join(sizes) + ")"


def _preset(config: dict) -> str:
    """The name of the :data:`keras_cnnkit.layers.PRESETS` entry a Normalize config matches."""
    from keras_cnnkit.layers import PRESETS

    defaults = {"scale": 1.0, "offset": 0.0, "mean": None, "std": None, "channel_order": "rgb"}
    for name, preset in PRESETS.items():
        expected = {**defaults, **preset}
        if all(
            (list(v) if isinstance(v, tuple) else v) == config.get(k) for k, v in expected.items()
        ):
            return repr(name)
    return "from mean and std"


# --- the diagrams ----------------------------------------------------------------------------


CLASSIFIER_ARGS = ("resnet50", 10)
CLASSIFIER_KWARGS = {
    "input_shape": (None, None, 3),
    "image_size": (224, 224),
    "weights": None,
    "dropout": 0.2,
}
CLASSIFIER_CALL = "build_classifier({})".format(
    ", ".join([*map(repr, CLASSIFIER_ARGS), *(f"{k}={v!r}" for k, v in CLASSIFIER_KWARGS.items())])
)


def build_classifier_svg() -> str:
    """What ``build_classifier("resnet50", 10, ...)`` builds, read from the model itself."""
    from keras_cnnkit.backbones import build_classifier
    from keras_cnnkit.backbones.inference_mode import InferenceMode

    model = build_classifier(*CLASSIFIER_ARGS, **CLASSIFIER_KWARGS)
    boxes = []  # (colour, title, what it does (lines), output shape)
    for layer in model.layers:
        kind = type(layer).__name__
        out = _shape(layer.output.shape)
        if kind == "InputLayer":
            boxes.append(("input", layer.name, [f"raw {layer.output.dtype} pixels, any size"], out))
        elif kind == "Resizing":
            boxes.append(("prep", layer.name, [f"Resizing to {layer.height}x{layer.width}"], out))
        elif kind == "Normalize":
            preset = _preset(layer.get_config())
            boxes.append(("prep", layer.name, [f"Normalize, preset {preset}"], out))
        elif isinstance(layer, InferenceMode):
            net = layer.layer
            state = "frozen" if not net.trainable else "trainable"
            what = [
                f"InferenceMode({net.name}): {len(net.layers)} layers, "
                f"{net.count_params() / 1e6:.1f} M weights, {state}",
                "its BatchNorm layers always in inference mode",
            ]
            boxes.append(("net", layer.name, what, out))
        else:
            config = layer.get_config()
            what = f"{kind}: {config.get('pooling')} pooling"
            if config.get("dropout"):
                what += f", dropout {config['dropout']}"
            what += f", Dense {config.get('num_classes')}, {config.get('output_activation')}"
            boxes.append(("head", layer.name, [what], out))
    width, x0, y0, gap = 520, 30, 66, 22
    total = sum(LINE * (1 + len(what)) + 12 for _c, _t, what, _o in boxes) + gap * len(boxes)
    svg = Svg(720, y0 + total + 10, "build_classifier")
    svg.text(20, 22, CLASSIFIER_CALL, size=11)
    svg.frame(10, 34, 700, total + 36, f"one keras.Model: {model.name}")
    y, previous = y0, None
    for colour, title, what, out in boxes:
        box = svg.box(x0, y, width, [title, *what], COLOURS[colour])
        svg.text(x0 + width + 14, y + 26, out, size=12)
        if previous is not None:
            svg.arrow(x0 + width / 2, previous[1] + previous[3], x0 + width / 2, y - 2)
        previous, y = box, y + box[3] + gap
    return svg.render()


PIPELINE = [
    ("input", ["Source", "from_directory: folders", "from_files: paths", "from_arrays: x, y"]),
    ("prep", ["List and split", "list_images,", "split_indices: seeded,", "stable per file"]),
    ("prep", ["Check", "header, max_pixels;", "a bad file raises", "or goes to a SkipReport"]),
    ("prep", ["Decode", "color_mode: rgb or", "grayscale"]),
    ("prep", ["Resize", "image_size, resize_mode,", "interpolation,", "antialias"]),
    ("state", ["Cache", "memory or file, after", "the first epoch"]),
    ("state", ["Shuffle", "seed: the same order", "for the same seed"]),
    ("net", ["Batch", "batch_size,", "drop_remainder"]),
    ("net", ["Augment", "training subset only;", "seeded Keras layers"]),
    ("head", ["Prefetch", "uint8 batches", "to model.fit"]),
]


def pipeline_svg() -> str:
    """The stages a file goes through in the data pipelines, in order, row by row."""
    width, gap, per_row, row_step, margin = 166, 14, 4, 112, 10
    rows = -(-len(PIPELINE) // per_row)
    height = 40 + rows * row_step + 24
    svg = Svg(margin * 2 + per_row * width + (per_row - 1) * gap, height, "data pipeline")
    svg.text(margin, 22, "keras_cnnkit.data: one path from files or arrays to batches", size=13)
    positions = []
    for i, (colour, lines) in enumerate(PIPELINE):
        row, col = divmod(i, per_row)
        x = margin + (col if row % 2 == 0 else per_row - 1 - col) * (width + gap)
        positions.append(svg.box(x, 38 + row * row_step, width, lines, COLOURS[colour]))
    for (x1, y1, w1, h1), (x2, y2, w2, _h2) in zip(positions, positions[1:]):
        if y1 == y2 and x2 > x1:
            svg.arrow(x1 + w1, y1 + 25, x2 - 2, y2 + 25)
        elif y1 == y2:
            svg.arrow(x1, y1 + 25, x2 + w2 + 2, y2 + 25)
        else:
            svg.arrow(x1 + w1 / 2, y1 + h1, x2 + w2 / 2, y2 - 2)
    svg.text(
        margin,
        height - 10,
        "The same decode and resize run in read_image (cnnkit predict, explain) and in the "
        "exported serving_bytes signature.",
        size=11,
        italic=True,
    )
    return svg.render()


def run_outputs_svg() -> str:
    """A run's output location: its files and the training state, read from the code."""
    from keras_cnnkit.io.gcs import MANIFEST_NAME
    from keras_cnnkit.training import resume
    from keras_cnnkit.training._outputs import OUTPUT_FILES, RunOutput

    files = [f"{name}  ({key})" for key, name in OUTPUT_FILES.items()]
    state = [
        f"{resume.CHECKPOINT_DIR}/  (the training state)",
        "latest.weights.h5 (+ .bkp)",
        "training_metadata.json (+ .bkp)",
        resume.PARTIAL_HISTORY,
        "written every epoch or N steps;",
        "a killed run resumes from it;",
        "removed once every output exists",
    ]
    names = ", ".join(f"{resume.CHECKPOINT_DIR}/{slot}/" for slot in RunOutput.SLOTS)
    slots = [
        f"on gs://: {len(RunOutput.SLOTS)} alternating slots, {names}",
        "after each checkpoint the state is copied to the slot that does not hold the",
        f"newest complete state; a slot is complete once its {MANIFEST_NAME}",
        "is written. A run started on another machine downloads the newest complete",
        "slot and resumes from it.",
    ]
    height = 44 + max(len(files) + 1, len(state)) * LINE + 12 + 30 + len(slots) * LINE + 12 + 34
    svg = Svg(720, height, "run outputs")
    svg.text(20, 22, "What a run writes to its output location (a folder or gs://bucket/prefix)",
             size=13)  # fmt: skip
    top = svg.box(20, 36, 310, ["at the end of the run", *files], COLOURS["file"])
    side = svg.box(380, 36, 320, state, COLOURS["state"])
    y = 36 + max(top[3], side[3]) + 30
    svg.box(20, y, 680, slots, COLOURS["net"], dashed=True)
    svg.arrow(540, 36 + side[3], 540, y - 2)
    svg.text(
        20,
        height - 12,
        "Every file is written under a temporary name, then renamed: a half-written file never "
        "replaces a good one.",
        size=11,
        italic=True,
    )
    return svg.render()


def write_diagrams(out: pathlib.Path) -> list[pathlib.Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in zip(DIAGRAMS, (build_classifier_svg, pipeline_svg, run_outputs_svg)):
        path = out / name
        path.write_text(draw())
        written.append(path)
    return written


# --- the demo's pictures ---------------------------------------------------------------------


def write_demo_pictures(out: pathlib.Path) -> list[pathlib.Path]:
    """Run the translation-invariance demo as ``cnnkit demo`` does and keep its pictures."""
    from keras_cnnkit.experiments import run_translation_experiment

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        result = run_translation_experiment(scratch)
        print(result.table())
        written = []
        for name in DEMO_PICTURES:
            shutil.copyfile(pathlib.Path(scratch) / name, out / name)
            written.append(out / name)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", choices=["diagrams", "demo"], default=[])
    parser.add_argument("--out", type=pathlib.Path, default=FIGURES, help="for the diagrams")
    parser.add_argument("--demo-out", type=pathlib.Path, default=EXAMPLE_PICTURES)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    what = args.what or ["diagrams", "demo"]
    written = []
    if "diagrams" in what:
        written += write_diagrams(args.out)
    if "demo" in what:
        written += write_demo_pictures(args.demo_out)
    for path in written:
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
