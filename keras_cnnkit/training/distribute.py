"""Choose how a run is spread over devices and processes, on Keras' own engines."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import keras

from keras_cnnkit.errors import DistributionError

__all__ = [
    "STRATEGIES",
    "DistributionPlan",
    "configure_cpu_devices",
    "plan_distribution",
    "process_layout",
    "process_shard",
]

logger = logging.getLogger(__name__)

#: Strategies accepted by ``distribution.strategy``.
STRATEGIES = ("auto", "none", "mirrored", "data_parallel")

#: The upstream bug that makes ``model.fit`` fail under TensorFlow multi-worker training.
MULTI_WORKER_BUG = "keras-team/keras#20585"


@dataclasses.dataclass
class DistributionPlan:
    """How one process of a run trains: its strategy, replicas and place in the job.

    Attributes:
        strategy: ``"none"``, ``"mirrored"`` or ``"data_parallel"``.
        num_replicas: Model copies that each take a slice of every global batch.
        num_processes: Processes in the job.
        process_id: This process's index (``0`` writes every output).
        devices: The devices the replicas run on.
        tf_strategy: The ``tf.distribute`` strategy, when there is one.
    """

    strategy: str
    num_replicas: int = 1
    num_processes: int = 1
    process_id: int = 0
    devices: tuple[str, ...] = ()
    tf_strategy: Any = None

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the outputs (process 0)."""
        return self.process_id == 0

    def scope(self):
        """Context in which the model and optimizer must be built and compiled."""
        if self.tf_strategy is not None:
            return self.tf_strategy.scope()
        return contextlib.nullcontext()

    def close(self) -> None:
        """Undo the global Keras distribution this plan set (JAX), if any."""
        if self.strategy == "data_parallel":
            keras.distribution.set_distribution(None)

    def as_dict(self) -> dict:
        """Plain data for run metadata."""
        return {
            "strategy": self.strategy,
            "num_replicas": self.num_replicas,
            "num_processes": self.num_processes,
            "process_id": self.process_id,
            "devices": list(self.devices),
        }


def process_layout(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[int, int, str]:
    """The process count, process id and coordinator address of this process.

    Values in ``config`` win; otherwise they come from the environment a cluster
    scheduler sets: ``CNNKIT_NUM_PROCESSES``/``CNNKIT_PROCESS_ID``/
    ``CNNKIT_COORDINATOR_ADDRESS``, Slurm's ``SLURM_NTASKS``/``SLURM_PROCID``, or the
    worker list of ``TF_CONFIG``.

    Args:
        config: The ``[distribution]`` section (``num_processes`` 0 and
            ``process_id`` -1 mean "from the environment").
        environ: The environment (default ``os.environ``).

    Returns:
        ``(num_processes, process_id, coordinator_address)``.

    Raises:
        DistributionError: If the values are inconsistent.

    Example:
        >>> process_layout({}, {"SLURM_NTASKS": "4", "SLURM_PROCID": "1"})
        (4, 1, '')
    """
    config = dict(config or {})
    env = os.environ if environ is None else environ
    num, pid, address = 1, 0, ""
    tf_config = env.get("TF_CONFIG")
    if tf_config:
        try:
            parsed = json.loads(tf_config)
            workers = parsed.get("cluster", {}).get("worker", [])
            num = max(1, len(workers))
            pid = int(parsed.get("task", {}).get("index", 0))
            address = workers[0] if workers else ""
        except (ValueError, AttributeError, TypeError) as exc:
            raise DistributionError(f"TF_CONFIG is not valid JSON of a cluster: {exc}") from None
    if "SLURM_NTASKS" in env:
        num, pid = int(env["SLURM_NTASKS"]), int(env.get("SLURM_PROCID", 0))
    if "CNNKIT_NUM_PROCESSES" in env:
        num = int(env["CNNKIT_NUM_PROCESSES"])
    if "CNNKIT_PROCESS_ID" in env:
        pid = int(env["CNNKIT_PROCESS_ID"])
    address = env.get("CNNKIT_COORDINATOR_ADDRESS", address)
    if config.get("num_processes", 0) > 0:
        num = int(config["num_processes"])
    if config.get("process_id", -1) >= 0:
        pid = int(config["process_id"])
    if config.get("coordinator_address"):
        address = str(config["coordinator_address"])
    if num < 1 or not 0 <= pid < num:
        raise DistributionError(f"process_id {pid} is not valid for a job of {num} process(es)")
    return num, pid, address


def configure_cpu_devices(count: int) -> None:
    """Split the CPU into ``count`` logical devices (TensorFlow), for mirrored training.

    Must run before TensorFlow creates its first tensor in this process.

    Args:
        count: Number of logical CPU devices.

    Raises:
        DistributionError: If TensorFlow is already initialized with another layout.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as exc:
        raise DistributionError(
            f"distribution.cpu_devices = {count} must be set before TensorFlow starts; "
            "run the training in a fresh process (for example with `cnnkit train`)"
        ) from exc


def plan_distribution(config: Mapping[str, Any] | None = None) -> DistributionPlan:
    """Resolve the ``[distribution]`` section into a :class:`DistributionPlan`.

    On TensorFlow, ``"mirrored"`` uses ``tf.distribute.MirroredStrategy`` over every
    local GPU, or over the logical CPU devices made by ``cpu_devices``; ``"auto"``
    does so when there are several GPUs (or ``cpu_devices`` > 1) and trains plainly
    otherwise. With a single device, ``"mirrored"`` and ``"data_parallel"`` train
    plainly too (strategy ``"none"``): one replica gains nothing from a strategy, and
    ``tf.distribute`` costs about 30 % of the step on a CPU (``benchmarks/scaling.py``).
    Several processes on TensorFlow are refused: Keras 3's ``model.fit``
    fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585).

    Args:
        config: The ``[distribution]`` section of a run configuration.

    Returns:
        The plan; build and compile the model inside :meth:`DistributionPlan.scope`.

    Raises:
        DistributionError: If the strategy is unknown or cannot run on this backend.

    Example:
        >>> plan_distribution({"strategy": "none"}).num_replicas
        1
    """
    config = dict(config or {})
    name = config.get("strategy", "auto")
    if name not in STRATEGIES:
        raise DistributionError(
            f"unknown distribution strategy {name!r}; choose one of {', '.join(STRATEGIES)}"
        )
    num, pid, address = process_layout(config)
    backend = keras.backend.backend()
    if backend == "jax":
        return _plan_jax(name, int(config.get("cpu_devices", 0)), num, pid, address)
    if backend != "tensorflow":
        if name in ("mirrored", "data_parallel") or num > 1:
            raise DistributionError(
                f"distribution strategy {name!r} on the {backend} backend is not supported; "
                "use the TensorFlow backend ('mirrored') or the JAX backend ('data_parallel')"
            )
        return DistributionPlan("none", 1, 1, 0)
    if num > 1:
        raise DistributionError(
            f"TensorFlow multi-worker training ({num} processes) is not supported: Keras 3's "
            "model.fit fails on the first batch under tf.distribute.MultiWorkerMirroredStrategy "
            f"(upstream bug {MULTI_WORKER_BUG}). Train on several machines on the JAX backend: "
            "KERAS_BACKEND=jax with strategy = 'data_parallel' (keras.distribution, joined by "
            "keras.distribution.initialize); on one machine use strategy = 'mirrored'"
        )
    if name == "data_parallel":
        raise DistributionError(
            "strategy = 'data_parallel' is keras.distribution.DataParallel, which needs the JAX "
            "backend (KERAS_BACKEND=jax; on TensorFlow it distributes nothing); use "
            "strategy = 'mirrored' here"
        )
    cpu_devices = int(config.get("cpu_devices", 0))
    if cpu_devices > 1:
        configure_cpu_devices(cpu_devices)
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if name == "none" or (name == "auto" and len(gpus) < 2 and cpu_devices < 2):
        return DistributionPlan("none", 1, 1, 0, tuple(gpus[:1] or cpus[:1]))
    devices = gpus if gpus else cpus
    if len(devices) < 2:
        # One replica: a strategy would only add tf.distribute's overhead to every step.
        logger.info("strategy %r over one device %s: training without a strategy", name, devices)
        return DistributionPlan("none", 1, 1, 0, tuple(devices[:1]))
    strategy = tf.distribute.MirroredStrategy(devices)
    return DistributionPlan(
        "mirrored", strategy.num_replicas_in_sync, 1, 0, tuple(devices), strategy
    )


def _plan_jax(name: str, cpu_devices: int, num: int, pid: int, address: str) -> DistributionPlan:
    """keras.distribution on the JAX backend: DataParallel over devices and processes."""
    import jax

    if name == "mirrored":
        raise DistributionError(
            "strategy = 'mirrored' is tf.distribute.MirroredStrategy (TensorFlow backend); on "
            "the JAX backend use strategy = 'data_parallel'"
        )
    if cpu_devices > 1:
        try:
            jax.config.update("jax_num_cpu_devices", cpu_devices)
        except RuntimeError as exc:
            raise DistributionError(
                f"distribution.cpu_devices = {cpu_devices} must be set before JAX starts; run "
                "the training in a fresh process"
            ) from exc
    if num > 1:
        if name == "none":
            raise DistributionError(
                f"a job of {num} processes needs strategy = 'data_parallel' (or 'auto')"
            )
        if not address:
            raise DistributionError(
                f"a job of {num} processes needs distribution.coordinator_address "
                "(host:port of process 0) or CNNKIT_COORDINATOR_ADDRESS"
            )
        # Cross-process collectives on CPU go through gloo (NCCL on GPUs).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        try:
            keras.distribution.initialize(job_addresses=address, num_processes=num, process_id=pid)
        except RuntimeError as exc:
            raise DistributionError(
                f"cannot join the job at {address} as process {pid} of {num}: {exc}"
            ) from exc
    devices = jax.devices()
    if name == "none" or len(devices) < 2:
        # One device (and so one process): DataParallel would only add recompilations.
        return DistributionPlan("none", 1, 1, 0, tuple(str(d) for d in devices[:1]))
    # Each process feeds its own disjoint slice of every global batch (see
    # :func:`keras_cnnkit.training.distribute.process_shard`), so Keras must not shard again.
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices, auto_shard_dataset=num == 1)
    )
    return DistributionPlan("data_parallel", len(devices), num, pid, tuple(str(d) for d in devices))


def process_shard(ds, global_batch: int | None, num: int, pid: int):
    """Take one process's disjoint slice of every global batch of ``ds``.

    Process ``p`` of ``n`` takes rows ``[p * b / n, (p + 1) * b / n)`` of each global
    batch of ``b`` rows. Batches that do not split evenly across the processes are
    dropped, so every process runs the same number of steps.

    Args:
        ds: A dataset of ``(images, labels)`` global batches.
        global_batch: Keep only batches of exactly this size (``None``: any size that
            ``num`` divides).
        num: Number of processes.
        pid: This process's index.

    Returns:
        The dataset of local batches.
    """
    import tensorflow as tf

    def keep(x, y):
        n = tf.shape(x)[0]
        ok = tf.equal(n % num, 0)
        return tf.logical_and(ok, tf.equal(n, global_batch)) if global_batch else ok

    def take(x, y):
        local = tf.shape(x)[0] // num
        return x[pid * local : (pid + 1) * local], y[pid * local : (pid + 1) * local]

    return ds.filter(keep).map(take)
