"""Fixtures that write real image files of every kind with Pillow."""

from __future__ import annotations

import pathlib
import struct
import zlib

import numpy as np
import pytest
from PIL import Image


def write_rgb(
    path: pathlib.Path, size=(40, 30), seed: int = 0, fmt: str | None = None
) -> pathlib.Path:
    """A random RGB image (width, height) = size."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, fmt)
    return path


def write_truncated_jpeg(path: pathlib.Path) -> pathlib.Path:
    write_rgb(path, (64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_huge_png_header(path: pathlib.Path, width=100_000, height=100_000) -> pathlib.Path:
    """A tiny file whose PNG header claims ``width x height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, i = [], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        chunks.append((data[i + 4 : i + 8], data[i + 8 : i + 8 + n]))
        i += 12 + n
    return chunks


def _png_from_chunks(chunks) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body
        out += struct.pack(">I", zlib.crc32(kind + body))
    return out


def write_png_bad_zlib(path: pathlib.Path) -> pathlib.Path:
    """A PNG whose IDAT holds a corrupt zlib stream, with valid chunk checksums."""
    write_rgb(path, (64, 64), fmt="PNG")
    chunks = [
        (k, d[:20] + bytes(b ^ 0xFF for b in d[20:60]) + d[60:] if k == b"IDAT" else d)
        for k, d in _png_chunks(path.read_bytes())
    ]
    path.write_bytes(_png_from_chunks(chunks))
    return path


def write_png_short_idat(path: pathlib.Path) -> pathlib.Path:
    """A PNG whose IDAT stops early (valid checksums, too few pixels)."""
    write_rgb(path, (64, 64), fmt="PNG")
    chunks = [
        (k, d[: len(d) // 3] if k == b"IDAT" else d) for k, d in _png_chunks(path.read_bytes())
    ]
    path.write_bytes(_png_from_chunks(chunks))
    return path


@pytest.fixture
def image_tree(tmp_path) -> pathlib.Path:
    """``root/{cat,dog}/`` with 6 distinct RGB JPEGs and PNGs each (sizes vary)."""
    root = tmp_path / "tree"
    for c, name in enumerate(("cat", "dog")):
        for i in range(6):
            ext = "jpg" if i % 2 == 0 else "png"
            write_rgb(root / name / f"{i}.{ext}", size=(30 + 4 * i, 24 + 2 * i), seed=10 * c + i)
    return root


@pytest.fixture
def writers():
    """The file writers above, for tests that need odd files."""
    import types

    return types.SimpleNamespace(
        rgb=write_rgb,
        truncated_jpeg=write_truncated_jpeg,
        huge_png_header=write_huge_png_header,
        png_bad_zlib=write_png_bad_zlib,
        png_short_idat=write_png_short_idat,
    )
