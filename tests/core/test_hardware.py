import pathlib

import keras
import pytest

from keras_cnnkit import detect_hardware, resolve_precision
from keras_cnnkit.errors import PrecisionError
from keras_cnnkit.hardware import PRECISIONS, choose_precision


@pytest.mark.parametrize(
    "backend, flags, onednn, gpus, expected",
    [
        (
            "tensorflow",
            {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"},
            True,
            [],
            "mixed_bfloat16",
        ),
        ("tensorflow", {"avx2", "avx512f", "avx512_bf16"}, True, [], "float32"),
        ("tensorflow", {"avx2", "fma"}, True, [], "float32"),
        ("tensorflow", {"amx_bf16"}, False, [], "float32"),
        ("jax", {"amx_bf16"}, False, [], "float32"),
        ("tensorflow", set(), True, [("NVIDIA H100", (9, 0))], "mixed_float16"),
        ("tensorflow", set(), True, [("Tesla P100", (6, 0))], "float32"),
        ("jax", set(), False, [("NVIDIA A100", (8, 0))], "mixed_float16"),
    ],
)
def test_precision_rule(backend, flags, onednn, gpus, expected):
    precision, reason = choose_precision(backend, flags, onednn, gpus)
    assert precision == expected
    assert reason


def test_never_bf16_on_a_cpu_without_native_support():
    for flags in ({"avx2"}, {"avx2", "avx512f"}, {"avx512f", "avx512_bf16"}):
        assert "bfloat16" not in choose_precision("tensorflow", flags, True)[0]
    for vendor in ("GenuineIntel", "AuthenticAMD"):
        assert (
            "bfloat16"
            not in choose_precision("tensorflow", {"avx512f"}, True, cpu_vendor=vendor)[0]
        )


def test_bf16_on_amd_with_avx512_bf16_and_onednn_only():
    flags = {"avx2", "avx512f", "avx512_bf16"}
    precision, reason = choose_precision("tensorflow", flags, True, cpu_vendor="AuthenticAMD")
    assert precision == "mixed_bfloat16"
    assert "AVX512-BF16" in reason
    assert choose_precision("tensorflow", flags, True, cpu_vendor="GenuineIntel")[0] == "float32"
    assert choose_precision("tensorflow", flags, False, cpu_vendor="AuthenticAMD")[0] == "float32"
    assert choose_precision("jax", flags, False, cpu_vendor="AuthenticAMD")[0] == "float32"


def test_detection_agrees_with_this_machine():
    info = detect_hardware()
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo")
    flags, vendor = set(), ""
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("vendor_id") and not vendor:
            vendor = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    assert info.backend == keras.backend.backend()
    assert set(info.isa) <= flags
    if info.device == "cpu":
        native = "amx_bf16" in flags or ("avx512_bf16" in flags and vendor == "AuthenticAMD")
        assert info.precision == ("mixed_bfloat16" if native and info.onednn else "float32")
    assert info.as_dict()["precision"] == info.precision
    assert "precision" in str(info)


def test_onednn_off_disables_bf16(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    detect_hardware.cache_clear()
    try:
        info = detect_hardware()
        assert info.onednn is False
        assert info.precision == "float32" or info.device == "gpu"
    finally:
        detect_hardware.cache_clear()


def test_resolve_precision(caplog):
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert resolve_precision("auto") == detect_hardware().precision
    with pytest.raises(PrecisionError, match="unknown precision 'fp8'"):
        resolve_precision("fp8")
    assert "auto" in PRECISIONS
