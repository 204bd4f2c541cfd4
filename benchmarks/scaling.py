"""Training throughput of the fast CIFAR-10 recipe over devices, processes and precisions.

Every variant trains the same ``cifar10_fast`` model (a reduced width) on the same
synthetic 32x32x3 images with the same global batch, in a fresh interpreter of its own:
device counts, the backend and a distributed job are fixed for the life of a process.
Rows, all measured in one run of this script:

* TensorFlow: plain ``model.fit`` with no strategy (the baseline); the library's
  ``distribution.strategy = "mirrored"`` path on one device (its overhead) and on two
  logical CPU devices; Keras under ``tf.distribute.OneDeviceStrategy`` without the
  library (what any strategy costs); mixed bfloat16; XLA (``jit_compile=True``).
* JAX: plain ``fit`` on one device (the JAX baseline); the library's ``"data_parallel"``
  path on one device, on two host devices in one process, and on two processes of one
  thread each joined on 127.0.0.1 (gloo); one process of one thread, the unit the two
  processes are made of.
* With a visible GPU: plain ``fit`` on one GPU against ``"mirrored"`` over all of them.

The library's rows build, compile and feed the model the way
:func:`keras_cnnkit.training.train` does (``plan_distribution``, ``build_recipe`` and
``TrainingRecipe.compile`` in the plan's scope, ``training_data``, ``process_shard``) and then
call ``fit``; the plain rows use the same recipe and data without a plan. Each process
trains one warm-up epoch (tracing and compiling) and then timed epochs of the same
number of steps; a round's figure is its fastest timed epoch. Rounds run every variant in
turn (in reverse order every other round), so a change of load affects all alike; a
variant's figure is its best round. Ratios are to the plain row of the same backend.

Run: ``python benchmarks/scaling.py [--quick] [--width 0.25] [--batch-size 128]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import machine, machine_markdown, write_results  # noqa: E402

SCRIPT = pathlib.Path(__file__).resolve()
#: What a process limited to one thread sets (besides ``taskset`` to one core).
ONE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
}
OVERHEAD_TARGET = 0.05


def variant(key: str, label: str, backend: str, **kw) -> dict:
    """One configuration: how its processes are started and what they train."""
    spec = {
        "key": key,
        "label": label,
        "backend": backend,
        "baseline": "tf_plain" if backend == "tensorflow" else "jax_plain",
        "distribution": None,  # None: plain fit, no plan; else the [distribution] section
        "one_device_strategy": False,  # Keras under tf.distribute.OneDeviceStrategy, no plan
        "precision": "float32",
        "jit_compile": "auto",  # the library's rule: off for TensorFlow on a CPU, XLA on JAX
        "devices": 1,
        "processes": 1,
        "one_thread": False,  # pin each process to one core, one thread
        "gpus": "",  # CUDA_VISIBLE_DEVICES; "" hides every GPU
        "step_scale": 1.0,  # fraction of the steps (for very slow variants)
        "note": "",
    }
    spec.update(kw)
    return spec


def variants(gpus: int, native_bf16: bool) -> list[dict]:
    """The variants of a run, baselines first."""
    rows = [
        variant("tf_plain", "plain `fit`, no strategy", "tensorflow", note="TF baseline"),
        variant(
            "tf_mirrored_1",
            'library `strategy="mirrored"`, 1 device',
            "tensorflow",
            distribution={"strategy": "mirrored"},
            note="the distributed path at one device (one replica: the library trains without a strategy)",
        ),
        variant(
            "tf_one_device",
            "Keras under `tf.distribute.OneDeviceStrategy`, no library (reference)",
            "tensorflow",
            one_device_strategy=True,
            note="any tf.distribute strategy, without the library's code",
        ),
        variant(
            "tf_mirrored_2",
            'library `strategy="mirrored"`, `cpu_devices=2`',
            "tensorflow",
            distribution={"strategy": "mirrored", "cpu_devices": 2},
            devices=2,
            note="2 logical CPU devices sharing TF's one thread pool",
        ),
        variant(
            "tf_bf16",
            "plain `fit`, mixed_bfloat16",
            "tensorflow",
            precision="mixed_bfloat16",
            step_scale=1.0 if native_bf16 else 0.4,
            note="" if native_bf16 else "no native bfloat16 on this CPU (fewer steps timed)",
        ),
        variant(
            "tf_xla",
            "plain `fit`, XLA (`jit_compile=True`)",
            "tensorflow",
            jit_compile=True,
        ),
        variant(
            "jax_plain",
            "plain `fit`, 1 device",
            "jax",
            note="JAX baseline (XLA, both cores)",
        ),
        variant(
            "jax_dp_1",
            'library `strategy="data_parallel"`, 1 device',
            "jax",
            distribution={"strategy": "data_parallel"},
            note="the distributed path at one device (one device: the library trains without a strategy)",
        ),
        variant(
            "jax_dp_2",
            'library `strategy="data_parallel"`, `cpu_devices=2`',
            "jax",
            distribution={"strategy": "data_parallel", "cpu_devices": 2},
            devices=2,
            note="2 host devices in one process",
        ),
        variant(
            "jax_1thread",
            "plain `fit`, 1 process, 1 thread",
            "jax",
            one_thread=True,
            note="pinned to one core: the unit of the 2-process job",
        ),
        variant(
            "jax_2proc",
            'library `strategy="data_parallel"`, 2 processes x 1 thread',
            "jax",
            distribution={"strategy": "data_parallel"},
            devices=2,
            processes=2,
            one_thread=True,
            note="joined on 127.0.0.1 (gloo); each pinned to its own core",
        ),
    ]
    if gpus:
        rows += [
            variant(
                "gpu_one",
                "plain `fit`, 1 GPU",
                "tensorflow",
                baseline="gpu_one",
                gpus="0",
                note="GPU baseline",
            ),
            variant(
                "gpu_all",
                f'library `strategy="mirrored"`, all {gpus} GPU(s)',
                "tensorflow",
                baseline="gpu_one",
                distribution={"strategy": "mirrored"},
                devices=gpus,
                gpus=",".join(str(i) for i in range(gpus)),
            ),
        ]
    return rows


# ----------------------------------------------------------------------------- worker


def worker(spec: dict, args: argparse.Namespace) -> None:
    """Train one variant in this process and print its epoch times as a RESULT line."""
    import numpy as np

    if spec["one_thread"]:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    import keras

    from keras_cnnkit.training._build import build_recipe, resolve_config
    from keras_cnnkit.training.config import RunConfig
    from keras_cnnkit.training.distribute import plan_distribution, process_shard

    steps = max(2, round(args.steps * spec["step_scale"]))
    batch = args.batch_size
    cfg = RunConfig.from_dict(
        {
            "data": {"train": "synthetic"},
            "model": {"recipe": "cifar10_fast", "width": args.width},
            "training": {
                "epochs": 1 + args.epochs,
                "batch_size": batch,
                "precision": spec["precision"],
                "jit_compile": spec["jit_compile"],
                "augment": False,
                "shuffle": False,
            },
            "distribution": spec["distribution"] or {"strategy": "none"},
            "output": {"dir": "unused"},
        }
    )
    cfg = resolve_config(cfg)  # the recipe's own defaults, as train() takes them
    # Before anything else starts the backend (JAX: before any JAX call).
    plan = plan_distribution(cfg.distribution) if spec["distribution"] is not None else None
    rng = np.random.default_rng(0)
    n = batch * steps
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype("int32")
    keras.utils.set_random_seed(0)
    compiles = _count_jax_compiles("train_step") if spec["backend"] == "jax" else None
    if plan is not None:
        scope = plan.scope()
    elif spec["one_device_strategy"]:
        import tensorflow as tf

        scope = tf.distribute.OneDeviceStrategy("/cpu:0").scope()
    else:
        scope = contextlib.nullcontext()
    with scope:
        recipe = build_recipe(cfg, (32, 32, 3), 10)
        recipe.compile(n)
    ds = recipe.training_data((x, y), shuffle=False).repeat()
    if plan is not None and plan.num_processes > 1:
        ds = process_shard(ds, batch, plan.num_processes, plan.process_id)

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self.start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            float(logs["loss"])  # waits for the epoch's last step (JAX dispatches ahead)
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    history = recipe.model.fit(
        ds, epochs=1 + args.epochs, steps_per_epoch=steps, verbose=0, callbacks=[timer]
    )
    losses = [float(v) for v in history.history["loss"]]
    if plan is not None:
        plan.close()
    print(
        "RESULT "
        + json.dumps(
            {
                "epoch_seconds": timer.seconds,
                "steps": steps,
                "global_batch": batch,
                "losses": losses,
                "plan": plan.as_dict() if plan is not None else None,
                "model_params": int(recipe.model.count_params()),
                "precision": recipe.precision,
                "train_step_compiles": compiles[0] if compiles is not None else None,
            }
        ),
        flush=True,
    )


def _count_jax_compiles(name: str) -> list[int]:
    """Count XLA compilations of ``jit(name)`` in this process from JAX's compile log.

    Returns:
        A one-element list holding the running count.
    """
    import logging

    import jax

    count = [0]
    needle = f"compilation of jit({name})"

    class Counter(logging.Handler):
        def emit(self, record):
            if needle in record.getMessage():
                count[0] += 1

    jax.config.update("jax_log_compiles", True)
    logger = logging.getLogger("jax")
    logger.addHandler(Counter())
    logger.propagate = False  # count them without printing them
    return count


# ----------------------------------------------------------------------------- parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_variant(spec: dict, args: argparse.Namespace) -> dict:
    """Start the variant's processes, wait for them and return its round figure.

    Returns:
        ``{"img_per_s": ..., ...}``, or ``{"error": ...}`` when a process failed.
    """
    port = free_port()
    cores = sorted(os.sched_getaffinity(0))
    procs = []
    for i in range(spec["processes"]):
        env = dict(os.environ, KERAS_BACKEND=spec["backend"], TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("XLA_FLAGS", None)
        env["CUDA_VISIBLE_DEVICES"] = spec["gpus"]
        if spec["backend"] == "jax":
            env["JAX_PLATFORMS"] = "cpu"
        if spec["one_thread"]:
            env.update(ONE_THREAD_ENV)
        if spec["processes"] > 1:
            env.update(
                CNNKIT_NUM_PROCESSES=str(spec["processes"]),
                CNNKIT_PROCESS_ID=str(i),
                CNNKIT_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}",
            )
        # SIGKILL: a process that joined a JAX job does not stop on SIGTERM.
        argv = ["timeout", "-s", "KILL", str(args.timeout)]
        if spec["one_thread"]:
            argv += ["taskset", "-c", str(cores[i % len(cores)])]
        argv += [sys.executable, str(SCRIPT), "--worker", json.dumps(spec)]
        argv += ["--width", str(args.width), "--batch-size", str(args.batch_size)]
        argv += ["--steps", str(args.steps), "--epochs", str(args.epochs)]
        procs.append(
            subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    start, busy = time.perf_counter(), _cpu_seconds()
    outputs = [p.communicate() for p in procs]
    wall = time.perf_counter() - start
    after = _cpu_seconds()
    # CPU time that everything else on the machine used meanwhile, in cores.
    others = max(0.0, (after[0] - busy[0]) - (after[1] - busy[1])) / wall
    results = []
    for p, (out, err) in zip(procs, outputs):
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        if p.returncode != 0 or not lines:
            tail = err.strip().splitlines()[-3:]
            return {"error": f"rc {p.returncode}: " + " | ".join(tail), "wall_s": wall}
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    first = results[0]
    # Epoch 1 traced and compiled; the job's epoch ends when its slowest process ends it.
    timed = [max(r["epoch_seconds"][e] for r in results) for e in range(1, args.epochs + 1)]
    images = first["steps"] * first["global_batch"]
    return {
        "img_per_s": images / min(timed),
        "median_img_per_s": images / statistics.median(timed),
        "epoch_seconds": timed,
        "others_cores": others,
        "warmup_epoch_s": max(r["epoch_seconds"][0] for r in results),
        "all_epoch_seconds": [r["epoch_seconds"] for r in results],
        "train_step_compiles": first["train_step_compiles"],
        "steps": first["steps"],
        "global_batch": first["global_batch"],
        "plan": first["plan"],
        "model_params": first["model_params"],
        "losses": first["losses"],
        "wall_s": wall,
    }


def _cpu_seconds() -> tuple[float, float]:
    """Busy CPU seconds of the whole machine (``/proc/stat``) and of this process tree.

    The tree counts this process and its finished children (and theirs).
    """
    import resource

    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    machine_s = (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        ours += usage.ru_utime + usage.ru_stime
    return machine_s, ours


def visible_gpus() -> int:
    """Number of GPUs TensorFlow sees in this process."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25, help="cifar10_fast width")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch")
    parser.add_argument("--steps", type=int, default=4, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after the warm-up")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per process")
    parser.add_argument("--quick", action="store_true", help="smoke run: few steps, one round")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU rows")
    parser.add_argument("--only", default="", help="comma-separated variant keys (debugging)")
    parser.add_argument(
        "--render", action="store_true", help="rewrite results/scaling.md from scaling.json"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker), args)
        return
    if args.render:
        from _common import RESULTS

        data = json.loads((RESULTS / "scaling.json").read_text())
        write_results("scaling", data, scaling_markdown(data))
        return
    if args.quick:
        args.steps, args.epochs, args.rounds = 3, 1, 1

    m = machine()
    print(machine_markdown(m), flush=True)
    gpus = 0 if args.no_gpu else visible_gpus()
    # The bfloat16 row runs on the CPU (GPUs hidden), so only AMX counts.
    specs = variants(gpus, native_bf16="amx_bf16" in m["isa"])
    if args.only:
        keep = set(args.only.split(","))
        specs = [s for s in specs if s["key"] in keep or s["key"] == s["baseline"]]
    load_before = os.getloadavg()
    started = time.perf_counter()
    rounds: dict[str, list[dict]] = {s["key"]: [] for s in specs}
    for r in range(args.rounds):
        for spec in specs if r % 2 == 0 else specs[::-1]:
            result = run_variant(spec, args)
            rounds[spec["key"]].append(result)
            shown = f"{result['img_per_s']:.1f} img/s" if "img_per_s" in result else "FAILED"
            print(
                f"round {r} {spec['key']}: {shown} "
                f"({result.get('error', '')}{result['wall_s']:.0f} s wall)",
                flush=True,
            )
    total_s = time.perf_counter() - started
    load_after = os.getloadavg()

    rows = []
    best: dict[str, float] = {}
    for spec in specs:
        good = [r for r in rounds[spec["key"]] if "img_per_s" in r]
        best_round = max(good, key=lambda r: r["img_per_s"]) if good else None
        if best_round:
            best[spec["key"]] = best_round["img_per_s"]
        rows.append(
            {
                "key": spec["key"],
                "variant": spec["label"],
                "backend": spec["backend"],
                "devices": spec["devices"],
                "processes": spec["processes"],
                "threads_per_process": 1 if spec["one_thread"] else "all",
                "precision": spec["precision"],
                "jit_compile": spec["jit_compile"],
                "baseline": spec["baseline"],
                "img_per_s": best_round["img_per_s"] if best_round else None,
                "rounds_img_per_s": [r.get("img_per_s") for r in rounds[spec["key"]]],
                "rounds_others_cores": [r.get("others_cores") for r in rounds[spec["key"]]],
                "timed_epoch_s_range": [
                    min(min(r["epoch_seconds"]) for r in good),
                    max(max(r["epoch_seconds"]) for r in good),
                ]
                if good
                else None,
                "errors": [r["error"] for r in rounds[spec["key"]] if "error" in r],
                "warmup_epoch_s": min(r["warmup_epoch_s"] for r in good) if good else None,
                "train_step_compiles": best_round["train_step_compiles"] if best_round else None,
                "steps_per_epoch": best_round["steps"] if best_round else None,
                "plan": best_round["plan"] if best_round else None,
                "note": spec["note"],
            }
        )
    for row in rows:
        base = best.get(row["baseline"])
        row["ratio_to_plain"] = row["img_per_s"] / base if row["img_per_s"] and base else None

    def overhead(key: str, base: str):
        if key in best and base in best:
            return 1 - best[key] / best[base]
        return None

    overheads = {
        "tensorflow": overhead("tf_mirrored_1", "tf_plain"),
        "jax": overhead("jax_dp_1", "jax_plain"),
    }
    from keras_cnnkit.training.distribute import plan_distribution

    auto_plan = plan_distribution({"strategy": "auto"}).as_dict()  # this process: TF, no split
    data = {
        "machine": m,
        "settings": {
            "width": args.width,
            "global_batch": args.batch_size,
            "steps_per_epoch": args.steps,
            "timed_epochs": args.epochs,
            "rounds": args.rounds,
            "data": "synthetic uint8 32x32x3, 10 classes, no augmentation",
            "one_thread_env": ONE_THREAD_ENV,
            "one_thread_pinning": "taskset -c CORE, one core per process",
            "quick": args.quick,
        },
        "gpus": gpus,
        "load_average": {"before": load_before, "after": load_after},
        "total_seconds": total_s,
        "auto_plan_tensorflow_one_device": auto_plan,
        "rows": rows,
        "distributed_overhead_at_one_device": overheads,
        "overhead_target": OVERHEAD_TARGET,
        "rounds": rounds,
    }
    if args.quick:  # a smoke run does not replace the recorded results
        print(scaling_markdown(data))
        return
    write_results("scaling", data, scaling_markdown(data))


def _spread(values) -> float:
    """Round-to-round spread of a row: (best - worst) / best."""
    values = [v for v in values if v]
    return (max(values) - min(values)) / max(values) if len(values) > 1 else 0.0


def _best_round_others(row: dict) -> float | None:
    """Cores that other work kept busy during a row's best round."""
    ips = row["rounds_img_per_s"]
    if not any(ips):
        return None
    best = max(range(len(ips)), key=lambda i: ips[i] or 0)
    return row["rounds_others_cores"][best]


def scaling_markdown(data: dict) -> str:
    """The Markdown page of a run, from its JSON: set-up, table, verdicts."""
    m, rows, st = data["machine"], data["rows"], data["settings"]
    load_before, load_after = data["load_average"]["before"], data["load_average"]["after"]
    total_s, gpus, auto_plan = (
        data["total_seconds"],
        data["gpus"],
        data["auto_plan_tensorflow_one_device"],
    )
    rounds = data["rounds"]
    by_key = {row["key"]: row for row in rows}
    busy = [r["others_cores"] for v in rounds.values() for r in v if "others_cores" in r]
    others = statistics.mean(busy) if busy else 0.0
    params = next((r["model_params"] for v in rounds.values() for r in v if "model_params" in r), 0)
    fewer = any(
        (r["steps_per_epoch"] or st["steps_per_epoch"]) < st["steps_per_epoch"] for r in rows
    )
    lines = [
        "# Scaling over devices and processes (fast CIFAR-10 recipe)",
        "",
        machine_markdown(m),
        "",
        f"`cifar10_fast(width={st['width']})` ({params:,} parameters) with its recipe's "
        f"optimizer and loss, global batch {st['global_batch']}, synthetic uint8 32x32x3 images "
        "held in memory, no augmentation, float32 unless stated, `jit_compile` as the library "
        "sets it (off for TensorFlow on a CPU; JAX always compiles with XLA). Every variant "
        "runs in fresh processes: one warm-up epoch (tracing, compiling), then "
        f"{st['timed_epochs']} timed epochs of {st['steps_per_epoch']} steps"
        + (" (fewer for bfloat16 without native support)" if fewer else "")
        + "; a round's figure is its fastest timed epoch (a job's epoch ends with its slowest "
        f"process), a variant's figure its best of {st['rounds']} interleaved round(s): load "
        "from other work only ever slows an epoch down. "
        "*vs plain* is the throughput over the plain row of the same backend. "
        "One-thread processes: `taskset -c CORE` (one core each), "
        + ", ".join(f"`{k}={v}`" for k, v in ONE_THREAD_ENV.items())
        + ", and TensorFlow's thread pools (the input pipeline) set to 1.",
        "",
        f"Other work on the machine kept {others:.1f} of its {m['cores']} cores busy on "
        f"average during the run (load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after; {total_s / 60:.1f} min in all), and the figures carry "
        "that noise. *rounds* gives each round's img/s and, in "
        "brackets, the cores that other work kept busy meanwhile (from `/proc/stat`, less "
        "this benchmark's own processes).",
        "",
        "| variant | backend | devices / processes | img/s | vs plain | rounds (img/s) "
        "| 1st epoch s | notes |",
        "|---|---|---|---:|---:|---|---:|---|",
    ]
    for row in rows:
        layout = f"{row['devices']} / {row['processes']}"
        if row["threads_per_process"] == 1:
            layout += ", 1 thread each"
        ips = f"{row['img_per_s']:.1f}" if row["img_per_s"] else "failed"
        ratio = f"{row['ratio_to_plain']:.2f}x" if row["ratio_to_plain"] else "-"
        per_round = " / ".join(
            (f"{v:.1f}" if v else "failed") + (f" ({o:.1f})" if o is not None else "")
            for v, o in zip(row["rounds_img_per_s"], row["rounds_others_cores"])
        )
        first = f"{row['warmup_epoch_s']:.1f}" if row["warmup_epoch_s"] else "-"
        notes = [row["note"]] if row["note"] else []
        if row.get("plan"):
            notes.append(f"plan: strategy {row['plan']['strategy']!r}")
        if row["train_step_compiles"] is not None:
            notes.append(f"train_step compiled {row['train_step_compiles']}x")
        fast, slow = row["timed_epoch_s_range"] or (0, 0)
        if slow > 2 * fast:
            notes.append(f"timed epochs {fast:.1f}-{slow:.1f} s")
        others, base_others = _best_round_others(row), _best_round_others(by_key[row["baseline"]])
        if others is not None and base_others is not None and abs(others - base_others) > 0.3:
            notes.append(
                f"**not like for like**: its best round ran beside {others:.1f} cores of other "
                f"work, the plain row's beside {base_others:.1f}"
            )
        if row["errors"]:
            notes.append("error: " + row["errors"][0][:160])
        lines.append(
            f"| {row['variant']} | {row['backend']} | {layout} | {ips} | {ratio} | "
            f"{per_round} | {first} | {'; '.join(notes)} |"
        )
    if not gpus:
        lines.append(
            "| one GPU vs all GPUs | - | - | - | - | - | - | not measured: no GPU was visible |"
        )
    lines.append("")
    pairs = {"tensorflow": ("tf_mirrored_1", "tf_plain"), "jax": ("jax_dp_1", "jax_plain")}
    for backend, value in data["distributed_overhead_at_one_device"].items():
        path = "mirrored" if backend == "tensorflow" else "data_parallel"
        if value is None:
            lines.append(f"- The {backend} `{path}` path at one device: not measured.")
            continue
        verdict = "met" if value <= OVERHEAD_TARGET else "not met"
        spread = max(_spread(by_key[k]["rounds_img_per_s"]) for k in pairs[backend])
        noise = (
            f" The difference is within this run's round-to-round spread of these rows "
            f"({100 * spread:.0f} %), so this run does not resolve a "
            f"{100 * OVERHEAD_TARGET:.0f} % target here."
            if abs(value) <= spread
            else f" (Round-to-round spread of these rows: {100 * spread:.0f} %.)"
        )
        lines.append(
            f"- Overhead of the {backend} `{path}` path at one device: **{100 * value:+.1f} %** "
            f"(throughput below plain `fit`; target at most {100 * OVERHEAD_TARGET:.0f} %): "
            f"**{verdict}**.{noise}"
        )
    ips = {row["key"]: row["img_per_s"] for row in rows}
    if ips.get("jax_2proc") and ips.get("jax_1thread"):
        lines.append(
            f"- Two JAX processes of one thread each against one such process: "
            f"**{ips['jax_2proc'] / ips['jax_1thread']:.2f}x** (2x would be perfect scaling "
            "over the cores)."
        )
    lines.append(
        f'- `strategy = "auto"` on one TensorFlow CPU device resolves to `"{auto_plan["strategy"]}"` '
        f"({auto_plan['num_replicas']} replica): the default trains with plain `fit`."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
