"""One exported model timed in a fresh process: `python -m translator.bench.export_worker KIND MODEL`.

An export is deployed alone, so its speed and memory are measured alone: this process imports only
what the export needs (TensorFlow and tensorflow-text for a SavedModel; ctranslate2 and sentencepiece for
a CTranslate2 export, never TensorFlow) and decodes the sentences once untimed (warm-up).

It then stays up for timed rounds, so that `translator bench decode --rounds N` can interleave them with the
other methods' rounds (on a VM whose speed drifts within minutes, only interleaved rounds compare fairly),
one JSON line each way:

    stdin, first line: {"sentences": [...], "batch_size": 32, "threads": 0}
    stdout:            {"ready": true, ...}              once warmed up
    stdin:             time                             (any line), once per round
    stdout:            {"seconds": S, "hypotheses": [...]}   the hypotheses of the first round only
    stdin closed  →    {"peak_rss_mb": M}, and the process exits
"""

from __future__ import annotations

import json
import os
import sys
import time


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM, MiB). Not `ru_maxrss`: Linux carries that across
    `exec`, so a worker started from a large process would report its parent's peak."""
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def savedmodel_translate(model: str, batch_size: int):
    """The SavedModel's `serving_default` on batches in file order, as a server receives them."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    serve = tf.saved_model.load(model).signatures["serving_default"]

    def translate(sentences: list[str]) -> list[str]:
        hypotheses = []
        for start in range(0, len(sentences), batch_size):
            out = serve(text=tf.constant(sentences[start : start + batch_size]))
            hypotheses += [text.decode("utf-8") for text in out["translation"].numpy()]
        return hypotheses

    return translate


def ctranslate2_translate(model: str, batch_size: int, threads: int):
    from translator.ct2 import CTranslate2Translator

    translator = CTranslate2Translator(model, threads=threads, batch_size=batch_size)
    return lambda sentences: [best[0].text for best in translator.translate_nbest(sentences)]


def _say(message: dict) -> None:
    print(json.dumps(message), flush=True)


def main() -> int:
    kind, model = sys.argv[1], sys.argv[2]
    request = json.loads(sys.stdin.readline())
    sentences, batch_size = request["sentences"], request["batch_size"]
    if kind == "savedmodel":
        from translator.onednn import float32_search_before_tensorflow, use_eigen_for_decoding

        # As `translator serve --export-dir` chooses: from the export's info file, before TensorFlow loads.
        use_eigen_for_decoding(float32_search_before_tensorflow([], export_dir=model))
        translate = savedmodel_translate(model, batch_size)
    else:
        translate = ctranslate2_translate(model, batch_size, request["threads"])
    translate(sentences)  # warm-up: graph tracing, memory pools
    ready: dict = {"ready": True}
    if kind != "savedmodel":
        ready["tensorflow_imported"] = "tensorflow" in sys.modules
    else:  # chosen in this process, from the export (the benchmark's own process may have chosen otherwise)
        from translator.onednn import cpu_kernels

        ready["cpu_kernels"] = cpu_kernels()
    _say(ready)
    first = True
    for _ in sys.stdin:  # one timed round per line
        start = time.perf_counter()
        hypotheses = translate(sentences)
        seconds = time.perf_counter() - start
        _say({"seconds": seconds, **({"hypotheses": hypotheses} if first else {})})
        first = False
    _say({"peak_rss_mb": peak_rss_mb()})
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
