"""runs/checkpoint.py's loading of careless and hostile files: whatever a file's header claims, loading
costs what the file holds and ends in a Checkpoint or in one one-line CheckpointError naming the file and
the reason, and the command line shows that line and nothing else, leaving the run as it was.

DAMAGES is the one catalogue of damaged files (the file itself, its metadata JSON, its fields, its
tensors): each is refused by the library, fast and small, and from `sample` and `train --resume`."""

from __future__ import annotations

import functools
import io
import json
import random
import re
import resource
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st
from safetensors.torch import load as tensors_from_bytes, save as tensors_to_bytes

from charlstm.config import CELLS, MAX_NUM_LAYERS, MAX_WIDTH, ModelConfig
from charlstm.data.vocab import Vocab
from charlstm.errors import CheckpointError
from charlstm.model.network import CharModel
from charlstm.runs import checkpoint as ckpt
from charlstm.runs.checkpoint import Checkpoint
from conftest import error_line, rewrite_checkpoint, run_cli, snapshot

SECONDS = 2.0            # generous: each refusal here takes milliseconds
GROWTH_KB = 512 * 1024   # peak resident memory may grow by this much at most (ru_maxrss is in KB on Linux)


@functools.lru_cache(maxsize=None)
def _good_bytes(cell: str = "lstm", embedding_size: int = 4, hidden_size: int = 8, num_layers: int = 1) -> bytes:
    """A real tiny checkpoint, with the extra tensors a training run adds."""
    vocab = Vocab.from_text("abc\n")
    config = ModelConfig(vocab_size=len(vocab), cell=cell, embedding_size=embedding_size, hidden_size=hidden_size,
                         num_layers=num_layers)
    with torch.random.fork_rng():  # the tests' global RNG stays as it was
        torch.manual_seed(0)
        model = CharModel(config)
    extra = {"optim.0.step": torch.tensor(3.0), "state.0": torch.zeros(num_layers, 2, hidden_size),
             "rng.torch": torch.get_rng_state()}
    with tempfile.TemporaryDirectory() as folder:
        saved = Checkpoint(config, vocab, model.state_dict(), {"step": 3}, extra)
        return ckpt.save(Path(folder) / "good.safetensors", saved).read_bytes()


def _split(raw: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _join(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def _meta_text(raw: bytes) -> str:
    return _split(raw)[0]["__metadata__"]["charlstm"]


def _with_meta_text(raw: bytes, text: str) -> bytes:
    """The same file with its charlstm JSON replaced by `text`; the tensor bytes untouched."""
    header, data = _split(raw)
    header["__metadata__"]["charlstm"] = text
    return _join(header, data)


def _with_meta(raw: bytes, edit) -> bytes:
    meta = json.loads(_meta_text(raw))
    edit(meta)
    return _with_meta_text(raw, json.dumps(meta))


def _with_tensors(raw: bytes, edit) -> bytes:
    """The same metadata over tensors changed by `edit` (a real, consistent safetensors file)."""
    tensors = tensors_from_bytes(raw)
    edit(tensors)
    return tensors_to_bytes(tensors, metadata={"charlstm": _meta_text(raw)})


def _refused(tmp_path: Path, raw: bytes | None, match: str) -> str:
    """Load `raw` from a file (None: no file): refused with one CheckpointError line matching `match`,
    fast and small."""
    path = tmp_path / "hostile.safetensors"
    if raw is not None:
        path.write_bytes(raw)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=match) as caught:
        ckpt.load(path)
    assert time.perf_counter() - start < SECONDS
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < GROWTH_KB
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path)) and len(message) < 500, message
    message.encode("utf-8")  # printable: no lone surrogates
    return message


def _config(**values):
    return lambda raw: _with_meta(raw, lambda meta: meta["config"].update(values))


def _set(key, value):
    return lambda raw: _with_meta(raw, lambda meta: meta.update({key: value}))


def _meta(edit):
    return lambda raw: _with_meta(raw, edit)


def _text(edit):
    return lambda raw: _with_meta_text(raw, edit(_meta_text(raw)))


def _tensors(edit):
    return lambda raw: _with_tensors(raw, edit)


def _all_model(tensors, change):
    for name in [n for n in tensors if n.startswith("model.")]:
        tensors[name] = change(tensors[name])


def _pickled(raw: bytes) -> bytes:
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buffer)
    return buffer.getvalue()


def _foreign(raw: bytes) -> bytes:
    return tensors_to_bytes({"w": torch.zeros(3)})


#: (name, the damaged file made from a good one (None: no file at all), what the one line says)
DAMAGES = [
    # the file itself
    ("no file", lambda raw: None, "no such checkpoint"),
    ("empty", lambda raw: b"", "not a readable safetensors"),
    ("garbage", lambda raw: b"\x00\x01not a checkpoint at all" * 10, "not a readable safetensors"),
    ("random bytes", lambda raw: bytes(random.Random(0).randrange(256) for _ in range(4096)),
     "not a readable safetensors"),
    ("a pickle under the name", _pickled, "not a readable safetensors"),
    ("cut inside the header", lambda raw: raw[:300], "not a readable safetensors"),
    ("cut inside the tensors", lambda raw: raw[: len(raw) // 2], "not a readable safetensors"),
    ("a safetensors file of someone else", _foreign, "not a charlstm checkpoint"),
    # the metadata JSON
    ("deeply nested train", _text(lambda t: t.replace('"train": {', '"train": ' + "[" * 100_000 + "{")),
     "nested too deeply"),
    ("deeply nested config", _text(lambda t: t.replace('"config": {', '"config": ' + "{\"a\": " * 50_000 + "{")),
     "nested too deeply"),
    ("an integer of 5000 digits", _text(lambda t: t.replace('"vocab_size": 4', '"vocab_size": ' + "9" * 5000)),
     r"not valid JSON \(Exceeds the limit"),
    ("not JSON", _text(lambda t: t[:-3]), "not valid JSON"),
    ("a JSON list", _text(lambda t: "[" + t + "]"), "not a charlstm checkpoint"),
    ("over the size cap",
     _text(lambda t: t.replace('"train": {', '"train": {"note": "' + "x" * ckpt.MAX_METADATA_CHARS + '", ')),
     "checkpoint metadata is .* characters, over the cap"),
    # the fields
    # sizes that would cost gigabytes or hang if a model were built before the header is compared
    ("hidden_size 20000", _config(hidden_size=20000), "parameters, over the cap"),
    ("hidden_size 8000, inside the caps", _config(hidden_size=8000),
     r"tensor rnn.weight_ih_l0 has shape \(32, 4\), config needs \(32000, 4\)"),
    ("num_layers 1000000", _config(num_layers=1_000_000), "num_layers 1000000 is above the cap"),
    ("num_layers 1000, inside the caps", _config(num_layers=1000), r"do not match the config \(missing"),
    ("embedding_size 2**40", _config(embedding_size=2**40), "embedding_size .* is above the cap"),
    ("vocab_size 10**30", _config(vocab_size=10**30), "vocab_size .* is above the cap"),
    ("vocab_size negative", _config(vocab_size=-4), "must be positive"),
    # wrong types
    ("float hidden_size", _config(hidden_size=8.0), "hidden_size must be an integer, not float"),
    ("bool num_layers", _config(num_layers=True), "num_layers must be an integer, not bool"),
    ("string embedding_size", _config(embedding_size="4"), "embedding_size must be an integer, not str"),
    ("null vocab_size", _config(vocab_size=None), "vocab_size must be an integer, not NoneType"),
    ("NaN dropout", _config(dropout=float("nan")), "dropout must be finite"),
    ("infinite forget_bias", _config(forget_bias=float("inf")), "forget_bias must be finite"),
    ("string dropout", _config(dropout="0.1"), "dropout must be a number, not str"),
    ("list cell", _config(cell=["lstm"]), "cell must be one of"),
    ("unknown cell", _config(cell="transformer\n"), r"cell must be one of .*'transformer\\n'"),
    ("unknown config field", _config(heads=8), "unexpected keyword argument 'heads'"),
    ("config a list", _set("config", [1, 2]), r"invalid model config \(a JSON list"),
    ("config missing", _meta(lambda meta: meta.pop("config")), "invalid model config"),
    # the vocabulary
    ("lone surrogate", _set("vocab", ["a", "\ud800", "c", "\n"]), "U\\+D800 is a lone surrogate"),
    ("non-strings", _set("vocab", [1, 2, 3, 4]), "not a list of strings"),
    ("nested lists", _set("vocab", [["a"], ["b"], ["c"], ["d"]]), "not a list of strings"),
    ("a string, not a list", _set("vocab", "abc\n"), "not a list of strings"),
    ("an object", _set("vocab", {"a": 0, "b": 1, "c": 2, "\n": 3}), "not a list of strings"),
    ("duplicates", _set("vocab", ["a", "a", "b", "c"]), "repeated characters"),
    ("multi-character entries", _set("vocab", ["ab", "c", "d", "e"]), "single characters"),
    ("empty entries", _set("vocab", ["", "c", "d", "e"]), "single characters"),
    ("too short", _set("vocab", ["a"]), "vocabulary has 1 characters but the model expects 4"),
    # the envelope
    ("format true", _set("format", True), "format True, this charlstm reads format 1"),
    ("format 1.0", _set("format", 1.0), "format 1.0, this charlstm reads format 1"),
    ("format a list", _set("format", [1]), "format a JSON list, this charlstm reads format 1"),
    ("kind missing", _meta(lambda meta: meta.pop("kind")), "not a charlstm checkpoint"),
    ("train a list", _set("train", [1]), "training metadata is a JSON list, not a JSON object"),
    ("train a number", _set("train", 3), "training metadata is 3, not a JSON object"),
    ("another kind", _set("kind", "pytorch-lightning"), "not a charlstm checkpoint"),
    ("format as a string", _set("format", "1"), "checkpoint format '1', this charlstm reads format 1"),
    ("a newer format", _set("format", 2), "checkpoint format 2, this charlstm reads format 1"),
    ("string hidden_size", _config(hidden_size="8"), "hidden_size must be an integer, not str"),
    ("vocab_size a lie", _config(vocab_size=99), "vocabulary has 4 characters but the model expects 99"),
    ("train a string", _set("train", "everything"), "training metadata is 'everything', not a JSON object"),
    # the tensors
    ("float64 weights", _tensors(lambda t: _all_model(t, lambda x: x.double())),
     "has dtype 'F64', charlstm weights are F32"),
    ("int8 weights", _tensors(lambda t: _all_model(t, lambda x: x.to(torch.int8))), "has dtype 'I8'"),
    ("bfloat16 weights", _tensors(lambda t: _all_model(t, lambda x: x.bfloat16())), "has dtype 'BF16'"),
    ("one tensor reshaped", _tensors(lambda t: t.update({"model.head.bias": torch.zeros(5)})),
     r"tensor head.bias has shape \(5,\), config needs \(4,\)"),
    ("a tensor missing", _tensors(lambda t: t.pop("model.head.weight")), r"missing \['head.weight'\]"),
    ("the head missing", _tensors(lambda t: [t.pop(k) for k in list(t) if k.startswith("model.head")]),
     "weights do not match the config"),
    ("an unexpected model tensor", _tensors(lambda t: t.update({"model.rnn.weight_ih_l7": torch.zeros(2)})),
     "unexpected tensors 'model.rnn.weight_ih_l7'"),
    ("NaN weights", _tensors(lambda t: t["model.embed.weight"].__setitem__((0, 0), float("nan"))),
     "embed.weight holds NaN"),
    ("infinite weights", _tensors(lambda t: t["model.head.bias"].fill_(float("inf"))),
     "head.bias holds NaN or infinite"),
]


@pytest.mark.parametrize("name, damage, match", DAMAGES, ids=[row[0] for row in DAMAGES])
def test_a_damaged_checkpoint_is_refused_fast_and_small(tmp_path, name, damage, match):
    _refused(tmp_path, damage(_good_bytes()), match)


@pytest.mark.parametrize("name, damage, match", DAMAGES, ids=[row[0] for row in DAMAGES])
def test_every_damage_is_refused_in_one_line_from_the_cli(trained_run, tmp_path, name, damage, match):
    """`sample FILE` and `train --resume` on a run whose checkpoints are damaged: exit 1 and one line,
    the loader's own message, and nothing in the run written or overwritten."""
    run = shutil.copytree(trained_run, tmp_path / "run")
    raw = damage(_good_bytes())
    for checkpoint in (run / ckpt.LATEST, run / ckpt.BEST):
        checkpoint.unlink()
        if raw is not None:
            checkpoint.write_bytes(raw)
    before = snapshot(run)
    commands = [["sample", run / ckpt.BEST, "--length", "5"]]
    if raw is not None:                                         # with no checkpoint at all there is nothing to resume
        commands.append(["train", "--resume", "--out", run, "--max-steps", "152"])
    for args in commands:
        checkpoint = args[1] if args[0] == "sample" else run / ckpt.LATEST
        result = run_cli(*args)
        assert result.exit_code == 1, (args, result.output)
        line = error_line(result.stderr)
        assert re.search(match, line) and line.startswith(f"Error: {checkpoint}: "), (args, line)
        if raw is None:
            assert line.endswith("no such checkpoint file or run directory"), line
        else:
            with pytest.raises(CheckpointError) as caught:
                ckpt.load(checkpoint)
            assert line == f"Error: {caught.value}"                # the loader's own words
    assert snapshot(run) == before


def _nan(meta, tensors):
    tensors["model.rnn.weight_hh_l1"][3, 5] = float("nan")


def _inf(meta, tensors):
    tensors["model.head.bias"][0] = float("-inf")


@pytest.mark.parametrize("command", [
    ["sample", "{ck}", "--length", "20"],
    ["inspect", "{ck}", "--text", "To be"],
    ["score", "{ck}", "--text", "To be, or not to be"],
    ["train", "--resume", "--out", "{run}", "--max-steps", "152"],
], ids=lambda c: c[0])
@pytest.mark.parametrize("edit, tensor", [(_nan, "rnn.weight_hh_l1"), (_inf, "head.bias")], ids=["NaN", "inf"])
def test_loading_refuses_non_finite_weights(trained_run, tmp_path, command, edit, tensor):
    """Every command that loads a model refuses one whose weights are not finite."""
    run = shutil.copytree(trained_run, tmp_path / "run")
    for name in (ckpt.LATEST, ckpt.BEST):
        rewrite_checkpoint(run / name, edit)
    checkpoint = run / (ckpt.LATEST if command[0] == "train" else ckpt.BEST)
    before = snapshot(run)
    result = run_cli(*[a.format(ck=checkpoint, run=run) for a in command])
    assert result.exit_code == 1, result.output
    assert error_line(result.stderr) == f"Error: {checkpoint}: tensor {tensor} holds NaN or infinite values"
    assert result.stdout == ""
    assert snapshot(run) == before  # nothing written, nothing overwritten


def test_too_many_tensors_are_refused_before_any_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "MAX_TENSORS", 12)
    raw = _with_tensors(_good_bytes(), lambda t: t.update({f"junk.{i}": torch.zeros(0) for i in range(20)}))
    _refused(tmp_path, raw, "tensors, over the cap of 12")


def test_non_model_tensors_are_kept_and_weights_come_in_state_dict_order(tmp_path):
    raw = _with_tensors(_good_bytes(), lambda t: t.update({"other.note": torch.arange(3)}))
    path = tmp_path / "ok.safetensors"
    path.write_bytes(raw)
    loaded = ckpt.load(path)
    assert set(loaded.tensors) == {"optim.0.step", "state.0", "rng.torch", "other.note"}
    assert loaded.tensors["rng.torch"].dtype == torch.uint8
    assert list(loaded.model_state) == list(CharModel(loaded.config).state_dict())


# ------------------------------------------------------------------------------- property-based

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=10)
SIZES = st.integers(-2, 40) | st.sampled_from([0, 2**31, 2**63, 10**30, MAX_WIDTH + 1, MAX_NUM_LAYERS + 1])
FIELDS = ["vocab_size", "cell", "embedding_size", "hidden_size", "num_layers", "dropout", "forget_bias"]
CHARACTERS = st.characters() | st.sampled_from(["\ud800", "\udfff", "\x00", "\n", "ab", ""])
DTYPES = [torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int64, torch.bool]

meta_edits = st.one_of(
    st.tuples(st.just("config"), st.sampled_from(FIELDS) | st.text(max_size=6), SIZES | JSON | CHARACTERS),
    st.tuples(st.just("drop config"), st.sampled_from(FIELDS)),
    st.tuples(st.just("meta"), st.sampled_from(["kind", "format", "config", "vocab", "train"]), JSON),
    st.tuples(st.just("drop meta"), st.sampled_from(["kind", "format", "config", "vocab", "train"])),
    st.tuples(st.just("vocab"), st.lists(CHARACTERS | JSON, max_size=6)),
)
tensor_edits = st.one_of(
    st.tuples(st.just("reshape"), st.lists(st.integers(0, 5), max_size=3)),
    st.tuples(st.just("dtype"), st.sampled_from(DTYPES)),
    st.tuples(st.just("rename"), st.sampled_from(["model.", "model.x", "optim.9", ""]) | st.text(max_size=8)),
    st.tuples(st.just("drop")),
    st.tuples(st.just("poison"), st.sampled_from([float("nan"), float("inf"), 1e30])),
)
byte_edits = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("overwrite"), st.floats(0, 1), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("replace"), st.binary(max_size=64)),
    st.tuples(st.just("header length"), st.integers(0, 2**64 - 1)),
)


def _apply_tensor_edit(tensors: dict, victim: str, edit: tuple) -> None:
    kind, *args = edit
    if kind == "reshape":
        tensors[victim] = torch.zeros(args[0])
    elif kind == "dtype":
        tensors[victim] = tensors[victim].to(args[0])
    elif kind == "rename":
        tensors[args[0]] = tensors.pop(victim)
    elif kind == "drop":
        del tensors[victim]
    else:
        poisoned = tensors[victim].float().clone()
        poisoned.view(-1)[0] = args[0]
        tensors[victim] = poisoned


def _apply_meta_edit(meta: dict, edit: tuple) -> None:
    kind, *args = edit
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    if kind == "config":
        config[args[0]] = args[1]
    elif kind == "drop config":
        config.pop(args[0], None)
    elif kind == "meta":
        meta[args[0]] = args[1]
    elif kind == "drop meta":
        meta.pop(args[0], None)
    else:
        meta["vocab"] = args[0]


def _apply_byte_edit(raw: bytes, edit: tuple) -> bytes:
    kind, *args = edit
    if kind == "truncate":
        return raw[: int(args[0] * len(raw))]
    if kind == "overwrite":
        at = int(args[0] * (len(raw) - 1))
        return raw[:at] + args[1] + raw[at + len(args[1]) :]
    if kind == "replace":
        return args[0]
    return args[0].to_bytes(8, "little") + raw[8:]


@settings(max_examples=200, deadline=timedelta(seconds=5), database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cell=st.sampled_from(CELLS), layers=st.integers(1, 2),
       tensor_edit=st.none() | st.tuples(st.integers(0, 30), tensor_edits),
       meta=st.lists(meta_edits, max_size=3), raw_edit=st.one_of(st.none(), st.none(), st.none(), byte_edits))
def test_any_mutation_loads_or_raises_one_checkpoint_error(tmp_path, cell, layers, tensor_edit, meta, raw_edit):
    raw = _good_bytes(cell, num_layers=layers)
    if tensor_edit is not None:
        index, edit = tensor_edit

        def change(tensors):
            _apply_tensor_edit(tensors, sorted(tensors)[index % len(tensors)], edit)

        raw = _with_tensors(raw, change)
    if meta:
        text = _meta_text(raw)
        parsed = json.loads(text)
        for edit in meta:
            _apply_meta_edit(parsed, edit)
        raw = _with_meta_text(raw, json.dumps(parsed))
    if raw_edit is not None:
        raw = _apply_byte_edit(raw, raw_edit)
    path = tmp_path / "mutated.safetensors"
    path.write_bytes(raw)
    start = time.perf_counter()
    try:
        loaded = ckpt.load(path)
    except CheckpointError as error:
        message = str(error)
        assert "\n" not in message and message.startswith(str(path)) and len(message) < 500, message
        message.encode("utf-8")
        event(re.split(r"[(0-9'\[]", message[len(str(path)) + 2 :])[0])  # kinds of refusal: --hypothesis-show-statistics
    else:
        event("loaded")
        loaded.model()  # whatever loads is a model that can be built from its own weights
    assert time.perf_counter() - start < SECONDS
