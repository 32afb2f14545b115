"""training/finetune.py: `train --init-from MODEL`. A run starts from a run folder, a checkpoint file or a
shipped model: the base's characters keep their ids and rows exactly, the corpus's new characters are
added and learnt, options that contradict the base are refused before anything is written, a file that
is not a model is one line, the run records what it started from, resumes exactly without --init-from,
and the base is never written to; a base grown by 100k characters starts within the memory bound."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import (
    MEMORY_BOUND_MB,
    ROOT,
    charlstm_process,
    measured,
    metrics,
    read_checkpoint_file,
    refused,
    run_cli,
    small_config,
    snapshot,
)

from charlstm.config import CELLS, FINE_TUNING, FINE_TUNING_WIDTH, SHIPPED_MODELS, ModelConfig, TrainConfig
from charlstm.data.vocab import Vocab
from charlstm.errors import ConfigError, TrainingError
from charlstm.model.growth import EMBEDDING, HEAD_BIAS, HEAD_WEIGHT
from charlstm.runs import checkpoint as ckpt
from charlstm.training.finetune import BASE_TIP, KEPT_OPTIONS, Base, base_reads, load_base, recipe
from charlstm.training.loop import train
from charlstm.training.stopping import StopRequest

SHIPPED = ROOT / "examples" / "models"
#: Options that make a fine-tune's steps take milliseconds (the model is the base's).
FAST = ["--batch-size", "4", "--seq-len", "16", "--preview", "0", "--seed", "3"]


def base_model(cell: str = "lstm") -> ModelConfig:
    return ModelConfig(vocab_size=1, cell=cell, hidden_size=16, embedding_size=8, num_layers=2)


@pytest.fixture(scope="module")
def texts(shakespeare_text) -> dict[str, str]:
    """The base's text, and a text with characters it lacks (digits, quotes, brackets …)."""
    fortunes = (ROOT / "corpora" / "fortunes.txt").read_text(encoding="utf-8")[:20_000]
    return {"base": shakespeare_text[:20_000], "new": fortunes}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, texts) -> Path:
    """A two-layer LSTM trained for real for 6 steps on Shakespeare, in its own folder (a run, lock and all)."""
    out = tmp_path_factory.mktemp("base") / "run"
    train(texts["base"], out, base_model(), small_config(max_steps=6, eval_every=3))
    return out


def files_and_times(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder` (the lock included) with its bytes and its modification time."""
    return {name: (data, os.stat(folder / name).st_mtime_ns) for name, data in snapshot(folder).items()}


def step_zero(text: str, out: Path, init_from, config: TrainConfig | None = None) -> ckpt.Checkpoint:
    """The model a fine-tune starts as: its checkpoint at step 0, a stop having been requested before any step."""
    stop = StopRequest()
    stop.set()
    result = train(text, out, None, config or small_config(max_steps=5), init_from=init_from, stop=stop)
    assert result.interrupted and result.step == 0
    return ckpt.load(out / "latest.safetensors")


# ---------------------------------------------------------------------------------- the grown model


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_kind_grows_keeping_the_base_rows_exactly(tmp_path, texts, cell):
    """Every cell kind reads characters through the embedding: the grown model's first V rows (embedding,
    output weights and biases) are the base's, bit for bit, and so is every other weight; the new
    characters are the corpus's that the base lacks, after the base's, with embedding rows drawn from the
    spread of the base's (distinct, within it) and output rows of zero weights; then it trains."""
    train(texts["base"], tmp_path / "base", base_model(cell), small_config(max_steps=2, eval_every=2))
    base = ckpt.load(tmp_path / "base" / "best.safetensors")
    grown = step_zero(texts["new"], tmp_path / "ft", tmp_path / "base")
    old = len(base.vocab)
    assert grown.vocab.chars[:old] == base.vocab.chars
    assert set(grown.vocab.chars[old:]) == set(texts["new"]) - set(texts["base"]) and len(grown.vocab) > old
    assert grown.config == ModelConfig(**{**base.config.to_dict(), "vocab_size": len(grown.vocab)})
    for name, tensor in base.model_state.items():
        torch.testing.assert_close(grown.model_state[name][: len(tensor)], tensor, rtol=0, atol=0, msg=name)
    new = grown.model_state
    table, rows = base.model_state[EMBEDDING], new[EMBEDDING][old:]
    assert len(torch.unique(rows, dim=0)) == len(rows)
    assert ((rows - table.mean(0)).abs() <= 6 * table.std(0, correction=0)).all()
    assert not new[HEAD_WEIGHT][old:].any() and torch.isfinite(new[HEAD_BIAS][old:]).all()
    result = train(texts["new"], tmp_path / "ft", None, small_config(max_steps=4), resume=True)
    assert result.step == 4 and result.best_val_bpc is not None


def test_new_characters_start_as_likely_as_the_new_text_makes_them(tmp_path, base_run, texts):
    """Before any update the grown model gives the new characters together about their share of the new
    text, read over the whole text, and each in proportion to its count: a frequent one's output bias
    is above a rare one's by the log of their counts' ratio."""
    grown = step_zero(texts["new"], tmp_path / "ft", base_run)
    old = len(ckpt.load(base_run / "best.safetensors").vocab)
    ids = torch.as_tensor(grown.vocab.encode(texts["new"]).astype("int64")).view(1, -1)
    with torch.inference_mode():
        predicted = torch.softmax(grown.model()(ids)[0][0], -1)[:, old:].sum(-1).mean().item()
    share = sum(texts["new"].count(c) for c in grown.vocab.chars[old:]) / len(texts["new"])
    assert predicted == pytest.approx(share, rel=0.15)
    train_text = texts["new"][: len(texts["new"]) - round(0.05 * len(texts["new"]))]
    bias = dict(zip(grown.vocab.chars, grown.model_state[HEAD_BIAS].tolist()))
    counts = {c: train_text.count(c) for c in ('"', "1", "(")}
    assert counts['"'] > counts["1"] > counts["("] > 0
    for a, b in (('"', "1"), ("1", "(")):
        assert bias[a] - bias[b] == pytest.approx(torch.log(torch.tensor(counts[a] / counts[b])).item(), abs=1e-4)


def test_a_frequent_new_character_is_learnt_and_sampled(tmp_path, base_run, texts):
    """The command line, end to end: a corpus where '@' (which the base never saw) stands between every
    word; a few steps later the fine-tuned model writes it."""
    corpus = tmp_path / "at.txt"
    corpus.write_text(texts["base"].replace(" ", "@"), encoding="utf-8")
    out = tmp_path / "ft"
    done = run_cli("train", corpus, "--init-from", base_run, "--out", out, "--max-steps", "30", "--eval-every", "30",
                   "--batch-size", "8", "--seq-len", "32", "--preview", "0", "--threads", "1", "--lr", "1e-2")
    assert done.exit_code == 0, done.output
    assert "started from" in done.stderr
    sampled = run_cli("sample", out, "--length", "300", "--seed", "1", "--threads", "1")
    assert sampled.exit_code == 0, sampled.output
    assert sampled.stdout.count("@") >= 10, sampled.stdout


def test_the_base_own_corpus_adds_no_character(tmp_path, base_run, texts):
    grown = step_zero(texts["base"], tmp_path / "ft", base_run)
    base = ckpt.load(base_run / "best.safetensors")
    assert grown.vocab == base.vocab and grown.config == base.config
    for name, tensor in base.model_state.items():
        assert torch.equal(grown.model_state[name], tensor), name


def test_rare_new_characters_fold_and_the_base_characters_never_do(tmp_path, base_run, texts):
    """--min-char-count applies to the new characters only: a base character the new text lacks, or has
    once, keeps its id; a new one seen once is read as the unknown symbol, one seen often is added."""
    base = ckpt.load(base_run / "best.safetensors")
    once = next(c for c in base.vocab.chars if c.isalpha() and texts["new"].count(c) > 20)
    text = texts["new"].replace(once, "") + once + "¶"
    corpus = tmp_path / "new.txt"
    corpus.write_text(text, encoding="utf-8")
    done = run_cli("train", corpus, "--init-from", base_run, "--out", tmp_path / "ft", "--min-char-count", "20",
                   "--max-steps", "2", *FAST)
    assert done.exit_code == 0, done.output
    grown = ckpt.load(tmp_path / "ft" / "latest.safetensors")
    assert grown.vocab.chars[: len(base.vocab)] == base.vocab.chars and once in grown.vocab
    assert "¶" not in grown.vocab and grown.vocab.unknown_char == "\ufffd" and grown.vocab.chars[-1] == "\ufffd"
    assert '"' in grown.vocab
    again = run_cli("train", "--resume", "--out", tmp_path / "ft", "--max-steps", "4")
    assert again.exit_code == 0, again.output
    assert ckpt.load(tmp_path / "ft" / "latest.safetensors").vocab == grown.vocab


def test_a_vocabulary_over_the_caps_is_one_line():
    """Growth past config.py's caps (here: its parameter cap, on a wide one-layer RNN) is refused in one line."""
    from charlstm.data.vocab import Vocab

    config = ModelConfig(vocab_size=100, cell="rnn", hidden_size=30_000, embedding_size=1, num_layers=1)
    base = Base("wide", Path("wide.safetensors"), ckpt.Checkpoint(config, Vocab(chr(65 + i) for i in range(100)), {}), "f")
    assert base.model_config(200).vocab_size == 200
    with pytest.raises(ConfigError) as caught:
        base.model_config(10_000)
    message = str(caught.value)
    assert "\n" not in message and "wide: grown to 10,000 characters (9,900 new" in message and "cap" in message


# ---------------------------------------------------------------------------------- what is refused


@pytest.mark.parametrize("name", list(KEPT_OPTIONS))
def test_an_option_that_contradicts_the_base_is_refused_and_nothing_is_written(tmp_path, base_run, texts, name):
    corpus = tmp_path / "new.txt"
    corpus.write_text(texts["new"], encoding="utf-8")
    base = ckpt.load(base_run / "best.safetensors").config
    other = {"cell": "gru", "hidden_size": 24, "num_layers": 1, "embedding_size": 4, "forget_bias": 1.0}[name]
    flag = KEPT_OPTIONS[name]
    out = tmp_path / "ft"
    refused(run_cli("train", corpus, "--init-from", base_run, "--out", out, flag, other, "--max-steps", "2"),
            f"{base_run} has {flag} {getattr(base, name)}", f"so {flag} {other} cannot apply")
    assert not out.exists()
    same = run_cli("train", corpus, "--init-from", base_run, "--out", out, flag, getattr(base, name), "--max-steps", "2",
                   *FAST)
    assert same.exit_code == 0, same.output


def test_the_library_refuses_a_model_config_that_contradicts_the_base(tmp_path, base_run, texts):
    with pytest.raises(TrainingError, match="has --hidden-size 16"):
        train(texts["new"], tmp_path / "ft", ModelConfig(vocab_size=1, hidden_size=32, embedding_size=8),
              small_config(), init_from=base_run)
    assert not (tmp_path / "ft").exists()
    dropout = ModelConfig(**{**base_model().to_dict(), "dropout": 0.25})  # dropout is how it trains: it may change
    train(texts["new"], tmp_path / "ft", dropout, small_config(max_steps=2), init_from=base_run)
    assert ckpt.load(tmp_path / "ft" / "latest.safetensors").config.dropout == 0.25


def test_an_unknown_name_is_one_line_listing_the_shipped_models(tmp_path, texts):
    corpus = tmp_path / "new.txt"
    corpus.write_text(texts["new"], encoding="utf-8")
    line = refused(run_cli("train", corpus, "--init-from", "nonesuch", "--out", tmp_path / "ft"), "nonesuch")
    assert line.endswith(f"({', '.join(SHIPPED_MODELS)})") and SHIPPED_MODELS
    assert not (tmp_path / "ft").exists()


def _hostile(tmp_path: Path, kind: str, base_run: Path) -> Path:
    target = tmp_path / kind
    if kind == "text":
        target.write_text("To be, or not to be\n", encoding="utf-8")
    elif kind == "truncated":
        target.write_bytes((base_run / "best.safetensors").read_bytes()[:3000])
    elif kind == "foreign-safetensors":
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(2)}, str(target))
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "dangling-link":
        target.symlink_to(tmp_path / "nowhere.safetensors")
    elif kind == "link-to-text":
        (tmp_path / "words.txt").write_text("words\n", encoding="utf-8")
        target.symlink_to(tmp_path / "words.txt")
    elif kind == "empty-folder":
        target.mkdir()
    return target


@pytest.mark.parametrize("kind", ["text", "truncated", "foreign-safetensors", "fifo", "dangling-link", "link-to-text",
                                  "empty-folder"])
def test_a_file_that_is_not_a_model_is_one_line_and_nothing_is_written(tmp_path, base_run, texts, kind):
    corpus = tmp_path / "new.txt"
    corpus.write_text(texts["new"], encoding="utf-8")
    target = _hostile(tmp_path, kind, base_run)
    done = charlstm_process("train", corpus, "--init-from", target, "--out", tmp_path / "ft", "--max-steps", "2",
                            timeout=60)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {target}"), done.stderr
    assert not (tmp_path / "ft").exists()


# ---------------------------------------------------------------------------------- the record, the base, resume


def test_the_run_records_its_base_and_the_base_is_never_written(tmp_path, base_run, texts):
    """The checkpoint's training metadata names the base as typed, its fingerprint and its character
    count; export keeps that and report shows it; the base folder (lock file included) is byte-identical
    with unchanged modification times after a fine-tune, its resume and refusals."""
    base_copy = shutil.copytree(base_run, tmp_path / "base")
    before = files_and_times(base_copy)
    assert ".lock" in before
    corpus = tmp_path / "new.txt"
    corpus.write_text(texts["new"], encoding="utf-8")
    out = tmp_path / "ft"
    assert run_cli("train", corpus, "--init-from", base_copy, "--out", out, "--max-steps", "3", *FAST).exit_code == 0
    assert run_cli("train", "--resume", "--out", out, "--max-steps", "5").exit_code == 0
    assert run_cli("train", "--resume", "--out", out, "--max-steps", "6", "--init-from", base_copy).exit_code == 0
    refused(run_cli("train", "--resume", "--out", base_copy, "--max-steps", "9", "--init-from", base_copy),
            "trained from scratch")
    assert files_and_times(base_copy) == before

    meta, _ = read_checkpoint_file(out / "latest.safetensors")
    base = ckpt.load(base_copy / "best.safetensors")
    assert meta["train"]["init_from"] == {"source": str(base_copy), "fingerprint": base.fingerprint(),
                                          "chars": len(base.vocab)}
    assert run_cli("export", out, "--out", tmp_path / "shared").exit_code == 0
    exported = ckpt.load(tmp_path / "shared" / "best.safetensors")
    assert exported.run_info.init_from == ckpt.load(out / "latest.safetensors").run_info.init_from
    assert run_cli("report", out, "--out", tmp_path / "r.html").exit_code == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "started from" in page and base.fingerprint()[:16] in page


def test_a_shipped_model_is_found_by_its_name(tmp_path, texts):
    """`--init-from austen`: the model of examples/models/austen, recorded by its name; the shipped folder untouched."""
    folder = SHIPPED / "austen"
    before = files_and_times(folder)
    corpus = tmp_path / "new.txt"
    corpus.write_text(texts["new"][:4000], encoding="utf-8")
    done = run_cli("train", corpus, "--init-from", "austen", "--out", tmp_path / "ft", "--max-steps", "1",
                   "--batch-size", "2", "--seq-len", "8", "--preview", "0", "--threads", "1")
    assert done.exit_code == 0, done.output
    shipped = ckpt.load(folder / "best.safetensors")
    record = ckpt.load(tmp_path / "ft" / "latest.safetensors").run_info.init_from
    assert (record.source, record.fingerprint, record.chars) == ("austen", shipped.fingerprint(), len(shipped.vocab))
    assert files_and_times(folder) == before


def test_a_fine_tuned_run_resumes_exactly_without_init_from(tmp_path, base_run, texts):
    """Stopped between two steps and resumed (no init_from: the run keeps its model and vocabulary):
    every step's loss and learning rate, the model and the weights beside it are those of the
    fine-tune that never stopped."""
    config = small_config(max_steps=16, eval_every=8, warmup_steps=2, preview_chars=20)
    train(texts["new"], tmp_path / "straight", None, config, init_from=base_run)
    stop = threading.Event()

    def stop_at_9(event):
        if event.kind == "step" and event.step == 9:
            stop.set()

    first = train(texts["new"], tmp_path / "resumed", None, config, init_from=base_run, on_event=stop_at_9, stop=stop)
    assert first.interrupted and first.step == 9
    assert train(texts["new"], tmp_path / "resumed", None, config, resume=True).step == 16
    pick = lambda run: {m["step"]: (m["train_loss"], m["lr"]) for m in metrics(tmp_path / run) if "train_loss" in m}
    assert sorted(pick("resumed")) == list(range(1, 17)) and pick("resumed") == pick("straight")
    a, b = (ckpt.load(tmp_path / run / "latest.safetensors") for run in ("straight", "resumed"))
    assert a.vocab == b.vocab and a.run_info.init_from == b.run_info.init_from is not None
    assert set(a.tensors) == set(b.tensors)
    for name, tensor in [*a.model_state.items(), *a.tensors.items()]:
        assert torch.equal(tensor, b.model_state.get(name, b.tensors.get(name))), name


def test_init_from_with_resume_must_be_the_base_the_run_started_from(tmp_path, base_run, texts):
    corpus = tmp_path / "new.txt"
    corpus.write_text(texts["new"], encoding="utf-8")
    out = tmp_path / "ft"
    assert run_cli("train", corpus, "--init-from", base_run, "--out", out, "--max-steps", "2", *FAST).exit_code == 0
    other = tmp_path / "other"
    train(texts["base"], other, base_model(), small_config(max_steps=2, seed=5))
    before = snapshot(out, ignore=(".lock",))
    refused(run_cli("train", "--resume", "--out", out, "--max-steps", "4", "--init-from", other),
            f"{out} was trained from {base_run}, another model", f"--init-from {other} cannot apply")
    assert snapshot(out, ignore=(".lock",)) == before
    same = run_cli("train", "--resume", "--out", out, "--max-steps", "4", "--init-from", base_run)
    assert same.exit_code == 0, same.output


def test_the_fine_tuning_recipe_applies_where_nothing_is_typed(tmp_path, base_run, texts):
    corpus = tmp_path / "new.txt"
    corpus.write_text(texts["new"], encoding="utf-8")
    assert run_cli("train", corpus, "--init-from", base_run, "--out", tmp_path / "a", "--max-steps", "2",
                   *FAST).exit_code == 0
    recipe = ckpt.load(tmp_path / "a" / "latest.safetensors").run_info.train_config
    assert {name: getattr(recipe, name) for name in FINE_TUNING} == dict(FINE_TUNING)
    assert run_cli("train", corpus, "--init-from", base_run, "--out", tmp_path / "b", "--max-steps", "2", "--lr", "0.03",
                   *FAST).exit_code == 0
    assert ckpt.load(tmp_path / "b" / "latest.safetensors").run_info.train_config.learning_rate == 0.03
    assert FINE_TUNING != {name: getattr(TrainConfig, name) for name in FINE_TUNING}


def test_a_wider_base_fine_tunes_at_a_rate_scaled_by_its_width():
    rate = FINE_TUNING["learning_rate"]
    for width, expected in ((16, rate), (FINE_TUNING_WIDTH, rate), (4 * FINE_TUNING_WIDTH, rate / 2)):
        assert recipe(replace(base_model(), hidden_size=width)) == {**FINE_TUNING, "learning_rate": expected}


def test_load_base_reads_a_checkpoint_file_or_a_run_folder_alike(base_run):
    by_folder, by_file = load_base(base_run), load_base(base_run / "best.safetensors")
    assert by_folder.fingerprint == by_file.fingerprint and by_folder.path == base_run / "best.safetensors"


def test_a_base_grown_by_100k_characters_reads_its_predictions_within_the_bound(tiny_run, wide_corpus, tmp_path):
    """The new output rows are set from the base's predictions on the new text (a pass over positions
    × the grown vocabulary), read a chunk of positions at a time: a base grown by 100,000 characters
    starts, trains a step and evaluates within the bound."""
    out = tmp_path / "run"
    code, _, err, peak = measured("train", wide_corpus, "--init-from", tiny_run, "--out", out, "--max-steps", "1",
                                  "--eval-every", "1", "--val-fraction", "0.01", "--ema-decay", "0", *FAST,
                                  "--threads", "1", cwd=tmp_path, timeout=900)
    assert code == 0, err[-2000:]
    assert peak < MEMORY_BOUND_MB and ckpt.load(out / ckpt.LATEST).config.vocab_size > 100_000


# ------------------------------------------------------------------ the tip for a small English text


def tip_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("tip:")]


def test_a_small_english_text_gets_one_tip_naming_the_english_base(tmp_path):
    """A fresh run on 30 KB of English messages (the bundled fortunes): one line naming
    `--init-from english` and the bits/char the base already reads them at."""
    corpus = tmp_path / "letters.txt"
    corpus.write_text((ROOT / "corpora" / "fortunes.txt").read_text(encoding="utf-8")[:30_000], encoding="utf-8")
    done = run_cli("train", corpus, "--out", tmp_path / "run", "--max-steps", "1", *FAST, "--threads", "1")
    assert done.exit_code == 0, done.output
    (line,) = tip_lines(done.stderr)
    bits = float(line.split(" small text at ")[1].split(" bits/char")[0])
    assert 1.0 < bits < BASE_TIP.bits
    lines = done.stderr.splitlines()
    assert lines[lines.index(line) + 1].endswith(f" train {corpus} --init-from english")


@pytest.mark.parametrize("text", ["chinese", "code", "spanish"])
def test_no_tip_for_a_text_the_base_reads_badly_or_a_big_one(tmp_path, text):
    """Chinese (characters it lacks), Python (characters it knows, read badly) and Spanish with its
    accents: no tip, and none for a corpus over the size the tip is for."""
    source = {"chinese": "chinese-poetry.txt", "code": "python-sample.py.txt", "spanish": None}[text]
    if source is None:
        body = ("El amor tiene fácil la entrada y difícil la salida. ¿Qué será, señor? ¡Mañana! "
                "Zumo de uvitas suaves, ¡qué bien sabes! Para hacer de una casa un hogar se necesita vivir.\n") * 60
    else:
        body = (ROOT / "corpora" / source).read_text(encoding="utf-8")[:20_000]
    corpus = tmp_path / "small.txt"
    corpus.write_text(body, encoding="utf-8")
    done = run_cli("train", corpus, "--out", tmp_path / "run", "--max-steps", "1", *FAST, "--threads", "1")
    assert done.exit_code == 0, done.output
    assert tip_lines(done.stderr) == []
    english = (ROOT / "corpora" / "fortunes.txt").read_text(encoding="utf-8")
    vocab = Vocab.from_text(english[: BASE_TIP.max_chars + 1])
    assert base_reads(vocab, vocab.encode(english[: BASE_TIP.max_chars])) is not None
    assert base_reads(vocab, vocab.encode(english[: BASE_TIP.max_chars + 1])) is None


def test_no_tip_when_starting_from_a_model_or_resuming(tmp_path):
    corpus = tmp_path / "letters.txt"
    corpus.write_text((ROOT / "corpora" / "fortunes.txt").read_text(encoding="utf-8")[:8_000], encoding="utf-8")
    started = run_cli("train", corpus, "--init-from", "english", "--out", tmp_path / "ft", "--max-steps", "1",
                      *FAST, "--threads", "1")
    assert started.exit_code == 0, started.output
    assert tip_lines(started.stderr) == []
    english = ckpt.load(SHIPPED / "english" / "best.safetensors").config
    rate = ckpt.load(tmp_path / "ft" / "latest.safetensors").run_info.train_config.learning_rate
    assert rate == pytest.approx(FINE_TUNING["learning_rate"] * (FINE_TUNING_WIDTH / english.hidden_size) ** 0.5)
    first = run_cli("train", corpus, "--out", tmp_path / "run", "--max-steps", "1", *FAST, "--threads", "1")
    resumed = run_cli("train", "--resume", "--out", tmp_path / "run", "--max-steps", "2", "--threads", "1")
    assert first.exit_code == 0 and resumed.exit_code == 0, resumed.output
    assert len(tip_lines(first.stderr)) == 1 and tip_lines(resumed.stderr) == []
