"""pack() and cnnkit pack: shards with a manifest, bad files skipped, resumable after SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from _shard_helpers import CLASSES, cnnkit_command, records, sigkill_once, write_tree

from keras_cnnkit.data import pack, split_indices
from keras_cnnkit.errors import DataError, ImageDecodeError, SpecError, StorageError

pytestmark = pytest.mark.tensorflow(reason="TFRecord shards are written with TensorFlow")


def _all_records(folder, manifest, split="train"):
    out = []
    for shard in manifest["splits"][split]["shards"]:
        out += records(folder / shard["name"])
    return out


def test_pack_folder_stores_file_bytes_labels_names_and_manifest(tmp_path):
    keys = write_tree(tmp_path / "src")
    (tmp_path / "src" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    result = pack(tmp_path / "src", tmp_path / "out", shard_size="6KB", progress=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest == result.manifest
    assert manifest["class_names"] == list(CLASSES)
    shards = manifest["splits"]["train"]["shards"]
    assert len(shards) > 2
    # Counts and checksums describe the files on disk; nothing else is in the folder.
    for shard in shards:
        path = tmp_path / "out" / shard["name"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == shard["sha256"]
        assert len(records(path)) == shard["count"]
        assert path.stat().st_size == shard["bytes"]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        ["manifest.json"] + [s["name"] for s in shards]
    )
    recs = _all_records(tmp_path / "out", manifest)
    assert sorted(r["filename"] for r in recs) == sorted(keys)  # each good file exactly once
    for r in recs:
        src = tmp_path / "src" / r["filename"]
        assert r["image"] == src.read_bytes()  # stored as it is
        assert CLASSES[r["label"]] == r["filename"].split("/")[0]
    # Classes are mixed over the shards (seeded order), not one class per shard.
    assert len({r["label"] for r in records(tmp_path / "out" / shards[0]["name"])}) > 1
    # The bad file is skipped, named, and recorded in the manifest.
    assert [s.path for s in result.report] == [
        item["path"] for item in manifest["skipped"]
    ] and manifest["skipped"][0]["path"].endswith("dog/broken.jpg")
    assert result.num_images == len(keys)


def test_pack_split_is_the_data_layers_split(tmp_path):
    keys = write_tree(tmp_path / "src")
    result = pack(tmp_path / "src", tmp_path / "out", validation_split=0.25, seed=3, progress=False)
    manifest = result.manifest
    assert manifest["split"]["validation_split"] == 0.25 and manifest["split"]["seed"] == 3
    train_idx, val_idx = split_indices(sorted(keys), 0.25, 3)
    want_val = {sorted(keys)[i] for i in val_idx}
    got_val = {r["filename"] for r in _all_records(tmp_path / "out", manifest, "validation")}
    got_train = {r["filename"] for r in _all_records(tmp_path / "out", manifest, "train")}
    assert got_val == want_val
    assert got_train == set(keys) - want_val
    assert manifest["splits"]["validation"]["count"] == len(want_val)


def test_pack_npz_and_file_list(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 6, 5, 3), dtype=np.uint8)
    y = np.arange(10) % 2
    np.savez(tmp_path / "d.npz", x=x, y=y, class_names=np.array(["a", "b"]))
    result = pack(tmp_path / "d.npz", tmp_path / "npz", progress=False)
    assert result.manifest["class_names"] == ["a", "b"]
    import tensorflow as tf

    recs = _all_records(tmp_path / "npz", result.manifest)
    by_key = {r["filename"]: r for r in recs}
    for i in range(10):
        r = by_key[f"x[{i}]"]
        np.testing.assert_array_equal(tf.io.decode_png(r["image"]).numpy(), x[i])  # lossless
        assert r["label"] == y[i]
    keys = write_tree(tmp_path / "src", per_class=2)
    files = [tmp_path / "src" / k for k in keys]
    labels = [CLASSES.index(k.split("/")[0]) for k in keys]
    listed = pack(files, tmp_path / "list", labels=labels, class_names=CLASSES, progress=False)
    assert listed.num_images == len(files)
    with pytest.raises(DataError, match="labels"):
        pack(files, tmp_path / "nolabels", progress=False)


def test_pack_refuses_bad_options_and_finished_packs(tmp_path):
    write_tree(tmp_path / "src", per_class=2)
    (tmp_path / "src" / "cat" / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ImageDecodeError, match="bad.png"):
        pack(tmp_path / "src", tmp_path / "strict", on_error="raise", progress=False)
    assert not (tmp_path / "strict" / "manifest.json").exists()
    with pytest.raises(SpecError, match="shard_size"):
        pack(tmp_path / "src", tmp_path / "o", shard_size="lots", progress=False)
    with pytest.raises(DataError, match="not a folder"):
        pack(tmp_path / "missing", tmp_path / "o", progress=False)
    pack(tmp_path / "src", tmp_path / "done", progress=False)
    with pytest.raises(StorageError, match="finished pack"):
        pack(tmp_path / "src", tmp_path / "done", progress=False)
    again = pack(tmp_path / "src", tmp_path / "done", overwrite=True, progress=False)
    assert again.num_images == 6


def test_cnnkit_pack_command(tmp_path, capsys):
    from keras_cnnkit.cli.main import main

    write_tree(tmp_path / "src", per_class=3)
    code = main(["pack", str(tmp_path / "src"), str(tmp_path / "out"), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "packed 9 images" in out and str(tmp_path / "out" / "manifest.json") in out
    assert main(["pack", str(tmp_path / "src"), str(tmp_path / "out"), "--no-progress"]) == 1


def test_killed_pack_resumes_without_duplicates_or_losses(tmp_path):
    """A real ``cnnkit pack`` process is SIGKILLed after its first shards; the rerun completes."""
    keys = write_tree(tmp_path / "src", per_class=40, size=(48, 40))
    out = tmp_path / "out"
    argv = cnnkit_command("pack", str(tmp_path / "src"), str(out), "--shard-size", "4KB")
    state = out / ".pack-state.json"

    def ready():
        try:
            data = json.loads(state.read_text())
        except (OSError, ValueError):
            return None
        done = len(data["splits"]["train"]["shards"])
        return done if done >= 3 else None

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done, code, output = sigkill_once(argv, env, ready, timeout_s=120, poll_s=0.01)
    assert done is not None, output[-2000:]
    assert code == -9
    assert not (out / "manifest.json").exists()  # an unfinished pack has no manifest
    before = json.loads(state.read_text())
    assert before["splits"]["train"]["next"] < len(keys)
    result = pack(tmp_path / "src", out, shard_size="4KB", progress=False)
    assert result.resumed
    manifest = result.manifest
    names = [s["name"] for s in manifest["splits"]["train"]["shards"]]
    # The shards of the first run are kept as they were, and every image is there once.
    assert names[: len(before["splits"]["train"]["shards"])] == [
        s["name"] for s in before["splits"]["train"]["shards"]
    ]
    filenames = [r["filename"] for r in _all_records(out, manifest)]
    assert sorted(filenames) == sorted(keys)
    # No partial shard, temporary file or state file is left.
    assert sorted(os.listdir(out)) == sorted(["manifest.json", *names])
    for shard in manifest["splits"]["train"]["shards"]:
        assert hashlib.sha256((out / shard["name"]).read_bytes()).hexdigest() == shard["sha256"]


def test_pack_reports_progress_in_source_bytes(tmp_path):
    keys = write_tree(tmp_path / "src", per_class=4)
    calls = []
    pack(
        tmp_path / "src", tmp_path / "out", progress=lambda done, total: calls.append((done, total))
    )
    total = sum((tmp_path / "src" / k).stat().st_size for k in keys)
    assert calls and calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_min_shards_splits_a_small_set_for_several_readers(tmp_path):
    keys = write_tree(tmp_path / "src", per_class=8)
    one = pack(tmp_path / "src", tmp_path / "one", progress=False)
    assert len(one.manifest["splits"]["train"]["shards"]) == 1  # 128MB holds them all
    four = pack(tmp_path / "src", tmp_path / "four", min_shards=4, progress=False)
    shards = four.manifest["splits"]["train"]["shards"]
    assert len(shards) >= 4
    assert sorted(
        r["filename"] for s in shards for r in records(tmp_path / "four" / s["name"])
    ) == sorted(keys)
    with pytest.raises(SpecError, match="min_shards"):
        pack(tmp_path / "src", tmp_path / "zero", min_shards=0, progress=False)


def test_reencode_stores_the_decoded_pixels_in_the_asked_format(tmp_path):
    import tensorflow as tf

    from keras_cnnkit.data import read_image

    keys = write_tree(tmp_path / "src", per_class=2)
    result = pack(tmp_path / "src", tmp_path / "png", reencode="png", progress=False)
    assert result.manifest["reencode"] == "png"
    for r in _all_records(tmp_path / "png", result.manifest):
        assert r["image"].startswith(b"\x89PNG")
        want = read_image(tmp_path / "src" / r["filename"])  # the data layer's decoder
        np.testing.assert_array_equal(tf.io.decode_png(r["image"]).numpy(), want)
    assert len(_all_records(tmp_path / "png", result.manifest)) == len(keys)
    with pytest.raises(SpecError, match="reencode"):
        pack(tmp_path / "src", tmp_path / "x", reencode="gif", progress=False)
