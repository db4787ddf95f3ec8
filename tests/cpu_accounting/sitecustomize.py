"""Each Python process started with this folder on PYTHONPATH appends its own CPU time to the file named by
TRANSLATOR_CPU_LOG when it exits (`make test-cpu`): the pytest-xdist workers, the notebook kernels and every
subprocess a test starts, each with the test it ran for (PYTEST_CURRENT_TEST, which subprocesses inherit).

Why: the suite is CPU-bound on two cores, so its wall time is its CPU time over two, and a cut is found by
knowing which processes spend it. A process killed on purpose (the kill-and-resume tests) does not report.
"""

import atexit
import json
import os
import sys
import time

_STARTED = time.monotonic()


def _report() -> None:
    path = os.environ.get("TRANSLATOR_CPU_LOG")
    if not path:
        return
    times = os.times()
    record = {
        "pid": os.getpid(),
        "argv": sys.argv[:4],
        "test": os.environ.get("PYTEST_CURRENT_TEST", ""),
        "worker": os.environ.get("PYTEST_XDIST_WORKER", ""),
        "cpu_s": round(times.user + times.system, 2),
        "wall_s": round(time.monotonic() - _STARTED, 2),
        "tensorflow": "tensorflow" in sys.modules,
    }
    try:
        with open(path, "a", encoding="utf-8") as log:  # one short line per process: appends do not interleave
            log.write(json.dumps(record) + "\n")
    except OSError:
        pass


atexit.register(_report)
