"""Summarize a `make test-cpu` log: CPU seconds by kind of process, then the costliest processes.

python tests/cpu_accounting/report.py runs/test-cpu.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def kind(record: dict) -> str:
    """What a process was, from the variables pytest sets: started for a test (a notebook kernel or another
    subprocess), else a pytest-xdist worker, else the process pytest was started in."""
    if record["test"]:
        return (
            "notebook kernels"
            if any("ipykernel_launcher" in part for part in record["argv"])
            else "subprocesses of tests"
        )
    return f"pytest-xdist worker {record['worker']}" if record["worker"] else "pytest (controller)"


def main(path: str, top: int = 15) -> None:
    with open(path, encoding="utf-8") as log:
        records = [json.loads(line) for line in log if line.strip()]
    total = sum(record["cpu_s"] for record in records)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for record in records:
        by_kind[kind(record)].append(record["cpu_s"])
    print(f"{len(records)} Python processes reported {total:.1f} CPU-seconds (processes killed on purpose do not)")
    for name, seconds in sorted(by_kind.items(), key=lambda item: -sum(item[1])):
        print(f"  {sum(seconds):7.1f} s  {100 * sum(seconds) / total:4.1f}%  {name} ({len(seconds)})")
    print(f"the {top} costliest processes started by tests:")
    started = [record for record in records if record["test"]]
    for record in sorted(started, key=lambda record: -record["cpu_s"])[:top]:
        command = " ".join(part.rsplit("/", 1)[-1] for part in record["argv"][:2])
        print(f"  {record['cpu_s']:6.1f} s  {command[:40]:40}  {record['test'].removesuffix(' (call)')}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
