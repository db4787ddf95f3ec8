"""`translator serve`: a trained model over HTTP and gRPC, TensorFlow Serving-compatible, with
dynamic batching and a web page.

    batching.py      the queue that decodes concurrent requests together
    signatures.py    the SavedModel signatures' names, types and shapes
    payloads.py      JSON request bodies in (validated), response bodies out
    rest.py          the Starlette app: REST predict, /translate, /stats, /healthz, the page
    grpc_service.py  TensorFlow Serving's gRPC PredictionService
    server.py        one process running both, with graceful shutdown
    process.py       the command in a subprocess on a free port (for the benchmark and the tests)

Needs the `serve` extra: `pip install 'translator[serve]'`.
"""
