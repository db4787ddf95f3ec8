"""Every notebook in notebooks/ runs top to bottom, as committed, in a fresh kernel.

The kernel is this interpreter (a kernelspec written for the test), so the notebooks see the same
installed package as the rest of the test suite, whatever other `python3` kernels the machine has.
Each notebook runs in a temporary working directory, so its run directories land there, with
matplotlib's headless Agg backend, so a plot that only works with a display fails here. After the run,
each notebook's own printed results and files are checked (`CHECKS`).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# Notebooks about a trained run, which train a quick tiny one only where their RUN_DIR holds none.
SEEDED_RUNS = ("attention", "export_and_serve")


def _kernel_dir(tmp_path: Path) -> Path:
    """A JUPYTER_PATH entry whose `python3` kernel is sys.executable."""
    root = tmp_path / "jupyter"
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (test)",
                "language": "python",
            }
        )
    )
    return root


def _image_outputs(notebook) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


def _text_output(notebook) -> str:
    chunks = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                chunks.append(output.get("text", ""))
            elif "data" in output:
                chunks.append(output["data"].get("text/plain", ""))
    return "".join(chunks)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch, request):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_dir(tmp_path)))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")  # headless: no display, no inline backend
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    if path.stem in SEEDED_RUNS:
        # The run it would train first (the tiny preset, a few dozen steps) is the session's trained run,
        # which the notebook finds instead of training it again.
        shutil.copytree(request.getfixturevalue("trained_run"), workdir / "runs" / path.stem)
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{path.name}: commit notebooks with their outputs cleared"
            )
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails

    output = _text_output(notebook)
    if path.stem == "quickstart":
        _check_quickstart(output, workdir)
    else:
        assert path.stem in CHECKS, f"{path.name}: add a check of its results to CHECKS"
        CHECKS[path.stem](output, workdir, _image_outputs(notebook))


def _check_quickstart(output: str, workdir: Path) -> None:
    for metric in ("BLEU = ", "chrF2 = ", "TER = "):
        assert metric in output, output
    assert all(f"signature: {name}|nrefs:1|" in output for name in ("BLEU", "chrF2", "TER")), output
    # "en: TEXT  (log-probability S)": 3 lines from the Translator, then 3 from the reloaded SavedModel.
    # The text itself is not checked: 30 steps of the tiny preset often decode to an empty string (the
    # weights' initialization is not seeded, so runs differ), but every sentence must get a real,
    # finite search score from both paths.
    # DOTALL: an untrained model may emit a newline byte inside its translation.
    pattern = r"^en: (.*?)  \(log-probability (\S+?)(?:, truncated)?\)$"
    results = re.findall(pattern, output, flags=re.MULTILINE | re.DOTALL)
    assert len(results) == 6, output
    for _, log_probability in results:
        assert math.isfinite(float(log_probability)) and float(log_probability) <= 0, output
    assert (workdir / "runs" / "quickstart" / "export" / "saved_model.pb").exists()
    # Keras fit trained two epochs of the user's own pairs, and the loss went down.
    losses = [float(x) for x in re.search(r"^fit: loss per epoch \[(.*)\]$", output, re.MULTILINE).group(1).split(",")]
    assert len(losses) == 2 and losses[1] < losses[0], output


def _check_plots(workdir: Path, images: int, names: list[str]) -> None:
    """Every figure was saved under plots/ and shown as a PNG output (with the Agg backend)."""
    for name in names:
        png = workdir / "plots" / f"{name}.png"
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert images == len(names), f"{images} PNG outputs, expected {len(names)}"


def _check_custom_corpus(output: str, workdir: Path, images: int) -> None:
    corpus = workdir / "my_corpus"
    assert (corpus / "train.tsv").read_text(encoding="utf-8").startswith("es\ten\n")
    assert len((corpus / "train.tsv").read_text(encoding="utf-8").splitlines()) == 2001
    import yaml

    saved = yaml.safe_load((workdir / "runs" / "custom_corpus" / "config.yaml").read_text(encoding="utf-8"))
    assert saved["data"]["train"] == f"tsv:{(corpus / 'train.tsv').resolve()}"
    assert saved["data"]["test"] == f"text:{(corpus / 'test.es').resolve()},{(corpus / 'test.en').resolve()}"
    assert "finished at step 30" in output, output
    assert re.search(r"^pairs over the limits \(64/64 tokens\): \d+ of 2000 ", output, re.MULTILINE), output
    # One line per broken file, naming the file and the line.
    errors = re.findall(r"^  TranslatorError: (.*)$", output, flags=re.MULTILINE)
    assert len(errors) == 3, output
    assert errors[0] == "my_corpus/broken.tsv, line 3: 1 columns, the header has 2", errors
    assert re.fullmatch(r"my_corpus/latin1\.es, line \d+: not UTF-8 \(.+ at byte \d+\)", errors[1]), errors
    assert errors[2] == "my_corpus/test.es has 200 lines but my_corpus/short.en has 199: they must be line-aligned"
    assert not (workdir / "runs" / "custom_corpus-broken").exists()
    _check_plots(workdir, images, ["custom_corpus_lengths", "custom_corpus_pieces"])


def _check_attention(output: str, workdir: Path, images: int) -> None:
    # One line per sentence: the weights' shape for the tiny preset (1 layer, 2 heads), and the beam
    # score recomputed by teacher forcing, which proves the weights are those behind the translation.
    pattern = (
        r"weights \((\d+), (\d+), (\d+), (\d+)\) \(layers, heads, target, source\); "
        r"beam score (\S+), teacher-forced (\S+) \(same\)$"
    )
    rows = re.findall(pattern, output, flags=re.MULTILINE)
    assert len(rows) == 3, output
    for layers, heads, target, source, search, forced in rows:
        assert (int(layers), int(heads)) == (1, 2) and int(target) >= 1 and int(source) >= 2, output
        assert math.isfinite(float(search)) and abs(float(search) - float(forced)) <= 1e-3 * max(1, abs(float(search)))
    # The word alignment of each sentence from the API, read from the very matrix of the heat map.
    pharaoh = re.findall(r"^  Pharaoh: ((?:\d+-\d+ ?)*)$", output, flags=re.MULTILINE)
    assert len(pharaoh) == 3 and output.count("same matrix as the heat map above: True") == 3, output
    _check_plots(workdir, images, ["attention_mean", "attention_heads", "alignment"])


def _check_export_and_serve(output: str, workdir: Path, images: int) -> None:
    run = workdir / "runs" / "export_and_serve"
    assert "holds no run" not in output, output  # it exported the run it was given
    assert (run / "models" / "translator" / "1" / "saved_model.pb").exists()
    request = json.loads((run / "serving_request.json").read_text(encoding="utf-8"))
    assert request == json.loads((REPO / "docs" / "serving_request.json").read_text(encoding="utf-8"))
    # The fresh process listed both signatures with their types …
    for line in (
        "signature 'serving_default'",
        "  input  text: string (None,)",
        "  output score: float32 (None,)",
        "  output translation: string (None,)",
        "  output truncated: bool (None,)",
        "signature 'translate_nbest'",
        "translate_nbest: {'scores': [2, 2], 'translations': [2, 2], 'truncated': [2]}",
    ):
        assert line in output.splitlines(), (line, output)
    # … and printed the REST response, one prediction per instance, equal to the in-process translations.
    body = output.split("response:\n", 1)[1].split("served translations", 1)[0]
    response = json.loads(body)
    assert list(response) == ["predictions"] and len(response["predictions"]) == len(request["instances"])
    for prediction in response["predictions"]:
        assert list(prediction) == ["translation", "score", "truncated"], prediction
        assert isinstance(prediction["translation"], str) and prediction["truncated"] is False
        assert math.isfinite(prediction["score"]) and prediction["score"] <= 0
    assert "served translations and scores equal the in-process ones: True" in output, output
    # saved_model_cli (TF1-style loader, as TensorFlow Serving) saw the same signatures.
    for fragment in ("signature_def['serving_default']", "signature_def['translate_nbest']", "outputs['translation']"):
        assert fragment in output, output
    assert images == 0


def _check_distributed(output: str, workdir: Path, images: int) -> None:
    import tensorflow as tf

    assert re.search(r"^auto chooses: [\w ]+ with \d+ replica\(s\)", output, re.MULTILINE), output
    if not tf.config.list_physical_devices("GPU"):
        assert "auto chooses: default strategy with 1 replica(s)" in output, output
        assert "skipped: no GPU here" in output and "skipped: MirroredStrategy needs several GPUs" in output
    assert "skipped: no TPU here" in output, output
    assert "finished at step 30" in output, output
    # The run continued in a fresh process on 2 logical CPUs under MirroredStrategy.
    assert "resumed from step 30" in output, output
    assert "strategy: MirroredStrategy with 2 replica(s)" in output, output
    assert "finished at step 40" in output, output
    assert "and without TF_CONFIG: --strategy multiworker needs TF_CONFIG" in output, output
    assert output.count("translator train --config base --strategy multiworker") == 2, output
    assert (workdir / "runs" / "distributed" / "checkpoints").is_dir()
    assert images == 0


CHECKS = {
    "attention": _check_attention,
    "custom_corpus": _check_custom_corpus,
    "distributed": _check_distributed,
    "export_and_serve": _check_export_and_serve,
}


def test_every_notebook_installs_from_the_repository_named_in_pyproject():
    """The Colab install cell names the repository; pyproject.toml is the one place it is written."""
    nbformat = pytest.importorskip("nbformat")
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    repository = re.search(r'^Repository = "(.+)"$', pyproject, re.MULTILINE).group(1)
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        setup = next(cell.source for cell in cells if cell.cell_type == "code" and "pip" in cell.source)
        assert f'REPOSITORY = "{repository}"' in setup and "raise SystemExit" in setup, path.name
        code = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
        deeper = set(re.findall(r"^from (translator\.\w+)", code, re.MULTILINE))
        assert "import translator" in code and (path.stem == "attention" or not deeper), (path.name, deeper)
