"""generation/cowriter.py: the co-writer's model side, against the model itself: the top characters and
continuations are the model's, edits cost one step per new character, a paste is one batched pass in
chunks that ends where stepping ends and stops between chunks when asked, undo restores saved states
and its steps are the user's actions, the text has a cap, and unseen characters follow the unknown
policy. (The screen: tests/views/test_writer.py; the command: tests/cli/test_write.py.)"""

from __future__ import annotations

import pytest
import torch

from charlstm.config import CELLS, MAX_WRITE_CHARS, ModelConfig, SampleConfig, WriteConfig
from charlstm.data.vocab import Vocab
from charlstm.errors import CharlstmError, UnknownCharactersError
from charlstm.generation.cowriter import READ_CHUNK_POSITIONS, STEP_TAIL, CoWriter
from charlstm.generation.sampling import sample_text
from charlstm.model.network import CharModel
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


@pytest.fixture()
def one_thread():
    """One CPU thread for this test (a model this small reads many times faster so on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def count_forward_calls(writer: CoWriter) -> list[int]:
    """Wrap the writer's model so that its fused forward calls (the forward without its output
    layer: the state is what a read needs) are counted (the model still runs)."""
    calls = [0]
    features = writer._model.features

    def counted(*args, **kwargs):
        calls[0] += 1
        return features(*args, **kwargs)

    writer._model.features = counted
    return calls


def stepped_state(model, vocab: Vocab, text: str) -> torch.Tensor:
    """The state after `text`, stepped one character at a time from zero: (S, 1, H)."""
    stepper = model.stepper()
    state = stepper.init_state(1)
    for char_id in torch.as_tensor(vocab.encode(text).astype("int64")):
        _, state, _ = stepper.step(char_id.view(1), state)
    return torch.cat(state)


@pytest.mark.parametrize("cell", CELLS)
def test_a_paste_is_one_batched_pass_that_ends_where_stepping_ends(cell, one_thread):
    torch.manual_seed(0)
    vocab = Vocab(sorted(set("abcdefgh .\n")))
    model = CharModel(ModelConfig(vocab_size=len(vocab), cell=cell, hidden_size=16, embedding_size=8,
                                  num_layers=2)).eval()
    rng = torch.Generator().manual_seed(1)
    text = "".join(vocab.chars[i] for i in torch.randint(len(vocab), (3 * READ_CHUNK_POSITIONS + 321,), generator=rng))
    writer = CoWriter(model, vocab, "ab", WriteConfig(seed=1))
    forward, steps = count_forward_calls(writer), count_steps(writer)
    assert writer.paste(text) == text
    writer.sync()
    assert forward[0] <= len(text) // READ_CHUNK_POSITIONS + 2 and steps[0] == STEP_TAIL
    torch.testing.assert_close(writer._here(), stepped_state(model, vocab, "ab" + text), rtol=0, atol=1e-5)
    fresh = CoWriter(model, vocab, "ab" + text)                 # a prime is read the same way
    torch.testing.assert_close(fresh._here(), writer._here(), rtol=0, atol=1e-5)
    for _ in range(STEP_TAIL + 10):                            # back into the chunked part: re-read
        writer.backspace()
    writer.sync()
    torch.testing.assert_close(writer._here(), stepped_state(model, vocab, "ab" + text[:-STEP_TAIL - 10]),
                               rtol=0, atol=1e-5)


def test_the_states_kept_for_a_paste_are_bounded(quote_run, one_thread):
    import charlstm

    model, vocab = charlstm.load(quote_run, threads=1)
    writer = CoWriter(model, vocab, "", WriteConfig(seed=1))
    writer.paste("ab cd\n" * 150_000)                           # 900,000 characters
    writer.sync()
    assert len(writer._snaps) <= 900_000 // READ_CHUNK_POSITIONS + STEP_TAIL + 2
    assert writer.undo() and writer.text == ""
    writer.sync()
    assert writer.top(3) == CoWriter(model, vocab, "").top(3)


def test_a_read_stops_between_chunks_when_asked_and_the_next_sync_goes_on(model_vocab, one_thread):
    model, vocab = model_vocab
    text = sample_text(model, vocab, "", SampleConfig(length=4 * READ_CHUNK_POSITIONS, seed=3))[0]
    writer = CoWriter(model, vocab, "KING", WriteConfig(seed=1))
    writer.paste(text)
    forward, asked = count_forward_calls(writer), []

    def keep_going(read, total):
        asked.append((read, total))
        return len(asked) < 3

    assert writer.sync(keep_going) is None and writer.suggest(keep_going=keep_going) is None
    assert forward[0] == 2 and asked[0] == (4, len(writer.text)) and asked[1][0] == READ_CHUNK_POSITIONS
    assert writer.sync() == "KING" + text
    assert forward[0] <= 2 + 4                                 # the first two chunks were not read again
    fresh = CoWriter(model, vocab, "KING" + text)
    torch.testing.assert_close(writer._here(), fresh._here(), rtol=0, atol=1e-5)


def test_undo_steps_are_the_users_actions(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "KING:")
    for char in " Go":
        writer.type(char)
    writer.paste("od morrow")                                   # a paste in the middle of a word
    writer.type("s")                                            # typing after a paste: a step of its own
    writer.paste(", sir.\nWhat news")
    writer.accept(" from")
    writer.paste(" the court?")
    history = []
    while writer.undo():
        history.append(writer.text)
    assert history == ["KING: Good morrows, sir.\nWhat news from", "KING: Good morrows, sir.\nWhat news",
                       "KING: Good morrows", "KING: Good morrow", "KING: Go", "KING: ", "KING:"]


def test_a_text_over_the_cap_is_refused_whole(model_vocab):
    model, vocab = model_vocab
    writer = CoWriter(model, vocab, "KING")
    with pytest.raises(CharlstmError, match=rf"^paste refused: {MAX_WRITE_CHARS - 3:,} characters; .* at most "
                                            rf"{MAX_WRITE_CHARS:,} and has 4$"):
        writer.paste("a" * (MAX_WRITE_CHARS - 3))
    assert writer.text == "KING"
    assert writer.paste("a" * (MAX_WRITE_CHARS - 4)) and len(writer.text) == MAX_WRITE_CHARS
    with pytest.raises(CharlstmError, match="typed text refused"):
        writer.type("a")
    with pytest.raises(CharlstmError, match=rf"^prime refused: {MAX_WRITE_CHARS + 1:,} characters"):
        CoWriter(model, vocab, "a" * (MAX_WRITE_CHARS + 1))
