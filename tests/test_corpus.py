"""Corpus specs, the shipped TFDS dataset, user files and their errors."""

import gzip
import os
import sys
import time

import pytest

from tests.conftest import read_corpus
from translator import corpus
from translator.corpus import load_pairs, parse_spec, read_lines, read_pairs, read_stdin_batches, read_tsv
from translator.errors import TranslatorError


def test_specs_parse():
    assert parse_spec("bible_es_en").name == "bible_es_en/kjv"
    assert parse_spec("bible_es_en/web:dev") == corpus.CorpusSpec("shipped", "bible_es_en/web", "dev")
    assert parse_spec("tfds:ted_hrlr_translate/pt_to_en:validation") == corpus.CorpusSpec(
        "tfds", "ted_hrlr_translate/pt_to_en", "validation"
    )
    assert parse_spec("text:a.es,a.en").paths == ["a.es", "a.en"]
    with pytest.raises(TranslatorError, match="unknown corpus"):
        parse_spec("europarl")


def test_shipped_corpus_is_a_tfds_dataset_built_offline(tmp_path):
    sources, targets = read_pairs("bible_es_en/kjv:dev", "es", "en", str(tmp_path))
    expected_sources, expected_targets = read_corpus("dev")
    assert (sources, targets) == (expected_sources, expected_targets)
    assert len(sources) == 379
    _, web = read_pairs("bible_es_en/web:test", "es", "en", str(tmp_path))
    assert web == read_corpus("test", target="en_web")[1]
    assert (tmp_path / "bible_es_en" / "kjv" / "1.0.0").is_dir()


def test_tsv_and_text_files(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("id\tes\ten\n1\thola\thello\n2\tadiós\tgoodbye\n", encoding="utf-8")
    assert read_pairs(f"tsv:{tsv}", "es", "en") == (["hola", "adiós"], ["hello", "goodbye"])
    (tmp_path / "a.es").write_text("uno\ndos\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("one\ntwo\n", encoding="utf-8")
    assert read_pairs(f"text:{tmp_path / 'a.es'},{tmp_path / 'a.en'}", "es", "en") == (["uno", "dos"], ["one", "two"])


def test_a_byte_order_mark_is_not_text(tmp_path):
    """Excel's "CSV UTF-8" and Notepad open their files with U+FEFF: not a column name, not a piece."""
    tsv = tmp_path / "excel.tsv"
    tsv.write_bytes("\ufeffes\ten\r\nhola\thello\r\n".encode())
    assert read_tsv(tsv, "es", "en") == (["hola"], ["hello"])
    (tmp_path / "notepad.es").write_bytes("\ufeffuno\r\n\ufeffdos\r\n".encode())
    assert list(read_lines(tmp_path / "notepad.es")) == ["uno", "\ufeffdos"]  # only the file's first


def test_standard_input_comes_in_batches_of_what_has_arrived():
    """A batch ends at the limit or where the input pauses: lines written by someone waiting for their
    answers are not held back until more come. Decoded as files are (BOM, CRLF, a bad byte's line)."""
    read_end, write_end = os.pipe()
    batches = read_stdin_batches(read_end, limit=2)
    try:
        os.write(write_end, "\ufeffuno\r\ndos\ntres\n".encode())
        assert next(batches) == ["uno", "dos"]  # the limit
        assert next(batches) == ["tres"]  # all that has arrived: the reader does not wait for a second line
        os.write(write_end, b"cuatro\ncin")
        assert next(batches) == ["cuatro"]  # "cin" is not a line yet
        os.write(write_end, b"co\n\xff\n")
        with pytest.raises(TranslatorError, match=r"standard input, line 6: not UTF-8"):
            next(batches)
    finally:
        os.close(write_end)
        os.close(read_end)
    read_end, write_end = os.pipe()
    os.write(write_end, b"seis\nsiete")
    os.close(write_end)
    assert list(read_stdin_batches(read_end)) == [["seis", "siete"]]  # the last line needs no newline
    os.close(read_end)


def test_gzipped_tsv(tmp_path):
    path = tmp_path / "pairs.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("es\ten\nsí\tyes\n")
    assert read_tsv(path, "es", "en") == (["sí"], ["yes"])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"es\ten\nhola\thello\nmal\n", r"pairs.tsv, line 3: 1 columns, the header has 2"),
        (b"es\ten\nhola\thello\n\xff\xfe\tx\n", r"pairs.tsv, line 3: not UTF-8"),
        (b"", r"pairs.tsv: the file is empty"),
        (b"es\ten\n", r"pairs.tsv: no sentence pairs"),
        (b"es\tfr\nhola\tsalut\n", r"pairs.tsv, line 1: no column 'en'"),
    ],
)
def test_malformed_tsv_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    with pytest.raises(TranslatorError, match=message):
        read_pairs(f"tsv:{path}", "es", "en")


def test_misaligned_text_files(tmp_path):
    (tmp_path / "a.es").write_text("uno\ndos\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("one\n", encoding="utf-8")
    with pytest.raises(TranslatorError, match="has 2 lines but .* has 1"):
        read_pairs(f"text:{tmp_path / 'a.es'},{tmp_path / 'a.en'}", "es", "en")


def test_missing_file():
    with pytest.raises(TranslatorError, match="no such file"):
        read_pairs("tsv:/nonexistent/x.tsv", "es", "en")


def test_unknown_tfds_dataset_suggests_a_name(tmp_path):
    with pytest.raises(TranslatorError, match="unknown TFDS dataset 'ted_hrlr_translat/pt_to_en'.*ted_hrlr_translate"):
        load_pairs("tfds:ted_hrlr_translat/pt_to_en", "pt", "en", str(tmp_path))


def test_tfds_download_without_network_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "_NETWORK_PROBE", ("192.0.2.1", 9))  # TEST-NET-1: never routable
    started = time.monotonic()
    with pytest.raises(TranslatorError, match="is not prepared in .* cannot be downloaded: no network"):
        load_pairs("tfds:ted_hrlr_translate/pt_to_en:train", "pt", "en", str(tmp_path))
    assert time.monotonic() - started < 15


def test_tfds_language_must_exist(tmp_path):
    with pytest.raises(TranslatorError, match="data.target_lang='de' is not one of its languages"):
        load_pairs("bible_es_en:dev", "es", "de", str(tmp_path))


def test_shipped_corpus_prepared_by_several_processes_at_once(tmp_path):
    """Two trainings started together used to race: the slower one's TFDS rename failed."""
    import subprocess
    import sys

    script = (
        "import sys; from translator.corpus import read_pairs; "
        "print(len(read_pairs('bible_es_en:dev', 'es', 'en', sys.argv[1])[0]))"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)  # started together: the one that loses the race waits for the other's build
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    # stdout holds the results alone (TFDS printed "Downloading and preparing dataset" there, which broke
    # `--json`), and one line of ours replaces TFDS's notes: said once, by the process that prepared it.
    assert [out for out, _ in outputs] == ["379\n"] * 2
    said = f"preparing the shipped corpus bible_es_en/kjv in {tmp_path / 'bible_es_en' / 'kjv' / '1.0.0'} (once)"
    assert sum(said in err for _, err in outputs) == 1, [err[-2000:] for _, err in outputs]
    for _, err in outputs:
        assert not any(note in err for note in ("Downloading", "Generating", "Shuffling", "dataset_info.json")), err


def test_a_failed_preparation_shows_tfds_notes_and_a_good_one_keeps_stdout_clean(capsys):
    from types import SimpleNamespace

    from translator.corpus import _prepare_shipped

    def builder(fails: bool):
        def download_and_prepare():
            print("Downloading and preparing dataset Unknown size")
            print("Generating splits...", file=sys.stderr)
            if fails:
                raise OSError("disk full")

        config = SimpleNamespace(name="kjv")
        return SimpleNamespace(
            name="bible_es_en", builder_config=config, data_dir="D", download_and_prepare=download_and_prepare
        )

    _prepare_shipped(builder(fails=False))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "preparing the shipped corpus bible_es_en/kjv in D (once)\n"
    with pytest.raises(OSError, match="disk full"):
        _prepare_shipped(builder(fails=True))
    captured = capsys.readouterr()
    assert captured.out == "" and "Downloading and preparing" in captured.err and "Generating splits" in captured.err
