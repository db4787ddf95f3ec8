"""The CTranslate2 export: the same log-probabilities and greedy translations as our model, for every
architecture the config allows; self-contained; refused in one line where it cannot be exact."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, read_corpus, tiny_model

ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is not installed (pip install '.[ctranslate2]')")

from translator.cli import main  # noqa: E402
from translator.config import DecodeConfig  # noqa: E402
from translator.ct2 import DEFAULT_BATCH_SIZE, SHORTLIST_BATCH_SIZE, CTranslate2Translator  # noqa: E402
from translator.ct2_export import check_mappable, export_ctranslate2  # noqa: E402
from translator.errors import TranslatorError  # noqa: E402
from translator.evaluation import split_pairs  # noqa: E402
from translator.inference import Translator  # noqa: E402
from translator.shortlist import DEFAULT_FREQUENT  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ct2")]  # one worker: one ct2 fixture

PER_TOKEN_TOLERANCE = 1e-4


def _max_per_token_difference(ours, theirs) -> float:
    assert [score.tokens for score in ours] == [score.tokens for score in theirs]
    return max(abs(a.log_prob - b.log_prob) / a.tokens for a, b in zip(ours, theirs))


@pytest.fixture(scope="module")
def run_and_export(run_translator, tmp_path_factory):
    """The tiny run's model in process (no XLA, as the tiny preset decodes) and its float32 export."""
    ours = run_translator
    directory = export_ctranslate2(ours, tmp_path_factory.mktemp("ct2") / "model", "none")
    return ours, CTranslate2Translator(directory), directory


@pytest.fixture(scope="module")
def test_split(run_and_export):
    ours, _, _ = run_and_export
    _, sources, references = split_pairs(ours, "test")
    return sources, references


def test_export_scores_targets_as_our_model_does(run_and_export, test_split):
    ours, theirs, directory = run_and_export
    sources, references = test_split
    assert _max_per_token_difference(ours.score(sources, references), theirs.score(sources, references)) < 1e-4
    info = json.loads((directory / "export.json").read_text(encoding="utf-8"))
    assert info["quantization"] == "none" and info["checkpoint"]["step"] == 40
    assert info["decode"]["beam_size"] == ours.config.beam_size and info["config"]["model"]["d_model"] == 32


def test_greedy_translations_are_ours_on_the_whole_test_split(run_and_export, test_split):
    ours, theirs, _ = run_and_export
    sources, _ = test_split
    expected = ours.configured(beam_size=1).translate_nbest(sources)
    got = theirs.configured(beam_size=1).translate_nbest(sources)
    assert [candidates[0].text for candidates in got] == [candidates[0].text for candidates in expected]
    # Scores too: the ones stopped at the length limit are rescored with EOS, as our search ends them.
    assert max(abs(a[0].score - b[0].score) for a, b in zip(expected, got)) < 1e-3


def test_workers_change_the_speed_not_the_translations(run_and_export, test_split):
    _, _, directory = run_and_export
    sources, _ = test_split
    # One thread per batch in both: the thread count of a batch may change a product's summation order
    # (seen on an AVX2 CPU: a near-tie decided otherwise), the number of batches at once must not.
    one = CTranslate2Translator(directory, threads=1, workers=1)
    three = one.with_config(workers=3)
    assert (one.model.num_translators, three.model.num_translators) == (1, 3)  # reloaded with other inter_threads
    expected, got = one.translate_nbest(sources, n_best=2), three.translate_nbest(sources, n_best=2)
    assert [[(c.text, c.score) for c in nbest] for nbest in got] == [
        [(c.text, c.score) for c in nbest] for nbest in expected
    ]


def test_an_input_smaller_than_a_batch_a_worker_is_dealt_to_every_worker(run_and_export, test_split):
    """A server's batch of 16 fits one CTranslate2 batch: decoded as one, it kept one of the two workers
    (and its core) idle. Dealt in turn, each worker decodes a share; translations are the same."""
    _, _, directory = run_and_export
    sources, _ = test_split
    few = sources[:5]
    one = CTranslate2Translator(directory, threads=1, workers=1)
    two = one.with_config(workers=2)
    calls = {}  # the batch sizes of each `_decode` call (a second one decodes again what passed its limit)
    for name, translator in (("one", one), ("two", two)):
        decode = translator._decode
        translator._decode = lambda batches, *rest, name=name, decode=decode: (
            calls.setdefault(name, []).append(sorted(map(len, batches))),
            decode(batches, *rest),
        )[1]
    expected, got = one.translate_nbest(few, n_best=2), two.translate_nbest(few, n_best=2)
    assert calls["one"][0] == [5] and calls["two"][0] == [2, 3]
    assert [[c.text for c in nbest] for nbest in got] == [[c.text for c in nbest] for nbest in expected]
    for nbest, other in zip(got, expected):
        np.testing.assert_allclose([c.score for c in nbest], [c.score for c in other], atol=1e-4)


def test_batch_size_changes_the_batches_not_the_translations(run_and_export, test_split):
    _, theirs, directory = run_and_export
    sources, _ = test_split
    assert theirs.batch_size == DEFAULT_BATCH_SIZE
    one_by_one = CTranslate2Translator(directory, batch_size=1)
    sizes = {}  # the batch sizes each translator hands CTranslate2
    for name, translator in (("default", theirs), ("one", one_by_one)):
        decode = translator._decode
        translator._decode = lambda batches, *rest, name=name, decode=decode: (
            sizes.setdefault(name, []).extend(map(len, batches)),
            decode(batches, *rest),
        )[1]
    try:
        expected, got = theirs.translate_nbest(sources, n_best=2), one_by_one.translate_nbest(sources, n_best=2)
    finally:
        del theirs._decode  # the module's fixture is shared: back to the class's method
    assert max(sizes["default"]) == min(DEFAULT_BATCH_SIZE, len(sources)) and set(sizes["one"]) == {1}
    assert [[c.text for c in nbest] for nbest in got] == [[c.text for c in nbest] for nbest in expected]
    # Padded beside longer sentences or alone, a sentence's scores agree to float32 round-off.
    assert max(abs(a.score - b.score) for x, y in zip(expected, got) for a, b in zip(x, y)) < 1e-4


@pytest.mark.parametrize(
    "pre_norm, share_embeddings, shared_tokenizer, decoder_layers",
    [(True, True, True, 0), (False, True, True, 0), (True, False, True, 1), (False, False, False, 0)],
)
def test_every_architecture_maps_exactly(
    tokenizer, tmp_path, pre_norm, share_embeddings, shared_tokenizer, decoder_layers
):
    """Random weights (no training): pre- and post-norm, shared or separate embeddings and tokenizers, a
    shallower decoder than encoder."""
    from translator.config import TokenizerConfig
    from translator.model import Seq2SeqTransformer
    from translator.tokenizer import Tokenizer

    sources, targets = read_corpus("dev", 12)
    if not shared_tokenizer:
        train_sources, train_targets = read_corpus("train", 2000)
        tokenizer = Tokenizer.train(TokenizerConfig(vocab_size=450, shared=False), train_sources, train_targets)
    model = tiny_model(
        tokenizer.source_vocab_size, pre_norm=pre_norm, share_embeddings=share_embeddings, decoder_layers=decoder_layers
    )
    if tokenizer.target_vocab_size != tokenizer.source_vocab_size:
        model = Seq2SeqTransformer(
            tokenizer.source_vocab_size,
            tokenizer.target_vocab_size,
            num_layers=2,
            d_model=32,
            num_heads=4,
            ffn_dim=64,
            dropout=0.0,
            pre_norm=pre_norm,
            share_embeddings=False,
        )
        model.build()
    ours = Translator(model, tokenizer, DecodeConfig(beam_size=1, max_length=24), 64, jit_compile=False)
    theirs = CTranslate2Translator(export_ctranslate2(ours, tmp_path / "model", "none"))
    assert _max_per_token_difference(ours.score(sources, targets), theirs.score(sources, targets)) < 1e-4
    assert theirs.translate(sources) == ours.translate(sources)
    assert sorted(p.name for p in (tmp_path / "model").glob("*.model")) == (
        ["joint.model"] if shared_tokenizer else ["source.model", "target.model"]
    )


def test_unmappable_models_are_refused_in_one_line(monkeypatch):
    with pytest.raises(TranslatorError, match=r"^cannot export to CTranslate2: d_model=33 is odd") as odd:
        check_mappable(tiny_model(d_model=33, num_heads=3))
    model = tiny_model()
    monkeypatch.setattr(model, "get_config", lambda: {**type(model).get_config(model), "activation": "gelu"})
    with pytest.raises(TranslatorError, match=r"model setting\(s\) activation have no mapping") as unknown:
        check_mappable(model)
    assert "\n" not in str(odd.value) + str(unknown.value)


def test_readme_snippet_translates_without_this_package_or_tensorflow(trained_run, tmp_path):
    """The README's snippet, verbatim but for the path, in `python -I` with `translator` and
    `tensorflow` unimportable; its greedy translations (export.json says beam 1) are our model's."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"<!-- ct2-snippet -->\n```python\n(.*?)```\n<!-- /ct2-snippet -->", readme, re.S).group(1)
    # ctranslate2's default max_decoding_length (256) is our limit of 257 tokens with EOS.
    ours = Translator.from_run_dir(trained_run, jit_compile=False, beam_size=1, max_length=257, max_length_ratio=1e3)
    directory = export_ctranslate2(ours, tmp_path / "model", "none")
    script = "\n".join(
        [
            "import sys",
            "sys.modules['translator'] = sys.modules['tensorflow'] = None  # imports of them now fail",
            snippet.replace('export = "runs/small/ctranslate2"', f"export = {str(directory)!r}"),
        ]
    )
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    sources = re.search(r"^sources = (\[.*\])$", snippet, re.M).group(1)
    assert result.stdout.strip() == repr(ours.translate(eval(sources)))


def test_cli_exports_then_translates_and_evaluates_like_the_run(trained_run, run_and_export, tmp_path, capsys):
    output = tmp_path / "ct2"
    export = ["export", "--run-dir", str(trained_run), "--format", "ctranslate2", "--output", str(output)]
    assert main([*export, "--quantization", "none"]) == 0
    assert "as ctranslate2" in capsys.readouterr().out
    assert main([*export[:-1], str(tmp_path / "int8"), "--quantization", "int8"]) == 0
    assert "weights int8" in capsys.readouterr().out
    assert json.loads((tmp_path / "int8" / "export.json").read_text(encoding="utf-8"))["quantization"] == "int8"
    assert (tmp_path / "int8" / "model.bin").stat().st_size < (output / "model.bin").stat().st_size
    source = tmp_path / "in.es"
    # A blank line is translated by neither (CTranslate2 alone gave "" for "" but a sentence for "  ").
    source.write_text(
        "Y dijo Dios: Sea la luz: y fué la luz.\n\n  \nEn el principio crió Dios los cielos y la tierra.\n"
    )
    translations = {}
    for flag, path in (("--ct2-dir", output), ("--run-dir", trained_run)):
        assert main(["translate", flag, str(path), "--input", str(source), "--beam-size", "1"]) == 0
        translations[flag] = capsys.readouterr().out
    assert translations["--ct2-dir"] == translations["--run-dir"]
    assert translations["--run-dir"].split("\n")[1:3] == ["", ""]
    assert main(["translate", "--ct2-dir", str(output), "--input", str(source), "--n-best", "2", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8 and all(re.match(r"^-?\d+\.\d{4}\t", line) for line in lines)
    assert lines[2:6] == ["0.0000\t"] * 4
    assert (
        main(["translate", "--ct2-dir", str(output), "--input", str(source), "--n-best", "3", "--beam-size", "2"]) == 2
    )
    assert "--n-best 3: the search keeps 2 per input (the beam size); add --beam-size 3" in capsys.readouterr().err

    assert main(["translate", "--run-dir", str(trained_run), "--input", str(source), "--batch-size", "8"]) == 2
    assert "--threads and --batch-size apply to --ct2-dir only" in capsys.readouterr().err
    assert main(["translate", "--ct2-dir", str(output), "--input", str(source), "--precision", "bfloat16"]) == 2
    assert "--precision needs --run-dir" in capsys.readouterr().err

    evaluate = ["evaluate", "--ct2-dir", str(output), "--split", "test", "--beam-size", "1", "--batch-size", "4"]
    assert main([*evaluate, "--precision", "auto"]) == 0  # auto is float32 for CTranslate2
    report = json.loads((output / "eval" / "test.json").read_text(encoding="utf-8"))
    ours = run_and_export[0].configured(beam_size=1)
    from translator.evaluation import evaluate_translator

    assert report["bleu"]["score"] == evaluate_translator(ours, "test")["bleu"]["score"]
    assert report["beam_size"] == 1 and report["ctranslate2"] == str(output) and report["quantization"] == "none"
    assert report["precision"] == "float32"


def test_a_shortlist_confines_each_translation_to_its_sources_candidates(
    trained_run, run_and_export, test_split, tmp_path, capsys
):
    _, full, _ = run_and_export
    sources, _ = test_split
    output = tmp_path / "shortlisted"
    export = ["export", "--run-dir", str(trained_run), "--format", "ctranslate2", "--output", str(output)]
    assert main([*export, "--shortlist", "3"]) == 0
    assert "weights none, shortlist 3 per source piece" in capsys.readouterr().out
    info = json.loads((output / "export.json").read_text(encoding="utf-8"))
    assert info["shortlist"] == {"per_source": 3, "frequent": DEFAULT_FREQUENT}
    assert main(["info", "--ct2-dir", str(output)]) == 0
    described = capsys.readouterr().out.splitlines()
    beam, alpha = info["decode"]["beam_size"], info["decode"]["length_penalty"]
    assert f"export: CTranslate2, beam {beam}, length penalty {alpha}, weights none, shortlist 3 per source piece" in (
        described
    )
    assert f"checkpoint: {info['checkpoint']['path']} (step 40, {info['checkpoint']['kind']})" in described
    rows = [line.split("\t") for line in (output / "vmap.txt").read_text(encoding="utf-8").splitlines()]
    assert rows[0][0] == "" and len(rows[0][1].split()) == DEFAULT_FREQUENT
    always = set(rows[0][1].split()) | {"<unk>", "<s>", "</s>"}  # CTranslate2 adds the specials
    candidates = {source: set(targets.split()) for source, targets in rows[1:]}
    assert max(map(len, candidates.values())) == 3

    def decoded(translator) -> list[list[tuple[list[str], float]]]:
        """Each sentence's hypotheses as CTranslate2 returned them (pieces, log-probability under its
        softmax), before the ones stopped at the length limit are rescored over the whole vocabulary."""
        results = {}  # a sentence decoded again (past its own length limit) keeps its last decoding
        decode = translator._decode
        translator._decode = lambda batches, sources, limits, found: (
            decode(batches, sources, limits, found),
            results.update((i, [(p, score) for p, score, _ in found[i]]) for batch in batches for i in batch),
        )[0]
        translator.translate_nbest(sources, n_best=1)
        assert len(results) == len(sources)
        return [results[i] for i in range(len(sources))]

    assert CTranslate2Translator(output).batch_size == SHORTLIST_BATCH_SIZE  # a smaller union of candidates
    shortlisted = CTranslate2Translator(output, batch_size=1)
    assert shortlisted.shortlisted and not full.shortlisted
    pieces, _ = shortlisted._source_pieces(sources)
    allowed = [always.union(*(candidates.get(piece, set()) for piece in source)) for source in pieces]
    confined = decoded(shortlisted)
    assert all(piece in allowed[i] for i, found in enumerate(confined) for p, _ in found for piece in p)
    # In force: each step's softmax spans the shortlist only, so the pieces both find score higher.
    free = decoded(CTranslate2Translator(run_and_export[2], batch_size=1))
    same = [(a[0][1], b[0][1]) for a, b in zip(confined, free) if a[0][0] == b[0][0]]
    assert len(same) > len(sources) // 2 and all(a > b + 1e-4 for a, b in same)


def test_load_detects_the_export_and_the_core_refuses_without_ctranslate2(run_and_export):
    import translator

    _, _, directory = run_and_export
    loaded = translator.load(directory, beam_size=1)
    assert isinstance(loaded, CTranslate2Translator) and loaded.config.beam_size == 1
    script = (
        "import sys; sys.modules['ctranslate2'] = None\n"
        "from translator.errors import TranslatorError\n"
        "from translator.ct2 import CTranslate2Translator\n"
        "try:\n"
        f"    CTranslate2Translator({str(directory)!r})\n"
        "except TranslatorError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert "pip install 'translator[ctranslate2]'" in result.stdout, result.stderr[-2000:]
