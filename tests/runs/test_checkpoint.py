"""runs/checkpoint.py: one self-describing file. It round-trips exactly, is written whole (no temp file
left), names exactly the tensors a model of its config has, and nothing in it is ever executed on load.
A file of another kind than a regular one (a FIFO, a device, a directory, a socket, a link to
nothing) is named as such by `charlstm.load` and the command line, at once. (Damaged and hostile
files: test_checkpoint_validation.py.)"""

from __future__ import annotations

import pickle
import shutil

import pytest
import torch

import charlstm
from charlstm.runs import checkpoint as ckpt
from charlstm.runs.checkpoint import Checkpoint
from charlstm.errors import CheckpointError
from charlstm.data.vocab import Vocab
from charlstm.model.network import CharModel
from charlstm.config import CELLS, MAX_NUM_LAYERS, MAX_WIDTH, ModelConfig
from conftest import KINDS, plant, refused, run_cli, within


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


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("sizes", [(1, 1, 1, 1), (5, 3, 7, 2), (11, 16, 8, 3)])
def test_tensor_arithmetic_matches_a_real_model(cell, sizes):
    V, E, H, L = sizes
    config = ModelConfig(vocab_size=V, cell=cell, embedding_size=E, hidden_size=H, num_layers=L)
    real = CharModel(config).state_dict()
    assert list(ckpt._expected_tensors(config).items()) == [(k, tuple(v.shape)) for k, v in real.items()]
    assert {v.dtype for v in real.values()} == {torch.float32}  # what WEIGHT_DTYPE 'F32' names
    assert CharModel(config).num_parameters <= MAX_NUM_LAYERS * 4 * MAX_WIDTH ** 2  # the caps are far above


@pytest.mark.parametrize("kind", KINDS)
def test_a_checkpoint_of_another_kind_is_named_by_load_and_the_command_line(trained_run, tmp_path, kind):
    run = shutil.copytree(trained_run, tmp_path / "run", ignore=shutil.ignore_patterns("corpus.*"))
    alone = plant(tmp_path / "model.safetensors", kind)
    best = plant(run / "best.safetensors", kind)
    with within(60):
        for path in (alone, best):
            said = f"{path}: not a regular file ({KINDS[kind]})"
            with pytest.raises(CheckpointError) as raised:
                ckpt.load(path)
            assert str(raised.value) == said
            if kind != "directory":   # a folder named to load is a run folder (below)
                with pytest.raises(CheckpointError) as raised:
                    charlstm.load(path)
                assert str(raised.value) == said
                refused(run_cli("sample", path, "--length", "5"), said)
        with pytest.raises(CheckpointError) as raised:
            charlstm.load(run)                                      # a run folder: its best checkpoint
        assert str(raised.value) == f"{best}: not a regular file ({KINDS[kind]})"
        refused(run_cli("sample", run, "--length", "5"), f"{best}: not a regular file ({KINDS[kind]})")
        refused(run_cli("export", run, "--out", tmp_path / "shared"), f"{best}: not a regular file")
        assert not (tmp_path / "shared").exists()
        if kind == "directory":
            refused(run_cli("sample", alone, "--length", "5"), f"{alone}: no best.safetensors or latest.safetensors")


def test_a_device_named_as_a_checkpoint_is_not_read():
    with within(30), pytest.raises(CheckpointError, match="^/dev/zero: not a regular file \\(a device\\)$"):
        charlstm.load("/dev/zero")
