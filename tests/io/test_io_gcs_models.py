import numpy as np
import pytest
from _io_helpers import build_tiny_model

from keras_cnnkit.errors import IntegrityError, StorageError
from keras_cnnkit.io import download, export, load, load_weights, save, save_weights
from keras_cnnkit.io.gcs import MANIFEST_NAME

CLASSES = ["a", "b", "c"]


def test_model_roundtrip_through_gcs(gcs, gcs_client, bucket, tiny_model, images):
    uri = f"gs://{bucket}/models/model.keras"
    meta = save(tiny_model, uri, {"class_names": CLASSES}, gcs=gcs)
    names = sorted(b.name for b in gcs_client.list_blobs(bucket))
    assert names == ["models/model.keras", "models/model.keras.json"]
    model, got = load(uri, gcs=gcs)
    assert got.sha256 == meta.sha256 and got.class_names == CLASSES
    np.testing.assert_array_equal(
        model.predict(images, verbose=0), tiny_model.predict(images, verbose=0)
    )

    with pytest.raises(StorageError, match="already exists"):
        save(build_tiny_model("other"), uri, gcs=gcs)
    save(build_tiny_model("other"), uri, gcs=gcs, overwrite=True)
    assert load(uri, gcs=gcs).model.name == "other"


def test_replaced_model_object_is_detected(gcs, gcs_client, bucket, tiny_model, tmp_path):
    uri = f"gs://{bucket}/m.keras"
    save(tiny_model, uri, gcs=gcs)
    other = tmp_path / "other.keras"
    build_tiny_model("other").save(other)
    gcs_client.bucket(bucket).blob("m.keras").upload_from_filename(str(other))
    with pytest.raises(IntegrityError, match="sha256"):
        load(uri, gcs=gcs)
    gcs_client.bucket(bucket).blob("plain.keras").upload_from_filename(str(other))
    with pytest.raises(StorageError, match="no metadata object.*verify=False"):
        load(f"gs://{bucket}/plain.keras", gcs=gcs)
    assert load(f"gs://{bucket}/plain.keras", gcs=gcs, verify=False).model.name == "other"


def test_weights_through_gcs(gcs, bucket, tiny_model, images):
    uri = f"gs://{bucket}/ckpt/w.weights.h5"
    save_weights(tiny_model, uri, gcs=gcs)
    fresh = build_tiny_model()
    load_weights(fresh, uri, gcs=gcs)
    np.testing.assert_array_equal(
        fresh.predict(images, verbose=0), tiny_model.predict(images, verbose=0)
    )


@pytest.mark.tensorflow("SavedModel export")
def test_export_to_gcs_then_serve(gcs, gcs_client, bucket, tiny_model, images, tmp_path):
    import tensorflow as tf

    uri = f"gs://{bucket}/serving/1"
    export(tiny_model, uri, metadata={"class_names": CLASSES}, gcs=gcs)
    names = {b.name for b in gcs_client.list_blobs(bucket, prefix="serving/1/")}
    assert f"serving/1/{MANIFEST_NAME}" in names
    assert "serving/1/saved_model.pb" in names
    assert "serving/1/assets.extra/keras_cnnkit.json" in names

    local = tmp_path / "serving" / "1"
    local.parent.mkdir()
    download(uri, local, gcs=gcs, progress=False)
    fn = tf.saved_model.load(str(local)).signatures["serving_default"]
    np.testing.assert_allclose(
        fn(images=tf.constant(images))["scores"].numpy(),
        tiny_model.predict(images, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
    with pytest.raises(StorageError, match="already holds"):
        export(tiny_model, uri, gcs=gcs)
