"""Data at scale: a full epoch from a JPEG folder, from packed shards, from shards in a bucket.

One run, per data set (the CIFAR-10 training JPEGs at their 32x32 size, and generated
640x480 photo-sized JPEGs resized to 224x224), all shuffled batches:

* pack: ``keras_cnnkit.data.pack`` of the folder into local shards, and into a bucket on
  a local fake-gcs-server (images/s, MB/s of source files);
* folder: ``from_directory``;
* local shards: ``from_shards`` on the local manifest;
* bucket shards: ``from_shards`` on the bucket's manifest, read through
  google-cloud-storage into a local cache.

"Cold": the files evicted from the page cache, the pipeline built (the folder route checks
every file; the bucket route downloads into an empty cache) and one epoch read; "warm":
the best of two further epochs. Ratios: shards over folder, bucket over local shards. The
1-minute load average before each row is recorded: the machine is shared, so rates are
lower bounds.

Run: ``python benchmarks/data_scale.py [--cifar-images 50000] [--photos 300]``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import time
import uuid

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _common import CACHE, machine, machine_markdown, write_results  # noqa: E402
from pipeline import cifar_subset, photo_set  # noqa: E402

from keras_cnnkit.data import from_directory, from_shards, pack  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "io"))


def load() -> float:
    return round(os.getloadavg()[0], 2)


def epoch(ds) -> tuple[float, int]:
    start = time.perf_counter()
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    return time.perf_counter() - start, n


def evict(paths) -> None:
    """Drop the files' pages from the OS page cache (posix_fadvise DONTNEED): a cold read."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def route(build, n: int, files) -> dict:
    """Cold and warm images/s of the pipeline ``build()`` makes (see the module's text)."""
    if files is not None:
        evict(files())
    start = time.perf_counter()
    ds = build()
    built = time.perf_counter() - start
    first, count = epoch(ds)
    assert count == n, (count, n)
    warm = min(epoch(ds)[0] for _ in range(2))
    return {
        "build_s": round(built, 2),
        "cold_s": round(built + first, 2),
        "warm_s": round(warm, 3),
        "cold_ips": round(n / (built + first), 1),
        "warm_ips": round(n / warm, 1),
    }


def records_from_bucket(manifest_uri: str, manifest: dict, cache, gcs) -> dict:
    """Getting the shards' records out of the bucket, two ways (decoding is the same after).

    ``cache``: what ``from_shards`` does, download every shard into an empty local cache
    (checked) and read the files with ``tf.data.TFRecordDataset``. ``stream``: the
    alternative, each shard streamed through google-cloud-storage's reader into a Python
    generator that splits the TFRecord framing, fed to ``tf.data`` with
    ``from_generator``.
    """
    import struct

    import tensorflow as tf

    from keras_cnnkit.data._shards import local_shards
    from keras_cnnkit.data._store import Store

    names = [s["name"] for s in manifest["splits"]["train"]["shards"]]
    folder = manifest_uri.rsplit("/", 1)[0]
    store = Store(folder, gcs)
    n_records = manifest["splits"]["train"]["count"]

    def count(ds) -> int:
        return int(ds.reduce(np.int64(0), lambda c, _: c + 1))

    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    files = local_shards(store, manifest["splits"]["train"]["shards"], cache)
    assert count(tf.data.TFRecordDataset(files)) == n_records
    cached = time.perf_counter() - start
    bucket = gcs.client.bucket(folder[len("gs://") :].split("/", 1)[0])
    prefix = folder[len("gs://") :].split("/", 1)[1]

    def stream():
        for name in names:
            with bucket.blob(f"{prefix}/{name}").open("rb", chunk_size=8 << 20) as f:
                while head := f.read(12):
                    (size,) = struct.unpack("<Q", head[:8])
                    yield f.read(size)
                    f.read(4)

    start = time.perf_counter()
    ds = tf.data.Dataset.from_generator(stream, output_signature=tf.TensorSpec([], tf.string))
    assert count(ds) == n_records
    streamed = time.perf_counter() - start
    shutil.rmtree(cache, ignore_errors=True)
    return {
        "cache_s": round(cached, 2),
        "stream_s": round(streamed, 2),
        "cache_rps": round(n_records / cached, 1),
        "stream_rps": round(n_records / streamed, 1),
    }


def source_files(root: pathlib.Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file()]


def measure(
    name: str, root: pathlib.Path, size, batch: int, work: pathlib.Path, gcs, bucket
) -> dict:
    print(f"== {name}: {root}", flush=True)
    row: dict = {"name": name, "image_size": list(size), "batch": batch}
    files = source_files(root)
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    shard_dir = work / f"{name}-shards"
    shutil.rmtree(shard_dir, ignore_errors=True)
    row["load_before_pack"] = load()
    evict(files)
    result = pack(root, shard_dir, shard_size="64MB", progress=False)
    n = result.num_images
    row.update(
        images=n,
        source_mb=round(mb, 1),
        shard_mb=round(result.bytes / 1e6, 1),
        shards=len(result.manifest["splits"]["train"]["shards"]),
    )
    row["pack_local"] = {
        "s": round(result.seconds, 2),
        "ips": round(n / result.seconds, 1),
        "mb_s": round(mb / result.seconds, 1),
    }
    uri = f"gs://{bucket}/{name}"
    row["load_before_pack_bucket"] = load()
    remote = pack(root, uri, shard_size="64MB", progress=False, gcs=gcs)
    row["pack_bucket"] = {
        "s": round(remote.seconds, 2),
        "ips": round(n / remote.seconds, 1),
        "mb_s": round(mb / remote.seconds, 1),
    }
    print(row, flush=True)
    kw = {"image_size": size, "batch_size": batch, "seed": 0}

    row["load_before_folder"] = load()
    row["folder"] = route(lambda: from_directory(root, **kw), n, lambda: files)
    print("folder", row["folder"], flush=True)

    row["load_before_shards"] = load()
    shard_files = [str(shard_dir / s["name"]) for s in result.manifest["splits"]["train"]["shards"]]
    row["shards"] = route(lambda: from_shards(result.manifest_uri, **kw), n, lambda: shard_files)
    print("shards", row["shards"], flush=True)

    row["load_before_bucket"] = load()
    cache = work / f"{name}-cache"
    shutil.rmtree(cache, ignore_errors=True)  # cold: an empty cache, the download counted in
    manifest = f"{uri}/manifest.json"
    row["bucket"] = route(lambda: from_shards(manifest, cache_dir=cache, gcs=gcs, **kw), n, None)
    print("bucket", row["bucket"], flush=True)
    row["records"] = records_from_bucket(manifest, result.manifest, cache, gcs)
    print("records", row["records"], flush=True)
    for key in ("cold", "warm"):
        row[f"shards_over_folder_{key}"] = round(
            row["shards"][f"{key}_ips"] / row["folder"][f"{key}_ips"], 2
        )
        row[f"bucket_over_shards_{key}"] = round(
            row["bucket"][f"{key}_ips"] / row["shards"][f"{key}_ips"], 2
        )
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(shard_dir, ignore_errors=True)
    return row


def markdown(rows: list[dict], m: dict, args) -> str:
    lines = [
        "# Data at scale: folder vs shards vs bucket",
        "",
        machine_markdown(m),
        "",
        f"Config: CIFAR-10 JPEGs {args.cifar_images} (32x32, batches of {args.batch}), photos "
        f"{args.photos} (640x480 JPEGs to 224x224, batches of 32); shards of 64 MB; bucket = "
        "fake-gcs-server on 127.0.0.1, read through google-cloud-storage into a local cache. "
        f"Load average (1 min) at start {m['load_start']}, at end {m['load_end']}: the 2 "
        "cores were shared with other work, so every rate is a lower bound.",
        "",
        "| data | images | folder img/s cold / warm | local shards img/s cold / warm "
        "| bucket img/s cold / warm | shards / folder cold, warm | bucket / shards cold, warm "
        "| pack local img/s (MB/s) | pack to bucket img/s (MB/s) | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        f, s_, b = r["folder"], r["shards"], r["bucket"]
        lines.append(
            f"| {r['name']} | {r['images']} "
            f"| {f['cold_ips']:.0f} / {f['warm_ips']:.0f} "
            f"| {s_['cold_ips']:.0f} / {s_['warm_ips']:.0f} "
            f"| {b['cold_ips']:.0f} / {b['warm_ips']:.0f} "
            f"| {r['shards_over_folder_cold']:.2f}x, {r['shards_over_folder_warm']:.2f}x "
            f"| {r['bucket_over_shards_cold']:.2f}x, {r['bucket_over_shards_warm']:.2f}x "
            f"| {r['pack_local']['ips']:.0f} ({r['pack_local']['mb_s']:.1f}) "
            f"| {r['pack_bucket']['ips']:.0f} ({r['pack_bucket']['mb_s']:.1f}) "
            f"| {r['load_before_folder']} / {r['load_before_shards']} / {r['load_before_bucket']} |"
        )
    lines += [
        "",
        "Records out of the bucket, the two ways (decoding is the same afterwards): "
        + "; ".join(
            f"{r['name']}: download into the cache then read "
            f"{r['records']['cache_rps']:.0f} records/s, streamed through a Python generator "
            f"{r['records']['stream_rps']:.0f} records/s"
            for r in rows
        )
        + ". from_shards uses the cache.",
    ]
    cifar = [r for r in rows if r["name"] == "cifar10"]
    if cifar:
        r = cifar[0]
        lines += [
            "",
            f"Targets on the CIFAR-10 JPEGs: local shards >= 2x the folder route: cold "
            f"{r['shards_over_folder_cold']:.2f}x "
            f"({'met' if r['shards_over_folder_cold'] >= 2 else 'not met'}), warm "
            f"{r['shards_over_folder_warm']:.2f}x "
            f"({'met' if r['shards_over_folder_warm'] >= 2 else 'not met'}); bucket >= 0.8x "
            f"local shards: cold {r['bucket_over_shards_cold']:.2f}x "
            f"({'met' if r['bucket_over_shards_cold'] >= 0.8 else 'not met'}), warm "
            f"{r['bucket_over_shards_warm']:.2f}x "
            f"({'met' if r['bucket_over_shards_warm'] >= 0.8 else 'not met'}).",
        ]
    lines += [
        "",
        "Cold: the files evicted from the page cache (posix_fadvise), the pipeline built and "
        "one epoch read, tracing included; the folder route's build is its check of every "
        "file (one decode each; the shard routes had theirs when packing), the bucket's "
        "build downloads the shards into an empty cache. Warm: the best of two further "
        "epochs. Pack: the check of every file plus writing (and uploading) the shards, "
        "from evicted source files; MB/s of source files. Load = 1-min load average "
        "before the folder / shards / bucket rows.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cifar-images", type=int, default=50000)
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    from _io_helpers import anonymous_client, start_fake_gcs

    from keras_cnnkit.io import GCSOptions

    server = start_fake_gcs()
    client = anonymous_client(server.url)
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    bucket = client.create_bucket(f"bench-{uuid.uuid4().hex[:8]}").name
    gcs = GCSOptions(client=client, timeout=120, deadline=120)
    work = CACHE / "data-scale-work"
    work.mkdir(parents=True, exist_ok=True)
    m = machine()
    m["load_start"] = load()
    rows = []
    try:
        root = cifar_subset(args.cifar_images)
        if root is not None:
            rows.append(measure("cifar10", root, (32, 32), args.batch, work, gcs, bucket))
        if args.photos:
            photos = photo_set(args.photos)
            rows.append(measure("photos", photos, (224, 224), 32, work, gcs, bucket))
    finally:
        for blob in client.list_blobs(bucket):
            blob.delete()
        client.close()
        server.stop()
    m["load_end"] = load()
    data = {"machine": m, "config": vars(args), "rows": rows}
    write_results("data_scale", data, markdown(rows, m, args))


if __name__ == "__main__":
    main()
