"""Request bodies in, response bodies out, for the JSON endpoints: every way a body can be wrong
becomes a `RequestError` whose status and message name the problem, before anything is queued.

TensorFlow Serving's REST predict API (https://www.tensorflow.org/tfx/serving/api_rest) in both
formats: row (`instances`: a list of `{"text": ...}` objects or of bare strings, since the signatures
have one input) answered with `predictions`, one object per instance; columnar (`inputs`:
`{"text": [...]}` or a bare list) answered with `outputs`, one list per output. Strings may be given
as `{"b64": ...}`, as Serving allows.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Any

import numpy as np

from translator.serve.signatures import INPUT, SERVING_DEFAULT, SIGNATURES, signature_outputs
from translator.translation import Translation


class RequestError(Exception):
    """A client's mistake: answered with `status` and `{"error": message}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_sentences: int = 256
    max_bytes: int = 1 << 20
    max_n_best: int = 1


@dataclasses.dataclass(frozen=True)
class TranslateRequest:
    texts: list[str]
    n_best: int


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    signature: str
    texts: list[str]
    columnar: bool


def parse_json(body: bytes) -> Any:
    """The body as JSON; 400 for bytes that are not UTF-8 or text that is not JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(400, f"the request body is not valid UTF-8 (byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(400, f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}") from None


def parse_translate(body: Any, limits: Limits) -> TranslateRequest:
    """`{"text": "..." | ["...", ...], "n_best": k}` (n_best optional, default 1)."""
    if not isinstance(body, dict):
        raise RequestError(400, 'the body must be a JSON object like {"text": ["..."], "n_best": 1}')
    unknown = sorted(set(body) - {"text", "n_best"})
    if unknown:
        raise RequestError(400, f"unknown field(s) {', '.join(map(repr, unknown))}: expected 'text' and 'n_best'")
    if "text" not in body:
        raise RequestError(400, "missing field 'text': a string or a list of strings")
    texts = body["text"]
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list):
        raise RequestError(400, f"'text' must be a string or a list of strings, not {_json_type(texts)}")
    texts = [_text(value, f"text[{index}]", allow_b64=False) for index, value in enumerate(texts)]
    _check_count(texts, "text", limits)
    n_best = body.get("n_best", 1)
    if isinstance(n_best, bool) or not isinstance(n_best, int):
        raise RequestError(400, f"'n_best' must be an integer, not {_json_type(n_best)}")
    if not 1 <= n_best <= limits.max_n_best:
        raise RequestError(400, f"'n_best' must be between 1 and {limits.max_n_best} (the beam size), got {n_best}")
    return TranslateRequest(texts, n_best)


def parse_predict(body: Any, limits: Limits) -> PredictRequest:
    """A TensorFlow Serving predict body, row or columnar."""
    if not isinstance(body, dict):
        raise RequestError(400, 'the body must be a JSON object with "instances" or "inputs"')
    signature = body.get("signature_name", SERVING_DEFAULT)
    if not isinstance(signature, str):
        raise RequestError(400, f"'signature_name' must be a string, not {_json_type(signature)}")
    if signature not in SIGNATURES:
        raise RequestError(
            400, f'Serving signature name: "{signature}" not found in signature def (have: {", ".join(SIGNATURES)})'
        )
    unknown = sorted(set(body) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise RequestError(400, f"unknown field(s) {', '.join(map(repr, unknown))}")
    if ("instances" in body) == ("inputs" in body):
        raise RequestError(400, "give exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise RequestError(400, f"'instances' must be a list, not {_json_type(instances)}")
        texts = [_instance_text(instance, index) for index, instance in enumerate(instances)]
        _check_count(texts, "instances", limits)
        return PredictRequest(signature, texts, columnar=False)
    inputs = body["inputs"]
    if isinstance(inputs, dict):
        unknown = sorted(set(inputs) - {INPUT})
        if unknown or INPUT not in inputs:
            raise RequestError(400, f"'inputs' must have exactly one input, '{INPUT}' (got {sorted(inputs)})")
        inputs = inputs[INPUT]
    if not isinstance(inputs, list):
        raise RequestError(400, f"'inputs.{INPUT}' must be a list of strings (shape [batch]), not {_json_type(inputs)}")
    texts = [_text(value, f"inputs.{INPUT}[{index}]") for index, value in enumerate(inputs)]
    _check_count(texts, f"inputs.{INPUT}", limits)
    return PredictRequest(signature, texts, columnar=True)


def predict_response(request: PredictRequest, results: list[list[Translation]]) -> dict:
    """The body TensorFlow Serving answers `request` with."""
    columns = signature_outputs(request.signature, results)
    for name in ("score", "scores"):
        if name in columns:
            columns[name] = _shortest_float32(columns[name])
    if request.columnar:
        return {"outputs": columns}
    names = list(columns)
    return {"predictions": [dict(zip(names, row)) for row in zip(*columns.values())]}


def translate_response(request: TranslateRequest, results: list[list[Translation]]) -> dict:
    """`/translate`'s body, one entry per input: best translation, n-best list, truncation flag."""
    return {
        "translations": [
            {
                "text": candidates[0].text,
                "score": _shortest_float32(candidates[0].score),
                "truncated": candidates[0].truncated,
                "n_best": [{"text": c.text, "score": _shortest_float32(c.score)} for c in candidates],
            }
            for candidates in results
        ]
    }


def _shortest_float32(value):
    """A float32 score (or nested lists of them) as the shortest decimal that reads back as the same
    float32, the way TensorFlow Serving writes it (-0.9810138, not -0.9810137748718262)."""
    if isinstance(value, list):
        return [_shortest_float32(item) for item in value]
    return float(str(np.float32(value)))


def _instance_text(instance: Any, index: int) -> str:
    if isinstance(instance, dict):
        unknown = sorted(set(instance) - {INPUT})
        if unknown or INPUT not in instance:
            if set(instance) == {"b64"}:
                return _text(instance, f"instances[{index}]")
            raise RequestError(
                400, f"instances[{index}] must have exactly one input, '{INPUT}' (got {sorted(instance)})"
            )
        return _text(instance[INPUT], f"instances[{index}].{INPUT}")
    return _text(instance, f"instances[{index}]")


def _text(value: Any, where: str, allow_b64: bool = True) -> str:
    """A JSON value that must be a string (or `{"b64": ...}` holding UTF-8), as a str TensorFlow can take."""
    if allow_b64 and isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            raw = base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, f"{where}: 'b64' is not valid base64") from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(400, f"{where}: the decoded bytes are not valid UTF-8") from None
    if not isinstance(value, str):
        raise RequestError(400, f"{where} must be a string, not {_json_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800", valid JSON but not Unicode text
        raise RequestError(400, f"{where} is not valid Unicode (lone surrogate)") from None
    return value


def _check_count(texts: list[str], field: str, limits: Limits) -> None:
    if not texts:
        raise RequestError(400, f"'{field}' is empty: send at least one sentence")
    if len(texts) > limits.max_sentences:
        raise RequestError(413, f"'{field}' has {len(texts)} sentences; at most {limits.max_sentences} per request")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
