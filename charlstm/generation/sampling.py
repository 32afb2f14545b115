"""Generation: an iterator of characters from a trained model.

Prime text, temperature (0 = argmax), top-k, top-p, stop strings, seeds through an explicit
`torch.Generator`, many samples side by side in bounded batches, and optional neuron edits. Yields text as it is
made and never buffers the whole output. Knows nothing of the terminal.
"""

from __future__ import annotations

import secrets
from typing import Iterator, Sequence

import torch

from ..config import UNKNOWN_POLICIES, SampleConfig  # noqa: F401  (re-exported)
from ..data.vocab import Vocab
from ..errors import PrimeError  # noqa: F401  (re-exported)
from ..model.network import CharModel, Edits


def prepare_prime(vocab: Vocab, prime: str, policy: str = "error", what: str = "prime") -> str:
    """The prime (or other text, named by `what`) as the model will read it under the unknown-character
    `policy`: the vocabulary decides (`Vocab.admit`)."""
    return vocab.admit(prime, policy, what)


def start_character(vocab: Vocab) -> str:
    """What an unprimed sample is conditioned on: a line break if the model knows one."""
    return "\n" if "\n" in vocab else vocab.chars[0]


def next_ids(logits: torch.Tensor, config: SampleConfig, generator: torch.Generator | None) -> torch.Tensor:
    """Pick the next character of every sample from logits (B, V) → ids (B,)."""
    if config.temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / config.temperature
    if config.top_k is not None and config.top_k < logits.shape[-1]:
        kth = torch.topk(logits, config.top_k, dim=-1).values[:, -1:]          # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)                                     # (B, V)
    if config.top_p is not None and config.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Drop a character when the ones more likely than it already reach p; the first stays.
        drop_sorted = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= config.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class _StopFilter:
    """Holds back characters that might begin a stop string, so a stop string is never emitted."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.done = False

    def push(self, char: str) -> str:
        if self.done:
            return ""
        if not self.stops:
            return char
        self.pending += char
        hits = [self.pending.find(s) for s in self.stops if s in self.pending]
        if hits:
            self.done = True
            out, self.pending = self.pending[: min(hits)], ""
            return out
        keep = 0  # longest suffix of pending that is a prefix of some stop string
        for n in range(1, min(len(self.pending), max(map(len, self.stops))) + 1):
            if any(s.startswith(self.pending[-n:]) for s in self.stops):
                keep = n
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep :]
        return out

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


class _Picker:
    """Chooses the next character of every sample. Plain temperature sampling is Gumbel-max with
    noise drawn from the seeded generator in blocks — two cheap ops per step instead of softmax
    and multinomial; top-k / top-p filter the distribution and draw with multinomial."""

    def __init__(self, config: SampleConfig, batch: int, vocab_size: int, device, generator):
        self.config, self.generator = config, generator
        self.inverse_t = 1.0 / config.temperature if config.temperature > 0 else 0.0
        self.gumbel = config.temperature > 0 and config.top_k is None and config.top_p is None
        self.block = max(1, min(config.length, (1 << 20) // max(batch * vocab_size, 1)))
        self.shape, self.device = (batch, vocab_size), device
        self.noise, self.used = None, 0

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.gumbel:
            return next_ids(logits, self.config, self.generator)
        if self.noise is None or self.used == len(self.noise):
            u = torch.rand((self.block, *self.shape), generator=self.generator, device=self.device)
            self.noise = -torch.log(-torch.log(u.clamp_(min=1e-20)))                 # Gumbel(0, 1)
            self.used = 0
        noise = self.noise[self.used]
        self.used += 1
        return torch.add(noise, logits, alpha=self.inverse_t).argmax(dim=-1)    # argmax(l/T + G) ~ softmax(l/T)


#: The most samples generated side by side: more run batch after batch, so memory does not grow
#: with --num-samples.
SAMPLE_BATCH = 256
#: The most characters a batch makes in all: a long --length runs fewer samples side by side (one
#: at a time from 2**21 characters), so a caller that holds a batch until it ends holds at most this.
BATCH_CHARS = 1 << 22


def batch_size(config: SampleConfig) -> int:
    """How many of config.num_samples are generated side by side: the first batch is all of them up
    to SAMPLE_BATCH, fewer when each is long (BATCH_CHARS)."""
    return max(1, min(config.num_samples, SAMPLE_BATCH, BATCH_CHARS // max(config.length, 1)))


def _seeded_generator(config: SampleConfig, device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed if config.seed is not None else secrets.randbits(63))  # global RNG untouched
    return generator


def generate(model: CharModel, vocab: Vocab, prime: str = "", config: SampleConfig = SampleConfig(),
             edits: Edits | None = None) -> Iterator[list[str]]:
    """Yield, step by step, the new text of each of the B samples (a list of B strings; '' for a
    sample that has nothing new, e.g. one that has stopped). The prime is not repeated. All
    config.num_samples run side by side as one batch: for many, see `batches`."""
    prime = vocab.admit(prime, config.unknown, "prime")
    device = next(model.parameters()).device
    yield from _steps(model.stepper(), vocab, prime, config, config.num_samples, _seeded_generator(config, device),
                      edits)


def batches(model: CharModel, vocab: Vocab, prime: str = "", config: SampleConfig = SampleConfig(),
            edits: Edits | None = None) -> Iterator[tuple[int, Iterator[list[str]]]]:
    """config.num_samples samples in bounded batches, one after another: (size, steps), steps as
    `generate` yields them for `size` samples; exhaust each before taking the next. Memory depends
    on the batch size (`batch_size`), never on config.num_samples. One seeded generator runs
    through every batch, so the first batch is exactly what `generate` makes when all the samples
    fit in it, and the later ones follow deterministically from the same seed."""
    yield from batches_from(model, vocab, vocab.admit(prime, config.unknown, "prime"), config, edits)


def batches_from(model: CharModel, vocab: Vocab, prime: str, config: SampleConfig = SampleConfig(),
                 edits: Edits | None = None) -> Iterator[tuple[int, Iterator[list[str]]]]:
    """`batches` from a prime already admitted under the unknown-character policy (`Vocab.admit`),
    for a caller that shows the prime as the model reads it: the policy is applied once, by it."""
    device = next(model.parameters()).device
    stepper, generator = model.stepper(), _seeded_generator(config, device)
    per, left = batch_size(config), config.num_samples
    while left > 0:
        size = min(per, left)
        left -= size
        yield size, _steps(stepper, vocab, prime, config, size, generator, edits)


@torch.inference_mode()
def _steps(stepper, vocab: Vocab, prime: str, config: SampleConfig, B: int, generator: torch.Generator,
           edits: Edits | None) -> Iterator[list[str]]:
    """The generation of B samples side by side from a checked prime (see `generate`)."""
    device = stepper.device
    pick = _Picker(config, B, len(vocab), device, generator)
    context = prime or start_character(vocab)
    state = stepper.init_state(B)
    hs = list(state[0].unbind(0))
    cs = list(state[1].unbind(0)) if len(state) == 2 else None
    ids = torch.as_tensor(vocab.encode(context).astype("int64"), device=device)
    logits = None
    for char_id in ids:                                                   # read the prime
        logits, _ = stepper.advance(char_id.expand(B), hs, cs, edits=edits)
    filters = [_StopFilter(config.stop) for _ in range(B)] if config.stop else None
    chars = vocab.chars
    for _ in range(config.length):
        nxt = pick(logits)                                                # (B,)
        picked = nxt.tolist()
        if filters is None:
            yield [chars[i] for i in picked]
        else:
            yield [f.push(chars[i]) for f, i in zip(filters, picked)]
            if all(f.done for f in filters):
                return
        logits, _ = stepper.advance(nxt, hs, cs, edits=edits)
    if filters is not None:
        tail = [f.flush() for f in filters]
        if any(tail):
            yield tail


def sample_text(model: CharModel, vocab: Vocab, prime: str = "", config: SampleConfig = SampleConfig(),
                edits: Edits | None = None) -> list[str]:
    """Whole samples as strings (the prime not included): convenient for the Python API and tests.
    Made in the same batches as `charlstm sample`, so the same seed gives the same samples."""
    samples: list[str] = []
    for size, steps in batches(model, vocab, prime, config, edits):
        parts: list[list[str]] = [[] for _ in range(size)]
        for step in steps:
            for b, piece in enumerate(step):
                parts[b].append(piece)
        samples.extend("".join(p) for p in parts)
    return samples
