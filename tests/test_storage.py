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
