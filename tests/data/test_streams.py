"""data/streams.py: the TBPTT stream layout on real text: contiguous streams, each batch the next
window of every stream, a short corpus fitted or refused, and one count of what is held out."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charlstm.data.vocab import Vocab
from charlstm.errors import CorpusError
from charlstm.data.streams import fit_layout, split, stream_batch


def test_streams_are_contiguous_across_batches(shakespeare_text):
    vocab = Vocab.from_text(shakespeare_text)
    ids = vocab.encode(shakespeare_text)
    layout = fit_layout(len(ids), batch_size=8, seq_len=50)
    x0, y0 = stream_batch(ids, layout, 0)
    x1, _ = stream_batch(ids, layout, 1)
    assert x0.shape == (8, 50)
    np.testing.assert_array_equal(y0[:, :-1], x0[:, 1:])       # targets are the next characters
    np.testing.assert_array_equal(x1[:, 0], y0[:, -1])          # batch k+1 continues batch k in every stream
    stream_len = len(ids) // 8
    for b in range(8):                                         # stream b is the b-th contiguous slice
        assert vocab.decode(x0[b]) == shakespeare_text[b * stream_len : b * stream_len + 50]


def test_short_corpus_shrinks_the_batch_or_is_refused():
    layout = fit_layout(1000, batch_size=64, seq_len=100)
    assert layout.batch_size == 4 and layout.seq_len == 100
    for step in range(3 * layout.batches_per_epoch):
        x, y = stream_batch(np.arange(1000), layout, step)
        assert x.shape == (4, 100) and y.shape == (4, 100)
        np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(CorpusError, match="cannot fill two windows of --seq-len 100"):
        fit_layout(200, batch_size=64, seq_len=100)


def test_split_is_contiguous():
    ids = np.arange(1000)
    train, val = split(ids, 0.1)
    assert len(val) == 100 and train[-1] + 1 == val[0]


def test_the_held_out_size_is_one_count_for_the_split_and_for_what_inspect_says(tmp_path):
    from charlstm.config import TrainConfig
    from charlstm.data.streams import MIN_HELD_OUT, held_out_size
    from charlstm.errors import ConfigError
    from charlstm.inspection.texts import TrainingCorpus, corpus_tail

    for n, fraction in [(1000, 0.1), (30, 0.01), (41, 0.05), (1000, 0.0), (7, 0.5)]:
        train, val = split(np.arange(n), fraction)
        assert len(val) == held_out_size(n, fraction) and len(train) + len(val) == n
    assert held_out_size(30, 0.01) == MIN_HELD_OUT and held_out_size(1000, 0.0) == 0
    path = tmp_path / "tiny.txt"
    path.write_text("abcdefghij" * 3, encoding="utf-8")
    _, note = corpus_tail(TrainingCorpus((path,), "utf-8", 30, 0.01), 20)
    assert f"the last {MIN_HELD_OUT} held out from training" in note        # what split held out, not round(0.3)
    with pytest.raises(ConfigError, match=r"val_fraction must be a number in \[0, 0.5\]"):  # the config's own bound
        split(np.arange(100), 0.6)
    assert TrainConfig(val_fraction=0.5).val_fraction == 0.5 and len(split(np.arange(100), 0.5)[1]) == 50


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=50), st.integers(200, 3000), st.integers(1, 16), st.integers(1, 40),
       st.integers(0, 10))
def test_batches_are_contiguous_slices_of_the_text(alphabet, n, batch, seq_len, step):
    text = (alphabet * (n // len(alphabet) + 1))[:n]
    if n < 2 * seq_len + 1:
        return
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    layout = fit_layout(n, batch, seq_len, seed=3)
    x, y = stream_batch(ids, layout, step)
    assert x.shape == y.shape == (layout.batch_size, seq_len)
    for b in range(layout.batch_size):
        row = vocab.decode(x[b]) + vocab.decode(y[b][-1:])
        assert row in text and vocab.decode(y[b]) == row[1:]
    epoch, k = layout.position(step)
    if k + 1 < layout.batches_per_epoch:
        nxt, _ = stream_batch(ids, layout, step + 1)
        np.testing.assert_array_equal(nxt[:, 0], y[:, -1])
