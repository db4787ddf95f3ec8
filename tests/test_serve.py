"""`translator serve`, tested as users meet it: the real command in a subprocess on a free localhost
port, spoken to over HTTP, over gRPC with TensorFlow Serving's own client, and from a real browser.

One server serves the whole module (start-up costs a TensorFlow import and a model load). It runs
with an API key, so every test also sends the key; `test_api_key` checks what happens without it.
The last test stops it with SIGTERM while requests are in flight.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO
from translator.onednn import ONEDNN_VARIABLE, X86_MACHINES

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serve")]  # one worker: one serve fixture

pytest.importorskip("starlette", reason="needs the serve extra: pip install -e '.[serve]'")

API_KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
MAX_BATCH = 8
MAX_SENTENCES = 16
MAX_BYTES = 8192
SENTENCES = [
    "En el principio crió Dios los cielos y la tierra.",
    "Y dijo Dios: Sea la luz: y fué la luz.",
    "Oid esto, viejos, y escuchad, todos los moradores de la tierra.",
]
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def export_dir(request, tmp_path_factory) -> Path:
    """The session's export of the tiny run (SERVE_TEST_RUN_DIR serves another run, e.g. for the
    README's screenshot)."""
    import translator

    if not os.environ.get("SERVE_TEST_RUN_DIR"):
        return request.getfixturevalue("exported_run")
    return Path(translator.load(os.environ["SERVE_TEST_RUN_DIR"]).export(tmp_path_factory.mktemp("serve") / "1"))


@pytest.fixture(scope="module")
def in_process(export_dir):
    """The same SavedModel loaded in this process: what the server's answers must equal."""
    import translator

    return translator.load(export_dir)


@pytest.fixture(scope="module")
def server(export_dir, tmp_path_factory):
    from translator.serve.process import ServerProcess

    args = [
        "--export-dir",
        str(export_dir),
        "--max-batch-sentences",
        str(MAX_BATCH),
        "--batch-timeout-ms",
        "20",
        "--max-request-sentences",
        str(MAX_SENTENCES),
        "--max-request-bytes",
        str(MAX_BYTES),
    ]
    process = ServerProcess(
        args, tmp_path_factory.mktemp("serve-log") / "server.log", grpc=True, env={"TRANSLATOR_API_KEY": API_KEY}
    )
    with process:
        yield process


def post(server, path: str, body, headers: dict | None = None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    return server.request("POST", path, data, AUTH if headers is None else headers)


def test_tf_serving_row_body_gives_the_saved_models_translations(server, in_process):
    """docs/serving_request.json, the body README sends to TensorFlow Serving, gives the same shape
    and the same translations as the SavedModel in this process."""
    body = (REPO / "docs" / "serving_request.json").read_bytes()
    status, answer = post(server, "/v1/models/translator:predict", body)
    assert status == 200, answer
    texts = [instance["text"] for instance in json.loads(body)["instances"]]
    expected = [candidates[0] for candidates in in_process.translate_nbest(texts)]
    assert [sorted(row) for row in answer["predictions"]] == [["score", "translation", "truncated"]] * len(texts)
    assert [row["translation"] for row in answer["predictions"]] == [t.text for t in expected]
    assert [row["truncated"] for row in answer["predictions"]] == [False] * len(texts)
    assert [row["score"] for row in answer["predictions"]] == pytest.approx([t.score for t in expected], abs=1e-5)


def test_columnar_nbest_signature_and_versioned_path(server, in_process):
    body = {"signature_name": "translate_nbest", "inputs": {"text": SENTENCES}}
    status, answer = post(server, "/v1/models/translator/versions/1:predict", body)
    assert status == 200, answer
    expected = in_process.translate_nbest(SENTENCES, n_best=64)
    outputs = answer["outputs"]
    assert sorted(outputs) == ["scores", "translations", "truncated"]
    assert outputs["translations"] == [[t.text for t in candidates] for candidates in expected]
    assert len(outputs["scores"][0]) == len(expected[0]) > 1
    status, answer = post(server, "/v1/models/translator:predict", {"instances": [{"b64": "SG9sYQ=="}, "Hola"]})
    assert status == 200 and answer["predictions"][0] == answer["predictions"][1]


def test_model_status_and_metadata_like_tf_serving(server):
    status, answer = server.request("GET", "/v1/models/translator", headers=AUTH)
    assert (status, answer) == (
        200,
        {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        },
    )
    status, answer = server.request("GET", "/v1/models/translator/metadata", headers=AUTH)
    signature = answer["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert status == 200 and signature["inputs"]["text"]["dtype"] == "DT_STRING"
    assert sorted(signature["outputs"]) == ["score", "translation", "truncated"]
    assert server.request("GET", "/v1/models/other", headers=AUTH) == (
        404,
        {"error": "Servable not found for request: Latest(other)"},
    )


def test_translate_endpoint(server, in_process):
    status, answer = post(server, "/translate", {"text": SENTENCES[:2], "n_best": 2})
    assert status == 200, answer
    expected = in_process.translate_nbest(SENTENCES[:2], n_best=2)
    assert [item["text"] for item in answer["translations"]] == [c[0].text for c in expected]
    assert [[n["text"] for n in item["n_best"]] for item in answer["translations"]] == [
        [t.text for t in c] for c in expected
    ]
    assert [item["truncated"] for item in answer["translations"]] == [False, False]
    assert answer["time_ms"] > 0 and answer["batch_sizes"] and sum(answer["batch_sizes"]) >= 2
    status, answer = post(server, "/translate", {"text": " ".join(["palabra"] * 400)})
    assert status == 200 and answer["translations"][0]["truncated"] is True


BAD_REQUESTS = [
    ("/translate", b'{"text": ["Hola"', 400, "malformed JSON"),
    ("/translate", b'{"text": ["\xff\xfe"]}', 400, "not valid UTF-8"),
    ("/translate", {"text": 5}, 400, "'text' must be a string or a list of strings, not a number"),
    ("/translate", {"text": ["Hola", 3]}, 400, "text[1] must be a string, not a number"),
    ("/translate", {"text": ["Hola"], "n_best": "2"}, 400, "'n_best' must be an integer"),
    ("/translate", {"text": ["Hola"], "n_best": 99}, 400, "'n_best' must be between 1 and"),
    ("/translate", {"txt": ["Hola"]}, 400, "unknown field(s) 'txt'"),
    ("/translate", {"text": []}, 400, "'text' is empty"),
    ("/translate", {"text": ["\ud800"]}, 400, "not valid Unicode"),
    ("/translate", {"text": ["Hola"] * (MAX_SENTENCES + 1)}, 413, f"at most {MAX_SENTENCES} per request"),
    ("/translate", {"text": ["Hola " * (MAX_BYTES // 4)]}, 413, f"at most {MAX_BYTES} per request"),
    ("/v1/models/translator:predict", [1, 2], 400, "must be a JSON object"),
    ("/v1/models/translator:predict", {"instances": "Hola"}, 400, "'instances' must be a list, not a string"),
    ("/v1/models/translator:predict", {"instances": []}, 400, "'instances' is empty"),
    ("/v1/models/translator:predict", {"instances": [{"txt": "Hola"}]}, 400, "instances[0] must have exactly one"),
    ("/v1/models/translator:predict", {"instances": [{"b64": "/w=="}]}, 400, "not valid UTF-8"),
    ("/v1/models/translator:predict", {"inputs": ["a"], "instances": ["a"]}, 400, "exactly one of"),
    ("/v1/models/translator:predict", {"signature_name": "nope", "inputs": ["a"]}, 400, '"nope" not found'),
    ("/v1/models/other:predict", {"instances": ["Hola"]}, 404, "Servable not found"),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD_REQUESTS)
def test_bad_input_gets_a_4xx_json_error(server, path, body, status, message):
    answer = post(server, path, body)
    assert answer[0] == status, answer
    assert message in answer[1]["error"]
    assert server.request("GET", "/healthz") == (200, {"status": "ok", "model": "translator"})


def test_a_burst_of_32_concurrent_requests_is_batched(server, in_process):
    sentences = [SENTENCES[i % len(SENTENCES)] for i in range(32)]
    _, before = server.request("GET", "/stats", headers=AUTH)
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda text: post(server, "/translate", {"text": [text]}), sentences))
    assert [status for status, _ in answers] == [200] * 32
    expected = {text: candidates[0].text for text, candidates in zip(SENTENCES, in_process.translate_nbest(SENTENCES))}
    assert [answer["translations"][0]["text"] for _, answer in answers] == [expected[t] for t in sentences]
    _, after = server.request("GET", "/stats", headers=AUTH)
    assert after["sentences"] - before["sentences"] == 32
    assert after["batches"] - before["batches"] < 32  # some sentences shared a batch
    assert max(max(answer["batch_sizes"]) for _, answer in answers) > 1
    assert after["largest_batch"] <= MAX_BATCH
    # The export computes in float32 and says so: the server chose Eigen before TensorFlow loaded (x86).
    if platform.machine().lower() in X86_MACHINES and ONEDNN_VARIABLE not in os.environ:
        assert after["cpu_kernels"] == "Eigen"
    assert after["cpu_kernels"] in ("Eigen", "oneDNN")


def test_grpc_with_tensorflow_servings_own_client(server, in_process):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "translator"
    request.model_spec.signature_name = "serving_default"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(SENTENCES))
    key = (("authorization", f"Bearer {API_KEY}"),)
    response = stub.Predict(request, 60, metadata=key)
    expected = [candidates[0] for candidates in in_process.translate_nbest(SENTENCES)]
    translations = [text.decode("utf-8") for text in tf.make_ndarray(response.outputs["translation"])]
    assert translations == [t.text for t in expected]
    assert tf.make_ndarray(response.outputs["score"]).tolist() == pytest.approx([t.score for t in expected], abs=1e-5)
    assert tf.make_ndarray(response.outputs["truncated"]).tolist() == [False] * 3
    assert response.model_spec.signature_name == "serving_default"
    request.model_spec.signature_name = "translate_nbest"
    request.output_filter.append("translations")
    nbest = stub.Predict(request, 60, metadata=key)
    assert list(nbest.outputs) == ["translations"]
    texts = tf.make_ndarray(nbest.outputs["translations"])
    wanted = in_process.translate_nbest(SENTENCES, n_best=64)
    assert texts.shape == (3, len(wanted[0])) and texts[2, 1].decode("utf-8") == wanted[2][1].text
    request.model_spec.signature_name = "serving_default"
    del request.output_filter[:]

    metadata_request = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata_request.model_spec.name = "translator"
    metadata_request.metadata_field.append("signature_def")
    metadata = stub.GetModelMetadata(metadata_request, 30, metadata=key)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    assert sorted(signatures.signature_def) == ["serving_default", "translate_nbest"]

    with pytest.raises(grpc.RpcError) as unauthenticated:
        stub.Predict(request, 30)
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([b"\xff"]))
    with pytest.raises(grpc.RpcError) as invalid:
        stub.Predict(request, 30, metadata=key)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "UTF-8" in invalid.value.details()
    channel.close()


def test_api_key(server):
    body = {"text": ["Hola"]}
    json_only = {"Content-Type": "application/json"}
    status, answer = post(server, "/translate", body, json_only)
    assert status == 401 and "API key" in answer["error"]
    assert post(server, "/translate", body, {**json_only, "Authorization": "Bearer wrong"})[0] == 401
    assert server.request("GET", "/v1/models/translator")[0] == 401
    assert server.request("GET", "/stats")[0] == 401
    assert post(server, "/translate", body, {**json_only, "X-API-Key": API_KEY})[0] == 200
    assert server.request("GET", "/healthz")[0] == 200
    status, page = server.request("GET", "/")
    assert status == 200 and 'id="translate"' in page


class RecordingTranslator:
    """A stand-in for `translate_nbest` that records each batch it is given; "boom" makes it raise."""

    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds
        self.batches: list[list[str]] = []

    def __call__(self, texts: list[str], n_best: int) -> list[list]:
        from translator.translation import Translation

        self.batches.append(list(texts))
        time.sleep(self.seconds)
        if "boom" in texts:
            raise ValueError("the model exploded")
        return [[Translation(f"{text}/{k}", -float(k)) for k in range(n_best)] for text in texts]


def run_batcher(decode, requests, **settings) -> list:
    """Send `requests` ((delay seconds, sentences, n_best), ...) to a batcher; their results or errors."""
    import asyncio

    from translator.serve.batching import DynamicBatcher

    async def scenario():
        batcher = DynamicBatcher(decode, **settings)
        batcher.start()

        async def one(delay, sentences, n_best):
            await asyncio.sleep(delay)
            return await batcher.translate(sentences, n_best)

        results = await asyncio.gather(*(one(*request) for request in requests), return_exceptions=True)
        await batcher.close()
        return results, batcher.stats

    return asyncio.run(scenario())


def test_batcher_decodes_concurrent_requests_together_in_input_order():
    decode = RecordingTranslator()
    requests = [(0, [f"s{i}"], 1) for i in range(10)] + [(0, ["a", "b"], 2)]
    results, stats = run_batcher(decode, requests, max_batch_sentences=4, batch_timeout=0.05)
    assert [len(batch) for batch in decode.batches] == [4, 4, 4]
    assert [result.translations[0][0].text for result in results[:10]] == [f"s{i}/0" for i in range(10)]
    assert [[t.text for t in candidates] for candidates in results[10].translations] == [["a/0", "a/1"], ["b/0", "b/1"]]
    assert stats.as_dict(0)["batch_sizes"] == {"4": 3} and stats.sentences == 12


def test_sentences_queued_during_a_decode_wait_for_company_after_it():
    """B queues while A decodes; C arrives 40 ms after that decode ends: B waited long enough by the
    clock of its arrival, but it still gets `batch_timeout` from the decoder's freedom, and C joins."""
    decode = RecordingTranslator(seconds=0.1)
    requests = [(0, ["A"], 1), (0.12, ["B"], 1), (0.24, ["C"], 1)]
    run_batcher(decode, requests, max_batch_sentences=8, batch_timeout=0.1)
    assert decode.batches == [["A"], ["B", "C"]]


def test_a_huge_request_does_not_starve_a_small_one():
    decode = RecordingTranslator(seconds=0.05)
    huge = [f"huge {i}" for i in range(40)]
    results, _ = run_batcher(decode, [(0, huge, 1), (0.02, ["small"], 1)], max_batch_sentences=4, batch_timeout=0.001)
    first_with_small = next(i for i, batch in enumerate(decode.batches) if "small" in batch)
    assert first_with_small == 1  # the batch after the one decoding when it arrived
    assert results[1].batch_sizes == [4] and len(decode.batches) == 11


def test_sentences_of_similar_length_share_a_batch():
    decode = RecordingTranslator()
    short, long = "uno", " ".join(["palabra"] * 20)
    requests = [(0, [short if i % 2 == 0 else long], 1) for i in range(8)]
    run_batcher(decode, requests, max_batch_sentences=4, batch_timeout=0.05)
    assert decode.batches == [[short] * 4, [long] * 4]


def test_a_full_queue_refuses_at_once():
    from translator.serve.batching import QueueFullError

    decode = RecordingTranslator(seconds=0.1)
    requests = [(0, ["a"] * 6, 1), (0.01, ["b"] * 4, 1), (0.02, ["c"] * 2, 1)]
    results, stats = run_batcher(decode, requests, max_batch_sentences=16, batch_timeout=0.2, max_queued_sentences=8)
    assert isinstance(results[1], QueueFullError) and "busy (6 sentences queued)" in str(results[1])
    assert len(results[0].translations) == 6 and len(results[2].translations) == 2
    assert stats.rejected_requests == 1


def test_a_failing_batch_fails_only_its_requests():
    from translator.serve.batching import DecodeError

    decode = RecordingTranslator()
    results, stats = run_batcher(decode, [(0, ["boom"], 1), (0.05, ["fine"], 1)], max_batch_sentences=1)
    assert isinstance(results[0], DecodeError) and "the model exploded" in str(results[0])
    assert results[1].translations[0][0].text == "fine/0"
    assert (stats.failed_batches, stats.batches) == (1, 1)


def test_tf_serving_batching_config_is_our_servers_defaults():
    """docs/tf_serving_batching.config gives TensorFlow Serving the batching `translator serve` does by
    default (README, "With TensorFlow Serving"): a change to one must reach the other."""
    from translator.serve.batching import DECODE_THREADS
    from translator.serve.server import ServeOptions

    values = {}
    for line in (REPO / "docs" / "tf_serving_batching.config").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            field = re.fullmatch(r"(\w+) \{ value: (\d+) \}", line)
            assert field, f"not a BatchingParameters scalar: {line!r}"
            values[field[1]] = int(field[2])
    options = ServeOptions()
    assert values == {
        "max_batch_size": options.max_batch_sentences,
        "batch_timeout_micros": round(options.batch_timeout_ms * 1000),
        "num_batch_threads": DECODE_THREADS,
        "max_enqueued_batches": options.max_queued_sentences // options.max_batch_sentences,
    }


def test_batches_padded_to_an_allowed_size_for_xla():
    from translator.serve.batching import PADDING_SENTENCE, allowed_batch_sizes

    assert allowed_batch_sizes(32) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]
    assert allowed_batch_sizes(10) == [1, 2, 3, 4, 6, 8, 10] and allowed_batch_sizes(1) == [1]
    decode = RecordingTranslator()
    results, stats = run_batcher(
        decode, [(0, list("abcde"), 1)], max_batch_sentences=8, batch_timeout=0.01, pad_batch_sizes=True
    )
    assert decode.batches == [["a", "b", "c", "d", "e", PADDING_SENTENCE]]
    assert [c[0].text for c in results[0].translations] == ["a/0", "b/0", "c/0", "d/0", "e/0"]
    assert stats.sentences == 5


def test_padding_a_batch_for_xla_does_not_change_its_translations(trained_run):
    """The batcher pads XLA batches with a short sentence: the real sentences' translations and scores
    must not depend on it."""
    import translator
    from translator.serve.batching import PADDING_SENTENCE

    model = translator.load(trained_run, xla=True)  # the tiny preset decodes without XLA
    assert model.jit_compile  # the case where the server pads
    texts = [*SENTENCES, "Hola.", "Y fué la tarde y la mañana el día primero."]
    alone = model.translate_nbest(texts, 2)
    padded = model.translate_nbest([*texts, PADDING_SENTENCE], 2)[: len(texts)]
    assert [[t.text for t in c] for c in padded] == [[t.text for t in c] for c in alone]
    assert [t.score for c in padded for t in c] == pytest.approx([t.score for c in alone for t in c], abs=1e-4)


class EchoTranslator:
    """The smallest translator face: upper-cases, two candidates."""

    hypotheses = 2

    def translate_nbest(self, sentences: list[str], n_best: int = 1) -> list[list]:
        from translator.translation import Translation

        return [[Translation(text.upper(), -1.0)] * min(n_best, 2) for text in sentences]


def test_warns_without_a_key_off_loopback_and_names_a_failed_bind():
    """192.0.2.1 (a documentation address, on no machine): the warning, then a one-line error."""
    from translator.errors import TranslatorError
    from translator.serve.process import free_port
    from translator.serve.server import ServeOptions, is_loopback, serve

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    lines: list[str] = []
    options = ServeOptions(host="192.0.2.1", port=free_port(), grpc_port=None)
    with pytest.raises(TranslatorError, match=r"cannot listen on 192\.0\.2\.1:"):
        serve(EchoTranslator(), options, log=lines.append)
    assert lines[0].startswith("warning: serving on 192.0.2.1") and "without an API key" in lines[0]
    lines.clear()
    with pytest.raises(TranslatorError, match="cannot listen"):
        serve(EchoTranslator(), dataclasses.replace(options, api_key="k", grpc_port=free_port()), log=lines.append)
    assert lines == []


def test_cli_help_and_one_line_errors(capsys):
    from translator.cli import main

    for command in (["serve"], ["bench", "serve"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        examples = capsys.readouterr().out.split("examples:")[1]
        assert f"translator {' '.join(command)} " in examples
    assert main(["serve", "--export-dir", "/nonexistent/model"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("translator serve: error: /nonexistent/model is not a run directory")
    assert error.count("\n") == 1


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no Chromium on PATH: apt-get install chromium (as .ci/run does) to run the browser test")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is missing: pip install -e '.[serve,dev]'")
    return path


def test_page_in_a_real_browser(server, in_process, tmp_path):
    """Headless Chromium opens /, gives the API key when asked, types a Spanish sentence, clicks
    Translate and reads the English translation and the n-best list from the page."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    sentence = SENTENCES[1]
    expected = in_process.translate_nbest([sentence], n_best=2)[0]
    screenshot = tmp_path / "serve-page.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 640})
            prompts = []
            page.on("dialog", lambda dialog: (prompts.append(dialog.message), dialog.accept(API_KEY)))
            page.goto(server.url + "/")
            page.fill("#source", sentence)
            page.select_option("#nbest", "2")
            page.click("#translate")
            page.wait_for_selector("[data-role=best]", timeout=60_000)
            best = page.text_content("[data-role=best]")
            candidates = page.locator(".result .candidate").all_text_contents()
            page.screenshot(path=str(screenshot), full_page=True)
            assert page.is_hidden("#error")
            # The key is asked once: a second translation goes through without a prompt.
            page.click("#translate")
            page.wait_for_function("!document.getElementById('translate').disabled")
            page.fill("#source", "")
            page.click("#translate")
            error = page.inner_text("#error")
        finally:
            browser.close()
    assert best == expected[0].text
    assert candidates == [t.text for t in expected]
    assert prompts == ["This server needs an API key:"]
    assert error == "Type a sentence first."
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("SERVE_TEST_SCREENSHOT"):  # how README's screenshot is made
        shutil.copy(screenshot, os.environ["SERVE_TEST_SCREENSHOT"])


def test_page_shows_the_servers_error(server, tmp_path):
    """An error answer (here 413: more sentences than the server takes) is shown on the page."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.on("dialog", lambda dialog: dialog.accept(API_KEY))
            page.goto(server.url + "/")
            page.fill("#source", "\n".join(["Hola."] * (MAX_SENTENCES + 1)))
            page.click("#translate")
            page.wait_for_selector("#error:not([hidden])", timeout=30_000)
            error = page.inner_text("#error")
        finally:
            browser.close()
    assert error.startswith("Error 413:") and f"at most {MAX_SENTENCES} per request" in error


def test_sigterm_drains_in_flight_requests_then_exits(server):
    """Runs last: SIGTERM while requests are decoding; all of them are answered, then exit 0."""
    body = {"text": [f"{SENTENCES[2]} {i}" for i in range(MAX_SENTENCES)], "n_best": 2}
    answers: list = []

    def client() -> None:
        answers.append((post(server, "/translate", body), time.monotonic()))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until sentences are waiting: the requests are in flight
        status, stats = server.request("GET", "/stats", headers=AUTH)
        if status == 200 and stats["queued_sentences"] > 0:
            break
        time.sleep(0.01)
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(120)
    assert server.process.wait(60) == 0, server.output()
    assert [status for (status, _), _ in answers] == [200] * 4
    assert any(arrived > signalled for _, arrived in answers), "no request was in flight at SIGTERM"
    assert "stopped after" in server.output()
