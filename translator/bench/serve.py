"""`translator bench serve`: throughput and latency of the real server under concurrent clients,
with dynamic batching on and off.

Each configuration starts its own `translator serve` subprocess on a free localhost port, warms it
up (the first batches of each size trace or compile the search), then `clients` threads each send
`requests` one-sentence `/translate` requests back to back over a kept-alive connection. The sentences
are one sentence repeated, or a file's lines sent in turn (`--input`: request j of client c sends line
c + j·clients, so that the clients together send the file in order, as a server of real traffic gets
sentences of every length). Reported:
sentences per second over the whole measured burst, p50/p99 request latency, errors, and the batch
sizes the server formed (from its `/stats`).
"""

from __future__ import annotations

import http.client
import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from translator.serve.process import ServerProcess

WARMUP_ROUNDS = 3


def bench_serve(
    model_args: list[str],
    batch_sizes: list[int],
    clients: int = 16,
    requests: int = 40,
    sentences: tuple[str, ...] = ("Y dijo Dios: Sea la luz: y fué la luz.",),
    batch_timeout_ms: float = 5.0,
    log: Callable[[str], None] = print,
) -> dict:
    """One result row per `--max-batch-sentences` value in `batch_sizes`."""
    from translator.bench.machine import describe_machine

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as work:
        for size in batch_sizes:
            args = [*model_args, "--max-batch-sentences", str(size), "--batch-timeout-ms", str(batch_timeout_ms)]
            log(f"starting translator serve {' '.join(args)}")
            with ServerProcess(args, Path(work) / f"server-{size}.log") as server:
                for _ in range(WARMUP_ROUNDS):
                    _burst(server.port, clients, 1, sentences)
                before = server.request("GET", "/stats")[1]
                row = _burst(server.port, clients, requests, sentences)
                after = server.request("GET", "/stats")[1]
            row["max_batch_sentences"] = size
            row["cpu_kernels"] = after.get("cpu_kernels")  # the server's, chosen in its own process
            row["decoding_share"] = round((after["decode_seconds"] - before["decode_seconds"]) / row["seconds"], 2)
            row["batch_sizes"] = _difference(after["batch_sizes"], before["batch_sizes"])
            row["mean_batch"] = round(
                (after["sentences"] - before["sentences"]) / max(after["batches"] - before["batches"], 1), 2
            )
            log(_format_row(row))
            rows.append(row)
    report = {
        "machine": describe_machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": " ".join(model_args),
        "clients": clients,
        "requests_per_client": requests,
        "sentences": len(sentences),  # different ones, sent in turn
        "sentence": sentences[0],
        "batch_timeout_ms": batch_timeout_ms,
        "results": rows,
    }
    speedups = pairwise_speedups(rows)
    if speedups:
        report["speedups"] = speedups
        report["speedup"] = min(speedups)  # the least favourable pair
    return report


def pairwise_speedups(rows: list[dict]) -> list[float]:
    """Throughput of rows 0, 2, 4, … over rows 1, 3, 5, …: with `--batch-sizes 32,1,32,1` each
    batched server against the unbatched one measured right after it, pair by pair, so that the
    ratio holds while the machine's speed drifts (comparing the best of one kind with the worst of the
    other would flatter)."""
    return [
        round(first["sentences_per_s"] / second["sentences_per_s"], 2)
        for first, second in zip(rows[0::2], rows[1::2])
        if second["sentences_per_s"]
    ]


def schedule(sentences: tuple[str, ...], clients: int, requests: int) -> list[list[str]]:
    """Each client's sentences, one a request: request j of client c sends sentence c + j·clients (cycling),
    so that at each round of requests the clients send the next `clients` sentences of the file."""
    return [[sentences[(client + j * clients) % len(sentences)] for j in range(requests)] for client in range(clients)]


def _burst(port: int, clients: int, requests: int, sentences: tuple[str, ...]) -> dict:
    """`clients` threads × `requests` sequential requests; latencies in ms, errors counted."""
    bodies = [
        [json.dumps({"text": [sentence]}).encode("utf-8") for sentence in mine]
        for mine in schedule(sentences, clients, requests)
    ]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(requests_to_send: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        mine, failures = [], []
        for body in requests_to_send:
            started = time.perf_counter()
            try:
                connection.request("POST", "/translate", body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    failures.append(f"{response.status}: {answer[:200]!r}")
                mine.append((time.perf_counter() - started) * 1000)
            except OSError as error:
                failures.append(repr(error))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        connection.close()
        with lock:
            latencies.extend(mine)
            errors.extend(failures)

    threads = [threading.Thread(target=client, args=(each,)) for each in bodies]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    done = len(latencies) - len(errors)
    return {
        "requests": clients * requests,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(seconds, 2),
        "sentences_per_s": round(done / seconds, 2),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if latencies else None,
    }


def _difference(after: dict, before: dict) -> dict:
    sizes = {size: count - before.get(size, 0) for size, count in after.items()}
    return {size: count for size, count in sorted(sizes.items(), key=lambda item: int(item[0])) if count}


def _format_row(row: dict) -> str:
    return (
        f"max batch {row['max_batch_sentences']:>3}: {row['sentences_per_s']:>8.2f} sentences/s, "
        f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, {row['errors']} errors of {row['requests']}, "
        f"mean batch {row['mean_batch']}"
    )


def format_report(report: dict) -> str:
    lines = [
        f"{report['machine']}, {report['date']}",
        f"{report['model']}: {report['clients']} clients × {report['requests_per_client']} requests of one sentence"
        + (f" ({report['sentences']} different ones in turn)" if report["sentences"] > 1 else ""),
        *(_format_row(row) for row in report["results"]),
    ]
    if "speedups" in report:
        ratios = ", ".join(f"{ratio}×" for ratio in report["speedups"])
        lines.append(
            f"batching: {ratios} the throughput of max batch {report['results'][1]['max_batch_sentences']}"
            " (pair by pair)"
        )
    return "\n".join(lines)
