"""Training text cut for truncated backpropagation through time: the validation split and the stream layout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import TrainConfig, bounds
from ..errors import CorpusError

#: The fewest characters held out for validation when any are (one input and its target).
MIN_HELD_OUT = 2


def held_out_size(n_chars: int, val_fraction: float) -> int:
    """Characters at the end of a corpus of `n_chars` held out for validation: the nearest whole
    share `val_fraction` (a TrainConfig value: its Bounds are checked), at least MIN_HELD_OUT when
    the share is above 0. The one count that `split` cuts at and that reports say."""
    bounds(TrainConfig, "val_fraction").check("val_fraction", val_fraction)
    n_val = int(round(n_chars * val_fraction))
    return max(n_val, MIN_HELD_OUT) if val_fraction > 0 else n_val


def split(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous split: the last `held_out_size` characters are held out for validation.

    Contiguous (not shuffled) so the validation text is text the model has never seen, not
    windows that overlap the training text.
    """
    n_val = held_out_size(len(ids), val_fraction)
    if len(ids) - n_val < 2:
        raise CorpusError(f"corpus too small to split: {len(ids)} characters")
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


@dataclass(frozen=True)
class StreamLayout:
    """How training text is cut for truncated BPTT.

    The training ids are laid out as B parallel streams, each a contiguous slice of the text;
    batch k holds characters [k*T, (k+1)*T) of every stream, so the hidden state at the end of
    batch k is the right starting state for batch k+1:

        text:    a0 a1 a2 ... | b0 b1 b2 ... | c0 c1 c2 ...      (B = 3 streams)
        batch 0: [a0..aT-1]     [b0..bT-1]     [c0..cT-1]
        batch 1: [aT..a2T-1]    [bT..b2T-1]    [cT..c2T-1]

    Each epoch starts the streams at a different offset (0 ≤ offset < T, from the seed and the
    epoch number) so the model does not see the same window boundaries every epoch.
    """

    n_chars: int
    batch_size: int
    seq_len: int
    seed: int = 0

    @property
    def stream_len(self) -> int:
        return self.n_chars // self.batch_size

    @property
    def batches_per_epoch(self) -> int:
        # One character of every stream is needed as the final target; the offset uses up to T-1.
        return max((self.stream_len - self.seq_len) // self.seq_len, 1)

    def offset(self, epoch: int) -> int:
        if epoch == 0:
            return 0
        rng = np.random.default_rng([self.seed, epoch])
        room = self.stream_len - 1 - self.batches_per_epoch * self.seq_len
        return int(rng.integers(0, max(min(room, self.seq_len - 1), 0) + 1))

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch index within the epoch) of the given global step."""
        return divmod(step, self.batches_per_epoch)


def fit_layout(n_chars: int, batch_size: int, seq_len: int, seed: int = 0) -> StreamLayout:
    """A layout for this much text: fewer streams when the corpus is short; an error when it cannot
    fill two windows of seq_len (there would be nothing to carry state across)."""
    if n_chars < 2 * seq_len + 1:
        raise CorpusError(f"corpus too short: {n_chars} training characters cannot fill two windows of --seq-len "
                          f"{seq_len}; give more text or a smaller --seq-len")
    batch_size = max(1, min(batch_size, n_chars // (2 * seq_len + 1)))
    return StreamLayout(n_chars, batch_size, seq_len, seed)


def stream_batch(ids: np.ndarray, layout: StreamLayout, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets (each (B, T)) of the given global step."""
    epoch, k = layout.position(step)
    start = layout.offset(epoch) + k * layout.seq_len
    streams = ids[: layout.stream_len * layout.batch_size].reshape(layout.batch_size, layout.stream_len)
    window = streams[:, start : start + layout.seq_len + 1]  # (B, T+1)
    return window[:, :-1], window[:, 1:]


def eval_streams(ids: np.ndarray, num_streams: int) -> np.ndarray:
    """Validation ids as (S, L) contiguous streams, evaluated chunk by chunk with carried state."""
    num_streams = max(1, min(num_streams, (len(ids) - 1) // 2 or 1))
    length = len(ids) // num_streams
    return ids[: num_streams * length].reshape(num_streams, length)
