"""scoring/bits.py and `charlstm score`: bits per character and per-character surprisal, the cross
entropy of the next character, through the real CLI; with the yardsticks beside them; long texts
scored in bounded memory (measured in a real process), and scores that cannot fit refused in one line."""

from __future__ import annotations

import json
import math

import pytest
import numpy as np
import torch
import torch.nn.functional as F

from charlstm.config import ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.errors import MemoryBudgetError, NeuronError
from charlstm.model.network import CharModel
from charlstm.scoring.bits import score_text
from conftest import MEMORY_BOUND_MB, long_text, read_peak, run_cli, unescape_text


def test_score_is_the_cross_entropy_of_the_next_character():
    vocab = Vocab(list("abcdefgh \n\"'"))
    torch.manual_seed(0)
    model = CharModel(ModelConfig(vocab_size=len(vocab), embedding_size=6, hidden_size=12, num_layers=2)).eval()
    text = 'abc "def" gh\nhg fed\n' * 6
    result = score_text(model, vocab, text, chunk=9)
    ids = torch.from_numpy(vocab.encode(text).astype(np.int64))[None]
    with torch.no_grad():
        logits, _ = model(ids)
    want = F.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="none") / math.log(2)
    assert result.bits.shape == (len(text) - 1,)
    np.testing.assert_allclose(result.bits, want.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert result.bits_per_char == pytest.approx(want.mean().item(), rel=1e-5)
    assert result.predicted.tolist() == logits[0, :-1].argmax(-1).tolist()
    with pytest.raises(NeuronError, match="at least 2 characters"):
        score_text(model, vocab, "a")


def test_score_formats_agree(trained_run, shakespeare_text, tmp_path):
    passage = shakespeare_text[-600:]        # held out from training: the last 5% of the corpus
    path = tmp_path / "passage.txt"
    path.write_text(passage, encoding="utf-8")
    js = run_cli("score", trained_run, "--text-file", path, "--format", "json")
    assert js.exit_code == 0, js.output
    data = json.loads(js.stdout)
    assert data["characters"] == 600 and data["predicted_characters"] == 599 and data["text"] == passage
    assert data["bits_per_char"] == pytest.approx(sum(data["surprisal_bits"]) / 599, abs=1e-5)
    assert 1.0 < data["bits_per_char"] < math.log2(65)       # learned something; below a blind guess

    tsv = run_cli("score", trained_run, "--text-file", path, "--format", "tsv")
    header, *rows = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert header == ["position", "char", "bits", "expected"] and len(rows) == 599
    assert "".join(unescape_text(r[1]) for r in rows) == passage[1:]
    assert [float(r[2]) for r in rows] == pytest.approx(data["surprisal_bits"], abs=1e-5)
    assert [unescape_text(r[3]) for r in rows] == data["expected"]

    text = run_cli("score", trained_run, "--text-file", path)
    assert f"{data['bits_per_char']:.3f} bits per character over 599 predicted characters" in text.stdout
    assert "most surprising" in text.stdout


def test_real_text_is_less_surprising_than_shuffled_text(trained_run, shakespeare_text):
    import random

    passage = shakespeare_text[-800:]
    letters = list(passage)
    random.Random(0).shuffle(letters)
    real = json.loads(run_cli("score", trained_run, "--text", passage, "--format", "json").stdout)["bits_per_char"]
    shuffled = json.loads(run_cli("score", trained_run, "--text", "".join(letters), "--format", "json").stdout)
    assert real < shuffled["bits_per_char"] - 0.5


def test_score_reads_stdin_and_refuses_bad_input(trained_run):
    piped = run_cli("score", trained_run, "--text-file", "-", "--format", "json", input="To be, or not to be")
    assert piped.exit_code == 0 and json.loads(piped.stdout)["predicted_characters"] == 18
    both = run_cli("score", trained_run, "--text", "To be", "--text-file", "-", input="or not")
    assert both.exit_code == 2 and "not both" in both.stderr
    unseen = run_cli("score", trained_run, "--text", "Hello 世界")
    assert unseen.exit_code == 1 and "never saw: '世', '界'" in unseen.stderr
    short = run_cli("score", trained_run, "--text", "a")
    assert short.exit_code == 1 and "at least 2 characters" in short.stderr


def test_score_with_no_text_reads_the_held_out_tail_of_the_training_corpus(trained_run, shakespeare_text, tmp_path):
    default = run_cli("score", trained_run, "--format", "json")
    assert default.exit_code == 0, default.output
    assert "reading the last" in default.stderr and "of the training corpus plays.txt" in default.stderr
    tail = shakespeare_text[-20_000:]
    tail = tail[tail.index("\n") + 1:]
    given = run_cli("score", trained_run, "--text", tail, "--format", "json")
    assert json.loads(default.stdout)["bits_per_char"] == json.loads(given.stdout)["bits_per_char"]
    from charlstm.runs.checkpoint import load, save

    moved = load(trained_run / "best.safetensors")
    moved.train["corpus"]["paths"] = [str(tmp_path / "gone.txt")]
    save(tmp_path / "m.safetensors", moved)
    gone = run_cli("score", tmp_path / "m.safetensors")
    assert gone.exit_code == 1 and "training corpus is not at hand" in gone.stderr


def _entropy(text: str) -> float:
    """Bits per character of a unigram model on the text it was counted in, by hand."""
    from collections import Counter

    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def test_score_gives_its_yardsticks(trained_run, shakespeare_text, tmp_path):
    """A blind guess among the vocabulary and the training text's character frequencies, beside the
    score: from the run folder's copy of the corpus, from the corpus files when that copy is gone,
    and a plain note when neither is at hand."""
    import shutil

    from charlstm.runs.checkpoint import load, save

    training_text = shakespeare_text[: len(shakespeare_text) - round(len(shakespeare_text) * 0.05)]
    vocab_size = len(set(shakespeare_text))
    data = json.loads(run_cli("score", trained_run, "--text", "To be, or not", "--format", "json").stdout)
    assert data["yardsticks"]["vocab_size"] == vocab_size
    assert data["yardsticks"]["blind_guess_bits_per_char"] == pytest.approx(math.log2(vocab_size), abs=1e-6)
    assert data["yardsticks"]["unigram_bits_per_char"] == pytest.approx(_entropy(training_text), abs=1e-6)
    assert f"over the {len(training_text):,} characters of the training text" in data["yardsticks"]["unigram_note"]
    text = run_cli("score", trained_run, "--text", "To be, or not").stdout
    assert (f"a blind guess among the {vocab_size} characters scores {math.log2(vocab_size):.3f} bits/char"
            in " ".join(text.split()))
    assert f"(a unigram model) {_entropy(training_text):.3f}" in " ".join(text.split())

    copy = shutil.copytree(trained_run, tmp_path / "copy", ignore=shutil.ignore_patterns("corpus*"))
    from_files = json.loads(run_cli("score", copy, "--text", "To be", "--format", "json").stdout)["yardsticks"]
    assert from_files == data["yardsticks"]                   # the corpus files the checkpoint names, read again

    moved = load(copy / "best.safetensors")
    moved.train["corpus"]["paths"] = [str(tmp_path / "gone.txt")]
    save(copy / "best.safetensors", moved)
    gone = run_cli("score", copy / "best.safetensors", "--text", "To be", "--format", "json")
    assert gone.exit_code == 0, gone.output
    yardsticks = json.loads(gone.stdout)["yardsticks"]
    assert yardsticks["unigram_bits_per_char"] is None and "not at hand" in yardsticks["unigram_note"]
    assert yardsticks["blind_guess_bits_per_char"] == pytest.approx(math.log2(vocab_size), abs=1e-6)


# ------------------------------------------------------------------------------- long texts, memory


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_scoring_a_long_text_holds_a_few_bytes_per_character(tiny_run, tmp_path, shakespeare_text, fmt):
    """The scores of every character are kept compact and written as a stream: six times the text
    costs a few bytes per character more (once, ~130), within the bound."""
    peaks = {}
    for chars in (200_000, 1_200_000):
        path = long_text(tmp_path / f"{chars}.txt", chars, shakespeare_text)
        out, peaks[chars] = read_peak("score", tiny_run, path, "--format", fmt, cwd=tmp_path)
        if fmt == "json":
            data = json.loads(out)
            assert data["predicted_characters"] == len(data["surprisal_bits"]) == len(data["expected"]) == chars - 1
            assert data["bits_per_char"] == pytest.approx(sum(data["surprisal_bits"]) / (chars - 1), abs=1e-5)
        else:
            assert f"over {chars - 1} predicted characters" in out and "most surprising" in out
    assert peaks[1_200_000] < MEMORY_BOUND_MB and peaks[1_200_000] - peaks[200_000] < 60, peaks


@pytest.mark.slow
def test_scoring_the_longest_text_charlstm_reads_stays_within_the_bound(tiny_run, tmp_path, shakespeare_text):
    from charlstm.data.reading import MAX_TEXT_BYTES

    path = long_text(tmp_path / "big.txt", MAX_TEXT_BYTES, shakespeare_text)        # ASCII: one byte a character
    out, peak = read_peak("score", tiny_run, path, cwd=tmp_path)
    assert peak < MEMORY_BOUND_MB and f"over {MAX_TEXT_BYTES - 1} predicted characters" in out


def test_the_scores_of_the_python_api_are_refused_in_one_line_when_they_cannot_fit():
    """score_text keeps float64 bits and int64 ids: scores of the longest text charlstm reads do not
    fit, and are one MemoryBudgetError naming the most that fits, before any work."""
    from charlstm.data.reading import MAX_TEXT_BYTES

    vocab = Vocab(list("ab"))
    model = CharModel(ModelConfig(vocab_size=2, embedding_size=2, hidden_size=2, num_layers=1)).eval()
    with pytest.raises(MemoryBudgetError, match=r"^67,108,864 characters is too long to score: this model's scores "
                                                r"hold at most [\d,]+ characters in the memory budget of 768 MiB; give "
                                                r"a shorter text$"):
        score_text(model, vocab, "ab" * (MAX_TEXT_BYTES // 2))
