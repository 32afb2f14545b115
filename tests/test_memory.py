"""memory.py: the one estimate of what a pass over a text holds. Chunks are sized to the budget and
never above what the caller asks; what cannot fit even one position at a time is refused in one
line; a model of ordinary size trains exactly as it would without the estimate (no pieces), a
model too large is refused naming what to make smaller, and a fitted model always fits. (The peak
memory of each pass, measured in a real process: the rooms' own tests.)"""

from __future__ import annotations

import pytest

from charlstm import memory
from charlstm.config import MEMORY_BUDGET, ModelConfig, TrainConfig
from charlstm.errors import MemoryBudgetError
from charlstm.memory import Need
from charlstm.training.fit import fitted_config


def test_a_chunk_fills_what_the_budget_leaves_and_no_more_than_asked():
    need = Need(fixed=100 << 20, per_char=8, per_position=1 << 20)
    room = MEMORY_BUDGET - (100 << 20) - 8 * 1_000_000
    assert need.chunk(1_000_000, most=10**9) == room // (1 << 20)
    assert need.chunk(1_000_000, most=64) == 64
    assert need.total(1_000_000, 64) == (100 << 20) + 8_000_000 + 64 * (1 << 20)
    assert need.most_chars() == (MEMORY_BUDGET - (100 << 20) - (1 << 20)) // 8
    assert need.chunk(need.most_chars(), most=64) == 1 and need.chunk(need.most_chars() + 1, most=64) == 0
    with pytest.raises(MemoryBudgetError, match="^too long: at most"):
        memory.plan(need, need.most_chars() + 1, 64, lambda n: f"too long: at most {n.most_chars():,}")
    assert memory.plan(need, 10, 64, lambda n: "never") == 64


def test_an_ordinary_model_trains_in_one_piece_and_validates_in_its_usual_chunks():
    config = ModelConfig(vocab_size=100, hidden_size=512, embedding_size=64, num_layers=3)
    assert memory.training_chunks(config, 64, 100, average=True) == (64 * 100, 256)
    assert memory.training_chunks(config, 32, 300, average=False) == (32 * 300, 300)


def test_a_large_vocabulary_takes_the_output_layer_in_pieces():
    config = ModelConfig(vocab_size=140_001, hidden_size=32, embedding_size=32, num_layers=1)
    piece, chunk = memory.training_chunks(config, 64, 100, average=True)
    assert 1 <= piece < 64 * 100 and 1 <= chunk < 256
    step = memory.training(config, 64, 100, average=True)
    assert step.total(0, piece) <= MEMORY_BUDGET < step.total(0, piece + 1)


@pytest.mark.parametrize("sizes, fix", [
    (dict(vocab_size=100_001, hidden_size=2048), "raise --min-char-count to read rare characters as one symbol"),
    (dict(vocab_size=200, hidden_size=4096, num_layers=3), "make --hidden-size, --num-layers or --embedding-size smaller"),
])
def test_a_model_too_large_to_train_is_one_line_naming_what_to_make_smaller(sizes, fix):
    config = ModelConfig(**{"embedding_size": 64, **sizes})
    with pytest.raises(MemoryBudgetError) as refused:
        memory.training_chunks(config, 64, 100, average=True)
    message = str(refused.value)
    assert "\n" not in message and fix in message and f"{config.parameter_count:,} parameters" in message
    assert "over the memory budget of 768 MiB" in message


def test_a_long_step_of_a_model_that_fits_is_refused_naming_the_step():
    config = ModelConfig(vocab_size=100, hidden_size=256, embedding_size=64, num_layers=2)
    with pytest.raises(MemoryBudgetError, match="make --batch-size or --seq-len smaller"):
        memory.training_chunks(config, 4096, 2048, average=True)


@pytest.mark.parametrize("vocab_size", [70_001, 140_001, 230_000])
def test_a_fitted_model_trains_within_the_budget(vocab_size):
    config = TrainConfig()
    model, fitted = fitted_config(ModelConfig(vocab_size=vocab_size), 100 * vocab_size, config)
    assert memory.training_fits(model, config.batch_size, config.seq_len, config.ema_decay > 0)
    assert fitted.limit == "the memory budget"


def test_a_vocabulary_too_large_for_the_narrowest_model_is_refused_naming_the_fold():
    config = TrainConfig()
    model, fitted = fitted_config(ModelConfig(vocab_size=400_000), 3 * 400_000, config)
    assert (fitted.hidden_size, fitted.limit) == (32, "the memory budget")
    with pytest.raises(MemoryBudgetError, match="raise --min-char-count to read rare characters as one symbol"):
        memory.training_chunks(model, config.batch_size, config.seq_len, config.ema_decay > 0)
