"""Checkpoints: exact round trip, atomic writes, and nothing ever executed on load."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from charlstm.runs import checkpoint as ckpt
from charlstm.runs.checkpoint import Checkpoint
from charlstm.errors import CheckpointError
from charlstm.data.vocab import Vocab
from charlstm.model.network import CharModel
from charlstm.config import ModelConfig


def _checkpoint():
    vocab = Vocab.from_text("hello, 世界\r\n")
    config = ModelConfig(vocab_size=len(vocab), hidden_size=16, embedding_size=8, cell="gru")
    torch.manual_seed(3)
    model = CharModel(config)
    return Checkpoint(config, vocab, model.state_dict(), {"step": 7, "note": "ünïcode"}, {"state.0": torch.randn(2, 3, 16)})


def test_round_trip_is_exact(tmp_path):
    original = _checkpoint()
    path = ckpt.save(tmp_path / "run" / "latest.safetensors", original)
    loaded = ckpt.load(path)
    assert loaded.config == original.config and loaded.vocab == original.vocab
    assert loaded.train == original.train
    for name, tensor in original.model_state.items():
        assert torch.equal(loaded.model_state[name], tensor)
    assert torch.equal(loaded.tensors["state.0"], original.tensors["state.0"])
    assert [p.name for p in path.parent.iterdir()] == ["latest.safetensors"]  # no temp files left behind
    reference = CharModel(original.config).eval()
    reference.load_state_dict(original.model_state)
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(loaded.model()(ids)[0], reference(ids)[0])


def test_rejects_garbage_truncated_and_foreign_files(tmp_path):
    good = ckpt.save(tmp_path / "good.safetensors", _checkpoint())
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00\x01not a checkpoint at all" * 10)
    (tmp_path / "truncated.safetensors").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    save_file({"w": torch.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    for name, reason in [("garbage", "not a readable safetensors"), ("truncated", "not a readable safetensors"),
                         ("foreign", "not a charlstm checkpoint"), ("missing", "no such checkpoint")]:
        with pytest.raises(CheckpointError, match=reason):
            ckpt.load(tmp_path / f"{name}.safetensors")


def test_wrong_format_version_and_mismatched_weights(tmp_path):
    original = _checkpoint()
    path = ckpt.save(tmp_path / "a.safetensors", original)
    with open(path, "rb") as f:
        raw = f.read()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    meta = json.loads(header["__metadata__"]["charlstm"])
    meta["format"] = 99
    header["__metadata__"]["charlstm"] = json.dumps(meta)
    new_header = json.dumps(header).encode()
    (tmp_path / "b.safetensors").write_bytes(len(new_header).to_bytes(8, "little") + new_header + raw[8 + header_len :])
    with pytest.raises(CheckpointError, match="format 99, this charlstm reads format 1"):
        ckpt.load(tmp_path / "b.safetensors")
    bad = Checkpoint(original.config, original.vocab, {k: v for k, v in original.model_state.items() if "head" not in k})
    with pytest.raises(CheckpointError, match="do not match the config"):
        ckpt.load(ckpt.save(tmp_path / "c.safetensors", bad))


class _Payload:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['CHARLSTM_PWNED'], 'w').write('pwned')",))


def test_a_pickle_is_never_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("CHARLSTM_PWNED", str(marker))
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Payload()))
    torch_file = tmp_path / "model.pt"
    torch.save({"x": _Payload()}, torch_file)
    for path in (evil, torch_file):
        with pytest.raises(CheckpointError):
            ckpt.load(path)
    assert not marker.exists()


def test_resolve_picks_best_then_latest_then_most_recent(tmp_path):
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    ckpt.save(run_a / "latest.safetensors", _checkpoint())
    ckpt.save(run_b / "latest.safetensors", _checkpoint())
    ckpt.save(run_b / "best.safetensors", _checkpoint())
    assert ckpt.resolve(run_a) == run_a / "latest.safetensors"
    assert ckpt.resolve(run_b) == run_b / "best.safetensors"
    assert ckpt.resolve(None, root=tmp_path).parent == run_b
    with pytest.raises(CheckpointError, match="no trained model"):
        ckpt.resolve(None, root=tmp_path / "nothing")
