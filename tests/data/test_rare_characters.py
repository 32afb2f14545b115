"""data/vocab.py's rare characters: those of a large vocabulary read as one unknown symbol, stored in
the checkpoint, shown when sampling, honoured by --unknown, the same on resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from charlstm.runs import checkpoint as ckpt
from charlstm.data.vocab import LARGE_VOCAB, RARE_SHARE, UNKNOWN, Vocab, rare_threshold
from charlstm.data.corpus import Corpus
from conftest import TINY, read_checkpoint_file, run_cli, write_checkpoint_file


def test_vocab_folds_characters_below_the_count():
    text = "aaaa bbb cc d 猫猫猫 🐍"
    vocab = Vocab.from_text(text, min_count=2)
    assert vocab.unknown_char == UNKNOWN
    assert set(vocab.chars) == {"a", "b", "c", " ", "猫", UNKNOWN}
    ids = vocab.encode(text)
    assert vocab.decode(ids) == "aaaa bbb cc \ufffd 猫猫猫 \ufffd"
    assert vocab.read("dz猫") == "\ufffd\ufffd猫"
    assert Vocab.from_text(text, min_count=1).unknown_char is None     # 1 keeps every character
    assert Vocab.from_text(text, min_count=1) != vocab


def test_narrow_text_folds_through_the_byte_table_too():
    vocab = Vocab.from_text("x" * 10 + "y" * 10 + "q", min_count=2)
    assert list(vocab.encode("xqyé")) == [vocab.index["x"], vocab.index[UNKNOWN], vocab.index["y"], vocab.index[UNKNOWN]]


def test_default_policy_folds_only_a_large_vocabulary_and_only_a_small_share():
    common = "".join(chr(0x4E00 + i) * 100 for i in range(LARGE_VOCAB))        # 256 characters, 100 times each
    rare = "".join(chr(0x5E00 + i) for i in range(40))                          # 40 seen once: 0.16 % of the text
    small = Corpus.from_text(common[: 100 * 100] + rare, min_char_count=None)
    assert small.vocab.unknown_char is None and len(small.vocab) == 140           # 140 kinds: not a large vocabulary
    large = Corpus.from_text(common + rare, min_char_count=None)
    assert large.vocab.unknown_char == UNKNOWN and len(large.vocab) == LARGE_VOCAB + 1
    assert int(np.sum(large.ids == large.vocab.index[UNKNOWN])) == 40
    # rare characters that are more than RARE_SHARE of the text (Chinese poetry) are all kept
    many_rare = "".join(chr(0x6000 + i) for i in range(int(RARE_SHARE * len(common)) + 10))
    kept = Corpus.from_text(common + many_rare, min_char_count=None)
    assert kept.vocab.unknown_char is None
    assert rare_threshold(np.array([100] * 300 + [1] * 10 + [3] * 30)) == 3      # singletons fold, threes stay
    assert rare_threshold(np.array([1] * 100)) == 1                              # ordinary vocabulary: none


@pytest.fixture(scope="module")
def folded_run(tmp_path_factory, chinese_text):
    work = tmp_path_factory.mktemp("folded")
    corpus = work / "poems.txt"
    corpus.write_text(chinese_text, encoding="utf-8")
    out = work / "run"
    result = run_cli("train", str(corpus), "--out", str(out), "--max-steps", "20", "--eval-every", "10",
                     "--min-char-count", "3", *TINY)
    assert result.exit_code == 0, result.output
    return corpus, out


def test_training_stores_the_unknown_symbol_and_sampling_shows_it(folded_run, chinese_text):
    corpus, out = folded_run
    saved = ckpt.load(out / "latest.safetensors")
    assert saved.vocab.unknown_char == UNKNOWN
    counts = {c: chinese_text.count(c) for c in set(chinese_text)}
    assert set(saved.vocab.chars) == {c for c, n in counts.items() if n >= 3} | {UNKNOWN}
    assert saved.run_info.train_config.min_char_count == 3
    rare = next(c for c, n in counts.items() if n < 3)
    # --unknown is honoured: error names the character, replace reads it as the unknown symbol
    refused = run_cli("sample", str(out), "--prime", rare, "--length", "5")
    assert refused.exit_code == 1 and repr(rare) in refused.stderr and "--unknown" in refused.stderr
    replaced = run_cli("sample", str(out), "--prime", rare, "--length", "50", "--unknown", "replace", "--seed", "1")
    assert replaced.exit_code == 0, replaced.output
    assert replaced.stdout.startswith(UNKNOWN)
    # a model that often predicts the symbol shows it as itself; with the symbol as prime it is known
    scored = run_cli("score", str(out), "--text", "春风" + UNKNOWN + "春", "--format", "json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["predicted_characters"] == 3


def test_resume_reads_the_corpus_the_same_way(folded_run):
    corpus, out = folded_run
    result = run_cli("train", "--resume", "--out", str(out), "--max-steps", "30")
    assert result.exit_code == 0, result.output
    assert ckpt.load(out / "latest.safetensors").run_info.step == 30


def test_a_checkpoint_whose_unknown_symbol_is_not_in_its_vocabulary_is_refused(folded_run, tmp_path):
    _, out = folded_run
    doc, tensors = read_checkpoint_file(out / "latest.safetensors")
    doc["unknown"] = "Z"
    bad = tmp_path / "bad.safetensors"
    write_checkpoint_file(bad, doc, tensors)
    result = run_cli("sample", str(bad), "--length", "5")
    assert result.exit_code == 1 and "unknown symbol" in result.stderr and "\n" not in result.stderr.strip()
