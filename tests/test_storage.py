"""The proof-of-delivery file store (filesystem and S3, the latter against a local S3-compatible server) and
the image cleaning that runs before anything is stored."""
from __future__ import annotations

import io
import socket

import pytest
from PIL import Image

from app.errors import ValidationError
from app.services.shipments.evidence_images import MAX_SIDE, clean_image
from app.services.shipments.storage import LocalFileStore, StorageError, StoredFileMissing, check_key, open_store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto in server mode: a real HTTP S3 API on 127.0.0.1, never AWS."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_config(s3_endpoint, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"pod-{_free_port()}"
    boto3.client("s3", region_name="ap-south-1", endpoint_url=s3_endpoint).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    return {"STORAGE_BACKEND": "s3", "S3_BUCKET": bucket, "S3_PREFIX": "proof/", "S3_ENDPOINT_URL": s3_endpoint,
            "AWS_REGION": "ap-south-1", "STORAGE_DIR": None}


@pytest.mark.parametrize("make_store", ["filesystem", "s3"])
def test_a_stored_file_reads_back_and_is_never_overwritten(make_store, tmp_path, request):
    config = ({"STORAGE_BACKEND": "filesystem", "STORAGE_DIR": str(tmp_path)} if make_store == "filesystem"
              else request.getfixturevalue("s3_config"))
    store = open_store(config)
    store.put("pod/3ee0afad/12-signature.png", b"\x89PNG first", "image/png")
    assert store.get("pod/3ee0afad/12-signature.png") == b"\x89PNG first"
    with pytest.raises(StorageError):
        store.put("pod/3ee0afad/12-signature.png", b"second", "image/png")
    assert store.get("pod/3ee0afad/12-signature.png") == b"\x89PNG first"
    with pytest.raises(StoredFileMissing):
        store.get("pod/3ee0afad/13-photo.jpg")


def test_s3_objects_land_under_the_prefix_encrypted(s3_config):
    import boto3

    open_store(s3_config).put("pod/a/1-photo.jpg", b"jpeg", "image/jpeg")
    client = boto3.client("s3", region_name="ap-south-1", endpoint_url=s3_config["S3_ENDPOINT_URL"])
    head = client.head_object(Bucket=s3_config["S3_BUCKET"], Key="proof/pod/a/1-photo.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["ServerSideEncryption"] == "AES256"


def test_an_unreachable_s3_is_a_storage_error(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = open_store({"STORAGE_BACKEND": "s3", "S3_BUCKET": "b", "S3_PREFIX": "", "AWS_REGION": "ap-south-1",
                        "S3_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}"})
    with pytest.raises(StorageError):
        store.put("pod/a/1.png", b"x", "image/png")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "pod/../x", "Pod/Upper", "pod//x", "", "pod/x y"])
def test_keys_that_could_escape_or_surprise_are_refused(key, tmp_path):
    with pytest.raises(ValueError):
        check_key(key)
    with pytest.raises(ValueError):
        LocalFileStore(tmp_path).put(key, b"x", "text/plain")


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError):
        open_store({"STORAGE_BACKEND": "ftp"})


def _image(fmt: str, size=(64, 48), mode="RGB", **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "white").save(out, format=fmt, **save)
    return out.getvalue()


def test_a_photo_loses_its_metadata_and_is_scaled_down():
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {2: (12.0, 58.0, 0.0)}  # GPS latitude
    photo = _image("JPEG", size=(4000, 3000), exif=exif.tobytes(), comment=b"flat 4B, MG Road")
    cleaned = clean_image(photo, "photo")
    assert cleaned.content_type == "image/jpeg" and cleaned.extension == "jpg"
    assert max(cleaned.width, cleaned.height) == MAX_SIDE
    with Image.open(io.BytesIO(cleaned.data)) as result:
        assert not result.getexif()
        assert "comment" not in result.info and "exif" not in result.info
    assert b"MG Road" not in cleaned.data and b"PhoneMaker" not in cleaned.data


def test_a_signature_stays_a_png_with_transparency():
    cleaned = clean_image(_image("PNG", mode="RGBA"), "signature", as_png=True)
    assert cleaned.content_type == "image/png"
    with Image.open(io.BytesIO(cleaned.data)) as result:
        assert result.format == "PNG" and result.mode == "RGBA"


@pytest.mark.parametrize("data", [b"", b"not an image", _image("GIF"), _image("BMP"),
                                  _image("PNG")[:40], b"\xff\xd8\xff" + b"\x00" * 100])
def test_anything_but_a_sane_jpeg_or_png_is_refused(data):
    with pytest.raises(ValidationError) as caught:
        clean_image(data, "photo")
    assert "photo" in caught.value.fields


def test_oversized_files_and_pixel_bombs_are_refused():
    with pytest.raises(ValidationError):
        clean_image(b"\xff\xd8" + b"\x00" * (5 * 1024 * 1024 + 1), "photo")
    bomb = _image("PNG", size=(8000, 6000), mode="1")  # 48 Mpx in a few kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(ValidationError) as caught:
        clean_image(bomb, "photo")
    assert "pixels" in caught.value.fields["photo"]
