"""The folder manifest protocol, without a server."""

import json

import pytest

from keras_cnnkit.errors import IntegrityError
from keras_cnnkit.io._manifest import check_listed, decode_manifest, encode_manifest


class _Blob:
    def __init__(self, crc32c, size):
        self.crc32c, self.size = crc32c, size


def test_a_manifest_reads_back_what_it_lists():
    entries = [{"path": "variables/v.index", "size": 12, "crc32c": "AAAAAA=="}]
    assert decode_manifest(encode_manifest(entries).encode(), "gs://b/m/")["files"] == entries


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ([{"path": "../escape", "size": 1, "crc32c": "x"}], "unsafe path"),
        ([{"path": "/abs", "size": 1, "crc32c": "x"}], "unsafe path"),
        ([{"path": "a", "crc32c": "x"}], "size"),
    ],
)
def test_a_manifest_that_could_mislead_is_refused(files, reason):
    text = json.loads(encode_manifest([]))
    text["files"] = files
    with pytest.raises(IntegrityError, match=f"manifest of 'gs://b/m/' is invalid: .*{reason}"):
        decode_manifest(json.dumps(text).encode(), "gs://b/m/")


def test_a_foreign_json_is_not_a_manifest():
    with pytest.raises(IntegrityError, match="not a keras_cnnkit manifest"):
        decode_manifest(b'{"files": []}', "gs://b/m/")


def test_a_listed_file_must_exist_and_match():
    entry = {"path": "a", "size": 3, "crc32c": "abc="}
    check_listed(_Blob("abc=", 3), entry, "gs://b/m/a", "gs://b/m/")
    with pytest.raises(IntegrityError, match="does not exist"):
        check_listed(None, entry, "gs://b/m/a", "gs://b/m/")
    with pytest.raises(IntegrityError, match="changed after the upload"):
        check_listed(_Blob("abd=", 3), entry, "gs://b/m/a", "gs://b/m/")
