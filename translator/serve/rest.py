"""The HTTP face: TensorFlow Serving's REST API, `/translate`, `/stats`, `/healthz` and the page.

Starlette (on uvicorn) because it is a small, well-kept ASGI toolkit with nothing between a request
and our code: no schema layer whose 422 errors we would have to reshape into Serving's
`{"error": ...}`, and it shares one event loop with the gRPC server (`grpc.aio`), so both feed the
same batcher.
"""

from __future__ import annotations

import dataclasses
import hmac
import html
import time
from importlib import resources

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from translator.onednn import cpu_kernels
from translator.serve.batching import DecodeError, DynamicBatcher, QueueFullError
from translator.serve.payloads import (
    Limits,
    RequestError,
    parse_json,
    parse_predict,
    parse_translate,
    predict_response,
    translate_response,
)
from translator.serve.signatures import candidates_needed, signature_def_map

PUBLIC_PATHS = frozenset({"/healthz", "/"})  # the page holds no data; it asks for the key itself


@dataclasses.dataclass
class ServedModel:
    """What the endpoints serve: the model's name and version, its batcher and the request rules."""

    name: str
    version: str
    beam_size: int
    batcher: DynamicBatcher
    limits: Limits
    api_key: str | None = None


def build_app(model: ServedModel) -> Starlette:
    """The ASGI application for `model`."""
    kernels = cpu_kernels()  # what this process decodes with (`translator serve` chose before TensorFlow loaded)

    async def page(_: Request) -> Response:
        text = resources.files("translator.serve").joinpath("page.html").read_text(encoding="utf-8")
        text = text.replace("{{MODEL}}", html.escape(model.name)).replace("{{BEAM}}", str(model.beam_size))
        return HTMLResponse(text)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "model": model.name})

    async def stats(_: Request) -> Response:
        return JSONResponse(
            {
                "model": model.name,
                "max_batch_sentences": model.batcher.max_batch_sentences,
                "batch_timeout_ms": model.batcher.batch_timeout * 1000,
                "cpu_kernels": kernels,
                **model.batcher.stats.as_dict(model.batcher.queued_sentences),
            }
        )

    async def translate(request: Request) -> Response:
        started = time.perf_counter()
        parsed = parse_translate(parse_json(await _body(request, model.limits)), model.limits)
        result = await model.batcher.translate(parsed.texts, parsed.n_best)
        body = translate_response(parsed, result.translations)
        body.update(time_ms=round((time.perf_counter() - started) * 1000, 2), batch_sizes=result.batch_sizes)
        return JSONResponse(body)

    async def model_status(request: Request) -> Response:
        _check_model(request, model)
        status = {"version": model.version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        return JSONResponse({"model_version_status": [status]})

    async def metadata(request: Request) -> Response:
        _check_model(request, model)
        signatures = json_format.MessageToDict(signature_def_map(model.beam_size), preserving_proto_field_name=True)
        return JSONResponse(
            {
                "model_spec": {"name": model.name, "signature_name": "", "version": model.version},
                "metadata": {"signature_def": signatures},
            }
        )

    async def predict(request: Request) -> Response:
        _check_model(request, model)
        parsed = parse_predict(parse_json(await _body(request, model.limits)), model.limits)
        result = await model.batcher.translate(parsed.texts, candidates_needed(parsed.signature, model.beam_size))
        return JSONResponse(predict_response(parsed, result.translations))

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/translate", translate, methods=["POST"]),
        Route("/v1/models/{model}", model_status, methods=["GET"]),
        Route("/v1/models/{model}/versions/{version}", model_status, methods=["GET"]),
        Route("/v1/models/{model}/metadata", metadata, methods=["GET"]),
        Route("/v1/models/{model}/versions/{version}/metadata", metadata, methods=["GET"]),
        Route("/v1/models/{model}:predict", predict, methods=["POST"]),
        Route("/v1/models/{model}/versions/{version}:predict", predict, methods=["POST"]),
    ]
    handlers = {
        RequestError: lambda _, error: JSONResponse({"error": error.message}, error.status),
        HTTPException: lambda _, error: JSONResponse({"error": error.detail}, error.status_code),
        DecodeError: lambda _, error: JSONResponse({"error": str(error)}, 500),
        QueueFullError: lambda _, error: JSONResponse({"error": str(error)}, 503, headers={"Retry-After": "1"}),
        Exception: lambda _, error: JSONResponse({"error": f"internal error: {type(error).__name__}"}, 500),
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    return ApiKeyGuard(app, model.api_key) if model.api_key else app


def _check_model(request: Request, model: ServedModel) -> None:
    """404 for another model name or version, with TensorFlow Serving's wording."""
    name, version = request.path_params["model"], request.path_params.get("version")
    if name != model.name:
        raise RequestError(404, f"Servable not found for request: Latest({name})")
    if version is not None and version != model.version:
        raise RequestError(404, f"Servable not found for request: Specific({name}, {version})")


async def _body(request: Request, limits: Limits) -> bytes:
    """The body, read no further than `limits.max_bytes` (413 beyond)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise RequestError(413, f"the body has {declared} bytes; at most {limits.max_bytes} per request")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_bytes:
            raise RequestError(413, f"the body exceeds {limits.max_bytes} bytes per request")
    return bytes(body)


class ApiKeyGuard:
    """ASGI middleware: every path but `PUBLIC_PATHS` needs the key, as `Authorization: Bearer KEY`
    or `X-API-Key: KEY`; 401 otherwise. Compared in constant time."""

    def __init__(self, app, api_key: str):
        self.app = app
        self.api_key = api_key.encode("utf-8")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"error": "missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"},
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)

    def _authorized(self, scope) -> bool:
        headers = dict(scope["headers"])
        offered = headers.get(b"x-api-key") or headers.get(b"authorization", b"").removeprefix(b"Bearer ").strip()
        return bool(offered) and hmac.compare_digest(offered, self.api_key)
