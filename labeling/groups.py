"""Split groups: images that must share a split, from a perceptual hash or a name the user gives.

Near-duplicates
---------------
Shots of one person taken a second apart, a re-encoded copy, a slightly brighter version: if one lands in
train and the other in test, the store's test accuracy measures memory, not generalisation. Every image
gets a 256-bit difference hash (dHash) of its stored face crop: the crop is shrunk to 17x16 and each
bit says whether a pixel is brighter than its right neighbour. Two crops within
``NEAR_DUPLICATE_DISTANCE`` bits of each other are near-duplicates and share a split.

Why this hash and this threshold (measured, see the notes of issue 17): on the 770 face crops of
taiwanese-dev a 64-bit dHash put 216 pairs of *different* people within 3 bits (aligned faces have the same
coarse gradients), while the 256-bit hash had no cross-person pair up to 24 bits and the first at 26; on
6,000 FER2013Train crops it linked only exact and near copies (largest cluster 4 images, no chaining).
The hash of a crop is cheap (a resize and a comparison) and needs no extra dependency; the comparison is a
popcount over every stored hash, ~30k hashes in well under a millisecond.

User groups
-----------
``--group-by`` names a group from each imported file's path relative to the import root (``happy/0101a02.jpg``):
``folder`` is the name of the folder holding the file (not the import root, and not the class folder when
labels come from folders); anything else is a regular expression searched in the path, whose first group (or
whole match, when it has no group) is the group's name, e.g. ``'/(\\d\\d)'`` for taiwanese-dev's subjects or
``'(S\\d+)'`` for names like ``S01_happy_3.jpg``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.data.tensors import STORE_SIZE

__all__ = [
    "HASH_BYTES",
    "NEAR_DUPLICATE_DISTANCE",
    "GroupRule",
    "GroupRuleError",
    "HashIndex",
    "hash_distance",
    "perceptual_hash",
]

_SIDE = 16  # 16 rows x 16 comparisons = 256 bits
HASH_BYTES = _SIDE * _SIDE // 8
NEAR_DUPLICATE_DISTANCE = 20  # bits out of 256; the first cross-person pair on taiwanese-dev was at 26


def perceptual_hash(crop: np.ndarray) -> bytes:
    """The 256-bit dHash of a grayscale crop, as 32 bytes; a crop kept sharper than FER+'s 48 px is hashed at
    48 px, so a store's hashes (and its near-duplicate threshold, measured on 48 px crops) do not depend on it."""
    image = Image.fromarray(np.ascontiguousarray(crop, dtype=np.uint8))
    if min(image.size) > STORE_SIZE:
        image = image.resize((STORE_SIZE, STORE_SIZE), Image.BILINEAR)
    small = np.asarray(image.resize((_SIDE + 1, _SIDE), Image.BILINEAR), dtype=np.int16)
    return np.packbits(small[:, 1:] > small[:, :-1]).tobytes()


def _words(digest: bytes) -> np.ndarray:
    return np.frombuffer(digest, dtype=np.uint64)


def hash_distance(a: bytes, b: bytes) -> int:
    """Differing bits between two hashes."""
    return int(np.bitwise_count(_words(a) ^ _words(b)).sum())


class HashIndex:
    """Every stored image's hash in memory, grown from the database by rowid (other processes' rows too)."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._hashes = np.zeros((1024, HASH_BYTES // 8), dtype=np.uint64)  # grown by doubling: O(1) per add
        self._last_rowid = 0
        self._lock = threading.Lock()

    @property
    def last_rowid(self) -> int:
        return self._last_rowid

    def refresh(self, rows: Sequence[tuple[int, str, bytes]]) -> None:
        """Add ``(rowid, image id, hash)`` rows newer than the last one seen."""
        with self._lock:
            for rowid, image_id, digest in rows:
                if rowid <= self._last_rowid or len(digest) != HASH_BYTES:
                    continue
                if len(self._ids) == len(self._hashes):
                    self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
                self._hashes[len(self._ids)] = _words(digest)
                self._ids.append(image_id)
                self._last_rowid = rowid

    def near(
        self, digest: bytes, limit: int = NEAR_DUPLICATE_DISTANCE, exclude: str | None = None, most: int = 20
    ) -> list[str]:
        """Ids of up to ``most`` stored images within ``limit`` bits of ``digest``, nearest first."""
        with self._lock:
            count = len(self._ids)
            if not count:
                return []
            bits = np.bitwise_count(self._hashes[:count] ^ _words(digest)).astype(np.uint16)
            distances = bits[:, 0] + bits[:, 1] + bits[:, 2] + bits[:, 3]  # 2.5x faster than .sum(axis=1)
            close = np.flatnonzero(distances <= limit)
            order = close[np.argsort(distances[close], kind="stable")]
            return [self._ids[i] for i in order if self._ids[i] != exclude][:most]


class GroupRuleError(ValueError):
    """A ``--group-by`` value that is not ``folder`` nor a valid regular expression."""


@dataclass(frozen=True)
class GroupRule:
    """How an imported file's relative path names its group: ``folder`` or a regular expression."""

    text: str
    pattern: re.Pattern[str] | None  # None: the folder rule

    @classmethod
    def parse(cls, text: str) -> GroupRule:
        if not isinstance(text, str) or not text.strip():
            raise GroupRuleError("--group-by needs 'folder' or a regular expression, e.g. '(S\\d+)'")
        if text == "folder":
            return cls(text, None)
        try:
            return cls(text, re.compile(text))
        except re.error as error:
            raise GroupRuleError(f"--group-by {text!r} is not a valid regular expression ({error.msg})") from None

    def group_of(self, parts: Sequence[str], labels_from_folders: bool) -> str | None:
        """The group of a file at ``parts`` (its path below the import root), or None when the rule names none."""
        if self.pattern is None:
            folders = parts[:-1]
            if not folders or (labels_from_folders and len(folders) == 1):
                return None  # the import root, or the class folder: not a group of related images
            return folders[-1]
        found = self.pattern.search("/".join(parts))
        if found is None:
            return None
        name = next((group for group in found.groups() if group), None) if found.groups() else found.group(0)
        return name or None
