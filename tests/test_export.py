"""The SavedModel: loads without this package, matches in-process translation, handles odd input."""

import json
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.conftest import REPO
from translator.inference import Translator
from translator.onednn import EXPORT_INFO, float32_search_before_tensorflow

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export")]  # one worker: one export fixture

SENTENCES = [
    "En el principio crió Dios los cielos y la tierra.",
    "Y dijo Dios: Sea la luz: y fué la luz.",
    "Oid esto, viejos, y escuchad, todos los moradores de la tierra.",
]


@pytest.fixture(scope="module")
def exported(trained_run, exported_run):
    """The session's export of the tiny run, beside the run loaded in process with XLA: the export's
    graph is checked against XLA's search as well as against the plain one."""
    return Translator.from_run_dir(trained_run, jit_compile=True), exported_run


def test_the_export_says_what_it_computes_in(exported):
    """Read before TensorFlow loads, to choose its CPU kernels (`translator.onednn`): this one is float32."""
    translator, directory = exported
    info = json.loads((directory / EXPORT_INFO).read_text())
    assert {key: info[key] for key in ("precision", "beam_size", "length_penalty")} == {
        "precision": "float32",
        "beam_size": translator.config.beam_size,
        "length_penalty": translator.config.length_penalty,
    }
    assert {key: info["decode"][key] for key in ("max_length", "max_length_ratio", "beam_size")} == {
        key: getattr(translator.config, key) for key in ("max_length", "max_length_ratio", "beam_size")
    }
    assert info["checkpoint"]["path"] == translator.checkpoint.path and info["config"]["model"]["d_model"] == 32
    assert float32_search_before_tensorflow([], export_dir=str(directory))


@pytest.fixture(scope="module")
def package_free_process(exported) -> dict:
    """What a Python without this package makes of the export, in one process (one TensorFlow import
    for all of it): the stock `saved_model_cli show`, then `saved_model_cli run` (a TF1-style session
    loader, like TensorFlow Serving) on the README's REST request body, then `tf.saved_model.load` and
    the serving signature on SENTENCES. saved_model_cli itself does not load tensorflow-text's ops, so
    tensorflow_text is imported first; the session loader runs before the TF2 load, so that it cannot
    lean on anything the other loaded. Each part's standard output by name, and the request's texts."""
    _, directory = exported
    body = json.loads((REPO / "docs" / "serving_request.json").read_text(encoding="utf-8"))
    texts = [instance["text"] for instance in body["instances"]]
    show = ["show", "--dir", str(directory), "--tag_set", "serve", "--signature_def", "serving_default"]
    run = ["run", "--dir", str(directory), "--tag_set", "serve", "--signature_def", body["signature_name"]]
    run += ["--input_exprs", f"text={texts!r}"]
    script = f"""
import json, sys
sys.modules["translator"] = None  # `import translator` now fails
try:
    import translator
    raise SystemExit("translator was importable")
except ImportError:
    pass
import tensorflow as tf, tensorflow_text
from tensorflow.python.tools import saved_model_cli
for argv in ({show!r}, {run!r}):
    sys.argv = ["saved_model_cli", *argv]
    try:
        saved_model_cli.main()
    except SystemExit as exit:
        if exit.code:
            raise
    print("=== done:", argv[0], flush=True)
loaded = tf.saved_model.load({str(directory)!r})
out = loaded.signatures["serving_default"](text=tf.constant({SENTENCES!r}))
print(json.dumps([t.decode("utf-8") for t in out["translation"].numpy()]))
print("=== done: served", flush=True)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    parts = result.stdout.split("=== done: ")
    assert [part.split("\n", 1)[0] for part in parts[1:]] == ["show", "run", "served"], result.stdout[-2000:]
    return {"show": parts[0], "run": parts[1].split("\n", 1)[1], "served": parts[2].split("\n", 1)[1], "texts": texts}


def test_export_loads_without_the_package_and_matches_in_process(exported, package_free_process):
    translator, _ = exported
    served = json.loads(package_free_process["served"].strip().splitlines()[-1])
    assert served == translator.translate(SENTENCES)


def test_signatures_and_odd_inputs(exported):
    translator, directory = exported
    loaded = tf.saved_model.load(str(directory))
    serve = loaded.signatures["serving_default"]
    long_input = " ".join(["palabra"] * 400)
    texts = tf.constant(["", "   ", b"\xff\xfe bad utf-8", SENTENCES[0], long_input])
    out = serve(text=texts)
    translations = [t.decode() for t in out["translation"].numpy()]
    assert translations[:3] == ["", "", ""]
    assert out["score"].numpy()[:3].tolist() == [0.0, 0.0, 0.0]
    assert translations[3] == translator.translate(SENTENCES[0])
    assert out["truncated"].numpy().tolist() == [False, False, False, False, True]
    # The declared output shapes are the contract TensorFlow Serving clients read from the metadata.
    assert {k: v.shape.as_list() for k, v in serve.structured_outputs.items()} == {
        "translation": [None],
        "score": [None],
        "truncated": [None],
    }
    declared = loaded.signatures["translate_nbest"].structured_outputs
    assert {k: v.shape.as_list() for k, v in declared.items()} == {
        "translations": [None, None],
        "scores": [None, None],
        "truncated": [None],
    }
    nbest = loaded.signatures["translate_nbest"](text=tf.constant(SENTENCES))
    beam = translator.config.beam_size
    assert nbest["translations"].shape == (3, beam) and nbest["scores"].shape == (3, beam)
    assert (nbest["scores"].numpy()[:, :-1] >= nbest["scores"].numpy()[:, 1:]).all()


def test_a_batch_of_a_thousand_sentences(exported):
    _, directory = exported
    loaded = tf.saved_model.load(str(directory))
    out = loaded.signatures["serving_default"](text=tf.constant(["Y fué la tarde y la mañana."] * 1000))
    assert out["translation"].shape == (1000,)
    assert len(set(out["translation"].numpy().tolist())) == 1


def test_saved_model_cli_lists_and_runs_the_signature(exported, package_free_process):
    """`saved_model_cli show` lists the signature; `saved_model_cli run` translates the README's
    request body as the model does in process."""
    translator, _ = exported
    shown = package_free_process["show"]
    assert "inputs['text']" in shown and "outputs['translation']" in shown
    assert "outputs['score']" in shown and "outputs['truncated']" in shown

    expected = translator.translate(package_free_process["texts"])
    ran = package_free_process["run"]
    output = ran.split("Result for output key translation:")[1].split("Result for output key")[0]
    for text in expected:
        assert repr(text.encode("utf-8"))[2:-1] in output


def test_cli_translates_from_the_export_like_from_the_run(exported, trained_run, tmp_path, capfd):
    """capfd: the native stderr too, where SentencePiece logged "precompiled_charsmap is empty" at every load."""
    from translator.cli import main

    translator, directory = exported
    source = tmp_path / "in.es"
    source.write_text("\n".join([SENTENCES[0], "", " \t", *SENTENCES[1:]]) + "\n", encoding="utf-8")
    outputs = []
    for flag, path in (("--export-dir", directory), ("--run-dir", trained_run)):
        assert main(["translate", flag, str(path), "--input", str(source), "--n-best", "2"]) == 0
        captured = capfd.readouterr()
        lines = captured.out.splitlines()
        assert "precompiled_charsmap" not in captured.err, captured.err
        assert lines[2:6] == ["0.0000\t"] * 4  # blank lines: empty translations, score 0, not decoded
        outputs.append([line.split("\t")[1] for line in lines])
    assert len(outputs[0]) == 10 and outputs[0] == outputs[1]
    # The splitting rules' language comes from the run's config, recorded in the export.
    assert main(["translate", "--export-dir", str(directory), "--input", str(source), "--split-sentences"]) == 0
    assert len(capfd.readouterr().out.splitlines()) == 5
    beam = translator.config.beam_size
    assert main(["translate", "--export-dir", str(directory), "--input", str(source), "--n-best", str(beam + 1)]) == 2
    err = capfd.readouterr().err
    assert f"the search keeps {beam} per input (the beam size); export it again with --beam-size {beam + 1}" in err
    # The export given as a run directory: named as an export, with the flag that takes it (was a traceback).
    for command in ("translate", "info"):
        assert main([command, "--run-dir", str(directory)]) == 2
        err = capfd.readouterr().err
        assert (
            "is an exported SavedModel, not a run directory: "
            "translate, evaluate, serve and info take it as --export-dir" in err
        )


def test_cli_evaluates_the_export_like_the_run(exported, trained_run, tmp_path, capsys):
    """The split comes from the run's config recorded at export; the report goes beside the export."""
    from translator.cli import main
    from translator.evaluation import evaluate_translator

    _, directory = exported
    copy = tmp_path / "1"  # not the session's export: the report is written into EXPORT_DIR/eval
    shutil.copytree(directory, copy)
    assert main(["evaluate", "--export-dir", str(copy), "--split", "test"]) == 0
    assert f"wrote {copy / 'eval' / 'test.json'}" in capsys.readouterr().out
    report = json.loads((copy / "eval" / "test.json").read_text(encoding="utf-8"))
    ours = Translator.from_run_dir(trained_run, jit_compile=False)
    assert report["bleu"]["score"] == evaluate_translator(ours, "test")["bleu"]["score"]
    assert report["checkpoint"] == ours.checkpoint.path and report["savedmodel"] == str(copy)
    assert (report["beam_size"], report["length_penalty"]) == (ours.config.beam_size, ours.config.length_penalty)
    assert main(["evaluate", "--export-dir", str(copy), "--beam-size", "1"]) == 2
    assert "--beam-size: fixed in the SavedModel at export" in capsys.readouterr().err
    # `info` reads the export's record and its evaluations, without loading the model.
    assert main(["info", "--export-dir", str(copy)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"checkpoint: {ours.checkpoint.path} (step 40, {ours.checkpoint.kind})" in lines
    beam, alpha = ours.config.beam_size, ours.config.length_penalty
    assert f"export: SavedModel, beam {beam}, length penalty {alpha}, precision float32" in lines
    assert f"eval test: BLEU {report['bleu']['score']}, chrF {report['chrf']['score']}, " in "\n".join(lines)
    assert "  d_model: 32" in lines  # the run's config, recorded at export
    assert main(["info", "--ct2-dir", str(copy)]) == 2
    assert f"--ct2-dir {copy}: not a CTranslate2 export (no model.bin)" in capsys.readouterr().err


def test_translate_with_prefix_agrees_with_in_process(exported):
    import translator as package

    translator, directory = exported
    loaded = tf.saved_model.load(str(directory))
    prefixes = ["And God", "", "Hear"]
    signature = loaded.signatures["translate_with_prefix"]
    out = signature(text=tf.constant(SENTENCES), prefix=tf.constant(prefixes))
    expected = [candidates[0] for candidates in translator.translate_nbest(SENTENCES, 1, prefixes)]
    texts = [text.decode("utf-8") for text in out["translation"].numpy()]
    assert texts == [candidate.text for candidate in expected]
    assert all(text.startswith(prefix) for text, prefix in zip(texts, prefixes))
    assert abs(out["score"].numpy() - [candidate.score for candidate in expected]).max() < 1e-4
    assert texts[1] == translator.translate(SENTENCES[1])  # no prefix: serving_default's translation
    assert {k: v.shape.as_list() for k, v in signature.structured_outputs.items()} == {
        "translation": [None],
        "score": [None],
        "truncated": [None],
    }
    assert sorted(signature.structured_input_signature[1]) == ["prefix", "text"]
    assert sorted(loaded.signatures["serving_default"].structured_input_signature[1]) == ["text"]
    saved = package.load(directory)
    assert saved.translate(SENTENCES, prefixes=prefixes) == texts
    with pytest.raises(package.TranslatorError, match="best translation only"):
        saved.translate(SENTENCES, prefixes=prefixes, n_best=2)


def test_every_weight_is_stored_once_with_its_value(exported):
    """The SavedModel's variables are the model's weights, each once (Keras' export stored two copies)."""
    translator, directory = exported
    stored = tf.train.load_checkpoint(str(directory / "variables" / "variables"))
    shapes = stored.get_variable_to_shape_map()
    values = sorted((tuple(shapes[name]), stored.get_tensor(name).sum()) for name in shapes if "VARIABLE_VALUE" in name)
    weights = sorted((tuple(w.shape), w.sum()) for w in translator.model.get_weights())
    assert len(values) == len(weights)
    for (shape, total), (expected_shape, expected_total) in zip(values, weights):
        assert shape == expected_shape and total == pytest.approx(expected_total, rel=1e-6, abs=1e-6)
