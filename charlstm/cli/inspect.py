"""`charlstm inspect`: look inside a model's neurons as it reads a text."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config import GATE_VECTORS, UNKNOWN_POLICIES, ModelConfig, SampleConfig
from ..data import read_corpus, read_tail
from ..errors import CorpusError, NeuronError
from ..features import PARAMETERISED_FEATURES, feature_names
from .common import load_model, stdout_console
from .params import parse_numbers


#: Characters read by --find, --top and --stats when no text is given.
ANALYSIS_LENGTH = 20_000
#: Characters of a fresh sample shown when no text is given.
VIEW_LENGTH = 400


def _parse_vectors(spec: str | None, config: ModelConfig, default: tuple[str, ...]) -> list[str]:
    if spec is None:
        return list(default)
    names = list(config.vectors) if spec.strip().lower() == "all" else [v.strip() for v in spec.split(",") if v.strip()]
    for name in names:
        if name not in config.vectors:
            raise NeuronError(f"vector {name!r} not recorded for a {config.cell} cell; choose from {', '.join(config.vectors)}")
    if not names:
        raise click.BadParameter(f"{spec!r}: no vector given", param_hint="--vector")
    return list(dict.fromkeys(names))


def _corpus_tail(loaded, length: int) -> tuple[str, str] | None:
    """The last `length` characters of the corpus the model was trained on, if its files are still
    there, and a note saying how much of that the model held out (never trained on)."""
    source = loaded.train.get("corpus") or {}
    paths = [Path(p) for p in source.get("paths") or []]
    if not paths or any(str(p) == "-" or not p.is_file() for p in paths):
        return None
    encoding = source.get("encoding", "utf-8")
    parts: list[str] = []
    try:
        for path in reversed(paths):
            parts.insert(0, read_tail(path, length, encoding))
            if sum(map(len, parts)) >= length:
                break
    except (CorpusError, OSError, UnicodeDecodeError, LookupError):
        return None
    text = "".join(parts)
    tail = text[-length:]
    line_start = tail.find("\n", 0, 200)
    if 0 <= line_start < len(tail) - 1 and len(text) > length:
        tail = tail[line_start + 1 :]  # start at a line, not mid-word
    total = int(loaded.train.get("corpus_chars") or len(text))
    val_fraction = float((loaded.train.get("train_config") or {}).get("val_fraction", 0.0))
    held_out = int(round(total * val_fraction))
    name = paths[-1].name if len(paths) == 1 else f"{len(paths)} files"
    unseen = ("all held out from training" if held_out >= len(tail) else
              f"the last {held_out:,} held out from training, the rest trained on" if held_out else "all trained on")
    return tail, f"the last {len(tail):,} characters of the training corpus {name} ({unseen})"


def _inspect_text(loaded, model, text, text_file, length, seed, unknown, analysis: bool) -> str:
    """The text to inspect: --text, --text-file, else (for --find/--top/--stats) the tail of the
    training corpus, else a fresh sample. Says on stderr where a text it chose came from."""
    from ..sample import prepare_prime

    if text_file:
        text = read_corpus([text_file])
    if text is None:
        length = length or (ANALYSIS_LENGTH if analysis else VIEW_LENGTH)
        tail = _corpus_tail(loaded, length) if analysis else None
        if tail is not None:
            text, note = tail
        else:
            from ..sample import sample_text

            text = sample_text(model, loaded.vocab, "", SampleConfig(length=length, seed=seed))[0]
            note = f"a fresh {len(text):,}-character sample (seed {seed})" + (
                "; the training corpus is not at hand, give --text-file for real text" if analysis else "")
        click.echo(f"charlstm: reading {note}", err=True)
    text = prepare_prime(loaded.vocab, text, unknown, what="text")
    if not text:
        raise NeuronError("the text to inspect is empty")
    return text


@click.command("inspect")
@click.argument("checkpoint", required=False)
@click.option("--neuron", "neurons", default=None,
              help="Unit index from 0; several: 3,42,100 or 0-15 or all. [default: 0]")
@click.option("--layer", "layers", default=None,
              help="Layer from 1; several: 1,2 or all. [default: the last; every layer for --find, --stats, --html]")
@click.option("--vector", "vectors", default=None,
              help="hidden | cell | input | forget | output | candidate (LSTM); reset | update | candidate | hidden (GRU); "
                   "several: cell,hidden. [default: hidden; every vector for --html]")
@click.option("--all-vectors", is_flag=True, help="Every vector of the neuron, stacked line by line (the seeds' six strips).")
@click.option("--text", default=None, help="Text to run through the model.")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default=None,
              help="File to run through the model ('-' for stdin).")
@click.option("--length", type=click.IntRange(1), default=None,
              help=f"Without --text: characters to read. [default: a fresh {VIEW_LENGTH}-character sample; for --find, "
                   f"--top and --stats the last {ANALYSIS_LENGTH:,} characters of the model's training corpus]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of a fresh sample.")
@click.option("--unknown", type=click.Choice(UNKNOWN_POLICIES), default="error", show_default=True,
              help="What to do with characters of the text the model never saw.")
@click.option("--format", "fmt", type=click.Choice(["text", "tsv", "json"]), default="text", show_default=True,
              help="text draws in the terminal; tsv and json print the numbers.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Write one self-contained HTML page: the text coloured by any neuron of any layer and vector, "
                   "chosen in the page, values on hover.")
@click.option("--find", "find_feature", metavar="FEATURE", default=None,
              help="Rank every unit by correlation with a feature of the text: "
                   f"{', '.join([*feature_names(), *PARAMETERISED_FEATURES])}.")
@click.option("--find-regex", metavar="PATTERN", default=None, help="As --find, the feature being 'inside a match of PATTERN'.")
@click.option("--top", type=click.IntRange(1), default=None,
              help="With --find: how many units to list [default: 10]. Otherwise: the N windows of text where --neuron "
                   "is most positive, and the N where it is most negative.")
@click.option("--window", type=click.IntRange(8), default=60, show_default=True,
              help="Characters per window shown by --find and --top.")
@click.option("--stats", is_flag=True,
              help="How often each gate of each layer is left-saturated (< 0.1) or right-saturated (> 0.9).")
@click.option("--device", default=None)
def command(checkpoint, neurons, layers, vectors, all_vectors, text, text_file, length, seed, unknown, fmt, html_path,
            find_feature, find_regex, top, window, stats, device):
    """Look inside a model's neurons as it reads a text (red negative, blue positive; gates white→green).

    \b
      charlstm inspect --neuron 42 --all-vectors --text-file poem.txt
      charlstm inspect --neuron 3,42 --layer all --format tsv
      charlstm inspect --html page.html --text-file poem.txt
      charlstm inspect --find double-quote          # which units track quotes?
      charlstm inspect --top 5 --neuron 42          # where does unit 42 fire?
      charlstm inspect --stats --format json
    """
    from ..trace import check_neuron

    finding = find_feature is not None or find_regex is not None
    modes = [name for name, on in (("--find", finding), ("--top", top is not None and not finding), ("--stats", stats),
                                   ("--html", html_path is not None)) if on]
    if len(modes) > 1:
        raise click.UsageError(f"{' and '.join(modes)} cannot be combined; choose one")
    if find_feature is not None and find_regex is not None:
        raise click.UsageError("give --find FEATURE or --find-regex PATTERN, not both")
    if html_path is not None and fmt != "text":
        raise click.UsageError("--html writes a page; --format does not apply to it")
    if top is not None and not finding and neurons is None:
        raise click.UsageError("--top lists the windows of one neuron: give --neuron K (or rank neurons with --find)")

    from ..analysis import feature_values

    if finding:  # an unknown feature or a bad regex fails before any text is read or traced
        feature_values(find_feature, "", regex=find_regex)
    loaded, model, path = load_model(checkpoint, device)
    config = loaded.config
    every_layer = range(1, config.num_layers + 1)
    layer_list = (parse_numbers(layers, every_layer, "--layer", "layers") if layers is not None
                  else list(every_layer) if (finding or stats or html_path) else [config.num_layers])
    vector_list = _parse_vectors("all" if all_vectors else vectors, config,
                                 config.vectors if html_path else ("hidden",))
    units = parse_numbers(neurons, range(config.hidden_size), "--neuron", "neurons") if neurons is not None else [0]
    for layer in layer_list:
        for vector in vector_list:
            for unit in units:
                check_neuron(config.num_layers, config.hidden_size, config.vectors, layer, vector, unit)
    if (finding or top is not None) and len(vector_list) > 1:
        raise click.UsageError("--find and --top look at one vector: give --vector NAME")
    if top is not None and not finding and (len(layer_list) > 1 or len(units) > 1):
        raise click.UsageError("--top lists the windows of one neuron: give one --neuron and one --layer")
    text = _inspect_text(loaded, model, text, text_file, length, seed, unknown, analysis=bool(finding or top or stats))
    if finding:
        _find(model, loaded.vocab, path, text, find_feature, find_regex, vector_list[0], layer_list, top or 10, window, fmt)
    elif top is not None:
        _top(model, loaded.vocab, path, text, layer_list[0], vector_list[0], units[0], top, window, fmt)
    elif stats:
        _stats(model, loaded.vocab, path, text, layer_list, fmt)
    elif html_path is not None:
        _html(model, loaded.vocab, path, text, layer_list, vector_list, layers, vectors, units[0], html_path)
    else:
        _view(model, loaded.vocab, path, text, layer_list, vector_list, units, fmt)


def _view(model, vocab, path, text, layers, vectors, units, fmt) -> None:
    from ..trace import trace
    from ..render import is_gate, json_dump, neuron_view, stacked_view, tsv_lines, vector_scale

    result = trace(model, vocab, text, vectors=vectors, layers=layers)
    columns = {f"L{layer}.{vector}[{unit}]": result.values(layer, vector, unit).tolist()
               for layer in layers for unit in units for vector in vectors}
    if fmt == "tsv":
        sys.stdout.writelines(line + "\n" for line in tsv_lines(text, columns))
        return
    if fmt == "json":
        sys.stdout.write(json_dump(text, columns, {"checkpoint": str(path), "cell": model.config.cell, "layers": layers,
                                                   "vectors": vectors, "neurons": units}) + "\n")
        return
    console = stdout_console()
    for layer in layers:
        for unit in units:
            if len(vectors) == 1:
                vector = vectors[0]
                values = columns[f"L{layer}.{vector}[{unit}]"]
                console.print(neuron_view(f"layer {layer} · {vector} · neuron {unit}   {path}", text, values,
                                          is_gate(vector), vector_scale(vector, values)))
            else:
                rows = {}
                for vector in vectors:
                    values = columns[f"L{layer}.{vector}[{unit}]"]
                    rows[vector] = (values, is_gate(vector), vector_scale(vector, values))
                console.print(stacked_view(f"layer {layer} · neuron {unit}   {path}", text, rows, console.width))
            console.print()


def _find(model, vocab, path, text, feature_name, regex, vector, layers, top, window, fmt) -> None:
    from ..trace import trace

    import json

    from ..analysis import feature_values, feature_window, find_neurons
    from ..render import find_view, is_gate, records_tsv, vector_scale

    feature = feature_values(feature_name, text, regex=regex)
    name = feature_name if feature_name is not None else f"regex:{regex}"
    result = trace(model, vocab, text, vectors=[vector], layers=layers)
    search = find_neurons(result, feature, vector, layers, top=top)
    records = [{"rank": k, "layer": u.layer, "unit": u.unit, "r": round(u.r, 6)} for k, u in enumerate(search.ranked, 1)]
    if fmt == "tsv":
        sys.stdout.writelines(line + "\n" for line in records_tsv(records, ["rank", "layer", "unit", "r"]))
    elif fmt == "json":
        sys.stdout.write(json.dumps({"checkpoint": str(path), "feature": name, "vector": vector, "layers": layers,
                                     "characters": len(text), "units_searched": search.num_units,
                                     "chance": round(search.chance, 6), "units": records}, ensure_ascii=False) + "\n")
    else:
        start, end = feature_window(feature, window)
        rows = []
        for u in search.ranked:
            values = result.values(u.layer, vector, u.unit).tolist()
            rows.append((u.layer, u.unit, u.r, values, is_gate(vector), vector_scale(vector, values)))
        title = (f"{vector} units most correlated with {name} over {len(text):,} characters "
                 f"({search.num_units} units searched)   {path}")
        caption = (f"r: Pearson correlation with the feature. Chance: |r| up to {search.chance:.3f} with the feature "
                   f"shifted along the text; units well above it track the feature.")
        stdout_console().print(find_view(title, text, (start, end), feature, rows, caption))


def _top(model, vocab, path, text, layer, vector, unit, n, window, fmt) -> None:
    from ..trace import trace

    import json

    from ..analysis import top_windows
    from ..render import is_gate, records_tsv, vector_scale, windows_rows, windows_view

    values = trace(model, vocab, text, vectors=[vector], layers=[layer]).values(layer, vector, unit)
    positive, negative = top_windows(values, n, window)
    if fmt == "text":
        vals = values.tolist()
        title = f"layer {layer} · {vector} · neuron {unit} over {len(text):,} characters   {path}"
        stdout_console().print(windows_view(title, text, vals, is_gate(vector), vector_scale(vector, vals), positive, negative))
        return
    records = windows_rows(positive, negative, text)
    if fmt == "tsv":
        sys.stdout.writelines(line + "\n" for line in
                              records_tsv(records, ["kind", "rank", "value", "peak", "start", "end", "text"]))
    else:
        sys.stdout.write(json.dumps({"checkpoint": str(path), "layer": layer, "vector": vector, "neuron": unit,
                                     "characters": len(text), "windows": records}, ensure_ascii=False) + "\n")


def _stats(model, vocab, path, text, layers, fmt) -> None:
    from ..trace import trace

    import json

    from ..analysis import SATURATION_HIGH, SATURATION_LOW, saturation
    from ..render import records_tsv, stats_records, stats_table

    gates = [v for v in model.config.vectors if v in GATE_VECTORS]
    if not gates:
        raise NeuronError(f"a {model.config.cell} cell has no gates to measure; --stats needs an LSTM or a GRU")
    result = saturation(trace(model, vocab, text, vectors=gates, layers=layers))
    if fmt == "json":
        sys.stdout.write(json.dumps({"checkpoint": str(path), "characters": len(text), "low": SATURATION_LOW,
                                     "high": SATURATION_HIGH, "gates": stats_records(result)}) + "\n")
    elif fmt == "tsv":
        rows = [{"layer": s.layer, "gate": s.gate, "unit": unit, "left": float(s.left[unit]), "right": float(s.right[unit])}
                for s in result for unit in range(len(s.left))]
        sys.stdout.writelines(line + "\n" for line in records_tsv(rows, ["layer", "gate", "unit", "left", "right"]))
    else:
        stdout_console().print(stats_table(f"gate saturation over {len(text):,} characters   {path}", result,
                                     SATURATION_LOW, SATURATION_HIGH))


def _html(model, vocab, path, text, layers, vectors, layer_spec, vector_spec, unit, html_path) -> None:
    from ..trace import trace
    from ..page import build_page, page_chars

    config = model.config
    shown = page_chars(len(text), len(layers), len(vectors), config.hidden_size)
    notice = ""
    if shown < len(text):
        notice = (f"This page shows the first {shown:,} of {len(text):,} characters: it holds every unit of "
                  f"{len(layers)} layer(s) × {len(vectors)} vector(s). For more characters, pick fewer with "
                  f"--layer and --vector (e.g. --vector hidden,cell).")
        click.echo(f"charlstm: {notice}", err=True)
    text = text[:shown]
    result = trace(model, vocab, text, vectors=vectors, layers=layers)
    first_layer = layers[-1] if layer_spec is None else layers[0]
    first_vector = "hidden" if vector_spec is None and "hidden" in vectors else vectors[0]
    page = build_page(result, str(path), first_layer, first_vector, unit, notice)
    Path(html_path).write_text(page, encoding="utf-8")
    click.echo(f"charlstm: wrote {html_path} ({len(page.encode('utf-8')) / 1e6:.1f} MB: {shown:,} characters, "
               f"{len(layers)} layer(s) × {len(vectors)} vector(s) × {config.hidden_size} units)", err=True)
