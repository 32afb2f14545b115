"""runtime.py: ThreadTuner keeps the thread count under which the work runs fastest and notices a change;
commands that load a model choose their threads; pick_device is the one check of a device."""

from __future__ import annotations

import pytest

from charlstm.errors import ConfigError
from charlstm.runtime import ThreadTuner, pick_device


class FakeMachine:
    """A clock and a 'torch' whose step time depends on the thread count and on how busy it is."""

    def __init__(self):
        self.now, self.threads, self.busy = 0.0, None, False
        self.applied = []

    def clock(self) -> float:
        return self.now

    def apply(self, n: int) -> None:
        self.threads = n
        self.applied.append(n)

    def step(self) -> None:
        # idle: two threads 1.6x faster; busy: two threads 2x slower than one (spin-waiting)
        seconds = {(2, False): 0.05, (1, False): 0.08, (2, True): 0.24, (1, True): 0.08}[(self.threads, self.busy)]
        self.now += seconds


def _run(tuner: ThreadTuner, machine: FakeMachine, steps: int) -> list[int]:
    used = []
    for _ in range(steps):
        with tuner.timed() as n:
            assert n == machine.threads
            machine.step()
        used.append(n)
    return used


def test_picks_the_faster_count_and_switches_when_the_machine_gets_busy():
    machine = FakeMachine()
    tuner = ThreadTuner(candidates=(2, 1), trial_steps=3, recheck_seconds=10.0, clock=machine.clock,
                        apply=machine.apply)
    used = _run(tuner, machine, 20)
    assert used[:9] == [1, 1, 1, 2, 1, 2, 1, 2, 1]         # three warm-up blocks on one thread, then a round, interleaved
    assert tuner.chosen == 2 and set(used[9:]) == {2}
    assert "2 threads (1 thread: 1.60× slower" in tuner.describe()

    machine.busy = True
    _run(tuner, machine, 300)                              # past the next re-check
    assert tuner.chosen == 1 and tuner.rounds >= 2
    assert machine.threads == 1


def test_pinned_count_is_never_measured():
    machine = FakeMachine()
    tuner = ThreadTuner(pinned=1, clock=machine.clock, apply=machine.apply)
    assert set(_run(tuner, machine, 10)) == {1}
    assert not tuner.medians and tuner.describe() == "1 thread (--threads)"


def test_real_torch_thread_count_is_applied():
    import torch

    before = torch.get_num_threads()
    try:
        tuner = ThreadTuner(candidates=(1,))
        with tuner.timed():
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_tie_keeps_the_current_choice():
    """Counts within the margin of each other are a tie: noise must not flip the choice."""
    machine = FakeMachine()
    times = {2: 0.048, 1: 0.050}                           # two threads 4% faster: within the 8% margin
    machine.step = lambda: setattr(machine, "now", machine.now + times[machine.threads])
    tuner = ThreadTuner(candidates=(2, 1), trial_steps=3, recheck_seconds=10.0, clock=machine.clock,
                        apply=machine.apply)
    _run(tuner, machine, 10)
    assert tuner.rounds == 1 and tuner.chosen == 1        # one thread until measured; 4% is no reason to switch
    times[2] = 0.040                                       # two threads now 20% faster: past the margin
    _run(tuner, machine, 400)
    assert tuner.chosen == 2


def test_a_disturbed_block_is_not_counted():
    """After other work (an evaluation) the next block is run again rather than timed: a slow
    step after an evaluation must not make a count look slow."""
    machine = FakeMachine()
    tuner = ThreadTuner(candidates=(2, 1), trial_steps=3, recheck_seconds=10.0, clock=machine.clock,
                        apply=machine.apply, warmup_blocks=0)
    used = []
    for i in range(12):
        if i in (1, 2):
            tuner.disturbed()
        with tuner.timed() as n:
            machine.step()
            if i in (1, 2):
                machine.now += 5.0                         # an evaluation's worth of time, inside the block
        used.append(n)
    assert used[:8] == [2, 1, 1, 1, 2, 1, 2, 1]            # blocks 1 and 2 (both 1 thread) were run again
    assert {n: round(t, 6) for n, t in tuner.medians.items()} == {2: 0.05, 1: 0.08} and tuner.chosen == 2


def test_probe_times_each_count_interleaved_and_keeps_the_fastest():
    machine = FakeMachine()
    machine.busy = True
    tuner = ThreadTuner(candidates=(2, 1), clock=machine.clock, apply=machine.apply)
    assert tuner.probe(machine.step, runs=4) == 1 and machine.threads == 1
    assert machine.applied[:4] == [2, 1, 2, 1]                 # interleaved: a change of load hits both
    machine.busy, machine.applied = False, []
    assert tuner.probe(machine.step) == 2 and machine.threads == 2


def test_commands_that_load_a_model_choose_their_threads(trained_run):
    import torch

    from charlstm.runtime import load_model

    before = torch.get_num_threads()
    try:
        _, model, _ = load_model(str(trained_run), threads=1)
        assert torch.get_num_threads() == 1
        from charlstm.runtime import choose_threads

        tuner = choose_threads(model)
        assert set(tuner.medians) == set(tuner.candidates) and torch.get_num_threads() == tuner.chosen
    finally:
        torch.set_num_threads(before)


def test_a_sudden_slowdown_of_the_choice_starts_a_round_at_once():
    """Spinning threads collapse the moment a neighbour starts: the tuner must not wait for its
    re-check (here an hour away) to notice, but must not react to one slow block either."""
    machine = FakeMachine()
    tuner = ThreadTuner(candidates=(2, 1), trial_steps=3, recheck_seconds=3600.0, clock=machine.clock,
                        apply=machine.apply)
    _run(tuner, machine, 12)
    assert tuner.chosen == 2 and tuner.rounds == 1
    with tuner.timed():                                    # one hiccup: no new round
        machine.now += 1.0
    _run(tuner, machine, 5)
    assert tuner.rounds == 1
    machine.busy = True
    used = _run(tuner, machine, 12)
    assert used[:3] == [2, 2, 2] and used[3:9] == [2, 1, 2, 1, 2, 1]   # three slow blocks, then a round
    assert tuner.chosen == 1 and tuner.rounds == 2 and set(used[9:]) == {1}


def test_a_count_that_crawls_leaves_the_round_after_one_block():
    """On a loaded machine a two-thread step can take twenty one-thread steps: a round must not
    run four more of them to be sure."""
    machine = FakeMachine()
    times = {2: 2.0, 1: 0.1}
    machine.step = lambda: setattr(machine, "now", machine.now + times[machine.threads])
    tuner = ThreadTuner(candidates=(2, 1), trial_steps=5, recheck_seconds=3600.0, clock=machine.clock,
                        apply=machine.apply)
    used = _run(tuner, machine, 12)
    assert used[:5] == [1, 1, 1, 2, 1]                     # warm-up, one crawling 2-thread block, then 1 only
    assert used.count(2) == 1 and tuner.rounds == 1 and tuner.chosen == 1
    assert "2 threads: 20.00× slower" in tuner.describe()


def test_work_between_blocks_runs_on_the_choice_not_on_the_last_trial():
    """An evaluation that comes between two trial blocks must not run on a count still being tried
    (two spinning threads on a busy machine): after every block the choice is applied again."""
    machine = FakeMachine()
    machine.busy = True
    tuner = ThreadTuner(candidates=(2, 1), trial_steps=3, recheck_seconds=3600.0, clock=machine.clock,
                        apply=machine.apply, warmup_blocks=0)
    assert tuner.chosen == 1                               # before anything is measured
    for _ in range(4):
        with tuner.timed():
            machine.step()
        assert machine.threads == tuner.chosen == 1       # what runs now, between blocks


def test_omp_num_threads_pins_the_count_like_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    tuner = ThreadTuner()
    assert tuner.pinned == 1 and tuner.candidates == (1,) and tuner.describe() == "1 thread (OMP_NUM_THREADS)"
    assert ThreadTuner(pinned=2).describe() == "2 threads (--threads)"   # the option wins
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert ThreadTuner().pinned is None                                   # not a count: ignored, as torch does


def test_pick_device_is_the_one_check():
    assert pick_device("cpu").type == "cpu" and pick_device(None).type in ("cpu", "cuda")
    for bad in ("foo", "meta", "cuda:-1", "xla"):
        with pytest.raises(ConfigError):
            pick_device(bad)


def test_find_model_takes_a_path_a_run_folder_or_a_shipped_name(tmp_path, monkeypatch, trained_run):
    """runtime.find_model: a path first (a file, a run folder's best checkpoint), else a name of
    config.SHIPPED_MODELS (examples/models/ in a checkout); anything else one line listing the names."""
    from pathlib import Path

    from charlstm.config import SHIPPED_MODELS
    from charlstm.errors import CheckpointError
    from charlstm.runtime import find_model

    root = Path(__file__).resolve().parent.parent
    for name, folder in SHIPPED_MODELS.items():
        assert find_model(name) == root / folder / "best.safetensors"
    assert find_model(trained_run) == trained_run / "best.safetensors"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "austen").symlink_to(trained_run)  # a folder of that name where the user is: the folder wins
    assert find_model("austen") == Path("austen") / "best.safetensors"
    with pytest.raises(CheckpointError) as caught:
        find_model("englsh")
    assert str(caught.value) == (f"englsh: no such checkpoint file or run directory, nor a model charlstm ships "
                                 f"({', '.join(SHIPPED_MODELS)})")
