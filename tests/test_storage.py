"""A run directory on another file system: everything goes through tf.io.gfile (here TF's `ram://`)."""

from pathlib import Path

import pytest
import tensorflow as tf

import translator
from translator.cli import main

pytestmark = pytest.mark.slow


def test_train_resume_evaluate_and_export_in_memory(seeded_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # where a path mistaken for a local one would land
    run_dir = seeded_run("ram://runs/tiny-in-memory")
    settings = {"train.checkpoint_every": 3, "data.dev": "bible_es_en/kjv:dev[:4]", "train.log_every": 3}
    first = translator.train("tiny", run_dir, settings, train_steps=6, log=lambda line: None)
    lines = []
    second = translator.train("tiny", run_dir, settings, train_steps=9, log=lines.append)
    assert (first.step, second.step) == (6, 9) and any(line.startswith("resumed from step 6") for line in lines)

    assert main(["evaluate", "--run-dir", run_dir, "--split", "dev"]) == 0
    assert "BLEU|nrefs:1" in capsys.readouterr().out
    assert tf.io.gfile.exists(f"{run_dir}/eval/dev.json") and tf.io.gfile.exists(f"{run_dir}/eval/dev.hyp")
    model = translator.load(run_dir)
    exported = translator.load(model.export(f"{run_dir}/export"))
    assert exported.translate(["Y dijo Dios."]) == model.translate(["Y dijo Dios."])
    for name in ("config.yaml", "tokenizer/joint.model", "checkpoints/checkpoint", "export/saved_model.pb"):
        assert tf.io.gfile.exists(f"{run_dir}/{name}"), name
    assert tf.io.gfile.glob(f"{run_dir}/cache/*.npz") and tf.io.gfile.glob(f"{run_dir}/logs/events.*")
    local = [path for path in Path(tmp_path).rglob("*") if "tiny-in-memory" in str(path) or "ram:" in str(path)]
    assert not local, local


def test_an_export_directory_is_replaced_only_once_complete(tmp_path):
    """`storage.write_directory`: the export is written beside its destination, then moved there, so a
    kill (here an interrupt in the middle of writing) leaves the previous export whole and nothing else."""
    import os
    import stat

    from translator import storage

    def export(files: dict[str, str], fail_after: int | None = None):
        def write(staging: str) -> None:
            for number, (name, text) in enumerate(files.items()):
                if number == fail_after:
                    raise KeyboardInterrupt
                Path(staging, name).write_text(text, encoding="utf-8")

        return write

    destination = tmp_path / "models" / "1"
    umask = os.umask(0o022)
    try:
        assert storage.write_directory(destination, export({"saved_model.pb": "one", "a": "1"})) == str(destination)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(destination.stat().st_mode) == 0o755  # readable by a server running as another user
    with pytest.raises(KeyboardInterrupt):
        storage.write_directory(destination, export({"saved_model.pb": "two", "b": "2"}, fail_after=1))
    contents = lambda: {path.name: path.read_text() for path in destination.iterdir()}  # noqa: E731
    assert contents() == {"saved_model.pb": "one", "a": "1"}  # untouched
    assert sorted(path.name for path in destination.parent.iterdir()) == ["1"]  # no staging folder left
    (destination.parent / ".1.partial-killed").mkdir()  # what a SIGKILL mid-export leaves
    storage.write_directory(destination, export({"saved_model.pb": "three"}))
    assert contents() == {"saved_model.pb": "three"}  # replaced whole: no file of the old export stays
    assert sorted(path.name for path in destination.parent.iterdir()) == ["1"]
    empty = tmp_path / "empty"
    empty.mkdir()
    storage.write_directory(empty, export({"model.bin": "x"}))
    assert [path.name for path in empty.iterdir()] == ["model.bin"]
