"""`charlstm inspect`: look inside a model's neurons as it reads a text.

Parse → one library call → render. `_mode` checks which view the options ask for (every check of
option combinations is there and in `_pick`); `inspection.selection` checks the layers, vectors and
neurons against the model; `inspection.texts` chooses the text; one small function per view traces
and analyses, and `views.output.write` prints the result in the chosen --format.
"""

from __future__ import annotations

import contextlib

import click

from ..config import ATLAS_PROPOSED_FEATURES, CELL_KINDS, GATE_VECTORS, InspectConfig, SampleConfig
from ..errors import FeatureError, PatternTimeout
from ..inspection.saturation import SATURATION_HIGH, SATURATION_LOW, measure_saturation
from ..inspection.selection import ALL, pick
from ..inspection.texts import ANALYSIS_LENGTH, VIEW_LENGTH, inspect_text
from .common import explicit
from .help import Command
from .params import DEVICE_HELP, device_option, field_option, number_list, threads_option, vector_list

#: The views that read the training corpus's tail when no text is given.
ANALYSES = ("find", "top", "stats", "atlas")
#: Units --find lists without --top.
FIND_TOP = 10

#: Option names by section of `charlstm inspect --help`.
SECTIONS = {
    "Units": ("neurons", "layers", "vectors", "all_vectors"),
    "Text": ("text", "text_file", "length", "seed", "unknown"),
    "Views": ("html_path", "find_feature", "find_regex", "top", "window", "atlas", "stats", "fmt"),
}


def _features() -> dict:
    """The feature names --find takes, for its help (inspection.features loads numpy: only when shown)."""
    from ..inspection.features import PARAMETERISED_FEATURES, feature_names

    return {"features": ", ".join([*feature_names(), *PARAMETERISED_FEATURES])}


def _vectors(cell: str) -> str:
    return ", ".join(CELL_KINDS[cell].vectors)


@click.command("inspect", cls=Command, sections=SECTIONS, facts=_features)
@click.argument("checkpoint", required=False)
@click.option("--neuron", "neurons", default=None, callback=number_list("neurons"),
              help="Unit index from 0; several: 3,42,100 or 0-15 or all. [default: 0]")
@click.option("--layer", "layers", default=None, callback=number_list("layers"),
              help="Layer from 1; several: 1,2 or all. [default: the last; every layer for --find, --stats, --html]")
@click.option("--vector", "vectors", default=None, callback=vector_list,
              help=f"{_vectors('lstm')} (LSTM); {_vectors('gru')} (GRU); several: cell,hidden. "
                   "[default: hidden; cell for an LSTM's --atlas; every vector for --html]")
@click.option("--all-vectors", is_flag=True, help="Every vector of the neuron, stacked line by line (the seeds' six strips).")
@click.option("--text", default=None, help="Text to run through the model.")
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default=None,
              help="File to run through the model ('-' for stdin).")
@field_option(InspectConfig, "length", show_default=False,
              help=f"Characters to read without --text. [default: a fresh {VIEW_LENGTH}-character sample; for the "
                   f"analyses the last {ANALYSIS_LENGTH:,} of the training corpus; for --html what the page holds]")
@field_option(InspectConfig, "seed", help="Seed of a fresh sample.")
@field_option(SampleConfig, "unknown", help="What to do with characters of the text the model never saw.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Write one self-contained HTML page to explore every unit of the model on the text.")
@click.option("--find", "find_feature", metavar="FEATURE", default=None,
              help="Rank every unit by correlation with a feature of the text: {features}.")
@click.option("--find-regex", metavar="PATTERN", default=None, help="As --find, the feature being 'inside a match of PATTERN'.")
@field_option(InspectConfig, "top", show_default=False,
              help=f"With --find: units to list [default: {FIND_TOP}]. Else: the N windows of text where --neuron is "
                   "most positive, and the N where it is most negative.")
@field_option(InspectConfig, "window",
              help="Characters per window shown by --find and --top.")
@click.option("--atlas", is_flag=True,
              help="Every unit of every --layer and --vector against every feature: its best feature, |r|, chance "
                   "and verdict, furthest above chance first (--top N lists N).")
@click.option("--stats", is_flag=True,
              help=f"How often each gate of each layer is nearly shut (< {SATURATION_LOW:g}) or wide open "
                   f"(> {SATURATION_HIGH:g}).")
@click.option("--format", "fmt", type=click.Choice(["text", "tsv", "json"]), default="text", show_default=True,
              help="text draws in the terminal; tsv and json print the numbers.")
@click.option("--device", default=None, callback=device_option, help=DEVICE_HELP)
@threads_option
def command(checkpoint, neurons, layers, vectors, all_vectors, text, text_file, length, seed, unknown, fmt, html_path,
            find_feature, find_regex, top, window, atlas, stats, device, threads):
    """Look inside a model's neurons as it reads a text.

    CHECKPOINT: a checkpoint file, a run directory or a shipped model's name (english); the
    most recent run if none. Values are drawn
    red negative, blue positive; gates (0 to 1) white to green.

    \b
      charlstm inspect --neuron 42 --all-vectors --text-file poem.txt
      charlstm inspect --neuron 3,42 --layer all --format tsv
      charlstm inspect --html page.html --text-file poem.txt
      charlstm inspect --find double-quote          # which units track quotes?
      charlstm inspect --top 5 --neuron 42          # where does unit 42 fire?
      charlstm inspect --stats --format json
      charlstm inspect --atlas --top 20             # every unit's best feature, above chance first
    """
    mode = _mode(find_feature, find_regex, top, stats, html_path, fmt, neurons, atlas)
    from ..runtime import load_model

    loaded, model, path = load_model(checkpoint, device, threads)
    picked = _pick(loaded.config, mode, layers, (ALL,) if all_vectors else vectors, neurons)
    fits = lambda chars: _fits(loaded.config, mode, picked, chars, fmt, _extra_features(find_feature, find_regex),  # noqa: E731
                               vectors is not None or all_vectors)
    fits(length or (ANALYSIS_LENGTH if mode in ANALYSES else VIEW_LENGTH))      # before a text is made or read
    sample_length = None
    if mode == "html" and length is None:   # the page's atlas reads what `inspect --atlas` reads (the page shows as
        sample_length = VIEW_LENGTH          # much of it as it holds), or, without the corpus, a short fresh sample
    text, note = inspect_text(loaded, model, text, text_file, length, seed, unknown, analysis=mode in ANALYSES + ("html",),
                              sample_length=sample_length)
    fits(len(text))
    if note:
        click.echo(f"charlstm: reading {note}", err=True)
    source, vocab = str(path), loaded.vocab
    with _option_of_pattern(find_regex):       # a pattern that runs too long is refused as its option's
        if mode == "find":
            _find(model, vocab, source, text, picked, find_feature, find_regex, top or FIND_TOP, window, fmt)
        elif mode == "top":
            _top(model, vocab, source, text, picked, top, window, fmt)
        elif mode == "atlas":
            context = explicit(click.get_current_context(), "window")
            where = note or (f"--text-file {text_file}" if text_file else "the --text given")
            _atlas(model, vocab, source, text, picked, find_feature, find_regex, top, window if context else None, fmt,
                   where)
        elif mode == "stats":
            _stats(model, vocab, source, text, picked, fmt)
        elif mode == "html":
            _html(model, vocab, source, text, picked, html_path, layers is not None, vectors is not None or all_vectors,
                  neurons is not None, find_feature, find_regex, note or (f"--text-file {text_file}" if text_file
                                                                          else "the --text given"))
        else:
            _view(model, vocab, source, text, picked, fmt)


@contextlib.contextmanager
def _option_of_pattern(find_regex):
    """A user's pattern that ran past its time limit (PatternTimeout) as one line naming the option
    that gave it: --find-regex PATTERN or --find regex:PATTERN."""
    try:
        yield
    except PatternTimeout as error:
        raise click.ClickException(f"{'--find-regex' if find_regex is not None else '--find'}: {error}") from None


def _mode(find_feature, find_regex, top, stats, html_path, fmt, neurons, atlas=False) -> str:
    """Which view the options ask for: atlas, find, top, stats, html or view; a UsageError for options
    that do not go together. An unknown feature or a bad regex fails here, before any text is read.
    --find goes with --atlas (one more feature) and with --html (the page opens on its best unit)."""
    finding = find_feature is not None or find_regex is not None
    html = html_path is not None
    modes = [name for name, on in (("atlas", atlas and not html), ("find", finding and not atlas and not html),
                                   ("top", top is not None and not finding and not atlas), ("stats", stats),
                                   ("html", html)) if on]
    if len(modes) > 1:
        raise click.UsageError(f"{' and '.join('--' + m for m in modes)} cannot be combined; choose one")
    if find_feature is not None and find_regex is not None:
        raise click.UsageError("give --find FEATURE or --find-regex PATTERN, not both")
    if html_path is not None and fmt != "text":
        raise click.UsageError("--html writes a page; --format does not apply to it")
    if modes == ["top"] and neurons is None:
        raise click.UsageError("--top lists the windows of one neuron: give --neuron K (or rank neurons with --find)")
    if finding:
        from ..inspection.analysis import feature_values

        feature_values(find_feature, "", regex=find_regex)
    return modes[0] if modes else "view"


def _pick(config, mode: str, layers, vectors, neurons):
    """The layers, vectors and neurons to show, checked against the model (selection.pick), with
    each view's defaults: the last layer (every layer for find, stats, html, atlas); hidden (every vector
    for html, the cell's memory for atlas: config.CellKind.memory); neuron 0."""
    every_layer = mode in ("find", "stats", "html", "atlas")
    default = (ALL,) if mode == "html" else config.kind.memory if mode == "atlas" else ("hidden",)
    picked = pick(config, layers if layers is not None else range(1, config.num_layers + 1) if every_layer
                  else [config.num_layers], vectors or default, neurons or [0])
    if mode in ("find", "top") and len(picked.vectors) > 1:
        raise click.UsageError("--find and --top look at one vector: give --vector NAME")
    if mode == "top" and (len(picked.layers) > 1 or len(picked.units) > 1):
        raise click.UsageError("--top lists the windows of one neuron: give one --neuron and one --layer")
    return picked


def _fits(config, mode: str, picked, chars: int, fmt: str, extra_features: dict, vectors_given: bool = False) -> None:
    """Refuse, in one MemoryBudgetError naming the longest text that fits, a view whose trace and
    analysis would not fit the memory budget with a text of `chars` characters: checked before a
    text is made or read, and again once it is. A page holds the characters views.page allows (its trace
    keeps only the vectors whose colour scale their values choose; drawing it holds the weights several
    times over: views.page.page_need), and maps the whole text (the cell's memory, or the vectors
    given) as --atlas does, before its own trace."""
    from ..inspection.analysis import TOP_BYTES, find_need
    from ..inspection.atlas import atlas_need
    from ..inspection.effects import ablation_need
    from ..inspection.features import FEATURES
    from ..inspection.tracing import check_trace
    from ..memory import FLOAT, Need
    from ..views.traces import PICTURE_BYTES

    layers, vectors, H = len(picked.layers), len(picked.vectors), config.hidden_size
    if mode == "view":
        columns = layers * vectors * len(picked.units)
        kept = Need(per_char=FLOAT * columns + (PICTURE_BYTES if fmt == "text" else 0))
        check_trace(config, chars, vectors, layers, streamed=True, kept=kept)
    elif mode == "top":
        check_trace(config, chars, 1, 1, streamed=True, kept=Need(per_char=FLOAT + TOP_BYTES + PICTURE_BYTES))
    elif mode == "stats":
        gates = sum(v in GATE_VECTORS for v in config.vectors)
        check_trace(config, chars, gates, layers, streamed=True, what="measure saturation over")
    elif mode == "find":
        check_trace(config, chars, 1, layers, kept=find_need(layers * H), what="rank units over")
    elif mode == "atlas":
        need = atlas_need(config, layers * vectors * H, len(FEATURES) + ATLAS_PROPOSED_FEATURES + len(extra_features))
        check_trace(config, chars, vectors, layers, kept=need + ablation_need(config, layers * vectors * H), what="map")
    elif mode == "html":   # the atlas first, then the page's own trace (its scales) and its drawing
        from ..views.page import check_page, page_chars, page_need, scaled_vectors

        check_page(config)
        check_trace(config, page_chars(chars, config), len(scaled_vectors(picked.vectors)), layers,
                    kept=page_need(config), what="draw a page of")
        atlas_vectors = vectors if vectors_given else len(config.kind.memory)
        units = layers * atlas_vectors * H
        check_trace(config, chars, atlas_vectors, layers, what="map",
                    kept=atlas_need(config, units, len(FEATURES) + ATLAS_PROPOSED_FEATURES + len(extra_features))
                    + ablation_need(config, units))


def _view(model, vocab, source: str, text: str, picked, fmt: str) -> None:
    from ..inspection.tracing import trace_columns
    from ..views.output import write
    from ..views.traces import PICTURE_BYTES, trace_output

    keys = [(layer, vector, unit) for layer in picked.layers for unit in picked.units for vector in picked.vectors]
    values = trace_columns(model, vocab, text, keys, extra=PICTURE_BYTES if fmt == "text" else 0)
    columns = {f"L{layer}.{vector}[{unit}]": column for (layer, vector, unit), column in zip(keys, values)}
    write(fmt, trace_output(source, model.config.cell, text, columns, picked))


def _find(model, vocab, source: str, text: str, picked, feature_name, regex, top: int, window: int, fmt: str) -> None:
    from ..inspection.analysis import feature_values, feature_window, find_neurons
    from ..inspection.tracing import trace
    from ..views.output import write
    from ..views.traces import find_output

    feature = feature_values(feature_name, text, regex=regex)
    result = trace(model, vocab, text, vectors=picked.vectors, layers=picked.layers, logits=False)
    search = find_neurons(result, feature, picked.vectors[0], picked.layers, top=top)
    name = feature_name if feature_name is not None else f"regex:{regex}"
    write(fmt, find_output(source, name, text, search, picked.layers, feature_window(feature, window)))


def _atlas(model, vocab, source: str, text: str, picked, feature_name, regex, top, width, fmt: str,
           where: str | None = None) -> None:
    from ..inspection.atlas import ATLAS_CONTEXT_WIDTH, atlas_features, build_atlas, untrained_like
    from ..inspection.effects import unit_effects
    from ..inspection.tracing import trace
    from ..views.atlas import atlas_output
    from ..views.output import write

    features = atlas_features(text, _extra_features(feature_name, regex))
    result, baseline = (trace(m, vocab, text, vectors=picked.vectors, layers=picked.layers, logits=False)
                        for m in (model, untrained_like(model)))
    atlas = build_atlas(result, features, picked.vectors, picked.layers, width=width or ATLAS_CONTEXT_WIDTH,
                        baseline=baseline)
    del result, baseline
    atlas.effects = unit_effects(model, vocab, text, atlas.keys, atlas.means, leading=atlas.rows(atlas.units))
    write(fmt, atlas_output(source, text, atlas, top, where))


def _page_atlas(model, vocab, text: str, layers, vectors, extra: dict, where: str | None):
    """The atlas `inspect --atlas` draws for these layers and vectors on the whole text, with its effects,
    and what the page's index adds: (atlas, build_page's atlas_text, portraits and where)."""
    from ..inspection.atlas import atlas_features, build_atlas, untrained_like
    from ..inspection.effects import unit_effects
    from ..inspection.portraits import portraits
    from ..inspection.tracing import trace
    from ..views.page import PAGE_DETAILED

    result, baseline = (trace(m, vocab, text, vectors=vectors, layers=layers, logits=False)
                        for m in (model, untrained_like(model)))
    atlas = build_atlas(result, atlas_features(text, extra), vectors, layers, baseline=baseline)
    del baseline
    shown = [(u.layer, u.vector, u.unit) for u in atlas.units[:PAGE_DETAILED]]
    drawn = portraits(result, shown)
    del result
    atlas.effects = unit_effects(model, vocab, text, atlas.keys, atlas.means, leading=atlas.rows(atlas.units))
    return atlas, {"atlas_text": text, "portraits": drawn, "where": where}


def _extra_features(feature_name, regex) -> dict:
    """--find FEATURE / --find-regex PATTERN as extra atlas features: name → pattern (None for a name)."""
    return {feature_name: None} if feature_name is not None else {f"regex:{regex}": regex} if regex is not None else {}


def _top(model, vocab, source: str, text: str, picked, n: int, window: int, fmt: str) -> None:
    from ..inspection.analysis import TOP_BYTES, top_windows
    from ..inspection.tracing import trace_columns
    from ..views.output import write
    from ..views.traces import PICTURE_BYTES, windows_output

    (layer,), (vector,), (unit,) = picked.layers, picked.vectors, picked.units
    values = trace_columns(model, vocab, text, [(layer, vector, unit)], extra=TOP_BYTES + PICTURE_BYTES)[0]
    write(fmt, windows_output(source, text, layer, vector, unit, values, *top_windows(values, n, window)))


def _stats(model, vocab, source: str, text: str, picked, fmt: str) -> None:
    from ..views.output import write
    from ..views.traces import stats_output

    result = measure_saturation(model, vocab, text, picked.layers)
    write(fmt, stats_output(source, len(text), result, SATURATION_LOW, SATURATION_HIGH))


def _html(model, vocab, source: str, text: str, picked, html_path: str, layers_given: bool, vectors_given: bool,
          neurons_given: bool = False, feature_name=None, regex=None, where: str | None = None) -> None:
    from ..files import check_output, is_charlstm_page, write_file
    from ..inspection.tracing import trace
    from ..views.page import build_page, cut_notice, page_chars, scaled_vectors

    check_output(html_path, "an HTML page charlstm wrote", is_charlstm_page)  # before any trace: refuse first

    layers, vectors, config = picked.layers, picked.vectors, model.config
    shown = page_chars(len(text), config)
    notice = cut_notice(shown, len(text), config)
    if notice:
        click.echo(f"charlstm: {notice}", err=True)
    first_layer = layers[0] if layers_given else layers[-1]
    first_vector = "hidden" if not vectors_given and "hidden" in vectors else vectors[0]
    first = (first_layer, first_vector, picked.units[0])
    extra = _extra_features(feature_name, regex)
    try:
        atlas, index = _page_atlas(model, vocab, text, layers, vectors if vectors_given else model.config.kind.memory,
                                   extra, where)
    except FeatureError:
        if extra:
            raise
        atlas, index = None, {}   # too short or too uniform a text to correlate: the page has no index
        click.echo("charlstm: no feature varies on this text, so the page has no atlas index", err=True)
    if atlas is not None and extra:               # --find: open on its best unit
        name = next(iter(extra))
        if name not in atlas.features:
            raise FeatureError(f"the feature {name} is the same at every character of this text, so nothing can "
                               "correlate with it; give a text where it varies (--text-file)")
        first = atlas.ranking(name, 1)[0][:3]
    elif atlas is not None and not (neurons_given or layers_given or vectors_given):   # the most informative unit
        best = atlas.most_informative()
        first = (best.layer, best.vector, best.unit)
    result = trace(model, vocab, text[:shown], vectors=scaled_vectors(vectors), layers=layers, logits=False)
    page = build_page(result, model, vocab.chars, source, *first, notice, layers=layers, vectors=vectors, atlas=atlas,
                      feature=next(iter(extra), None), **index)
    write_file(check_output(html_path, "an HTML page charlstm wrote", is_charlstm_page), page.encode("utf-8"))
    click.echo(f"charlstm: wrote {html_path} ({len(page.encode('utf-8')) / 1e6:.1f} MB: {shown:,} characters, "
               f"{len(layers)} layer(s) × {len(vectors)} vector(s) × {config.hidden_size} units, computed in the "
               "browser from the model's weights)", err=True)
