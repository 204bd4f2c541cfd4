"""Data at scale: a full epoch from a JPEG folder, from packed shards, from shards in a bucket.

One run, per data set (the CIFAR-10 training JPEGs at their 32x32 size, and generated
640x480 photo-sized JPEGs resized to 224x224), all shuffled batches of ``--batch``:

* pack: ``keras_cnnkit.data.pack`` of the folder into local shards, and into a bucket on
  a local fake-gcs-server (images/s, MB/s of source files);
* folder: ``from_directory`` (its up-front file check timed separately as "build");
* local shards: ``from_shards`` on the local manifest;
* bucket shards: ``from_shards`` on the bucket's manifest, read through
  google-cloud-storage into a local cache; "cold" starts with an empty cache (the
  download is part of the epoch), "warm" finds the cache;

"first" is the first epoch after building (tracing included), "warm" the best of two
further epochs. Ratios: shards over folder, bucket over local shards. The 1-minute load
average before each row is recorded: the machine is shared, so rates are lower bounds.

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


def rates(ds, n_expected: int) -> dict:
    first, n = epoch(ds)
    assert n == n_expected, (n, n_expected)
    warm = min(epoch(ds)[0] for _ in range(2))
    return {
        "first_s": round(first, 3),
        "warm_s": round(warm, 3),
        "first_ips": round(n / first, 1),
        "warm_ips": round(n / warm, 1),
    }


def source_bytes(root: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def measure(
    name: str, root: pathlib.Path, size, batch: int, work: pathlib.Path, gcs, bucket
) -> dict:
    print(f"== {name}: {root}", flush=True)
    row: dict = {"name": name, "image_size": list(size), "batch": batch}
    mb = source_bytes(root) / 1e6
    shard_dir = work / f"{name}-shards"
    shutil.rmtree(shard_dir, ignore_errors=True)
    row["load_before_pack"] = load()
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

    row["load_before_folder"] = load()
    start = time.perf_counter()
    folder = from_directory(root, image_size=size, batch_size=batch, seed=0)
    row["folder_build_s"] = round(time.perf_counter() - start, 2)
    row["folder"] = rates(folder, n)
    print(row["folder"], flush=True)
    del folder

    row["load_before_shards"] = load()
    start = time.perf_counter()
    local = from_shards(result.manifest_uri, image_size=size, batch_size=batch, seed=0)
    row["shards_build_s"] = round(time.perf_counter() - start, 2)
    row["shards"] = rates(local, n)
    print(row["shards"], flush=True)
    del local

    row["load_before_bucket"] = load()
    cache = work / f"{name}-cache"
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    cold = from_shards(
        f"{uri}/manifest.json", image_size=size, batch_size=batch, seed=0, cache_dir=cache, gcs=gcs
    )
    build = time.perf_counter() - start
    first, count = epoch(cold)
    assert count == n
    row["bucket_cold"] = {
        "download_s": round(build, 2),
        "first_s": round(build + first, 3),
        "first_ips": round(n / (build + first), 1),
    }
    start = time.perf_counter()
    warm_ds = from_shards(
        f"{uri}/manifest.json", image_size=size, batch_size=batch, seed=0, cache_dir=cache, gcs=gcs
    )
    row["bucket_warm_build_s"] = round(time.perf_counter() - start, 2)
    row["bucket"] = rates(warm_ds, n)
    print(row["bucket_cold"], row["bucket"], flush=True)
    row["shards_over_folder"] = round(row["shards"]["warm_ips"] / row["folder"]["warm_ips"], 2)
    row["shards_over_folder_first"] = round(
        row["shards"]["first_ips"] / row["folder"]["first_ips"], 2
    )
    row["bucket_over_shards"] = round(row["bucket"]["warm_ips"] / row["shards"]["warm_ips"], 2)
    row["bucket_cold_over_shards_first"] = round(
        row["bucket_cold"]["first_ips"] / row["shards"]["first_ips"], 2
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
        f"Config: CIFAR-10 JPEGs {args.cifar_images}, photos {args.photos} (640x480 "
        "JPEGs); shards of 64 MB; bucket = fake-gcs-server "
        "on 127.0.0.1 (google-cloud-storage into a local cache). Machine shared with other "
        "work: the load average before each measurement is listed.",
        "",
        "| data | images | folder img/s (first / warm) | local shards img/s (first / warm) "
        "| bucket img/s (cold / warm) | shards / folder (warm) | bucket / shards (warm) "
        "| pack local img/s, MB/s | pack to bucket img/s, MB/s | folder build s | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} ({r['image_size'][0]}x{r['image_size'][1]}) | {r['images']} "
            f"| {r['folder']['first_ips']:.0f} / {r['folder']['warm_ips']:.0f} "
            f"| {r['shards']['first_ips']:.0f} / {r['shards']['warm_ips']:.0f} "
            f"| {r['bucket_cold']['first_ips']:.0f} / {r['bucket']['warm_ips']:.0f} "
            f"| {r['shards_over_folder']:.2f}x | {r['bucket_over_shards']:.2f}x "
            f"| {r['pack_local']['ips']:.0f}, {r['pack_local']['mb_s']:.1f} "
            f"| {r['pack_bucket']['ips']:.0f}, {r['pack_bucket']['mb_s']:.1f} "
            f"| {r['folder_build_s']:.1f} "
            f"| {r['load_before_folder']} / {r['load_before_shards']} / {r['load_before_bucket']} |"
        )
    lines += [
        "",
        "Targets: local shards >= 2x the folder route on the CIFAR-10 JPEGs; bucket >= 0.8x "
        "local shards. "
        + "; ".join(
            f"{r['name']}: shards/folder {r['shards_over_folder']:.2f}x "
            f"({'met' if r['shards_over_folder'] >= 2 else 'NOT met'}), bucket/shards "
            f"{r['bucket_over_shards']:.2f}x ({'met' if r['bucket_over_shards'] >= 0.8 else 'NOT met'})"
            for r in rows
        ),
        "",
        "first = the first epoch after building the pipeline (tracing included; for the "
        "bucket, cold = an empty cache, the download counted in); warm = best of two further "
        "epochs. The folder route's build is its up-front check of every file (one decode "
        "each); the shard routes check files once, when packing. Load = 1-min load average "
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
