"""CPU threads for decoding: `decode.workers` loops decode batches side by side, and each loop's
operations get the cores shared among the loops rather than all of them.

TensorFlow gives every operation a pool of threads the size of the machine by default. A decoding
step is hundreds of small operations; with two loops each splitting every operation over all the
cores, the threads wait on each other at every one of them. Sharing the cores out instead made beam
search 1.34x (small) and 1.44x (tutorial size) faster on 2 cores and 2 workers (docs/benchmarks.md,
"each loop its share of the cores"). CTranslate2 is given the same split (`inter_threads` = workers,
`intra_threads` = `threads_per_worker`).

Training keeps TensorFlow's default: its operations are few and large, and it runs one step at a time.
"""

from __future__ import annotations

import os

INTRA_OP_VARIABLE = "TF_NUM_INTRAOP_THREADS"


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """The cores shared among `workers` decoding loops, at least one each."""
    cores = cores if cores is not None else os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def share_cores_among_workers(workers: int) -> None:
    """Size TensorFlow's per-operation thread pool for a process that decodes with `workers` loops.

    TensorFlow reads TF_NUM_INTRAOP_THREADS once, when its runtime starts (the first operation), so this
    must come before; the processes this one starts (the benchmark's SavedModel worker) inherit it. A
    value the user set wins.
    """
    os.environ.setdefault(INTRA_OP_VARIABLE, str(threads_per_worker(workers)))
