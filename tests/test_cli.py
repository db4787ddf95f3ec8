"""The command line: help with examples, one-line errors with exit code 2, translate and evaluate."""

import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys

import pytest

from tests.conftest import train_command
from translator import commands
from translator.cli import main
from translator.config import load_config
from translator.errors import TranslatorError
from translator.onednn import (
    EXPORT_INFO,
    ONEDNN_VARIABLE,
    X86_MACHINES,
    decoding_kernels,
    float32_search_before_tensorflow,
    use_eigen_for_decoding,
    use_onednn_for_training,
)
from translator.precision import cpu_flags
from translator.rundir import RunDirectory
from translator.threads import INTRA_OP_VARIABLE, threads_per_worker

pytestmark = pytest.mark.slow


def run_cli(*args, stdin=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "translator.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_a_module_hidden_during_tensorflows_import_imports_as_usual_afterwards(tmp_path, monkeypatch):
    """The command line hides matplotlib while TensorFlow imports (`translator.quiet`): inside the block an
    import of it, or of a module of it, fails as if it were not installed; after it the package imports as
    usual; and a package imported already is never hidden."""
    from translator.quiet import UNNEEDED_AT_IMPORT, module_hidden

    assert UNNEEDED_AT_IMPORT == "matplotlib"
    package = tmp_path / "plotting_stand_in"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n", encoding="utf-8")
    (package / "pyplot.py").write_text("DRAWN = True\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("plotting_stand_in", "plotting_stand_in.pyplot"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with module_hidden("plotting_stand_in"):
        with pytest.raises(ImportError):
            import plotting_stand_in.pyplot  # noqa: F401
        with pytest.raises(ImportError):
            from plotting_stand_in import pyplot  # noqa: F401
    import plotting_stand_in.pyplot

    assert plotting_stand_in.VALUE == 1 and plotting_stand_in.pyplot.DRAWN
    with module_hidden("plotting_stand_in"):
        import plotting_stand_in as again
    assert again is plotting_stand_in
    for name in ("plotting_stand_in", "plotting_stand_in.pyplot"):
        monkeypatch.delitem(sys.modules, name)


def test_a_closed_pipe_ends_quietly_and_a_refused_file_is_one_line(monkeypatch, capsys):
    """`translator translate ... | head` and a file the system refuses: no traceback either way."""
    import errno

    def raise_(error):
        def command(args, decode):
            raise error

        return command

    monkeypatch.setattr(commands, "info", raise_(BrokenPipeError(errno.EPIPE, "Broken pipe")))
    assert main(["info", "--run-dir", "runs/x"]) == 141
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(commands, "info", raise_(PermissionError(errno.EACCES, "Permission denied", "runs/x/a")))
    assert main(["info", "--run-dir", "runs/x"]) == 2
    assert capsys.readouterr().err == "translator info: error: runs/x/a: Permission denied\n"


def test_help_has_examples(capsys):
    for command in ([], ["train"], ["evaluate"], ["translate"], ["export"], ["info"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        assert "examples:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--config", "nope", "--run-dir", "RUN"], "unknown preset 'nope'"),
        (["train", "--config", "tiny", "--set", "train.stepz=3", "--run-dir", "RUN"], "did you mean 'train.steps'"),
        (["train", "--config", "tiny", "--set", "train.steps=x", "--run-dir", "RUN"], "train.steps must be int"),
        (["evaluate", "--run-dir", "RUN"], "not a run directory (config.yaml)"),
        (["translate", "--run-dir", "RUN"], "not a run directory (config.yaml)"),
        (["translate", "--export-dir", "RUN", "--beam-size", "3"], "--beam-size: fixed in the SavedModel"),
        (["translate", "--export-dir", "RUN", "--sampling-topk", "5"], "--sampling-topk: sampling needs --run-dir"),
        (["translate", "--ct2-dir", "RUN", "--seed", "5"], "--seed: sampling needs --run-dir (not --ct2-dir)"),
        (["translate", "--ct2-dir", "RUN", "--ct2-dir", "RUN"], "--ct2-dir given 2 times: an ensemble is made of run"),
        (["evaluate", "--ct2-dir", "RUN", "--ct2-dir", "RUN"], "--ct2-dir given 2 times"),
        (["translate", "--export-dir", "RUN", "--export-dir", "RUN"], "--export-dir given 2 times"),
        (["translate", "--run-dir", "RUN", "--run-dir", "RUN"], "not a run directory (config.yaml): an ensemble"),
        (
            ["train", "--config", "tiny", "--set", "tokenizer.shared=false", "--run-dir", "RUN"],
            "model.share_embeddings=true ties the source and target embeddings",
        ),
        (["train", "--config", "tiny", "--set", "model.dropout=1.5", "--run-dir", "RUN"], "model.dropout must be in"),
        (
            ["train", "--config", "tiny", "--init-from", "RUN", "--run-dir", "RUN"],
            "the parent must be another run than --run-dir",
        ),
        (["--debug", "info", "--run-dir", "RUN"], None),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, capsys, args, message):
    args = [str(tmp_path / "run") if a == "RUN" else a for a in args]
    if message is None:  # --debug before the subcommand is kept: the error comes with its traceback
        with pytest.raises(TranslatorError):
            main(args)
        return
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["average", "--run-dir", "RUN", "--last", "0"], "argument --last: must be at least 1, got 0"),
        (["translate", "--run-dir", "RUN", "--n-best", "0"], "argument --n-best: must be at least 1, got 0"),
        (["translate", "--ct2-dir", "RUN", "--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
        (["translate", "--ct2-dir", "RUN", "--threads", "-1"], "argument --threads: must be at least 0, got -1"),
        (["score", "--ct2-dir", "RUN", "--src", "S", "--tgt", "T", "--batch-size", "x"], "not a whole number: 'x'"),
        (["serve", "--run-dir", "RUN", "--port", "70000"], "argument --port: a port is at most 65535, got 70000"),
        (["serve", "--run-dir", "RUN", "--batch-timeout-ms", "-1"], "must be at least 0.0, got -1"),
        (["bench", "train", "--budget-minutes", "0"], "argument --budget-minutes: must be more than 0, got 0"),
        (["bench", "decode", "--run-dir", "RUN", "--limit", "-5"], "argument --limit: must be at least 0, got -5"),
    ],
)
def test_counts_below_their_minimum_are_refused_by_the_parser(capsys, args, message):
    """Before: `average --last 0` averaged every checkpoint and said "the last 0", `--n-best 0` printed
    one line, and a CTranslate2 `--batch-size 0` or `--threads -1` ended in a traceback."""
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_translate_and_evaluate_from_a_run(trained_run, tmp_path, capsys):
    """In this process, as `main` (the command itself); one run in a fresh process reads a real pipe."""
    source = tmp_path / "in.es"
    source.write_text("Y dijo Dios.\nEn el principio.\n", encoding="utf-8")
    output = tmp_path / "new" / "nbest.en"  # a directory that is not there yet: made
    translate = ["translate", "--run-dir", str(trained_run), "--input", str(source), "--n-best", "2"]
    assert main([*translate, "--output", str(output)]) == 0
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and all(len(line.split("\t")) == 2 for line in lines)
    float(lines[0].split("\t")[0])

    # With oneDNN on (TensorFlow's default on AVX-512 CPUs, `translator train`'s on x86), an eager integer
    # transpose once logged "E0000 ... oneDNN supports DT_INT64 only on platforms with AVX-512" here.
    # The pipe stays open after the first line: its answer must come before the input ends (a dialogue,
    # someone typing at a terminal), not after a thousand lines or the end of the input.
    command = [sys.executable, "-m", "translator.cli", "translate", "--run-dir", str(trained_run), "--beam-size", "1"]
    dialogue = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, ONEDNN_VARIABLE: "1"},
    )
    dialogue.stdin.write("Y dijo Dios.\n")
    dialogue.stdin.flush()
    answered = select.select([dialogue.stdout], [], [], 300)[0]
    first = dialogue.stdout.readline() if answered else None
    rest, errors = dialogue.communicate("Y dijo Dios.\r\n", timeout=300)  # CRLF: the same sentence
    assert answered and dialogue.returncode == 0, errors[-3000:]
    assert first.strip() and rest == first
    assert "oneDNN supports" not in errors, errors

    reference = tmp_path / "ref.en"
    reference.write_text("And God said.\nIn the beginning.\n", encoding="utf-8")
    args = ["evaluate", "--run-dir", str(trained_run), "--src", str(source), "--ref", str(reference)]
    assert main([*args, "--ref", str(reference)]) == 0
    scored = capsys.readouterr().out
    assert "BLEU|nrefs:2" in scored and "chrF2|nrefs:2" in scored and "TER|nrefs:2" in scored
    report = json.loads((trained_run / "eval" / "in.json").read_text())
    assert set(report) >= {"bleu", "chrf", "ter", "checkpoint"} and report["precision"] == "float32"
    assert len((trained_run / "eval" / "in.hyp").read_text().splitlines()) == 2
    assert main([*args, "--precision", "bfloat16"]) == 0 and "BLEU|nrefs:1" in capsys.readouterr().out
    assert json.loads((trained_run / "eval" / "in.json").read_text())["precision"] == "bfloat16"


def test_decoding_commands_share_the_cores_among_their_workers(trained_run, tmp_path, monkeypatch):
    assert [threads_per_worker(workers, cores) for workers, cores in ((2, 2), (2, 8), (4, 1), (3, 8))] == [1, 4, 1, 2]
    source = tmp_path / "in.es"
    source.write_text("Y dijo Dios.\n", encoding="utf-8")
    args = ["translate", "--run-dir", str(trained_run), "--input", str(source)]
    monkeypatch.delenv(INTRA_OP_VARIABLE, raising=False)
    assert main([*args, "--workers", "3"]) == 0
    assert os.environ[INTRA_OP_VARIABLE] == str(threads_per_worker(3))  # read by TensorFlow at its start
    monkeypatch.setenv(INTRA_OP_VARIABLE, "5")
    assert main(args) == 0 and os.environ[INTRA_OP_VARIABLE] == "5"  # the user's own setting wins
    monkeypatch.delenv(INTRA_OP_VARIABLE)
    target = tmp_path / "in.en"
    target.write_text("And God said.\n", encoding="utf-8")
    assert main(["score", "--run-dir", str(trained_run), "--src", str(source), "--tgt", str(target)]) == 0
    assert INTRA_OP_VARIABLE not in os.environ  # scoring runs one batch at a time, on every core
    compiled = shutil.copytree(trained_run, tmp_path / "xla-run")
    config = (compiled / "config.yaml").read_text()
    assert "  xla: false\n" in config
    (compiled / "config.yaml").write_text(config.replace("  xla: false\n", "  xla: true\n"))
    commands._share_cores([str(compiled)])
    assert INTRA_OP_VARIABLE not in os.environ  # XLA's compiled search spreads its work over every core
    commands._share_cores([str(compiled)], xla=False)  # bench decode --no-xla
    assert os.environ[INTRA_OP_VARIABLE] == str(threads_per_worker(2))


def test_training_commands_ask_for_onednn_and_float32_decoding_commands_for_eigen(trained_run, tmp_path, monkeypatch):
    environ = {}
    assert use_onednn_for_training(environ, "x86_64") and environ == {ONEDNN_VARIABLE: "1"}
    environ = {ONEDNN_VARIABLE: "0"}
    assert not use_onednn_for_training(environ, "x86_64") and environ == {ONEDNN_VARIABLE: "0"}  # the user's wins
    environ = {}
    assert not use_onednn_for_training(environ, "aarch64") and environ == {}  # not measured there: left alone
    environ = {}
    assert use_eigen_for_decoding(True, environ, "x86_64") and environ == {ONEDNN_VARIABLE: "0"}
    environ = {ONEDNN_VARIABLE: "1"}
    assert not use_eigen_for_decoding(True, environ, "x86_64") and environ == {ONEDNN_VARIABLE: "1"}
    for environ, float32_search, machine in (({}, True, "aarch64"), ({}, False, "x86_64")):
        assert not use_eigen_for_decoding(float32_search, environ, machine) and environ == {}
    x86 = platform.machine().lower() in X86_MACHINES
    # What `translator info` says of them (for this machine).
    assert decoding_kernels(True, {ONEDNN_VARIABLE: "1"}) == f"as you set them ({ONEDNN_VARIABLE}=1)"
    assert decoding_kernels(False, {}).startswith("TensorFlow's default for this CPU (")
    assert decoding_kernels(True, {}).startswith("Eigen (a float32 search" if x86 else "TensorFlow's default")
    source = tmp_path / "in.es"
    source.write_text("Y dijo Dios.\n", encoding="utf-8")
    monkeypatch.delenv(ONEDNN_VARIABLE, raising=False)
    assert main(["translate", "--run-dir", str(trained_run), "--input", str(source)]) == 0
    # The tiny run trains and so decodes in float32, outside XLA: Eigen (on x86) before TensorFlow's import.
    assert os.environ.get(ONEDNN_VARIABLE) == ("0" if x86 else None)
    monkeypatch.delenv(ONEDNN_VARIABLE, raising=False)
    assert main(["translate", "--run-dir", str(trained_run), "--input", str(source), "--precision", "bfloat16"]) == 0
    assert ONEDNN_VARIABLE not in os.environ  # bfloat16 products reach AMX units through oneDNN only
    for command in (["train", "--run-dir", "RUN"], ["bench", "train"]):  # set before TensorFlow's import
        assert main([*command, "--config", "tiny", "--set", "train.stepz=3"]) == 2
        assert os.environ.get(ONEDNN_VARIABLE) == ("1" if x86 else None)
        monkeypatch.delenv(ONEDNN_VARIABLE, raising=False)


def test_a_search_in_float32_outside_xla_is_known_before_tensorflow_loads(tmp_path):
    """What `float32_search_before_tensorflow` reads: the run's config (decode.precision, resolved on
    this CPU, and decode.xla) unless the command line says otherwise, or an export's info file."""
    amx = "amx_bf16" in cpu_flags()

    def run(name: str, *overrides: str) -> str:
        path = tmp_path / name
        RunDirectory(str(path)).prepare(load_config("tiny", list(overrides)), write=True)
        return str(path)

    float32, xla = run("float32"), run("xla", "decode.xla=true")
    bfloat16_trained = run("bf16", "train.mixed_precision=mixed_bfloat16")
    assert float32_search_before_tensorflow([float32])
    assert not float32_search_before_tensorflow([float32], precision="bfloat16")
    assert not float32_search_before_tensorflow([float32], xla=True)
    assert not float32_search_before_tensorflow([xla]) and float32_search_before_tensorflow([xla], xla=False)
    assert float32_search_before_tensorflow([bfloat16_trained]) is not amx  # auto: bfloat16 on AMX CPUs only
    assert float32_search_before_tensorflow([bfloat16_trained], precision="float32")
    assert not float32_search_before_tensorflow([float32, xla])  # an ensemble: every member must agree
    for unknown in (["gs://bucket/run"], [str(tmp_path / "missing")], []):  # TensorFlow's default is kept
        assert not float32_search_before_tensorflow(unknown)
    export = tmp_path / "export"
    assert not float32_search_before_tensorflow([], export_dir=str(export))  # written before the info file
    (export / EXPORT_INFO).parent.mkdir(parents=True)
    for precision, expected in (("float32", True), ("bfloat16", False)):
        (export / EXPORT_INFO).write_text(json.dumps({"precision": precision}))
        assert float32_search_before_tensorflow([], export_dir=str(export)) is expected


def test_non_utf8_input_names_the_line(trained_run, tmp_path, capsys):
    source = tmp_path / "bad.es"
    source.write_bytes(b"hola\n\xff\n")
    assert main(["translate", "--run-dir", str(trained_run), "--input", str(source)]) == 2
    assert "bad.es, line 2: not UTF-8" in capsys.readouterr().err


def test_missing_and_corrupt_checkpoints_are_clear_errors(trained_run, tmp_path, capsys):
    import shutil

    missing = shutil.copytree(trained_run, tmp_path / "missing", ignore=shutil.ignore_patterns("checkpoints"))
    assert main(["evaluate", "--run-dir", str(missing)]) == 2
    assert "no checkpoint yet" in capsys.readouterr().err

    corrupt = shutil.copytree(trained_run, tmp_path / "corrupt")
    for data in (corrupt / "checkpoints").rglob("*.data-*"):
        data.write_bytes(data.read_bytes()[:100])
    assert main(["translate", "--run-dir", str(corrupt), "--checkpoint", "latest"]) == 2
    err = capsys.readouterr().err
    assert "cannot be restored" in err and len(err.strip().splitlines()) == 1


def test_a_run_directory_that_does_not_match_is_a_clear_error(trained_run, tmp_path, capsys):
    import shutil

    args = ["train", "--config", "tiny", "--set", "model.d_model=64", "--run-dir", str(trained_run)]
    assert main(args) == 2
    assert "has model.d_model=32 but this command asks for 64: use a new --run-dir" in capsys.readouterr().err
    # bench train keeps its cache in a --work-dir, and says so
    bench = ["bench", "train", "--config", "tiny", "--set", "model.d_model=64", "--work-dir", str(trained_run)]
    assert main(bench) == 2
    assert "asks for 64: use a new --work-dir" in capsys.readouterr().err

    other = shutil.copytree(trained_run, tmp_path / "other")  # a config whose vocabulary is not the tokenizer's
    config = (other / "config.yaml").read_text(encoding="utf-8")
    (other / "config.yaml").write_text(config.replace("vocab_size: 1000", "vocab_size: 500"), encoding="utf-8")
    assert main(["evaluate", "--run-dir", str(other)]) == 2
    err = capsys.readouterr().err
    assert "a vocabulary of 1000 pieces" in err and "tokenizer.vocab_size=500" in err
    assert len(err.strip().splitlines()) == 1


def test_help_of_every_command_has_an_example(capsys):
    for command in (["average"], ["bench"], ["bench", "decode"], ["bench", "train"], ["plot-alignment"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        examples = capsys.readouterr().out.split("examples:")[1]
        assert f"translator {' '.join(command)} " in examples


@pytest.mark.parametrize(
    "signum, status, said",
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_during_training_writes_a_checkpoint(seeded_run, signum, status, said):
    """Ctrl-C, or the SIGTERM a scheduler or a preemptible VM sends before it kills: the run stops at the
    next step boundary with a checkpoint of that step (before, SIGTERM lost every step since the last one)."""
    run_dir = seeded_run()
    process = subprocess.Popen(
        train_command(run_dir, "train.steps=100000", "train.log_every=10"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:  # until the loop logs its first step: well inside it
        lines.append(line)
        if line.startswith("step "):
            break
    process.send_signal(signum)
    output = "".join(lines) + process.communicate(timeout=300)[0]
    assert process.returncode == status, output[-2000:]
    if platform.machine().lower() in X86_MACHINES and ONEDNN_VARIABLE not in os.environ:
        assert "CPU kernels: oneDNN;" in output  # `translator train` asks for them (translator.onednn)
    assert f"{said}: checkpoint written at step" in output, output[-2000:]
    step = int(output.split(f"{said}: checkpoint written at step ")[1].split(";")[0])
    assert step >= 1 and (run_dir / "checkpoints" / f"ckpt-{step}.index").exists()


def test_mistakes_on_a_real_run_are_one_line_and_leave_the_output_alone(trained_run, tmp_path, capsys):
    output = tmp_path / "out.en"
    output.write_text("keep me\n", encoding="utf-8")
    for args, message in [
        (["translate", "--length-penalty", "-1", "--output", str(output)], "decode.length_penalty must be at least 0"),
        (["translate", "--beam-size", "0", "--output", str(output)], "decode.beam_size must be at least 1"),
        (["translate", "--sampling-topp", "0.9", "--output", str(output)], "decode.sampling_topp=0.9 needs sampling"),
        (["translate", "--sampling-topk", "0", "--sampling-temperature", "0"], "sampling_temperature must be positive"),
        (["translate", "--checkpoint", "newest", "--output", str(output)], "unknown checkpoint 'newest'"),
        (
            ["translate", "--n-best", "3", "--output", str(output)],
            "keeps 2 per input (the beam size); add --beam-size 3",
        ),
        (
            ["translate", "--n-best", "2", "--sampling-topk", "0"],
            "--n-best 2: sampling draws one translation per input",
        ),
        (
            ["bench", "decode", "--split", "nope"],
            "--split 'nope': the run's config has no data.nope (choose dev or test)",
        ),
        (["translate", "--input", str(tmp_path)], "is a directory, not a file"),  # read as empty, silently
        (["translate", "--output", str(output / "x.en")], "out.en/x.en: cannot be written (File exists)"),
        # out.en's directory: an export would replace it (CTranslate2) or write among its files
        (["export", "--output", str(tmp_path)], "is not empty and holds no savedmodel export"),
        (["export", "--format", "ctranslate2", "--output", str(tmp_path)], "holds no ctranslate2 export"),
    ]:
        assert main([*args, "--run-dir", str(trained_run)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert output.read_text(encoding="utf-8") == "keep me\n"


def test_tensorflow_start_up_noise_is_hidden_unless_asked(trained_run, tmp_path):
    quiet = run_cli("info", "--run-dir", str(trained_run))
    assert quiet.returncode == 0 and "parameters:" in quiet.stdout
    assert "decoding precision here: float32 (auto: the model trained in float32)" in quiet.stdout
    if platform.machine().lower() in X86_MACHINES and ONEDNN_VARIABLE not in os.environ:
        assert "decoding CPU kernels here: Eigen (a float32 search outside XLA" in quiet.stdout
    assert "cuda" not in quiet.stderr.lower() and "oneDNN" not in quiet.stderr, quiet.stderr
    assert "precompiled_charsmap" not in quiet.stderr, quiet.stderr  # SentencePiece's note on loading our model
    # A command that runs the model eagerly with oneDNN on (TensorFlow's default on AVX-512 CPUs): an int64
    # ragged concat once logged "E0000 ... oneDNN supports DT_INT64 only on platforms with AVX-512" here.
    text = tmp_path / "pair.txt"
    text.write_text("Y dijo Dios.\n", encoding="utf-8")
    score = ["score", "--run-dir", str(trained_run), "--src", str(text), "--tgt", str(text)]
    scored = run_cli(*score, env={ONEDNN_VARIABLE: "1"})
    assert scored.returncode == 0 and len(scored.stdout.splitlines()) == 1, scored.stderr
    assert "oneDNN" not in scored.stderr, scored.stderr


def test_score_writes_one_line_per_pair_equal_to_the_api(trained_run, run_translator, tmp_path):
    sources = ["Y dijo Dios.", "En el principio.", "Y fué la luz."]
    targets = ["And God said.", "In the beginning.", "xyz xyz xyz"]
    (tmp_path / "s.es").write_text("".join(line + "\n" for line in sources), encoding="utf-8")
    (tmp_path / "t.en").write_text("".join(line + "\n" for line in targets), encoding="utf-8")
    args = ["score", "--run-dir", str(trained_run), "--src", str(tmp_path / "s.es"), "--tgt", str(tmp_path / "t.en")]
    assert main([*args, "--output", str(tmp_path / "scores.tsv")]) == 0
    rows = [line.split("\t") for line in (tmp_path / "scores.tsv").read_text(encoding="utf-8").splitlines()]
    expected = run_translator.score(sources, targets)
    assert len(rows) == 3
    for (total, per_token, tokens), score in zip(rows, expected):
        assert float(total) == pytest.approx(score.log_prob, abs=1e-4) and int(tokens) == score.tokens
        assert float(per_token) == pytest.approx(score.log_prob / score.tokens, abs=1e-4)
    (tmp_path / "t.en").write_text("one line\n", encoding="utf-8")
    assert main(args) == 2  # line counts differ: one line naming both files


def test_ensembles_prefixes_and_sampling_from_the_command_line(trained_run, second_trained_run, tmp_path, capsys):
    import translator

    lines = ["Y dijo Dios: Sea la luz.", "En el principio crió Dios los cielos y la tierra.", "Y fué la luz."]
    prefixes = ["And God", "", "And"]
    (tmp_path / "in.es").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (tmp_path / "starts.en").write_text("".join(line + "\n" for line in prefixes), encoding="utf-8")
    output = tmp_path / "out.en"
    runs = ["--run-dir", str(trained_run), "--run-dir", str(second_trained_run)]
    io = ["--input", str(tmp_path / "in.es"), "--output", str(output)]
    assert main(["translate", *runs, *io, "--prefix-file", str(tmp_path / "starts.en")]) == 0
    expected = translator.load([trained_run, second_trained_run]).translate(lines, prefixes=prefixes)
    assert output.read_text(encoding="utf-8").splitlines() == expected
    assert all(text.startswith(prefix) for text, prefix in zip(expected, prefixes))

    samples = []
    for seed in ("1", "2"):
        assert main(["translate", "--run-dir", str(trained_run), *io, "--sampling-topk", "0", "--seed", seed]) == 0
        samples.append(output.read_text(encoding="utf-8").splitlines())
    assert samples[0] != samples[1]  # and the same seed repeats, in another load:
    assert samples[0] == translator.load(trained_run, sampling_topk=0, seed=1).translate(lines)

    (tmp_path / "starts.en").write_text("one line\n", encoding="utf-8")
    assert main(["translate", "--run-dir", str(trained_run), *io, "--prefix-file", str(tmp_path / "starts.en")]) == 2
    err = capsys.readouterr().err
    assert "in.es has 3 lines but " in err and "starts.en has 1" in err and len(err.strip().splitlines()) == 1

    (tmp_path / "ref.en").write_text("And God said.\nIn the beginning.\nAnd there was light.\n", encoding="utf-8")
    assert main(["evaluate", *runs, "--src", str(tmp_path / "in.es"), "--ref", str(tmp_path / "ref.en")]) == 0
    report = json.loads((trained_run / "eval" / "ensemble-in.json").read_text(encoding="utf-8"))
    assert report["ensemble"] == [str(trained_run), str(second_trained_run)] and len(report["checkpoint"]) == 2
