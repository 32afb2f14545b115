"""The co-writer's model side: the text so far, the model state after it, what comes next.

`CoWriter` holds the text a writer and a model make together and the recurrent state after it.
Edits (`type`, `backspace`, `accept`, `undo`) change only the text and its undo stack — plain
string work, instant, safe to call from a UI thread. `sync` then brings the model state to the
text: one `model.network.Stepper` step per character not yet read, after going back to the state saved at
the longest prefix the model has already read (so undo or backspace restores a saved state and
costs nothing to re-read). `suggest` syncs and returns the model's top next characters and a few
sampled continuations with their log-probabilities.

The text is read as `charlstm sample` reads a prime: an empty text is conditioned on
`sample.start_character`, characters the model never saw follow the `unknown` policy
(`Vocab.admit`), so the text holds exactly what the model reads. Knows nothing of the
terminal.

How it suggests is a `config.WriteConfig`. torch is imported when a CoWriter is made, not with this
module.

Shape legend: B continuations, V vocab, L layers, H hidden.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..config import SampleConfig, WriteConfig, bounds
from ..data.vocab import Vocab

#: The model states kept for going back (undo, backspace) take at most about this many bytes;
#: older positions are thinned out beyond it (going back there re-reads from the nearest one).
SNAPSHOT_BYTES = 64 << 20


#: Bounds of what a user can change while writing: WriteConfig's own, and a temperature cap.
MAX_TEMPERATURE = 5.0
MAX_LENGTH = bounds(WriteConfig, "length").high


@dataclass(frozen=True)
class Continuation:
    text: str
    logprob: float      # natural log of its probability under the model (temperature 1), given the text


@dataclass(frozen=True)
class Suggestions:
    """What the model proposes after `text`."""

    text: str
    top: list[tuple[str, float]]           # (character, model probability), most likely first
    continuations: list[Continuation]      # most likely first, no duplicates
    temperature: float
    length: int


@dataclass
class _Snapshot:
    state: tuple            # per layer (1, H) tensors: h of every layer, then c of every layer (LSTM)
    logits: object          # (1, V) after the text up to here


class CoWriter:
    """The text so far, its undo stack, and the model state after it (see the module docstring)."""

    def __init__(self, model, vocab: Vocab, prime: str = "", config: WriteConfig = WriteConfig()):
        import torch

        from .sampling import prepare_prime, start_character

        self.vocab, self.config = vocab, config
        self.temperature = config.temperature
        self.text = prepare_prime(vocab, prime, config.unknown)
        self._undo: list[tuple[int, str, str]] = []   # (keep, tail, kind): the text before = text[:keep] + tail
        self._stepper = model.stepper()
        device = self._stepper.device
        self._generator = torch.Generator(device=device)
        self._generator.manual_seed(config.seed if config.seed is not None else secrets.randbits(63))
        self._layers = model.config.num_layers
        zero = self._stepper.init_state(1)
        flat = tuple(t for part in zero for t in part.unbind(0))          # L or 2L tensors (1, H)
        # An empty text is conditioned on the start character, as an unprimed sample is; the first
        # character typed is read from the zero state, as a prime is.
        start = torch.as_tensor(vocab.encode(start_character(vocab)).astype("int64"), device=device)
        self._start = self._advance(_Snapshot(flat, None), start)
        self._snaps: dict[int, _Snapshot] = {0: _Snapshot(flat, self._start.logits)}
        self._read = ""                                  # the text self._snaps describe
        per = sum(t.numel() * t.element_size() for t in flat) + len(vocab) * 4
        self._cap, self._stride = max(256, SNAPSHOT_BYTES // per), 1
        self.sync()

    # ---- edits: text only, instant ----

    def admit(self, text: str) -> str:
        """`text` as the model will read it under the unknown policy: unchanged, with unseen
        characters dropped or replaced, or an UnknownCharactersError naming them."""
        from .sampling import prepare_prime

        return prepare_prime(self.vocab, text, self.config.unknown, what="typed text")

    def type(self, text: str) -> str:
        """Append typed text (after `admit`); return what was added. Typing up to a space or a line
        break is one undo step, as in an editor."""
        text = self.admit(text)
        if not text:
            return text
        last = self._undo[-1] if self._undo else None
        if last is not None and last[2] == "type" and self.text and not self.text[-1].isspace():
            pass                                          # the same word: one undo step
        else:
            self._undo.append((len(self.text), "", "type"))
        self.text += text
        return text

    def accept(self, text: str) -> None:
        """Append a suggestion (made by this model, so every character is known); one undo step."""
        self.vocab.check(text, "suggestion")
        self._undo.append((len(self.text), "", "accept"))
        self.text += text

    def backspace(self) -> bool:
        """Delete the last character; a run of deletions is one undo step."""
        if not self.text:
            return False
        last = self._undo[-1] if self._undo else None
        if last is not None and last[2] == "delete" and last[0] == len(self.text):
            self._undo[-1] = (last[0] - 1, self.text[-1] + last[1], "delete")
        else:
            self._undo.append((len(self.text) - 1, self.text[-1], "delete"))
        self.text = self.text[:-1]
        return True

    def undo(self) -> bool:
        """Go back one edit; False when there is none."""
        if not self._undo:
            return False
        keep, tail, _ = self._undo.pop()
        self.text = self.text[:keep] + tail
        return True

    def change_temperature(self, delta: float) -> float:
        self.temperature = round(min(MAX_TEMPERATURE, max(0.0, self.temperature + delta)), 6)
        return self.temperature

    # ---- the model: one step per character not yet read ----

    def sync(self) -> str:
        """Bring the model state to the text (as it is when called); return that text."""
        target = self.text                                # read once: a UI thread may edit meanwhile
        same = _common_prefix(self._read, target)
        base = max(k for k in self._snaps if k <= same)
        for k in [k for k in self._snaps if k > base]:   # a branch the text left
            del self._snaps[k]
        snap = self._snaps[base]
        if base < len(target):
            import torch

            ids = torch.as_tensor(self.vocab.encode(target[base:]).astype("int64"), device=self._stepper.device)
            for offset, char_id in enumerate(ids):
                snap = self._advance(snap, char_id.view(1))
                self._snaps[base + offset + 1] = snap
            self._thin(len(target))
        self._read = target
        return target

    def _advance(self, snap: _Snapshot, ids) -> _Snapshot:
        """The snapshot after reading ids (n,) from `snap`."""
        import torch

        L = self._layers
        hs, cs = list(snap.state[:L]), (list(snap.state[L:]) or None)
        logits = None
        with torch.inference_mode():
            for char_id in ids.view(-1, 1):
                logits, _ = self._stepper.advance(char_id, hs, cs)         # (1, V)
        return _Snapshot(tuple(hs) + tuple(cs or ()), logits)

    def _thin(self, newest: int) -> None:
        """Keep every position of the recent half of the budget and every stride-th before it."""
        if len(self._snaps) <= self._cap:
            return
        recent = newest - self._cap // 2
        while len(self._snaps) > self._cap:
            self._stride *= 2
            self._snaps = {k: v for k, v in self._snaps.items() if k >= recent or k % self._stride == 0}

    def _here(self) -> _Snapshot:
        """The state to continue from: after the text, or after the start character for an empty text."""
        return self._snaps[len(self._read)] if self._read else self._start

    def top(self, k: int | None = None) -> list[tuple[str, float]]:
        """The k most likely next characters after the text read so far, with model probabilities."""
        import torch

        k = min(k or self.config.top, len(self.vocab))
        probs = torch.softmax(self._here().logits[0].float(), dim=-1)        # (V,)
        values, ids = torch.topk(probs, k)
        return [(self.vocab.chars[i], float(p)) for p, i in zip(values.tolist(), ids.tolist())]

    def continuations(self, n: int | None = None, length: int | None = None) -> list[Continuation]:
        """n samples of `length` characters at the current temperature from the state after the
        text, each with its log-probability under the model; most likely first, duplicates dropped."""
        import torch

        from .sampling import next_ids

        n, length = n or self.config.num_samples, length or self.config.length
        if length <= 0:
            return []
        with torch.inference_mode():
            return self._sample(n, length, next_ids)

    def _sample(self, n: int, length: int, next_ids) -> list[Continuation]:
        import torch

        here = self._here()
        hs = [t.expand(n, -1).contiguous() for t in here.state[: self._layers]]   # (B, H) each
        cs = [t.expand(n, -1).contiguous() for t in here.state[self._layers:]] or None
        logits = here.logits.expand(n, -1)                                        # (B, V)
        pick = SampleConfig(temperature=self.temperature)
        picked, logprob = [], torch.zeros(n, dtype=torch.float64)
        for step in range(length):
            ids = next_ids(logits, pick, self._generator)                           # (B,)
            logprob += torch.log_softmax(logits.double(), dim=-1).gather(1, ids.view(-1, 1)).view(-1).cpu()
            picked.append(ids.cpu())
            if step + 1 < length:
                logits, _ = self._stepper.advance(ids, hs, cs)
        rows = torch.stack(picked, dim=1).tolist()                                  # (B, length)
        found: dict[str, float] = {}
        for row, lp in zip(rows, logprob.tolist()):
            found.setdefault(self.vocab.decode(row), lp)
        return [Continuation(t, lp) for t, lp in sorted(found.items(), key=lambda item: -item[1])]

    def suggest(self, top: int | None = None, n: int | None = None, length: int | None = None) -> Suggestions:
        """Sync, then the top next characters and fresh continuations for the text."""
        text = self.sync()
        length = length or self.config.length
        return Suggestions(text, self.top(top), self.continuations(n, length), self.temperature, length)


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of a and b."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n                       # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo
