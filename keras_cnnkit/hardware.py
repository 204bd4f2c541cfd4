"""What the machine is, and the numeric precision that trains fastest on it."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import platform

import keras

from keras_cnnkit.errors import PrecisionError

__all__ = [
    "PRECISIONS",
    "HardwareInfo",
    "choose_precision",
    "detect_hardware",
    "resolve_precision",
]

logger = logging.getLogger("keras_cnnkit")

#: Precisions accepted by every ``precision=`` argument.
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16", "bfloat16", "float16")

_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
_logged: set[str] = set()


@dataclasses.dataclass(frozen=True)
class HardwareInfo:
    """What :func:`detect_hardware` found, and the precision it chose.

    Attributes:
        backend: The Keras backend (``"tensorflow"``, ``"jax"``, ``"torch"``).
        device: ``"gpu"`` or ``"cpu"``: where the backend places computation.
        device_name: The CPU model or GPU name.
        isa: The CPU instruction-set extensions that matter for training speed.
        onednn: Whether TensorFlow's oneDNN optimizations are on (TensorFlow only).
        gpu_compute_capability: ``(major, minor)`` of the first GPU, if any.
        precision: The dtype policy ``precision="auto"`` resolves to.
        reason: Why that precision was chosen.
    """

    backend: str
    device: str
    device_name: str
    isa: tuple[str, ...]
    onednn: bool
    gpu_compute_capability: tuple[int, int] | None
    precision: str
    reason: str

    def as_dict(self) -> dict:
        """The fields as plain data (for run metadata and JSON)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        rows = [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]
        width = max(len(k) for k, _ in rows)
        return "\n".join(
            f"{k:<{width}}  {' '.join(v) if isinstance(v, tuple) and k == 'isa' else v}"
            for k, v in rows
        )


def _cpu_flags_and_name() -> tuple[set[str], str, str]:
    flags: set[str] = set()
    vendor = ""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "flags" and not flags:
                    flags = set(value.split())
                elif key == "model name" and value.strip():
                    name = value.strip()
                elif key == "vendor_id" and not vendor:
                    vendor = value.strip()
                if flags and key == "model name":
                    break
    except OSError:
        pass
    return flags, name, vendor


def _gpus(backend: str) -> list[tuple[str, tuple[int, int] | None]]:
    if backend == "tensorflow":
        import tensorflow as tf

        found = []
        for gpu in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(gpu)
            cc = details.get("compute_capability")
            found.append((details.get("device_name", gpu.name), tuple(cc) if cc else None))
        return found
    if backend == "jax":
        import jax

        return [(d.device_kind, _jax_cc(d)) for d in jax.devices() if d.platform in ("gpu", "cuda")]
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return [(torch.cuda.get_device_name(0), tuple(torch.cuda.get_device_capability(0)))]
    return []


def _jax_cc(device) -> tuple[int, int] | None:
    cc = getattr(device, "compute_capability", None)
    if not cc:
        return None
    major, _, minor = str(cc).partition(".")
    return int(major), int(minor or 0)


@functools.lru_cache(maxsize=1)
def detect_hardware() -> HardwareInfo:
    """Detect the backend, device and CPU features, and choose the training precision.

    The rules, from measurements of convolutional networks:

    * a GPU with tensor cores (compute capability 7.0 or newer): ``mixed_float16``;
    * TensorFlow with oneDNN on a CPU with AMX (``amx_bf16``): ``mixed_bfloat16``,
      several times faster than ``float32`` there;
    * TensorFlow with oneDNN on an AMD CPU with ``avx512_bf16`` (Zen 4 and later):
      ``mixed_bfloat16``, measured 1.3-1.6x faster than ``float32`` on the CIFAR-10
      networks (``benchmarks/speed.py``); Intel CPUs with AVX512-BF16 but no AMX keep
      ``float32``, where bfloat16 measured slower;
    * everything else: ``float32``. bfloat16 is never chosen on a CPU without
      native bfloat16 support (it is emulated and slower), nor on the JAX backend's
      CPU path (XLA does not use AMX).

    The result is cached for the process.

    Returns:
        A :class:`HardwareInfo`.

    Example:
        >>> info = detect_hardware()
        >>> info.precision in ("float32", "mixed_bfloat16", "mixed_float16")
        True
    """
    backend = keras.backend.backend()
    flags, cpu_name, vendor = _cpu_flags_and_name()
    isa = tuple(f for f in _ISA_FLAGS if f in flags)
    onednn = backend == "tensorflow" and os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    gpus = _gpus(backend)
    precision, reason = choose_precision(backend, flags, onednn, gpus, cpu_vendor=vendor)
    if gpus:
        name, cc = gpus[0]
        return HardwareInfo(backend, "gpu", name, isa, onednn, cc, precision, reason)
    return HardwareInfo(backend, "cpu", cpu_name, isa, onednn, None, precision, reason)


def choose_precision(
    backend: str,
    cpu_flags: set[str] | frozenset[str],
    onednn: bool,
    gpus: list[tuple[str, tuple[int, int] | None]] = (),
    *,
    cpu_vendor: str = "",
) -> tuple[str, str]:
    """The precision rule of :func:`detect_hardware`, as a pure function.

    Args:
        backend: The Keras backend name.
        cpu_flags: The CPU's flags as ``/proc/cpuinfo`` lists them.
        onednn: Whether TensorFlow's oneDNN optimizations are on.
        gpus: ``(name, compute capability)`` of each GPU the backend sees.
        cpu_vendor: The CPU's ``vendor_id`` (``"AuthenticAMD"``, ``"GenuineIntel"``).

    Returns:
        ``(dtype policy name, reason)``.

    Example:
        >>> choose_precision("tensorflow", {"avx2", "amx_bf16"}, onednn=True)[0]
        'mixed_bfloat16'
    """
    if gpus:
        name, cc = gpus[0]
        if cc is not None and tuple(cc) >= (7, 0):
            return (
                "mixed_float16",
                f"GPU {name} has tensor cores (compute capability {cc[0]}.{cc[1]})",
            )
        return "float32", f"GPU {name} has no tensor cores (compute capability {cc})"
    if "amx_bf16" in cpu_flags:
        if backend == "tensorflow" and onednn:
            return (
                "mixed_bfloat16",
                "TensorFlow with oneDNN on a CPU with AMX (amx_bf16): bfloat16 runs on AMX tiles",
            )
        if backend == "tensorflow":
            return (
                "float32",
                "the CPU has AMX but TF_ENABLE_ONEDNN_OPTS=0 disables oneDNN, the only fast "
                "bfloat16 path",
            )
        return (
            "float32",
            f"the {backend} backend's CPU path does not use AMX; bfloat16 would be slower",
        )
    if "avx512_bf16" in cpu_flags and cpu_vendor == "AuthenticAMD":
        if backend == "tensorflow" and onednn:
            return (
                "mixed_bfloat16",
                "TensorFlow with oneDNN on an AMD CPU with AVX512-BF16: its bfloat16 dot "
                "products run at about twice the float32 rate",
            )
        return "float32", f"the {backend} backend's CPU path has no fast bfloat16 kernels here"
    missing = "AVX512-BF16 only, no AMX" if "avx512_bf16" in cpu_flags else "no native bfloat16"
    return "float32", f"CPU without AMX ({missing}): bfloat16 would be slower than float32"


def resolve_precision(precision: str = "auto") -> str:
    """Turn a ``precision`` argument into a Keras dtype policy name.

    Args:
        precision: ``"auto"`` (chosen by :func:`detect_hardware`), or a policy name:
            ``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"``, ``"bfloat16"``,
            ``"float16"``.

    Returns:
        The policy name. ``"auto"`` logs its choice and the reason once per process.

    Raises:
        PrecisionError: If ``precision`` is not one of :data:`PRECISIONS`.

    Example:
        >>> resolve_precision("float32")
        'float32'
    """
    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if precision != "auto":
        return precision
    info = detect_hardware()
    message = f"precision='auto' chose {info.precision}: {info.reason}"
    if message not in _logged:
        _logged.add(message)
        logger.info(message)
    return info.precision
