"""What running a model needs on this machine: the device, the CPU thread count, and the one loader
that puts a checkpoint's model on them (every command, the report, the co-writer and `charlstm.load`).

Threads: torch's default on a small CPU is one OpenMP thread per core, spin-waiting at every
barrier. On an idle 2-core machine that is the fastest setting; as soon as anything else runs on one
of the cores, the spinning thread that waits for its descheduled partner makes every step several
times slower, while one thread would keep its speed. No fixed setting is right for both, so
`ThreadTuner` times the work under each candidate thread count, keeps the fastest, and times them
again now and then, so a machine that becomes busy (or idle) is noticed within a minute; a sudden
slowdown of the chosen count (the collapse of spinning threads when a neighbour starts) within a few
steps. It knows nothing of what the work is.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

from .config import SHIPPED_MODELS, THREAD_COUNT
from .errors import CheckpointError, ConfigError
from .runs import checkpoint as ckpt

#: Timed steps per candidate in one round of trials (the first of each is a warm-up, not counted).
TRIAL_STEPS = 5
#: Blocks run before the first round (on the fewest threads, the choice until a round has measured:
#: the count a busy machine cannot slow down several times): a process's first steps are slow for
#: reasons of their own (allocator, caches, lazy initialisation), and timing them would favour
#: whichever count ran later.
WARMUP_BLOCKS = 3
#: Seconds between rounds of trials.
RECHECK_SECONDS = 60.0
#: A round changes the choice only when another count is faster than the current one by more than
#: this share: two counts within a few percent of each other are a tie, and noise must not flip it.
SWITCH_MARGIN = 0.08
#: Between rounds, blocks under the chosen count are watched: when WATCH_BLOCKS in a row take more
#: than SLOWDOWN times the median its round measured, the machine has changed (a neighbour started
#: and the spinning threads collapse) and a round runs at once rather than at the next re-check.
SLOWDOWN = 1.5
WATCH_BLOCKS = 3
#: A trial block that takes more than ABANDON times the fastest block of another count seen lately
#: ends that count's trials for the round: on a loaded machine one spinning two-thread step can take
#: twenty times longer than a one-thread step, and four more of them would cost minutes.
ABANDON = 3.0


def default_candidates() -> tuple[int, ...]:
    """Thread counts worth trying: every core, and one (the two ends of the trade-off)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return tuple(dict.fromkeys((max(cores, 1), 1)))


def environment_threads() -> int | None:
    """The thread count the user set in OMP_NUM_THREADS (the standard knob, which torch honours
    too), if any: `--threads auto` keeps to it rather than trying other counts."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _set_torch_threads(count: int) -> None:
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


class ThreadTuner:
    """Picks the thread count under which `timed()` blocks run fastest, and keeps re-checking.

    `pinned` fixes the count (the user's `--threads N`); then nothing is measured. Otherwise rounds
    of trials run every `recheck_seconds`, the first after `warmup_blocks` blocks: each candidate runs
    `trial_steps` timed blocks (the first a warm-up), interleaved (2, 1, 2, 1, …) so a drift of the
    machine's speed during the round (a warming process, a neighbour starting) hits every count alike,
    and the one with the lowest median time is kept until the next round — unless the
    current choice is within `margin` of it (a tie keeps what runs). A count far slower than
    another (ABANDON) leaves the round after one block; between rounds, a choice that suddenly runs
    SLOWDOWN times slower starts one at once. Until the first round has measured, and between the
    blocks of a round, the choice (at first one thread) is what is applied. `disturbed()` tells it
    that other work ran in between (an evaluation, a checkpoint): the next timed block is not counted.
    """

    def __init__(self, candidates: Sequence[int] | None = None, pinned: int | None = None,
                 trial_steps: int = TRIAL_STEPS, recheck_seconds: float = RECHECK_SECONDS,
                 margin: float = SWITCH_MARGIN, clock: Callable[[], float] = time.perf_counter,
                 apply: Callable[[int], None] = _set_torch_threads, warmup_blocks: int = WARMUP_BLOCKS):
        self.pinned_by = "--threads"
        if pinned is None and candidates is None and environment_threads():
            pinned, self.pinned_by = environment_threads(), "OMP_NUM_THREADS"
        self.pinned = pinned
        self.candidates = (pinned,) if pinned else tuple(candidates or default_candidates())
        self.trial_steps = max(trial_steps, 2)
        self.recheck_seconds = recheck_seconds
        self.margin = margin
        self.clock, self.apply = clock, apply
        self.chosen = min(self.candidates)       # until a round says otherwise: the count a busy machine cannot crawl
        self.medians: dict[int, float] = {}      # seconds per block measured in the last round
        self.rounds = 0
        self._queue: list[int] = []              # the thread count of each block still to try
        self._times: dict[int, list[float]] = {}
        self._uncounted = False                  # the next block follows other work: not a fair timing
        self._slow = 0                           # blocks in a row under the choice slower than its round said
        self._last: tuple[int, float] | None = None  # (count, seconds) of the latest block outside a round
        self._next_round = clock()               # the first round: after the warm-up blocks
        self._warmup = warmup_blocks

    def disturbed(self) -> None:
        """Other work ran since the last block (caches cold, memory moved): do not count the next one."""
        self._uncounted = True

    def _start_round(self) -> None:
        self._queue = [n for _ in range(self.trial_steps) for n in self.candidates]
        self._times = {n: [] for n in self.candidates}

    @contextlib.contextmanager
    def timed(self, work: float = 1.0) -> Iterator[int]:
        """Run one block of the work under the current choice (or a trial); yields the thread count.
        `work` is the block's size relative to the others (its time is counted divided by it)."""
        if len(self.candidates) > 1 and not self._queue and self._warmup <= 0 and self.clock() >= self._next_round:
            self._start_round()
        count = self._queue[0] if self._queue else self.chosen
        self.apply(count)
        started = self.clock()
        yield count
        if self._queue and self._uncounted:  # run this trial again
            self._uncounted = False
        elif self._queue:
            self._trial(count, (self.clock() - started) / work)
            self.apply(self.chosen)          # what runs between blocks (an evaluation) runs on the choice
        else:
            if not self._uncounted:
                self._last = (count, (self.clock() - started) / work)
                if self._warmup <= 0:
                    self._watch(self._last[1])
            self._uncounted = False
            self._warmup -= 1

    def _trial(self, count: int, seconds: float) -> None:
        """Count one trial block; a count ABANDON times slower than another's best leaves the round."""
        self._times[count].append(seconds)
        self._queue.pop(0)
        others = [t for n, times in self._times.items() if n != count for t in times]
        if self._last is not None and self._last[0] != count:
            others.append(self._last[1])
        if others and seconds > ABANDON * min(others):
            self._queue = [n for n in self._queue if n != count]
            self._times[count] = [seconds, seconds]              # its median is this block's time
        if not self._queue:
            self._decide()

    def _watch(self, seconds: float) -> None:
        """Start a round at the next block once WATCH_BLOCKS blocks in a row were SLOWDOWN times slower
        than the chosen count's median in the last round."""
        expected = self.medians.get(self.chosen)
        self._slow = self._slow + 1 if expected is not None and seconds > SLOWDOWN * expected else 0
        if self._slow >= WATCH_BLOCKS:
            self._slow = 0
            self._next_round = self.clock()

    def _decide(self) -> None:
        self.medians = {n: statistics.median(t[1:]) for n, t in self._times.items() if len(t) > 1}
        fastest = min(self.medians, key=self.medians.get)
        if self.medians.get(self.chosen, float("inf")) > self.medians[fastest] * (1 + self.margin):
            self.chosen = fastest
        self.rounds += 1
        self._next_round = self.clock() + self.recheck_seconds
        self.apply(self.chosen)

    def probe(self, work: Callable[[], object], runs: int = 4) -> int:
        """For work too short to tune as it goes (a sample, a trace, a score of a few seconds): time
        `work` `runs` times under each candidate, interleaved so a change of load hits both, the
        first run of each a warm-up; keep the fastest (by the margin rule) and apply it."""
        if len(self.candidates) == 1:
            self.apply(self.chosen)
            return self.chosen
        times: dict[int, list[float]] = {n: [] for n in self.candidates}
        for _ in range(max(runs, 2)):
            for n in self.candidates:
                self.apply(n)
                started = self.clock()
                work()
                times[n].append(self.clock() - started)
        self._times = times
        self._decide()
        return self.chosen

    def describe(self) -> str:
        """One line for the progress header, e.g. '2 threads (1 thread: 1.9× slower; re-checked every 60 s)'."""
        name = lambda n: f"{n} thread{'s' if n != 1 else ''}"  # noqa: E731
        if self.pinned:
            return f"{name(self.pinned)} ({self.pinned_by})"
        if not self.medians:
            return f"{name(self.chosen)} (measuring {' vs '.join(map(name, self.candidates))})"
        best = self.medians[self.chosen]
        others = ", ".join(f"{name(n)}: {t / best:.2f}× slower" for n, t in self.medians.items() if n != self.chosen)
        return f"{name(self.chosen)} ({others}; re-checked every {self.recheck_seconds:.0f} s)"


def pick_device(device: str | None = None) -> torch.device:
    """The device asked for, else CUDA when present, else the CPU.

    The one check of a device name (every command's --device comes here): a name PyTorch does not
    know, a device charlstm cannot run on (meta, xla …), CUDA or MPS absent from this machine or
    this build, or a CUDA index past the last GPU is a ConfigError naming what there is."""
    if device is None or (isinstance(device, str) and not device.strip()):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        chosen = device
    else:
        try:
            chosen = torch.device(str(device).strip())
        except (RuntimeError, ValueError, TypeError):
            raise ConfigError(f"unknown device {str(device)!r:.60}; give cpu, cuda, cuda:N or mps") from None
    if chosen.type == "cpu":
        return chosen
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch is a CPU-only build" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(f"device {str(device)!r:.60}: {why}; use --device cpu")
        count = torch.cuda.device_count()
        if chosen.index is not None and chosen.index >= count:
            raise ConfigError(f"device {str(device)!r:.60}: this machine has {count} CUDA GPU(s), cuda:0 to "
                              f"cuda:{count - 1}")
        return chosen
    if chosen.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device {str(device)!r:.60}: MPS (Apple GPU) is not available here; use --device cpu")
        return chosen
    raise ConfigError(f"device {str(device)!r:.60}: charlstm runs on cpu, cuda or mps, not {chosen.type}")


def find_model(target: str | os.PathLike) -> Path:
    """The checkpoint file `target` names: a checkpoint file, a run folder (its best checkpoint), or
    the name of a model charlstm ships (config.SHIPPED_MODELS) where no file or folder has that name.
    Anything else is one CheckpointError line that lists the shipped names."""
    if not os.path.lexists(target):
        name = str(target)
        if name not in SHIPPED_MODELS and (os.sep in name or "." in name):  # a path: no name is meant
            return Path(ckpt.resolve(target))                              # (its one line says so)
        if name not in SHIPPED_MODELS:
            raise CheckpointError(f"{name}: no such checkpoint file or run directory, nor a model charlstm ships "
                                  f"({', '.join(SHIPPED_MODELS)})")
        package = Path(__file__).resolve().parent
        inside = package / SHIPPED_MODELS[name]
        target = inside if inside.is_dir() else package.parent / SHIPPED_MODELS[name]
        if not target.is_dir():
            raise CheckpointError(f"{name}: this installation of charlstm does not hold the model ({target} is missing)")
    return Path(ckpt.resolve(target))


def load_model(target: str | os.PathLike | None = None, device: str | None = None, threads: int | None = None):
    """(checkpoint, its model on `device` in eval mode, the checkpoint's path) for a file, a run folder,
    a shipped model's name (`find_model`) or the latest run. On the CPU the thread count is pinned (`threads`) or, with None, chosen by
    timing the model's own forward on a short text under each candidate (`choose_threads`: some tens
    of milliseconds)."""
    path = Path(ckpt.resolve(None)) if target is None else find_model(target)
    loaded = ckpt.load(path)
    return loaded, place(loaded, device, threads), path


def place(loaded: ckpt.Checkpoint, device: str | None = None, threads: int | None = None):
    """The model of a loaded checkpoint on `device` (see `pick_device`) in eval mode, with the CPU
    thread count pinned to `threads` (1 to MAX_THREADS) or chosen by timing (None)."""
    THREAD_COUNT.check("threads", threads)
    model = loaded.model(pick_device(device))
    if next(model.parameters()).device.type == "cpu":
        choose_threads(model, threads)
    return model


def choose_threads(model, threads: int | None = None, chars: int = 32) -> ThreadTuner:
    """Pin `threads`, or time the model's forward over `chars` characters under each thread count
    and keep the fastest; returns the ThreadTuner (its describe() says what it chose)."""
    tuner = ThreadTuner(pinned=threads)
    ids = torch.randint(model.config.vocab_size, (1, chars))

    def forward() -> None:
        with torch.inference_mode():
            model(ids)

    tuner.probe(forward)
    return tuner
