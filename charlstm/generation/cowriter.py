"""The co-writer's model side: the text so far, the model state after it, what comes next.

`CoWriter` holds the text a writer and a model make together and the recurrent state after it.
Edits (`type`, `paste`, `backspace`, `accept`, `undo`) change only the text and its undo stack —
plain string work, instant, safe to call from a UI thread; each undo step is one action of the
user's (a typed word, a paste, an accepted suggestion, a run of deletions). `sync` then brings the
model state to the text, going back first to the state saved at the longest prefix the model has
already read (so undo or backspace restores a saved state and costs nothing to re-read):

    text read ─┬─ READ_CHUNK_POSITIONS ─┬─ … ─┬─ STEP_TAIL ─┐
               the model's fused forward, a chunk    the Stepper, one
               per call, the state carried; the      character at a time,
               state kept at each chunk's end        the state kept after each

so a paste of any size costs one batched pass in bounded memory, and typing one step per
character. Between chunks sync asks a `KeepGoing` callback whether to go on: a worker stops there
at once when it is cancelled, and the next sync goes on from the last chunk read. `suggest` syncs
and returns the model's top next characters and a few sampled continuations with their
log-probabilities.

The text is read as `charlstm sample` reads a prime: an empty text is conditioned on
`sample.start_character`, characters the model never saw follow the `unknown` policy
(`Vocab.admit`), so the text holds exactly what the model reads; it holds at most
`config.MAX_WRITE_CHARS` characters. Knows nothing of the terminal.

How it suggests is a `config.WriteConfig`. torch is imported when a CoWriter is made, not with this
module.

Shape legend: B continuations, V vocab, L layers, H hidden, S states per position (L, or 2L with a
cell state: h of every layer, then c of every layer).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable

from .. import memory
from ..config import MAX_WRITE_CHARS, SampleConfig, WriteConfig, bounds
from ..data.vocab import Vocab
from ..errors import CharlstmError

#: The model states kept for going back (undo, backspace) take at most about this many bytes;
#: older positions are thinned out beyond it (going back there re-reads from the nearest one).
SNAPSHOT_BYTES = 64 << 20
#: What one kept state costs beyond its numbers: the tensor object, its storage and a dict entry.
SNAPSHOT_OVERHEAD_BYTES = 1024
#: Characters per call of the model's fused forward when sync reads a long stretch (a paste, a
#: prime, the way back to an old state), at most: fewer when a call's temporary tensors (positions
#: times the model's width: no logits are made) would not fit the memory budget (memory.forward).
#: It also bounds how long a cancelled read runs on.
READ_CHUNK_POSITIONS = 1024
#: The last characters of a read (all of a shorter one, such as typing) are stepped one at a time,
#: keeping the state after each, so deleting back into them re-reads nothing.
STEP_TAIL = 64

#: Bounds of what a user can change while writing: WriteConfig's own, and a temperature cap.
MAX_TEMPERATURE = 5.0
MAX_LENGTH = bounds(WriteConfig, "length").high

#: Asked between chunks of a read with (characters of the text read, characters to read), and
#: between sampling steps: go on?
KeepGoing = Callable[[int, int], bool]


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


class CoWriter:
    """The text so far, its undo stack, and the model state after it (see the module docstring)."""

    def __init__(self, model, vocab: Vocab, prime: str = "", config: WriteConfig = WriteConfig(),
                 keep_going: KeepGoing | None = None):
        """Read `prime` (asking `keep_going` between chunks, as `sync` does)."""
        import torch

        from .sampling import prepare_prime, start_character

        self.vocab, self.config = vocab, config
        self.temperature = config.temperature
        self.text = ""
        self.check_room(len(prime), "prime")
        self.text = prepare_prime(vocab, prime, config.unknown)
        self._undo: list[tuple[int, str, str]] = []   # (keep, tail, kind): the text before = text[:keep] + tail
        self._model, self._stepper = model, model.stepper()
        self._chunk = memory.plan(memory.forward(model.config, logits=False), 0, READ_CHUNK_POSITIONS,
                                  lambda need: f"the co-writer cannot read this model's text one character at a time: "
                                               f"{memory.over_budget(need, 0)}")
        self._cell = model.config.has_cell_state
        device = self._stepper.device
        self._generator = torch.Generator(device=device)
        self._generator.manual_seed(config.seed if config.seed is not None else secrets.randbits(63))
        self._layers = model.config.num_layers
        zero = torch.cat(self._stepper.init_state(1))                        # (S, 1, H)
        # An empty text is conditioned on the start character, as an unprimed sample is; the first
        # character typed is read from the zero state, as a prime is.
        self._start = self._step(zero, start_character(vocab))               # (S, 1, H)
        self._snaps: dict[int, object] = {0: zero}       # position → the state after text[:position]
        self._read = ""                                  # the text self._snaps describe
        per = zero.numel() * zero.element_size() + SNAPSHOT_OVERHEAD_BYTES
        self._cap, self._stride = max(256, SNAPSHOT_BYTES // per), 1
        self.sync(keep_going)

    # ---- edits: text only, instant ----

    def check_room(self, added: int, what: str = "paste") -> None:
        """A CharlstmError if `added` more characters would take the text over MAX_WRITE_CHARS."""
        if len(self.text) + added > MAX_WRITE_CHARS:
            has = f" and has {len(self.text):,}" if self.text else ""
            raise CharlstmError(f"{what} refused: {added:,} characters; the co-writer's text holds at most "
                                f"{MAX_WRITE_CHARS:,}{has}")

    def admit(self, text: str, what: str = "typed text") -> str:
        """`text` as the model will read it under the unknown policy: unchanged, with unseen
        characters dropped or replaced, or an UnknownCharactersError naming them."""
        from .sampling import prepare_prime

        return prepare_prime(self.vocab, text, self.config.unknown, what=what)

    def type(self, text: str) -> str:
        """Append typed text (after `admit`); return what was added. Typing up to a space or a line
        break is one undo step, as in an editor."""
        self.check_room(len(text), "typed text")
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

    def paste(self, text: str) -> str:
        """Append pasted text (after `admit`): one undo step of its own; return what was added. A
        paste that would take the text over MAX_WRITE_CHARS is refused whole (`check_room`)."""
        self.check_room(len(text), "paste")
        text = self.admit(text, "pasted text")
        if text:
            self._undo.append((len(self.text), "", "paste"))
            self.text += text
        return text

    def accept(self, text: str) -> None:
        """Append a suggestion (made by this model, so every character is known); one undo step."""
        self.check_room(len(text), "suggestion")
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

    # ---- the model: a fused pass per chunk, then one step per character ----

    def sync(self, keep_going: KeepGoing | None = None) -> str | None:
        """Bring the model state to the text (as it is when called); return that text, or None when
        `keep_going` said stop between two chunks (what was read is kept: the next sync goes on)."""
        target = self.text                                # read once: a UI thread may edit meanwhile
        position = self._back_to(target)
        state = self._snaps[position]
        tail = max(position, len(target) - STEP_TAIL)
        while position < tail:
            if keep_going is not None and not keep_going(position, len(target)):
                self._read = target[:position]
                return None
            # Chunks end on multiples of the chunk size, so that thinning keeps them evenly.
            end = min(tail, (position // self._chunk + 1) * self._chunk)
            state = self._forward(state, target[position:end])
            position = end
            self._snaps[position] = state
            self._thin(position)
        for offset, char in enumerate(target[position:], start=position + 1):
            state = self._step(state, char)
            self._snaps[offset] = state
        self._thin(len(target))
        self._read = target
        return target

    def _back_to(self, target: str) -> int:
        """Forget the states of a branch `target` left; return the latest position still kept on it."""
        same = len(self._read) if target.startswith(self._read) else _common_prefix(self._read, target)
        base = max(k for k in self._snaps if k <= same)
        for k in [k for k in self._snaps if k > base]:
            del self._snaps[k]
        if base < len(self._read):
            self._read = self._read[:base]
        return base

    def _ids(self, text: str):
        import torch

        return torch.as_tensor(self.vocab.encode(text).astype("int64"), device=self._stepper.device)

    def _forward(self, state, text: str):
        """The state (S, 1, H) after reading `text` from `state`, through the model's fused forward."""
        import torch

        L = self._layers
        carried = (state[:L], state[L:]) if self._cell else (state,)             # (L, 1, H) each
        with torch.inference_mode():
            _, new = self._model.features(self._ids(text).view(1, -1), carried)   # ids (1, T); no logits
            return torch.cat(new)                                                 # (S, 1, H)

    def _step(self, state, text: str):
        """The state (S, 1, H) after reading `text` from `state`, one Stepper step per character."""
        import torch

        L = self._layers
        parts = list(state.unbind(0))                                           # (1, H) each
        hs, cs = parts[:L], (parts[L:] if self._cell else None)
        with torch.inference_mode():
            for char_id in self._ids(text).view(-1, 1):
                self._stepper.advance(char_id, hs, cs)
            return torch.stack(hs + (cs or []))

    def _thin(self, newest: int) -> None:
        """Keep every position of the recent half of the budget and every stride-th before it."""
        if len(self._snaps) <= self._cap:
            return
        recent = newest - self._cap // 2
        while len(self._snaps) > self._cap:
            self._stride *= 2
            self._snaps = {k: v for k, v in self._snaps.items() if k >= recent or k % self._stride == 0}

    def _here(self):
        """The state (S, 1, H) to continue from: after the text, or after the start character for an empty text."""
        return self._snaps[len(self._read)] if self._read else self._start

    def _logits(self, state):
        """The logits (1, V) of the next character after `state`: the head over the top layer's h,
        as the Stepper computes them."""
        import torch

        with torch.inference_mode():
            return torch.addmm(self._stepper.head_b, state[self._layers - 1], self._stepper.head_w)

    def top(self, k: int | None = None) -> list[tuple[str, float]]:
        """The k most likely next characters after the text read so far, with model probabilities."""
        import torch

        k = min(k or self.config.top, len(self.vocab))
        probs = torch.softmax(self._logits(self._here())[0].float(), dim=-1)  # (V,)
        values, ids = torch.topk(probs, k)
        return [(self.vocab.chars[i], float(p)) for p, i in zip(values.tolist(), ids.tolist())]

    def continuations(self, n: int | None = None, length: int | None = None,
                      keep_going: KeepGoing | None = None) -> list[Continuation] | None:
        """n samples of `length` characters at the current temperature from the state after the
        text, each with its log-probability under the model; most likely first, duplicates dropped.
        None when `keep_going`, asked before each step (with the text's length twice: all is read),
        said stop."""
        import torch

        from .sampling import next_ids

        n, length = n or self.config.num_samples, length or self.config.length
        if length <= 0:
            return []
        with torch.inference_mode():
            return self._sample(n, length, next_ids, keep_going)

    def _sample(self, n: int, length: int, next_ids, keep_going: KeepGoing | None) -> list[Continuation] | None:
        import torch

        here = self._here()
        hs = [t.expand(n, -1).contiguous() for t in here[: self._layers]]        # (B, H) each
        cs = [t.expand(n, -1).contiguous() for t in here[self._layers:]] or None
        logits = self._logits(here).expand(n, -1)                                # (B, V)
        pick = SampleConfig(temperature=self.temperature)
        picked, logprob = [], torch.zeros(n, dtype=torch.float64)
        for step in range(length):
            if keep_going is not None and not keep_going(len(self._read), len(self._read)):
                return None
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

    def suggest(self, top: int | None = None, n: int | None = None, length: int | None = None,
                keep_going: KeepGoing | None = None) -> Suggestions | None:
        """Sync, then the top next characters and fresh continuations for the text; None when
        `keep_going` said stop (see `sync`)."""
        text = self.sync(keep_going)
        length = length or self.config.length
        if text is None:
            return None
        continuations = self.continuations(n, length, keep_going)
        if continuations is None:
            return None
        return Suggestions(text, self.top(top), continuations, self.temperature, length)


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
