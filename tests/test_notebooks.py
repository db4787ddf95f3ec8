"""Every notebook in notebooks/ runs top to bottom, as committed, in a fresh kernel.

The kernel is this interpreter (a kernelspec written for the test), so the notebooks see the same
installed package as the rest of the test suite, whatever other `python3` kernels the machine has.
Each notebook runs in a temporary working directory, so its run directories land there.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


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
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_dir(tmp_path)))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
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


def _check_quickstart(output: str, workdir: Path) -> None:
    for metric in ("BLEU = ", "chrF2 = ", "TER = "):
        assert metric in output, output
    assert output.count("signature: nrefs:1|") == 3, output
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
