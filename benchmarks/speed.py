"""Training and inference speed of the fast CIFAR-10 network, as ratios measured in one run.

Rows, all on the same machine in the same process:

* the machine's dense matmul peaks (float32 and bfloat16);
* the obvious Keras code of the fast network (float32, ``keras.layers.BatchNormalization``,
  plain ``fit``), written here by hand: the baseline;
* the same network through the library (``cifar10_fast_recipe``: fused BatchNorm and the
  precision chosen from the hardware);
* the same network hand-written with the library's layers, against the builder (the
  builder must cost nothing);
* inference of the exported SavedModel, float32 and the chosen precision.

Run: ``python benchmarks/speed.py [--batch-size 256] [--steps 8]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    StepTimer,
    forward_flops,
    machine,
    machine_markdown,
    matmul_peak,
    write_results,
)

from keras_cnnkit import cifar10_fast, cifar10_fast_recipe  # noqa: E402
from keras_cnnkit.layers import BatchNorm, Normalize  # noqa: E402


def handwritten(norm: str, dtype: str | None) -> keras.Model:
    """The fast network written out layer by layer with plain Keras layers."""
    layers = keras.layers

    def bn(name):
        if norm == "keras":
            return layers.BatchNormalization(name=name, dtype=dtype)
        return BatchNorm(name=name, dtype=dtype)

    def conv_bn_relu(x, filters, name, pool=False):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            name=f"{name}_conv",
            dtype=dtype,
        )(x)
        x = bn(f"{name}_bn")(x)
        x = layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)
        if pool:
            x = layers.MaxPooling2D(2, name=f"{name}_pool", dtype=dtype)(x)
        return x

    def residual(x, filters, name):
        y = conv_bn_relu(x, filters, f"{name}_a")
        y = conv_bn_relu(y, filters, f"{name}_b")
        return layers.Add(name=f"{name}_add", dtype=dtype)([x, y])

    inputs = keras.Input((32, 32, 3), dtype="uint8")
    x = Normalize(scale=1 / 255, dtype=dtype)(inputs)
    x = conv_bn_relu(x, 64, "stem")
    x = conv_bn_relu(x, 128, "s1", pool=True)
    x = residual(x, 128, "s1r")
    x = conv_bn_relu(x, 256, "s2", pool=True)
    x = conv_bn_relu(x, 256, "s3", pool=True)
    x = residual(x, 256, "s3r")
    x = layers.GlobalMaxPooling2D(dtype=dtype)(x)
    x = layers.Dense(10, dtype="float32")(x)
    x = layers.Rescaling(0.125, dtype="float32")(x)
    outputs = layers.Activation("softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs)


def compiled(model):
    """Compile with the same optimizer and loss as every other variant."""
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    return model


def interleaved_speeds(models: dict, x, y, batch_size, steps, rounds) -> dict:
    """img/s of each model's ``fit`` steps, measured in interleaved rounds.

    Every round runs ``steps`` steps of each model in turn, so a change in the machine's
    load affects all variants alike. A round's figure is the median of its steps; a
    variant's figure is its best round (load from other processes only ever slows a
    round down). The first round (tracing, warm-up) is not counted.
    """
    best = {name: 0.0 for name in models}
    n = batch_size * steps
    for r in range(rounds + 1):
        for name, model in models.items():
            timer = StepTimer()
            model.fit(
                x[:n],
                y[:n],
                batch_size=batch_size,
                epochs=1,
                verbose=0,
                shuffle=False,
                callbacks=[timer],
            )
            ips = batch_size / timer.median(skip=0)
            if r:
                best[name] = max(best[name], ips)
            print(f"round {r} {name}: {ips:.1f} img/s", flush=True)
    return best


def inference_speed(model, x, batch_size, repeats=5) -> float:
    """img/s of the exported SavedModel's serving function."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        served = tf.saved_model.load(tmp)
        batch = tf.constant(x[:batch_size])
        served.serve(batch)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            served.serve(batch).numpy()
            best = min(best, time.perf_counter() - start)
    return batch_size / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant and round")
    parser.add_argument(
        "--no-bf16", action="store_true", help="skip the bfloat16 row on CPUs without AMX"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds after a warm-up")
    args = parser.parse_args()

    m = machine()
    chosen = m["chosen_precision"]
    print(machine_markdown(m))
    peaks = {"float32": matmul_peak("float32")}
    peaks["bfloat16"] = matmul_peak("bfloat16", n=2048 if "amx_bf16" in m["isa"] else 1024)
    peak_of = {"float32": peaks["float32"], "mixed_bfloat16": peaks["bfloat16"]}.get(
        chosen, peaks["float32"]
    )

    rng = np.random.default_rng(0)
    n = args.batch_size * args.steps
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    flops = 3 * forward_flops(cifar10_fast(), (32, 32, 3))
    rows = []

    def record(name, ips, precision):
        gflops = ips * flops / 1e9
        peak = {"float32": peaks["float32"], "mixed_bfloat16": peaks["bfloat16"]}.get(
            precision, peak_of
        )
        rows.append(
            {
                "variant": name,
                "precision": precision,
                "img_per_s": ips,
                "gflop_per_s": gflops,
                "fraction_of_peak": gflops / peak,
            }
        )
        print(f"{name}: {ips:.1f} img/s, {gflops:.0f} GFLOP/s")

    keras.utils.set_random_seed(0)
    recipe = cifar10_fast_recipe(batch_size=args.batch_size, precision="auto")
    recipe.compile(num_examples=50_000)
    names = {
        "baseline": ("obvious Keras (float32, keras BN, fit)", "float32"),
        "library": (f"keras_cnnkit cifar10_fast_recipe ({chosen}, fused BN)", chosen),
        "fused_fp32": ("keras_cnnkit cifar10_fast (float32, fused BN)", "float32"),
        "hand": (f"hand-written, same layers ({chosen}, fused BN)", chosen),
        "builder": (f"builder conv_stack, same compile ({chosen}, fused BN)", chosen),
        "bf16": (
            "keras_cnnkit cifar10_fast (mixed_bfloat16, fused BN; not chosen here)",
            "mixed_bfloat16",
        ),
    }
    models = {
        "baseline": compiled(handwritten("keras", "float32")),
        "library": recipe.model,
        "hand": compiled(handwritten("fused", chosen)),
        "builder": compiled(cifar10_fast(dtype=chosen)),
    }
    if chosen != "float32":
        models["fused_fp32"] = compiled(cifar10_fast(dtype="float32"))
    speeds = interleaved_speeds(models, x, y, args.batch_size, args.steps, args.rounds)
    if chosen == "float32" and not args.no_bf16:
        # What "auto" declined, as evidence for the rule. Without native bfloat16 a step
        # can take ten times longer: one short round at a quarter of the batch.
        bf16 = {"bf16": compiled(cifar10_fast(dtype="mixed_bfloat16"))}
        speeds.update(interleaved_speeds(bf16, x, y, max(16, args.batch_size // 4), 2, 1))
        names["bf16"] = (
            names["bf16"][0].replace("; not", f"; batch {max(16, args.batch_size // 4)}; not"),
            "mixed_bfloat16",
        )
    # peaks again after the training rounds: the better of the two readings counts
    peaks["float32"] = max(peaks["float32"], matmul_peak("float32"))
    if chosen == "mixed_bfloat16":
        peaks["bfloat16"] = max(peaks["bfloat16"], matmul_peak("bfloat16"))
    peak_of = peaks["bfloat16"] if chosen == "mixed_bfloat16" else peaks["float32"]
    for key in ("baseline", "library", "fused_fp32", "hand", "builder", "bf16"):
        if key in speeds:
            record(names[key][0], speeds[key], names[key][1])
    library_ips, hand_ips, builder_ips = speeds["library"], speeds["hand"], speeds["builder"]

    inference = {"float32": inference_speed(cifar10_fast(dtype="float32"), x, args.batch_size)}
    if chosen != "float32":
        inference[chosen] = inference_speed(cifar10_fast(dtype=chosen), x, args.batch_size)

    base = rows[0]["img_per_s"]
    speedup = library_ips / base
    builder_cost = 1 - builder_ips / hand_ips
    target = 4.0 if "amx_bf16" in m["isa"] else 1.3
    lines = [
        "# Training speed of the fast CIFAR-10 network",
        "",
        machine_markdown(m),
        "",
        f"Matmul peaks (GFLOP/s): float32 **{peaks['float32']:.0f}**, bfloat16 **{peaks['bfloat16']:.0f}**. "
        f"Training cost {flops / 1e9:.3f} GFLOP/image (3x the forward Conv2D/MatMul FLOPs counted from the graph). "
        f"Batch {args.batch_size}; {args.rounds} interleaved rounds of {args.steps} `fit` steps per variant "
        "after a warm-up round; each figure is the variant's best round (median step of the round).",
        "",
        "| variant | precision | img/s | GFLOP/s | % of peak | vs baseline |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['precision']} | {r['img_per_s']:.1f} | {r['gflop_per_s']:.0f} | "
            f"{100 * r['fraction_of_peak']:.0f} % | {r['img_per_s'] / base:.2f}x |"
        )
    lines += [
        "",
        f"Library vs obvious Keras: **{speedup:.2f}x** (target {target}x on this CPU class). "
        f"Library at **{100 * library_ips * flops / 1e9 / peak_of:.0f} %** of the {chosen} matmul peak (target 70 %). "
        f"Builder vs hand-written with the same layers: {100 * builder_cost:+.1f} % slower (target at most 2 %).",
        "",
        "| exported SavedModel inference | img/s |",
        "|---|---:|",
    ] + [f"| {k} | {v:.0f} |" for k, v in inference.items()]
    write_results(
        "speed",
        {
            "machine": m,
            "peaks_gflops": peaks,
            "train_gflop_per_image": flops / 1e9,
            "batch_size": args.batch_size,
            "rows": rows,
            "speedup_vs_obvious_keras": speedup,
            "builder_cost_fraction": builder_cost,
            "inference_img_per_s": inference,
        },
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
