"""Corpus specs → parallel sentence pairs as a `tf.data.Dataset` of `{"source", "target"}` strings.

One string names a corpus everywhere (config, CLI, notebooks):

- `bible_es_en[/kjv|/web][:SPLIT]`: the shipped corpus, a local TFDS builder (no network);
- `tfds:NAME/CONFIG[:SPLIT]`: any TFDS translation dataset, languages from `data.source_lang/target_lang`;
- `tsv:PATH`: a tab-separated file (optionally .gz) whose header names the columns, e.g. `es  en`;
- `text:SOURCE_FILE,TARGET_FILE`: two line-aligned plain-text files.

User files are read eagerly and validated line by line, so a bad byte or a missing column fails
before training starts, with the file and line in the message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import gzip
import io
import logging
import os
import select
import socket
import sys
from collections.abc import Iterator
from typing import IO

import tensorflow as tf

from translator.errors import TranslatorError

SHIPPED = ("bible_es_en",)
_NETWORK_PROBE = ("storage.googleapis.com", 443)
READ_BATCH = 4096  # pairs per tf.data element when reading a corpus into lists


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    kind: str  # "shipped" | "tfds" | "tsv" | "text"
    name: str  # dataset name with config, or file path(s)
    split: str = "train"

    @property
    def paths(self) -> list[str]:
        return self.name.split(",")


def parse_spec(spec: str, default_split: str = "train") -> CorpusSpec:
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("tsv", "text"):
        if kind == "text" and rest.count(",") != 1:
            raise TranslatorError(f"corpus {spec!r}: expected text:SOURCE_FILE,TARGET_FILE")
        return CorpusSpec(kind, rest, default_split)
    if sep and kind == "tfds":
        name, _, split = rest.partition(":")
        return CorpusSpec("tfds", name, split or default_split)
    name, _, split = spec.partition(":")
    if name.split("/")[0] in SHIPPED:
        return CorpusSpec("shipped", name if "/" in name else f"{name}/kjv", split or default_split)
    raise TranslatorError(
        f"unknown corpus {spec!r}: use bible_es_en[/kjv|/web][:split], tfds:NAME/CONFIG[:split], "
        "tsv:PATH or text:SOURCE_FILE,TARGET_FILE"
    )


def load_pairs(spec: str, source_lang: str, target_lang: str, tfds_data_dir: str = "") -> tf.data.Dataset:
    """The corpus as a dataset of `{"source": tf.string, "target": tf.string}` scalars."""
    parsed = parse_spec(spec)
    if parsed.kind == "tsv":
        return _from_lists(*read_tsv(parsed.paths[0], source_lang, target_lang))
    if parsed.kind == "text":
        return _from_lists(*read_text_pair(*parsed.paths))
    if parsed.kind == "shipped":
        from translator.datasets.bible_es_en import BibleEsEn

        config = parsed.name.split("/", 1)[1]
        if config not in ("kjv", "web"):
            raise TranslatorError(f"corpus {spec!r}: bible_es_en has the configs kjv and web, not {config!r}")
        builder = _prepared_once(lambda: BibleEsEn(config=config, data_dir=tfds_data_dir or None))
        return _select_languages(builder, parsed, source_lang, target_lang)
    return _select_languages(_prepared_tfds_builder(parsed, tfds_data_dir), parsed, source_lang, target_lang)


def _prepared_once(make_builder):
    """A TFDS builder prepared once even when several processes start at the same moment (two
    trainings, test workers): TFDS moves its finished `incomplete.*` directory into place and fails
    when another process got there first. Local data directories are prepared under an exclusive
    file lock, and the builder is made again afterwards so that it reads what was prepared."""
    builder, prepared = _made(make_builder)
    if prepared:
        return builder
    root = os.path.dirname(os.path.dirname(os.path.dirname(str(builder.data_dir))))  # NAME/CONFIG/VERSION
    if "://" in root:  # remote storage: no file locks there
        _prepare_shipped(builder)
        return builder
    import fcntl

    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, f".{builder.name}.prepare.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        builder, prepared = _made(make_builder)
        if not prepared:  # else another process prepared it meanwhile
            _prepare_shipped(builder)
    return make_builder()


def _made(make_builder):
    """(builder, whether it is prepared), without TFDS's warning that a folder not yet prepared has no
    dataset_info.json."""
    with _absl_warnings_off():
        builder = make_builder()
        return builder, builder.is_prepared()


def _prepare_shipped(builder) -> None:
    """Build the shipped corpus with one line of ours instead of TFDS's notes: its "Downloading and preparing
    dataset" lines (nothing is downloaded) go to stdout, where a command's results go (`--json`), and its
    progress bars and absl warnings to stderr. They are shown only if the build fails."""
    config = builder.builder_config.name
    print(f"preparing the shipped corpus {builder.name}/{config} in {builder.data_dir} (once)", file=sys.stderr)
    notes = io.StringIO()
    try:
        with _absl_warnings_off(), contextlib.redirect_stdout(notes), contextlib.redirect_stderr(notes):
            builder.download_and_prepare()
    except BaseException:
        sys.stderr.write(notes.getvalue())
        raise


@contextlib.contextmanager
def _absl_warnings_off() -> Iterator[None]:
    """TFDS's absl warnings (Python logging, logger "absl") below ERROR hidden for the duration."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl.setLevel(level)


def read_pairs(spec: str, source_lang: str, target_lang: str, tfds_data_dir: str = "") -> tuple[list[str], list[str]]:
    """The corpus as two Python lists (sources, targets), e.g. for evaluation. Read in batches: one
    tf.data element per pair costs ~0.3 ms of Python, 10 s for a 30,000-pair corpus."""
    sources, targets = [], []
    dataset = load_pairs(spec, source_lang, target_lang, tfds_data_dir).batch(READ_BATCH)
    for batch in dataset.as_numpy_iterator():
        sources.extend(text.decode("utf-8") for text in batch["source"])
        targets.extend(text.decode("utf-8") for text in batch["target"])
    return sources, targets


def _from_lists(sources: list[str], targets: list[str]) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices({"source": sources, "target": targets})


def _select_languages(builder, parsed: CorpusSpec, source_lang: str, target_lang: str) -> tf.data.Dataset:
    splits = list(builder.info.splits.keys())
    # TFDS slicing works too: "dev[:32]", "train[:10%]", "train+validation".
    if any(part.split("[")[0] not in splits for part in parsed.split.split("+")):
        raise TranslatorError(f"corpus {parsed.name}: no split {parsed.split!r}; it has {', '.join(splits)}")
    languages = list(builder.info.features.keys())
    for role, lang in (("source", source_lang), ("target", target_lang)):
        if lang not in languages:
            raise TranslatorError(
                f"corpus {parsed.name}: data.{role}_lang={lang!r} is not one of its languages ({', '.join(languages)})"
            )
    dataset = builder.as_dataset(split=parsed.split, shuffle_files=False)
    return dataset.map(lambda example: {"source": example[source_lang], "target": example[target_lang]})


def _prepared_tfds_builder(parsed: CorpusSpec, data_dir: str):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(parsed.name, data_dir=data_dir or None)
    except tfds.core.registered.DatasetNotFoundError as error:
        base = parsed.name.split("/")[0]
        close = difflib.get_close_matches(base, tfds.list_builders(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TranslatorError(f"unknown TFDS dataset {parsed.name!r}{hint}") from error
    except ValueError as error:  # unknown builder config
        raise TranslatorError(f"TFDS dataset {parsed.name!r}: {error}") from error
    if builder.is_prepared():
        return builder
    if not network_available():
        raise TranslatorError(
            f"TFDS dataset {parsed.name!r} is not prepared in {builder.data_dir} and cannot be downloaded: "
            "no network. Prepare it where there is network (`tfds build` or one `translator train` run) "
            "and point data.tfds_data_dir at that folder"
        )
    try:
        with contextlib.redirect_stdout(sys.stderr):  # TFDS's notes, not a command's results (`--json`)
            builder.download_and_prepare()
    except ModuleNotFoundError as error:
        raise TranslatorError(
            f"downloading TFDS dataset {parsed.name!r} needs {error.name}: pip install {error.name}"
        ) from error
    return builder


def network_available(timeout: float = 3.0) -> bool:
    """Whether TFDS's download servers answer; fails in seconds, not after minutes of retries."""
    try:
        socket.create_connection(_NETWORK_PROBE, timeout=timeout).close()
    except OSError:
        return False
    return True


def _open_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file, plain or gzip, on any file system TensorFlow reads
    (local, gs://, ...); a bad byte names its line. A byte-order mark opening the file (Windows
    editors and spreadsheet exports write one) is not text: left in, it would be a TSV header's
    first column name, or pieces of the first sentence."""
    import tensorflow as tf

    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise TranslatorError(f"{path}: no such file")
    if tf.io.gfile.isdir(path):  # GFile reads a directory as an empty file
        raise TranslatorError(f"{path} is a directory, not a file")
    try:
        with tf.io.gfile.GFile(path, "rb") as raw_file:
            handle = gzip.GzipFile(fileobj=raw_file) if path.endswith(".gz") else raw_file
            for number, raw in enumerate(handle, start=1):
                yield number, _decode_line(raw, number, path)
    except (OSError, EOFError, tf.errors.OpError) as error:
        raise TranslatorError(f"{path}: cannot be read ({error})") from error


def _decode_line(raw: bytes, number: int, name: str) -> str:
    """One line's text without its end (LF or CRLF); a bad byte names the line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TranslatorError(f"{name}, line {number}: not UTF-8 ({error.reason} at byte {error.start})") from error
    return (text.removeprefix("\ufeff") if number == 1 else text).rstrip("\r\n")


def read_lines(path: str | os.PathLike) -> Iterator[str]:
    """The lines of a UTF-8 text file, streamed."""
    for _, text in _open_lines(path):
        yield text


def read_stdin_batches(stream: int | IO, limit: int = 1000, name: str = "standard input") -> Iterator[list[str]]:
    """The lines arriving on `stream` (a file descriptor, or a file that has one: asked for at the first
    batch, not before), in batches of at most `limit`; a batch also ends whenever no further input is
    ready yet. A pipe from a fast producer gives full batches; a person typing at a terminal, or a
    producer that sends a line and waits for its answer, gets each line translated as it arrives
    instead of after the end of the input. Lines are decoded as files are."""
    fd = stream if isinstance(stream, int) else stream.fileno()
    pending, batch, number = b"", [], 0
    while True:
        if batch and not select.select([fd], [], [], 0)[0]:
            yield batch
            batch = []
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        *complete, pending = (pending + chunk).split(b"\n")
        for raw in complete:
            number += 1
            batch.append(_decode_line(raw, number, name))
            if len(batch) == limit:
                yield batch
                batch = []
    if pending:  # a last line without its newline
        batch.append(_decode_line(pending, number + 1, name))
    if batch:
        yield batch


def read_tsv(path: str, source_column: str, target_column: str) -> tuple[list[str], list[str]]:
    """Read two named columns of a headed TSV file, checking every line's column count."""
    lines = _open_lines(path)
    header = next(lines, None)
    if header is None:
        raise TranslatorError(f"{path}: the file is empty")
    columns = header[1].split("\t")
    for role, column in (("source", source_column), ("target", target_column)):
        if column not in columns:
            raise TranslatorError(
                f"{path}, line 1: no column {column!r} for the {role} (data.{role}_lang); "
                f"the header has {', '.join(columns)}"
            )
    source_index, target_index = columns.index(source_column), columns.index(target_column)
    sources, targets = [], []
    for number, text in lines:
        fields = text.split("\t")
        if len(fields) != len(columns):
            raise TranslatorError(f"{path}, line {number}: {len(fields)} columns, the header has {len(columns)}")
        sources.append(fields[source_index])
        targets.append(fields[target_index])
    if not sources:
        raise TranslatorError(f"{path}: no sentence pairs after the header")
    return sources, targets


def read_text_pair(source_path: str, target_path: str) -> tuple[list[str], list[str]]:
    """Read two line-aligned text files; their line counts must match."""
    sources = list(read_lines(source_path))
    targets = list(read_lines(target_path))
    if not sources:
        raise TranslatorError(f"{source_path}: the file is empty")
    if len(sources) != len(targets):
        raise TranslatorError(
            f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}: they must be line-aligned"
        )
    return sources, targets
