"""Training and inference speed of the fast CIFAR-10 network, as ratios measured in one run.

Rows, all on the same machine in the same process:

* the machine's dense matmul peaks (float32 and bfloat16);
* the obvious Keras code of the fast network (float32, ``keras.layers.BatchNormalization``,
  plain ``fit``), written here by hand: the baseline;
* the same network through the library (``cifar10_fast_recipe``: fused BatchNorm and the
  precision chosen from the hardware);
* the same network hand-written with the library's layers, against the builder (the
  builder must cost nothing);
* the probe's best variant (``../shared/notes/cpu-speed/bench.py``): the same network,
  ``train_on_batch`` on in-memory tensors at batch 512, as the ceiling row;
* inference of the exported SavedModel, float32 and the chosen precision.

A second table times the airbench recipe (``cifar10_airbench_recipe``, the CIFAR-10 recipe
of the time-to-accuracy benchmark) in float32 and mixed bfloat16: its default path, whole
epochs of ``recipe.fit`` on in-memory ``uint8`` arrays (shuffling, alternating flips,
shifts, Lookahead averaging and the epoch boundaries included), against the ceiling, the
same compiled network's ``train_on_batch`` on in-memory tensors, measured before and after
it. A profile of one training step follows: oneDNN's own timing of every primitive it runs
(convolutions by direction, batch norms, pooling, layout reorders), in a child process with
``ONEDNN_VERBOSE=1`` and one op at a time; the rest of the step is TensorFlow's own kernels (GELU, element-wise
and optimizer updates) and the framework.

Run: ``python benchmarks/speed.py [--batch-size 256] [--steps 8] [--airbench-images 20480]``.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    EpochTimer,
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


def ceiling_speed(model, x, y, batch_size: int, steps: int = 6) -> float:
    """img/s of ``train_on_batch`` on in-memory tensors: the probe's best variant.

    The median of ``steps`` steps after two warm-up steps (tracing excluded).
    """
    import tensorflow as tf

    xb = tf.constant(x[:batch_size])
    yb = tf.constant(y[:batch_size])
    for _ in range(2):
        model.train_on_batch(xb, yb)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(xb, yb)
        times.append(time.perf_counter() - start)
    return batch_size / float(np.median(times))


def airbench_speeds(precision: str, images: int, epochs: int = 3) -> dict:
    """The airbench recipe's default path against its ``train_on_batch`` ceiling.

    Returns img/s of the ceiling (the better of a reading before and one after the
    epochs) and of every epoch of ``recipe.fit`` after the first (which also fits the
    whitening and traces the step).
    """
    from keras_cnnkit.training import cifar10_airbench_recipe

    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, images).astype("int32")
    keras.utils.set_random_seed(0)
    probe = cifar10_airbench_recipe(precision=precision)
    probe.compile(num_examples=50_000)
    batch = probe.batch_size
    before = ceiling_speed(probe.model, x, y, batch)
    recipe = cifar10_airbench_recipe(precision=precision, epochs=epochs)
    timer = EpochTimer()
    recipe.fit(x, y, callbacks=[timer])
    after = ceiling_speed(probe.model, x, y, batch)
    fit_rates = [images / s for s in timer.seconds[1:]]
    print(
        f"airbench {precision}: ceiling {before:.1f} / {after:.1f} img/s, "
        f"fit epochs {[round(r, 1) for r in fit_rates]} img/s",
        flush=True,
    )
    return {
        "precision": precision,
        "batch_size": batch,
        "images_per_epoch": images,
        "ceiling_img_per_s": max(before, after),
        "ceiling_readings": [before, after],
        "fit_epoch_img_per_s": fit_rates,
        "library_img_per_s": float(np.median(fit_rates)),
        "train_gflop_per_image": recipe.training_flops(1, 1) / 1e9,
    }


def profile_step(precision: str, batch_size: int, steps: int = 3) -> dict:
    """oneDNN's timing of the primitives of ``steps`` airbench training steps.

    Runs this script in a child process with ``ONEDNN_VERBOSE=1`` (the variable must be
    set before TensorFlow loads) and sums the ``exec`` lines of the timed steps by
    primitive and direction.
    """
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    out = subprocess.run(
        [sys.executable, __file__, "--_profile-child", precision, str(batch_size), str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    timed = out.split("PROFILE-START", 1)[1]
    step_s = float(timed.split("PROFILE-STEP-SECONDS ", 1)[1].split()[0])
    kinds: dict[str, float] = collections.defaultdict(float)
    for line in timed.splitlines():
        parts = line.split(",")
        if len(parts) < 8 or parts[0] != "onednn_verbose" or parts[3] != "exec":
            continue
        kind = parts[5]
        if kind in ("convolution", "batch_normalization", "pooling", "inner_product"):
            kind = f"{kind} {parts[7]}"
        kinds[kind] += float(parts[-1]) / 1000.0
    return {
        "precision": precision,
        "batch_size": batch_size,
        "step_s": step_s / steps,
        "seconds_by_primitive": {k: v / steps for k, v in kinds.items()},
    }


def _profile_child(precision: str, batch_size: int, steps: int) -> None:
    """The child of :func:`profile_step`: warm up, then time ``steps`` steps.

    TensorFlow runs one op at a time here (``inter_op`` 1, each op still on all cores),
    so the primitives' times add up to the step instead of overlapping.
    """
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    from keras_cnnkit.training import cifar10_airbench_recipe

    recipe = cifar10_airbench_recipe(precision=precision)
    recipe.compile(num_examples=50_000)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, batch_size).astype("int32")
    for _ in range(2):
        recipe.model.train_on_batch(x, y)
    print("PROFILE-START", flush=True)
    start = time.perf_counter()
    for _ in range(steps):
        recipe.model.train_on_batch(x, y)
    print(f"PROFILE-STEP-SECONDS {time.perf_counter() - start}", flush=True)


def airbench_markdown(results: list[dict], profiles: list[dict], peaks: dict) -> list[str]:
    """The airbench table and the step profile, as Markdown lines."""
    peak_of = {"float32": peaks["float32"], "mixed_bfloat16": peaks["bfloat16"]}
    lines = [
        "",
        "## The airbench recipe's training step",
        "",
        f"`cifar10_airbench_recipe` at its default batch ({results[0]['batch_size']}), "
        f"{results[0]['train_gflop_per_image']:.3f} GFLOP of training per image. "
        f"Library: the median epoch of `recipe.fit` on {results[0]['images_per_epoch']:,} "
        "in-memory `uint8` images after the first (augmentation, Lookahead averaging and the "
        "epoch boundary included). Ceiling: the probe's best variant, the same compiled network's "
        "`train_on_batch` on in-memory tensors (the better of a reading before and after). "
        "Target: the library within 5 % of the ceiling.",
        "",
        "| precision | ceiling img/s | library img/s | library / ceiling | GFLOP/s | % of its matmul peak |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        gflops = r["library_img_per_s"] * r["train_gflop_per_image"]
        lines.append(
            f"| {r['precision']} | {r['ceiling_img_per_s']:.1f} | {r['library_img_per_s']:.1f} | "
            f"{r['library_img_per_s'] / r['ceiling_img_per_s']:.3f} | {gflops:.0f} | "
            f"{100 * gflops / peak_of[r['precision']]:.0f} % |"
        )
    for p in profiles:
        total = p["step_s"]
        lines += [
            "",
            f"Profile of one {p['precision']} training step at batch {p['batch_size']} "
            f"({total:.3f} s with oneDNN's verbose timing on and one op at a time; the mean of "
            "the timed steps):",
            "",
            "| primitive | s per step | share |",
            "|---|---:|---:|",
        ]
        ranked = sorted(p["seconds_by_primitive"].items(), key=lambda kv: -kv[1])
        for kind, seconds in ranked:
            lines.append(f"| oneDNN {kind} | {seconds:.3f} | {100 * seconds / total:.0f} % |")
        rest = total - sum(p["seconds_by_primitive"].values())
        lines.append(
            f"| the rest: TensorFlow's own kernels (GELU, element-wise, optimizer) and the "
            f"framework | {rest:.3f} | {100 * rest / total:.0f} % |"
        )
    return lines


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
    parser.add_argument(
        "--airbench-images", type=int, default=20480, help="images per epoch of the airbench rows"
    )
    parser.add_argument("--_profile-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._profile_child:
        precision, batch, steps = args._profile_child
        _profile_child(precision, int(batch), int(steps))
        return

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
    ceiling_batch = 512
    xc = rng.integers(0, 256, (ceiling_batch, 32, 32, 3), dtype=np.uint8)
    yc = rng.integers(0, 10, ceiling_batch)
    speeds["ceiling"] = ceiling_speed(compiled(cifar10_fast(dtype=chosen)), xc, yc, ceiling_batch)
    names["ceiling"] = (
        f"ceiling: the probe's best variant, train_on_batch on in-memory tensors "
        f"(batch {ceiling_batch}, {chosen}, fused BN)",
        chosen,
    )
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
    native_bf16 = "amx_bf16" in m["isa"] or "avx512_bf16" in m["isa"]
    peaks["bfloat16"] = max(
        peaks["bfloat16"], matmul_peak("bfloat16", n=2048 if native_bf16 else 1024)
    )
    peak_of = peaks["bfloat16"] if chosen == "mixed_bfloat16" else peaks["float32"]
    for key in ("baseline", "library", "fused_fp32", "hand", "builder", "bf16", "ceiling"):
        if key in speeds:
            record(names[key][0], speeds[key], names[key][1])
    library_ips, hand_ips, builder_ips = speeds["library"], speeds["hand"], speeds["builder"]

    inference = {"float32": inference_speed(cifar10_fast(dtype="float32"), x, args.batch_size)}
    if chosen != "float32":
        inference[chosen] = inference_speed(cifar10_fast(dtype=chosen), x, args.batch_size)

    airbench = [airbench_speeds(p, args.airbench_images) for p in ("float32", "mixed_bfloat16")]
    profiles = [profile_step(p, 1024) for p in ("float32", "mixed_bfloat16")]

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
        f"Library at **{100 * library_ips * flops / 1e9 / peak_of:.0f} %** of the {chosen} matmul peak "
        "(targets: 90 % of the bfloat16 peak on AMX CPUs, 80 % of the float32 peak on AVX2 ones); "
        f"**{library_ips / speeds['ceiling']:.2f}x** the ceiling row (target at least 0.95x). "
        f"Builder vs hand-written with the same layers: {100 * builder_cost:+.1f} % slower (target at most 2 %).",
        "",
        "| exported SavedModel inference | img/s |",
        "|---|---:|",
    ] + [f"| {k} | {v:.0f} |" for k, v in inference.items()]
    lines += airbench_markdown(airbench, profiles, peaks)
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
            "airbench": airbench,
            "airbench_step_profiles": profiles,
        },
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
