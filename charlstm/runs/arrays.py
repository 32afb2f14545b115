"""The arrays a run caches, as .npy files, and the checks that decide whether one may be used.

`NpyWriter` writes a 1-D array piece by piece and hashes what it writes. `mapped` reads one back
memory-mapped only after its header (dtype, shape, the file's size: nothing is allocated from what
it claims) and every value passed a check, in one pass of CHECK_CHUNK-byte reads, so the check's
memory does not grow with the file. `checked_suffix_array` is that check for a suffix array: every
entry a position of the ids, each once, neighbours in suffix order. A file that fails raises
`Damaged`, one line naming it. Knows nothing of run folders (runs/caches.py) or of how a suffix
array is made (scoring/novelty.py).
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Sequence

import numpy as np

from ..errors import CharlstmError, one_line
from ..files import open_regular

#: Bytes of a cache file that one step of its content check reads: the check's memory, whatever the cache's size.
CHECK_CHUNK = 1 << 20
#: Neighbours in a suffix array whose order is checked (`_misordered`): every pair of an array of at
#: most ORDER_ALL + 1 entries, ORDER_BATCH at a time, else ORDER_SAMPLE pairs at random; ORDER_BUDGET
#: ids read at most in all.
ORDER_ALL, ORDER_SAMPLE, ORDER_BATCH, ORDER_BUDGET = 1 << 20, 1 << 12, 1 << 14, 1 << 26
_ORDER_ROUND = 1 << 18  # ids read per side in one round of comparisons (the scratch memory)
#: The types a suffix array is stored in (scoring.novelty.suffix_array makes int64 past 2**31 − 1 ids).
INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


class Damaged(CharlstmError):
    """What is wrong with a cached array's file, one line naming it (the caches catch it: the file is not used)."""


def content_hash():
    """The hash a cache records of a file's bytes (hexdigest of 16 bytes)."""
    return hashlib.blake2b(digest_size=16)


def mapped(path: Path, dtypes: Sequence[np.dtype], length: int,
           check: Callable[[np.ndarray, int], None]) -> tuple[np.ndarray, str]:
    """The 1-D .npy file `path`, memory-mapped, and its content hash, once its header says `length`
    values of one of `dtypes` in a file of exactly that size, and `check(values, start)` passed
    over every CHECK_CHUNK bytes of them, read into one buffer. Damaged otherwise, and for any
    error of reading, parsing or mapping it."""
    try:
        with open_regular(path, Damaged) as f:
            dtype, offset = _npy_header(f, path, dtypes, length)
            digest = content_hash()
            f.seek(0)
            digest.update(f.read(offset))
            per = max(1, CHECK_CHUNK // dtype.itemsize)
            buffer = memoryview(bytearray(min(per, length) * dtype.itemsize))
            for start in range(0, length, per):
                view = buffer[: min(per, length - start) * dtype.itemsize]
                if f.readinto(view) != len(view):
                    raise Damaged(f"{path}: shorter than its header says")
                digest.update(view)
                check(np.frombuffer(view, dtype=dtype), start)
        if not length:
            return np.zeros(0, dtype=dtype), digest.hexdigest()
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(length,)), digest.hexdigest()
    except Damaged:
        raise
    except (OSError, ValueError, OverflowError, MemoryError) as error:
        raise Damaged(f"{path}: cannot be read ({one_line(error, limit=160)})") from None


def _npy_header(f: BinaryIO, path: Path, dtypes: Sequence[np.dtype], length: int) -> tuple[np.dtype, int]:
    """(dtype, offset of the data) from the .npy header at the start of `f`, if it is a 1-D array
    of `length` values of one of `dtypes` filling the rest of the file; else Damaged. The header
    is parsed by numpy (at most its 10,000 bytes), and nothing is allocated from what it claims."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        version = np.lib.format.read_magic(f)
        if version not in readers:
            raise Damaged(f"{path}: .npy format {version}, not one charlstm writes")
        shape, _, dtype = readers[version](f)
    except Damaged:
        raise
    except Exception as error:  # numpy parses the header with tokenize and ast: any of their errors, on any text
        raise Damaged(f"{path}: not a valid .npy header ({one_line(error, limit=120)})") from None
    if dtype not in dtypes:
        raise Damaged(f"{path}: holds {one_line(dtype, limit=60)} values, not {' or '.join(map(str, dtypes))}")
    if shape != (length,):
        raise Damaged(f"{path}: its header says shape {one_line(shape, limit=60)}, not ({length:,},)")
    offset, size = f.tell(), os.fstat(f.fileno()).st_size
    if size != offset + length * dtype.itemsize:
        raise Damaged(f"{path}: {size:,} bytes, not the {offset + length * dtype.itemsize:,} its header says")
    return dtype, offset


class NpyWriter:
    """Writes a 1-D .npy file to a sink: the header, then `pieces` appended with plain writes (the
    kernel's page cache holds them, not this process: a memory map would count every page written
    in its resident memory), hashing what it writes."""

    def __init__(self, dtype: np.dtype, n: int, pieces: Iterable[np.ndarray]) -> None:
        self.dtype, self.n, self.pieces, self.digest = np.dtype(dtype), n, pieces, content_hash()

    def __call__(self, sink: BinaryIO) -> None:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                      "fortran_order": False, "shape": (self.n,)})
        self._write(sink, header.getvalue())
        for piece in self.pieces:
            self._write(sink, memoryview(np.ascontiguousarray(piece, dtype=self.dtype)).cast("B"))

    def _write(self, sink: BinaryIO, data) -> None:
        self.digest.update(data)
        sink.write(data)

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def checked_suffix_array(path: Path, ids: np.ndarray, sa_hash: str | None) -> np.ndarray:
    """The .npy file `path` memory-mapped if it holds a suffix array of `ids`: len(ids) entries,
    each a position of the ids (bounds, in one pass), each position once (a sum of hashed entries
    against that of the positions, in the same pass), neighbours in suffix order (`_misordered`),
    and — when `sa_hash` is given — the content hash it was written with. Else Damaged."""
    n = len(ids)
    positions = _Positions(path, n)
    sa, digest = mapped(path, INDEX_DTYPES, n, positions.add)
    if not positions.each_once():
        raise Damaged(f"{path}: its entries are not every position of the ids once each")
    if sa_hash is not None and digest != sa_hash:
        raise Damaged(f"{path}: its content is not the content recorded when it was written")
    try:
        wrong = _misordered(ids, sa)
    except (OSError, ValueError) as error:                  # the files changed under the check
        raise Damaged(f"{path}: cannot be read ({one_line(error, limit=160)})") from None
    if wrong is not None:
        raise Damaged(f"{path}: entries {wrong:,} and {wrong + 1:,} are not in suffix order")
    return sa


#: splitmix64's finalizer: a hash of each entry, summed, tells a permutation from almost any other multiset.
_MIX = tuple(map(np.uint64, (30, 0xBF58476D1CE4E5B9, 27, 0x94D049BB133111EB, 31)))


class _Positions:
    """The one-pass check of a suffix array's entries, chunk by chunk: each in [0, n), and, over
    all of them, the sum of their hashes equal to that of the positions 0 … n − 1 (a permutation
    passes; a repeated or missing position fails but for a chance of about 2**−64). Its scratch is
    allocated once, for the largest chunk."""

    def __init__(self, path: Path, n: int) -> None:
        self.path, self.n, self.balance = path, n, 0
        size = min(n, CHECK_CHUNK // 4)                   # the entries of a chunk of int32
        self.mixed, self.scratch = np.empty(size, dtype=np.uint64), np.empty(size, dtype=np.uint64)
        self.positions = np.arange(size, dtype=np.uint64)

    def add(self, values: np.ndarray, start: int) -> None:
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= self.n:
            at = int(np.argmin(values)) if low < 0 else int(np.argmax(values))
            raise Damaged(f"{self.path}: entry {start + at:,} is {int(values[at]):,}, not a position of the "
                          f"{self.n:,} ids")
        mixed = self.mixed[: len(values)]
        np.copyto(mixed, values, casting="unsafe")       # non-negative: checked above
        self.balance += self._mixed_sum(mixed)
        np.add(self.positions[: len(values)], np.uint64(start), out=mixed)
        self.balance -= self._mixed_sum(mixed)

    def _mixed_sum(self, x: np.ndarray) -> int:
        """The sum, modulo 2**64, of splitmix64's finalizer over `x` (mixed in place)."""
        t = self.scratch[: len(x)]
        for shift, factor in ((_MIX[0], _MIX[1]), (_MIX[2], _MIX[3])):
            np.right_shift(x, shift, out=t)
            np.bitwise_xor(x, t, out=x)
            np.multiply(x, factor, out=x)
        np.right_shift(x, _MIX[4], out=t)
        np.bitwise_xor(x, t, out=x)
        return int(x.sum(dtype=np.uint64))

    def each_once(self) -> bool:
        return self.balance % (1 << 64) == 0


def _misordered(ids: np.ndarray, sa: np.ndarray) -> int | None:
    """An i at which suffixes sa[i] and sa[i + 1] of `ids` are not in strictly increasing order (a
    suffix that is a prefix of the other sorts first), else None. Every pair of an array of at most
    ORDER_ALL + 1 entries (both read whole, ORDER_BATCH pairs compared at a time); else ORDER_SAMPLE
    pairs drawn at random (the same ones for the same length), each read with its own small reads,
    so that no page of a big memory-mapped cache is mapped in. Pairs still equal once ORDER_BUDGET
    ids were read in all count as in order."""
    n = len(sa)
    ids_at, sa_at = _Slices(ids), _Slices(sa)
    try:
        if n - 1 > ORDER_ALL:
            at = np.unique(np.random.default_rng(n).integers(0, n - 1, ORDER_SAMPLE))
            return _sampled_misorder(ids_at, sa_at, at)
        ids, sa, budget = ids_at(0, n), sa_at(0, n).astype(np.int64), ORDER_BUDGET
        for start in range(0, n - 1, ORDER_BATCH):
            stop = min(start + ORDER_BATCH, n - 1)
            wrong, budget = _first_misordered(ids, sa[start:stop], sa[start + 1 : stop + 1], budget)
            if wrong is not None:
                return start + wrong
            if budget <= 0:
                break
        return None
    finally:
        ids_at.close()
        sa_at.close()


def _sampled_misorder(ids_at: _Slices, sa_at: _Slices, at: np.ndarray) -> int | None:
    """The first i of `at` whose suffixes sa[i], sa[i + 1] are out of order (see `_misordered`), else
    None; each pair reads at most its share of ORDER_BUDGET."""
    for i in at.tolist():
        a, b = (int(v) for v in sa_at(i, i + 2))
        lcp, width, budget = 0, 64, ORDER_BUDGET // len(at)
        while budget > 0:
            x, y = ids_at(a + lcp, a + lcp + width), ids_at(b + lcp, b + lcp + width)
            k = min(len(x), len(y))
            differ = np.flatnonzero(x[:k] != y[:k])
            if differ.size:
                in_order = int(x[differ[0]]) < int(y[differ[0]])
                break
            if k < width:                                    # an end: the suffix that ends first sorts first
                in_order = len(x) < len(y)
                break
            lcp, width, budget = lcp + width, width * 4, budget - 2 * width
        else:
            in_order = True
        if not in_order:
            return i
    return None


class _Slices:
    """Slices of a 1-D array: read with pread from the file of a whole memory-mapped one (so no
    page of the map is touched), else taken from it. `close` when done."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        whole_map = isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and array.filename
        self.file = open_regular(array.filename, Damaged) if whole_map else None

    def __call__(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, start), min(stop, len(self.array))
        if stop <= start:
            return self.array[:0]
        if self.file is None:
            return np.asarray(self.array[start:stop])
        size = self.array.dtype.itemsize
        data = os.pread(self.file.fileno(), (stop - start) * size, self.array.offset + start * size)
        return np.frombuffer(data, dtype=self.array.dtype)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _first_misordered(ids: np.ndarray, left: np.ndarray, right: np.ndarray, budget: int) -> tuple[int | None, int]:
    """(a k at which suffix left[k] of `ids` does not sort strictly below suffix right[k], or None;
    the budget of ids left to read). Compared a window at a time, the window growing while pairs stay
    equal, each round reading at most _ORDER_ROUND ids per side."""
    if (left == right).any():
        return int(np.argmax(left == right)), budget
    lcp, pending, width = np.zeros(len(left), dtype=np.int64), np.arange(len(left)), 16
    while pending.size and budget > 0:
        shift = lcp[pending, None] + np.arange(width)                         # (P, W)
        a, b = _window(ids, left[pending, None] + shift), _window(ids, right[pending, None] + shift)
        differ = a != b
        done = differ.any(axis=1)
        first = differ.argmax(axis=1)
        rows = np.flatnonzero(done)
        above = a[rows, first[rows]] > b[rows, first[rows]]                   # the earlier entry sorts after
        if above.any():
            return int(pending[rows[np.argmax(above)]]), budget
        lcp[pending[~done]] += width
        pending, budget = pending[~done], budget - 2 * differ.size
        width = max(16, min(width * 4, _ORDER_ROUND // max(pending.size, 1)))
    return None, budget


def _window(ids: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The ids at `positions` as int64, −1 past the end (the end of the ids sorts below every id)."""
    n = len(ids)
    return np.where(positions < n, np.asarray(ids[np.minimum(positions, n - 1)], dtype=np.int64), -1)
