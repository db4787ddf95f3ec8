"""Dynamic batching: sentences from concurrent requests are queued and decoded together.

Decoding 16 sentences together costs much less than decoding them one by one (the fixed cost of a
call is shared, and matrix products get wider), so a server that decodes each request alone wastes
the machine. The batcher collects sentences until it holds `max_batch_sentences` or `batch_timeout`
has passed (TensorFlow Serving's `max_batch_size` and `batch_timeout_micros`), then decodes them in
one `translate_nbest` call on a worker thread, never on the event loop. While a batch decodes, the
next one fills.

The timeout counts from the later of the oldest sentence's arrival and the end of the previous
decode: sentences that queued during a decode still wait up to `batch_timeout` for company. Without
that, clients who just got their answers would miss the next batch by a few milliseconds, and a
steady load splits into two half-size batches that alternate (measured: batches of 4 and 12 for 16
clients, instead of 16).

Which sentences go into a batch, when more are waiting than fit:
- fairness first: every waiting request gets one sentence in before any gets a second, so a request
  of 500 sentences delays a one-sentence request by at most the batch being decoded;
- then length: among equals, sentences in the oldest sentence's length bucket (words, by powers of
  two) come first, then the nearest buckets, so short sentences are not padded to long ones;
- the oldest waiting sentence is always taken, so none waits forever.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from translator.translation import Translation

DecodeFunction = Callable[[list[str], int], list[list[Translation]]]


@dataclasses.dataclass
class BatchedResult:
    """A request's translations (input order, `n_best` each) and the sizes of the batches they rode in."""

    translations: list[list[Translation]]
    batch_sizes: list[int]


class _Request:
    """One caller's sentences on their way through the queue."""

    def __init__(self, sentences: list[str], n_best: int, order: int, future: asyncio.Future):
        self.n_best = n_best
        self.order = order
        self.future = future
        self.waiting = [(index, text, length_bucket(text)) for index, text in enumerate(sentences)]
        self.arrival = time.monotonic()
        self.results: list[list[Translation] | None] = [None] * len(sentences)
        self.outstanding = len(sentences)
        self.batch_sizes: list[int] = []


# Batches decoded at once: one, while the next fills (TensorFlow Serving's `num_batch_threads`). The decode
# itself spreads over the cores (`decode.workers` loops, `translator.threads`).
DECODE_THREADS = 1


def allowed_batch_sizes(max_batch_sentences: int) -> list[int]:
    """Batch sizes an XLA-compiled translator is given: powers of two and 1.5× powers of two (1, 2,
    3, 4, 6, 8, 12, ...) up to the maximum, so a batch is padded by at most a third, and a maximum of
    32 compiles 10 shapes per length bucket."""
    sizes = {max_batch_sentences}
    power = 1
    while power < max_batch_sentences:
        sizes.update(size for size in (power, power * 3 // 2) if 0 < size < max_batch_sentences)
        power *= 2
    return sorted(sizes)


def length_bucket(text: str) -> int:
    """Words rounded up to a power of two: 1, 2, 3-4, 5-8, ... share a bucket."""
    return len(text.split()).bit_length()


@dataclasses.dataclass
class BatchStats:
    """What the batcher has done, reported by the server's `/stats` endpoint."""

    requests: int = 0
    sentences: int = 0
    batches: int = 0
    failed_batches: int = 0
    rejected_requests: int = 0  # refused because the queue was full
    decode_seconds: float = 0.0
    sizes: Counter = dataclasses.field(default_factory=Counter)

    def as_dict(self, queued: int) -> dict:
        return {
            "requests": self.requests,
            "sentences": self.sentences,
            "batches": self.batches,
            "failed_batches": self.failed_batches,
            "rejected_requests": self.rejected_requests,
            "largest_batch": max(self.sizes, default=0),
            "mean_batch": round(self.sentences / self.batches, 3) if self.batches else 0.0,
            "batch_sizes": {str(size): count for size, count in sorted(self.sizes.items())},
            "decode_seconds": round(self.decode_seconds, 3),
            "queued_sentences": queued,
        }


# What pads a batch: a sentence of one piece. Not an empty one: a translator leaves blank sentences out
# of the batch it decodes (`BaseTranslator.translate_nbest`), so they would not fill it.
PADDING_SENTENCE = "."


class DynamicBatcher:
    """Queue of sentences from many requests, decoded in batches by `decode` on one worker thread.

    `pad_batch_sizes`: round each batch up to one of `allowed_batch_sizes` with `PADDING_SENTENCE`, so an
    XLA-compiled translator compiles a few shapes instead of one per batch size (TensorFlow Serving's
    `allowed_batch_sizes`). Wasted work for a translator without XLA, so off there.
    """

    def __init__(
        self,
        decode: DecodeFunction,
        max_batch_sentences: int = 32,
        batch_timeout: float = 0.005,
        pad_batch_sizes: bool = False,
        max_queued_sentences: int = 4096,
    ):
        if max_batch_sentences < 1:
            raise ValueError(f"max_batch_sentences must be at least 1, got {max_batch_sentences}")
        self.decode = decode
        self.max_batch_sentences = max_batch_sentences
        self.batch_timeout = batch_timeout
        self.pad_batch_sizes = pad_batch_sizes
        self.max_queued_sentences = max_queued_sentences
        self.stats = BatchStats()
        self._waiting: list[_Request] = []
        self._arrivals = itertools.count()
        self._wakeup: asyncio.Event | None = None
        self._closing = False
        self._decoder_free_since = 0.0
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="decode")

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def close(self) -> None:
        """Decode everything still queued, then stop (the graceful half of a shutdown)."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    @property
    def queued_sentences(self) -> int:
        return sum(len(request.waiting) for request in self._waiting)

    async def translate(self, sentences: list[str], n_best: int = 1) -> BatchedResult:
        """Queue `sentences` and wait for their `n_best` translations."""
        if self._task is None or self._closing:
            raise RuntimeError("the batcher is not running")
        queued = self.queued_sentences
        if queued + len(sentences) > self.max_queued_sentences:
            self.stats.rejected_requests += 1
            raise QueueFullError(f"the server is busy ({queued} sentences queued); retry later")
        future = asyncio.get_running_loop().create_future()
        request = _Request(list(sentences), n_best, next(self._arrivals), future)
        self.stats.requests += 1
        if not request.waiting:
            return BatchedResult([], [])
        self._waiting.append(request)
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            self._waiting = [request for request in self._waiting if not request.future.done()]
            if not self._waiting:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._fill()
            batch = self._take_batch()
            if batch:
                await self._decode(batch)

    async def _fill(self) -> None:
        """Wait until a batch is full or `batch_timeout` has passed since the oldest sentence arrived or
        the decoder became free, whichever is later."""
        oldest = min(request.arrival for request in self._waiting)
        deadline = max(oldest, self._decoder_free_since) + self.batch_timeout
        while not self._closing and self.queued_sentences < self.max_batch_sentences:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take_batch(self) -> list[tuple[_Request, int, str]]:
        """Up to `max_batch_sentences` (request, index, text), fairest and best-fitting first."""
        oldest = self._waiting[0]
        head_bucket = oldest.waiting[0][2]
        candidates = (
            ((turn, abs(bucket - head_bucket), request.order, index), request, index, text)
            for request in self._waiting
            for turn, (index, text, bucket) in enumerate(request.waiting)
        )
        chosen = heapq.nsmallest(self.max_batch_sentences, candidates, key=lambda candidate: candidate[0])
        taken = {(id(request), index) for _, request, index, _ in chosen}
        for request in self._waiting:
            request.waiting = [item for item in request.waiting if (id(request), item[0]) not in taken]
        self._waiting = [request for request in self._waiting if request.waiting]
        return [(request, index, text) for _, request, index, text in chosen]

    async def _decode(self, batch: list[tuple[_Request, int, str]]) -> None:
        texts = [text for _, _, text in batch]
        if self.pad_batch_sizes:
            size = next(size for size in allowed_batch_sizes(self.max_batch_sentences) if size >= len(texts))
            texts += [PADDING_SENTENCE] * (size - len(texts))
        n_best = max(request.n_best for request, _, _ in batch)
        started = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            results = await loop.run_in_executor(self._executor, self.decode, texts, n_best)
        except Exception as error:  # a failed batch fails its requests, never the server
            self.stats.failed_batches += 1
            for request in {id(request): request for request, _, _ in batch}.values():
                if not request.future.done():
                    request.future.set_exception(DecodeError(f"decoding failed: {type(error).__name__}: {error}"))
            return
        finally:
            self.stats.decode_seconds += time.perf_counter() - started
            self._decoder_free_since = time.monotonic()
        self.stats.batches += 1
        self.stats.sentences += len(batch)
        self.stats.sizes[len(batch)] += 1
        for request in {id(request): request for request, _, _ in batch}.values():
            request.batch_sizes.append(len(batch))
        for (request, index, _), candidates in zip(batch, results):
            request.results[index] = candidates[: request.n_best]
            request.outstanding -= 1
            if request.outstanding == 0 and not request.future.done():
                request.future.set_result(BatchedResult(request.results, request.batch_sizes))


class DecodeError(RuntimeError):
    """The translator raised while decoding a batch; the requests in it get a 500, the server lives on."""


class QueueFullError(RuntimeError):
    """More sentences are waiting than `max_queued_sentences`: the request is refused at once (503),
    rather than queued behind minutes of work (TensorFlow Serving's `max_enqueued_batches`)."""
