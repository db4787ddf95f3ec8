"""`translator serve`: one process, one event loop, HTTP (uvicorn) and gRPC (grpc.aio) in front of
one batcher that decodes on a worker thread.

Shutdown: SIGINT or SIGTERM stops both servers accepting, lets in-flight requests finish (their
sentences are still decoded), then exits with status 0; a second Ctrl-C forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import signal
import sys
import threading
import time
from collections.abc import Callable

import uvicorn

from translator.errors import TranslatorError
from translator.serve.batching import DynamicBatcher, allowed_batch_sizes
from translator.serve.payloads import Limits
from translator.serve.rest import ServedModel, build_app
from translator.translation import BaseTranslator

API_KEY_ENV = "TRANSLATOR_API_KEY"
GRACE_SECONDS = 30.0
WARMUP_SENTENCE = "one two three four five six seven eight"


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    model_name: str = "translator"
    version: str = "1"
    host: str = "127.0.0.1"
    port: int = 8501
    grpc_port: int | None = 8500  # None: no gRPC
    max_batch_sentences: int = 32
    batch_timeout_ms: float = 5.0
    max_request_sentences: int = 256
    max_request_bytes: int = 1 << 20
    max_queued_sentences: int = 4096
    api_key: str | None = None


def warm_up(translator: BaseTranslator, max_batch_sentences: int) -> float:
    """Decode one batch of each allowed size, so that XLA compiles before the first user waits (for
    sentences of about `WARMUP_SENTENCE`'s length; other lengths compile on first use). Seconds taken."""
    started = time.perf_counter()
    for size in allowed_batch_sizes(max_batch_sentences):
        translator.translate_nbest([WARMUP_SENTENCE] * size)
    return time.perf_counter() - started


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(translator: BaseTranslator, options: ServeOptions, log: Callable[[str], None] = print) -> None:
    """Serve `translator` until SIGINT/SIGTERM; blocks."""
    if options.max_batch_sentences < 1 or options.batch_timeout_ms < 0:
        raise TranslatorError("--max-batch-sentences must be ≥ 1 and --batch-timeout-ms ≥ 0")
    if not is_loopback(options.host) and not options.api_key:
        log(
            f"warning: serving on {options.host}, reachable from other machines, without an API key: "
            f"anyone who can reach it can use it; set --api-key or {API_KEY_ENV}"
        )
    asyncio.run(_serve(translator, options, log))


async def _serve(translator: BaseTranslator, options: ServeOptions, log: Callable[[str], None]) -> None:
    beam_size = translator.hypotheses
    batcher = DynamicBatcher(
        translator.translate_nbest,
        options.max_batch_sentences,
        options.batch_timeout_ms / 1000,
        pad_batch_sizes=bool(getattr(translator, "jit_compile", False)),
        max_queued_sentences=options.max_queued_sentences,
    )
    model = ServedModel(
        options.model_name,
        options.version,
        beam_size,
        batcher,
        Limits(options.max_request_sentences, options.max_request_bytes, beam_size),
        options.api_key,
    )
    if batcher.pad_batch_sizes:
        sizes = ", ".join(map(str, allowed_batch_sizes(batcher.max_batch_sentences)))
        log(f"compiling the search for batches of {sizes} sentences")
        seconds = await asyncio.to_thread(warm_up, translator, batcher.max_batch_sentences)
        log(f"compiled in {seconds:.0f} s")
    batcher.start()
    config = uvicorn.Config(
        build_app(model),
        host=options.host,
        port=options.port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    http = DrainingServer(config)
    grpc = None
    if options.grpc_port is not None:
        from translator.serve.grpc_service import grpc_server

        try:
            grpc, grpc_port = grpc_server(model, f"{_bracketed(options.host)}:{options.grpc_port}")
        except RuntimeError:  # grpcio raises when it cannot bind (older versions returned port 0)
            grpc_port = 0
        if not grpc_port:
            await batcher.close()
            raise TranslatorError(f"cannot listen for gRPC on {options.host}:{options.grpc_port} (in use?)")
        await grpc.start()
    stopper = asyncio.create_task(_stop_grpc_on_exit(http, grpc))
    announcer = asyncio.create_task(_announce(http, options, grpc_port if grpc else None, beam_size, batcher, log))
    try:
        await http.serve()
    except SystemExit:  # uvicorn could not bind; it has logged why, and `started` stays False
        pass
    finally:
        http.should_exit = True  # also when uvicorn gave up (port in use): stop gRPC too
        await stopper
        announcer.cancel()
        await batcher.close()
    if not http.started:  # uvicorn has logged why
        raise TranslatorError(f"cannot listen on {options.host}:{options.port} (in use, or not this machine's address)")
    log(f"stopped after {batcher.stats.requests} requests in {batcher.stats.batches} batches")


async def _stop_grpc_on_exit(http: DrainingServer, grpc) -> None:
    """When the HTTP server begins to drain, drain gRPC alongside it."""
    while not http.should_exit:
        await asyncio.sleep(0.05)
    if grpc is not None:
        await grpc.stop(GRACE_SECONDS)


async def _announce(
    http, options: ServeOptions, grpc_port: int | None, beam_size: int, batcher: DynamicBatcher, log
) -> None:
    """The ready line, with the ports bound (the system's choice for a port given as 0)."""
    while not http.started:
        await asyncio.sleep(0.05)
    host = _bracketed(options.host)
    sockets = [socket for server in getattr(http, "servers", []) for socket in server.sockets]
    port = sockets[0].getsockname()[1] if sockets else options.port
    grpc = f", gRPC on {host}:{grpc_port}" if grpc_port is not None else ""
    log(
        f"serving model '{options.model_name}' (beam {beam_size}) on http://{host}:{port}{grpc}; "
        f"batches of up to {batcher.max_batch_sentences} sentences, {options.batch_timeout_ms:g} ms wait"
        f"{'; API key required' if options.api_key else ''}. Ctrl-C to stop."
    )
    sys.stdout.flush()


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class DrainingServer(uvicorn.Server):
    """uvicorn's server with our signal handling: SIGINT/SIGTERM start a graceful drain and the
    process then exits normally (uvicorn re-raises the signal after its drain, which would kill the
    process before gRPC and the batcher finish)."""

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
