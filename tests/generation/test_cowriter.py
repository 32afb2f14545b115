"""generation/cowriter.py: the co-writer's model side, against the model itself: the top characters and
continuations are the model's, edits cost one step per new character, undo restores saved states, and
unseen characters follow the unknown policy. (The screen: tests/views/test_writer.py; the command:
tests/cli/test_write.py.)"""

from __future__ import annotations

import pytest
import torch

from charlstm.config import SampleConfig, WriteConfig
from charlstm.errors import UnknownCharactersError
from charlstm.generation.cowriter import CoWriter
from charlstm.generation.sampling import sample_text
from conftest import next_logits


def test_top_characters_are_the_models_own(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "ROMEO:", WriteConfig(seed=1))
    probs = torch.softmax(next_logits(model, vocab, "ROMEO:"), dim=-1)
    want = torch.topk(probs, 9)
    top = writer.top(9)
    assert [c for c, _ in top] == [vocab.chars[i] for i in want.indices.tolist()]
    torch.testing.assert_close(torch.tensor([p for _, p in top]), want.values, rtol=1e-4, atol=1e-5)


def test_greedy_continuation_is_what_sample_makes(model_vocab):
    model, vocab = model_vocab
    for prime in ("ROMEO:", ""):
        writer = CoWriter(model, vocab, prime, WriteConfig(temperature=0, seed=1))
        (only,) = writer.continuations(5, 60)                   # five greedy samples are one
        assert only.text == sample_text(model, vocab, prime, SampleConfig(length=60, temperature=0))[0]


def test_continuation_log_probability_is_the_models(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "KING", WriteConfig(seed=5))
    conts = writer.continuations(4, 25)
    assert conts == sorted(conts, key=lambda c: -c.logprob) and len({c.text for c in conts}) == len(conts)
    for c in conts:
        ids = torch.as_tensor(vocab.encode("KING" + c.text).astype("int64")).view(1, -1)
        with torch.inference_mode():
            logits, _ = model(ids)
        logp = torch.log_softmax(logits[0, 3:-1].double(), dim=-1)                       # predicts the continuation
        want = logp.gather(1, ids[0, 4:].view(-1, 1)).sum().item()
        assert len(c.text) == 25 and c.logprob == pytest.approx(want, abs=1e-3)


def test_same_seed_same_suggestions(model_vocab):
    model, vocab = model_vocab
    make = lambda seed: CoWriter(model, vocab, "To be", WriteConfig(seed=seed)).suggest(n=4, length=30)  # noqa: E731
    a, b, c = make(7), make(7), make(8)
    assert a == b and a.continuations != c.continuations


def count_steps(writer: CoWriter) -> list[int]:
    """Wrap the writer's Stepper.advance to count the steps taken (the model itself still runs)."""
    calls = [0]
    advance = writer._stepper.advance

    def counted(*args, **kwargs):
        calls[0] += 1
        return advance(*args, **kwargs)

    writer._stepper.advance = counted
    return calls


def test_edits_cost_one_step_per_new_character_and_undo_restores_a_saved_state(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "First Citizen:\n", WriteConfig(seed=2))
    steps = count_steps(writer)
    writer.type("B")
    writer.sync()
    assert steps[0] == 1
    writer.type("efore we")
    writer.sync()
    assert steps[0] == 9
    writer.backspace()
    writer.backspace()
    writer.sync()
    assert steps[0] == 9                                       # going back re-reads nothing
    writer.undo()                                               # the two deletions: one undo step
    assert writer.text == "First Citizen:\nBefore we"
    writer.sync()
    assert steps[0] == 11                                      # "we" read again, one step each
    writer.accept(" proceed")
    writer.sync()
    assert steps[0] == 19
    writer.undo()
    writer.sync()
    assert steps[0] == 19 and writer.text == "First Citizen:\nBefore we"
    fresh = CoWriter(model, vocab, writer.text)
    assert writer.top(5)[0][0] == fresh.top(5)[0][0]
    torch.testing.assert_close(torch.tensor([p for _, p in writer.top(5)]),
                               torch.tensor([p for _, p in fresh.top(5)]))


def test_undo_steps_are_words_deletion_runs_and_suggestions(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "KING:")
    for char in " Good morrow":
        writer.type(char)
    writer.accept(", sir")
    writer.backspace()
    writer.backspace()
    history = []
    while writer.undo():
        history.append(writer.text)
    assert history == ["KING: Good morrow, sir", "KING: Good morrow", "KING: Good ", "KING: ", "KING:"]
    assert not writer.undo() and writer.text == "KING:"


def test_going_back_past_thinned_states_rereads_exactly(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "")
    writer._cap = 16                                           # keep few states: older ones are thinned out
    text = sample_text(model, vocab, "", SampleConfig(length=200, seed=3))[0]
    writer.type(text)
    writer.sync()
    assert len(writer._snaps) <= 16
    for _ in range(150):
        writer.backspace()
    writer.sync()
    fresh = CoWriter(model, vocab, text[:50])
    torch.testing.assert_close(torch.tensor([p for _, p in writer.top(9)]), torch.tensor([p for _, p in fresh.top(9)]))


def test_unseen_characters_follow_the_unknown_policy(model_vocab):
    model, vocab = model_vocab
    with pytest.raises(UnknownCharactersError, match="'世'"):
        CoWriter(model, vocab, "To 世 be")
    refuse = CoWriter(model, vocab, "To be")
    with pytest.raises(UnknownCharactersError, match=r"typed text .*'😀'"):
        refuse.type("or 😀")
    assert refuse.text == "To be"
    assert CoWriter(model, vocab, "To 世 be", WriteConfig(unknown="skip")).text == "To  be"
    replace = CoWriter(model, vocab, "To", WriteConfig(unknown="replace"))
    assert replace.type("😀!") == " !" and replace.text == "To !"
