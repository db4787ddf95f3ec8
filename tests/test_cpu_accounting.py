"""`make test-cpu`'s logger and report (tests/cpu_accounting): each process reports itself once, and the
report sums the processes by kind."""

import importlib.util
import json
import os
import subprocess
import sys

from tests.conftest import REPO

ACCOUNTING = REPO / "tests" / "cpu_accounting"


def test_a_process_with_the_logger_on_its_path_reports_its_cpu_time_and_test(tmp_path):
    log = tmp_path / "cpu.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": str(ACCOUNTING),
        "TRANSLATOR_CPU_LOG": str(log),
        "PYTEST_CURRENT_TEST": "t (call)",
    }
    busy = "sum(i * i for i in range(2_000_000))"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", busy], env=env, check=True)
    subprocess.run([sys.executable, "-c", "pass"], env={**env, "TRANSLATOR_CPU_LOG": ""}, check=True)  # logging off
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 2 and records[0]["pid"] != records[1]["pid"]
    for record in records:
        assert record["argv"] == ["-c"] and record["test"] == "t (call)" and record["tensorflow"] is False
        assert 0 < record["cpu_s"] and 0 < record["wall_s"]


def test_the_report_sums_processes_by_kind(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("cpu_accounting_report", ACCOUNTING / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)

    def record(argv, test, worker, cpu):
        return {"argv": argv, "test": test, "worker": worker, "cpu_s": cpu}

    log = tmp_path / "cpu.jsonl"
    rows = [
        record(["/venv/lib/python3.11/site-packages/pytest/__main__.py", "-n", "2"], "", "", 1.0),
        record(["-c"], "", "gw0", 50.0),
        record(["-c"], "", "gw1", 30.0),
        record(
            ["/venv/ipykernel_launcher.py", "-f"], "tests/test_notebooks.py::test_notebook_runs[a] (call)", "gw0", 10.0
        ),
        record(["/repo/translator/cli.py", "train"], "tests/test_x.py::test_y (call)", "gw1", 9.0),
        # Without pytest-xdist: a test's subprocess whose arguments name pytest's temporary directory.
        record(
            ["/repo/tests/helpers/mirrored_steps.py", "/tmp/pytest-of-root/run"], "tests/test_z.py::t (call)", "", 0.0
        ),
    ]
    log.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    report.main(str(log))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("6 Python processes reported 100.0 CPU-seconds")
    assert lines[1:6] == [
        "     50.0 s  50.0%  pytest-xdist worker gw0 (1)",
        "     30.0 s  30.0%  pytest-xdist worker gw1 (1)",
        "     10.0 s  10.0%  notebook kernels (1)",
        "      9.0 s   9.0%  subprocesses of tests (2)",
        "      1.0 s   1.0%  pytest (controller) (1)",
    ]
    assert lines[7].split() == [
        "10.0",
        "s",
        "ipykernel_launcher.py",
        "-f",
        "tests/test_notebooks.py::test_notebook_runs[a]",
    ]
    assert lines[8].split() == ["9.0", "s", "cli.py", "train", "tests/test_x.py::test_y"]
