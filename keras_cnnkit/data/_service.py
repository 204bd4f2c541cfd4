"""Moving the input pipeline to other machines with the tf.data service.

A dispatcher (``tf.data.experimental.service.DispatchServer``) hands out the work,
workers (``WorkerServer``, one per machine: ``cnnkit data-worker --dispatcher ADDR``)
run the pipeline (read, decode, resize, augment, batch) and stream the batches to the
training process. :func:`through_service` sends a dataset there; :func:`run_data_service`
starts a dispatcher or a worker in this process.
"""

from __future__ import annotations

import socket
import time

from keras_cnnkit.errors import ConfigError, DataError

#: Processing modes of :func:`through_service` (``tf.data.experimental.service``).
MODES = ("distributed_epoch", "parallel_epochs")

#: Seconds :func:`through_service` waits for the dispatcher to answer.
DEFAULT_TIMEOUT = 10.0


def split_address(address: str, where: str = "data.service") -> tuple[str, int]:
    """``(host, port)`` of ``"host:port"`` or ``"grpc://host:port"``.

    Raises:
        ConfigError: If ``address`` has no port.

    Example:
        >>> split_address("grpc://127.0.0.1:5050")
        ('127.0.0.1', 5050)
    """
    text = str(address)
    if "://" in text:
        text = text.split("://", 1)[1]
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{where} = {address!r}: expected host:port of a tf.data dispatcher")
    return host.strip("[]"), int(port)


def check_dispatcher(address: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Raise unless something accepts connections at the dispatcher ``address`` in time.

    Raises:
        DataError: Naming the address, when nothing answers within ``timeout`` seconds.
    """
    host, port = split_address(address)
    deadline = time.monotonic() + float(timeout)
    last = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(0.1, min(2.0, timeout))):
                return
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    raise DataError(
        f"the tf.data dispatcher at {address} cannot be reached ({last}) after {timeout:g} s: "
        "start it (cnnkit data-worker --dispatcher-only --dispatcher HOST:PORT) and its workers "
        "(cnnkit data-worker --dispatcher HOST:PORT), or remove data.service to read locally"
    )


def through_service(
    dataset,
    address: str,
    *,
    mode: str = "distributed_epoch",
    job_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
):
    """Run ``dataset``'s pipeline on the tf.data service workers of a dispatcher.

    With ``"distributed_epoch"`` the workers share one epoch (each element once over
    all workers, the source split dynamically); with ``"parallel_epochs"`` every worker
    produces a whole epoch. Attributes of ``dataset`` (``class_names``...) are kept.

    Args:
        dataset: A ``tf.data.Dataset`` whose graph can be serialized (TensorFlow ops
            only, as the ``from_shards`` pipelines are).
        address: The dispatcher, ``host:port`` or ``grpc://host:port``.
        mode: ``"distributed_epoch"`` or ``"parallel_epochs"``.
        job_name: Share one job between consumers (``None``: a job of its own).
        timeout: Seconds to wait for the dispatcher before raising.

    Returns:
        The dataset, read from the service.

    Raises:
        ConfigError: If ``mode`` or ``address`` is invalid.
        DataError: If the dispatcher cannot be reached within ``timeout``.

    Example:
        >>> ds = through_service(ds, "127.0.0.1:5050")  # doctest: +SKIP
    """
    import tensorflow as tf

    if mode not in MODES:
        raise ConfigError(f"data.service_mode must be one of {MODES}, got {mode!r}")
    check_dispatcher(address, timeout)
    service = tf.data.experimental.service
    policy = {
        "distributed_epoch": service.ShardingPolicy.DYNAMIC,
        "parallel_epochs": service.ShardingPolicy.OFF,
    }[mode]
    target = address if "://" in address else f"grpc://{address}"
    out = dataset.apply(service.distribute(policy, target, job_name=job_name))
    for key in ("class_names", "num_examples", "data_config", "report", "file_paths"):
        if hasattr(dataset, key):
            setattr(out, key, getattr(dataset, key))
    return out


def run_data_service(
    dispatcher: str,
    *,
    role: str = "worker",
    port: int = 0,
    host: str = "127.0.0.1",
    ready=None,
):
    """Start a tf.data service dispatcher or worker in this process and serve until killed.

    Args:
        dispatcher: ``host:port`` of the dispatcher (for ``role="dispatcher"``: the port
            it listens on is taken from here unless ``port`` is given).
        role: ``"worker"`` or ``"dispatcher"``.
        port: Port of a worker (0: any free one).
        host: The address others reach this worker at.
        ready: Called with the server's address once it serves (for tests and logs).

    Raises:
        ConfigError: If ``role`` is unknown.
        DataError: If a worker's dispatcher cannot be reached.

    Example:
        >>> run_data_service("127.0.0.1:5050", role="dispatcher")  # doctest: +SKIP
    """
    import tensorflow as tf

    service = tf.data.experimental.service
    d_host, d_port = split_address(dispatcher, "--dispatcher")
    if role == "dispatcher":
        server = service.DispatchServer(
            service.DispatcherConfig(port=int(port) or d_port, fault_tolerant_mode=False)
        )
        address = f"{d_host}:{int(port) or d_port}"
    elif role == "worker":
        check_dispatcher(dispatcher)
        server = service.WorkerServer(
            service.WorkerConfig(
                dispatcher_address=f"{d_host}:{d_port}",
                worker_address=f"{host}:%port%",
                port=int(port),
            )
        )
        address = str(getattr(server, "_address", host))
    else:
        raise ConfigError(f"role must be 'worker' or 'dispatcher', got {role!r}")
    if ready is not None:
        ready(address)
    server.join()
