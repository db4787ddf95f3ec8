"""Every file a run reads or writes goes through `tf.io.gfile`, so a run directory can live on any
file system TensorFlow knows: local disk, `gs://` (Cloud TPU and most clusters), `s3://` or `hdfs://`
with their plug-ins, or the in-memory `ram://` the tests use. Paths are plain strings: `pathlib`
would fold `gs://bucket` into `gs:/bucket`.

Writes are atomic where a reader may look at the same time (a file is written beside its destination
and renamed over it, a local export directory likewise), so a kill never leaves half a file behind.
"""

from __future__ import annotations

import glob as local_glob
import os
import posixpath
import shutil
import uuid
from collections.abc import Callable

import tensorflow as tf

gfile = tf.io.gfile


def join(base: str | os.PathLike, *parts: str) -> str:
    return posixpath.join(os.fspath(base), *parts)


def exists(path: str | os.PathLike) -> bool:
    return gfile.exists(os.fspath(path))


def makedirs(path: str | os.PathLike) -> None:
    gfile.makedirs(os.fspath(path))


def glob(pattern: str) -> list[str]:
    return sorted(gfile.glob(pattern))


def read_bytes(path: str | os.PathLike) -> bytes:
    with gfile.GFile(os.fspath(path), "rb") as handle:
        return handle.read()


def read_text(path: str | os.PathLike) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (parent folders created)."""
    path = os.fspath(path)
    makedirs(posixpath.dirname(path) or ".")
    temporary = f"{path}.tmp-{os.getpid()}"
    with gfile.GFile(temporary, "wb") as handle:
        handle.write(data)
    gfile.rename(temporary, path, overwrite=True)


def write_png(path: str, figure) -> None:
    """Save a matplotlib figure as PNG to `path` on any file system (matplotlib writes local files only)
    and close it."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_bytes(path, buffer.getvalue())


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def remove_tree(path: str | os.PathLike) -> None:
    if exists(path):
        gfile.rmtree(os.fspath(path))


def size(path: str | os.PathLike) -> int:
    return gfile.stat(os.fspath(path)).length


def write_directory(directory: str | os.PathLike, write: Callable[[str], object]) -> str:
    """`write(staging)` fills a new directory beside `directory`, which then takes its place: a kill
    mid-export leaves the previous export (or none) whole, and a server watching the parent folder
    (TensorFlow Serving polls a model's folder for new version numbers) never loads half of one.
    Staging folders are hidden (`.NAME.partial-...`); one left by a killed export is removed by the
    next. Local directories only: other file systems rename file by file, so there `write` fills
    `directory` itself."""
    directory = os.fspath(directory).rstrip("/") or "/"
    if "://" in directory:
        write(directory)
        return directory
    parent, name = os.path.split(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    for stale in local_glob.glob(os.path.join(local_glob.escape(parent), f".{local_glob.escape(name)}.partial-*")):
        shutil.rmtree(stale, ignore_errors=True)
    staging = os.path.join(parent, f".{name}.partial-{uuid.uuid4().hex[:12]}")
    os.mkdir(staging)  # with the umask's permissions (tempfile.mkdtemp's 0700 would hide it from a server)
    try:
        write(staging)
        if os.path.isdir(directory) and os.listdir(directory):  # an earlier export of the same format
            previous = f"{staging}-previous"
            os.rename(directory, previous)
            os.rename(staging, directory)
            shutil.rmtree(previous)
        else:  # new, or an empty directory, which rename replaces
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory
