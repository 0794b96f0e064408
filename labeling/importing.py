"""Import: files, folders, zip archives, class-per-subfolder trees and the FER+ layout.

Every source becomes a stream of items (bytes reader + provenance + optional votes) fed one by one
to ``AnnotationStore.ingest``; each image commits on its own, so a crash loses at most the image in
flight and the next import picks up where it stopped. Re-importing is idempotent: images are keyed by
content and an import vote is only written when that annotator has no live label on the image yet.
A file that fails (unreadable, not an image, truncated) is reported in ``ImportReport.skipped`` and
the import goes on.

FER+ (``label.csv`` + PNGs): ``core.data.read_ferplus(mode="distribution")`` decides which images are
kept (its outlier and unknown/not-a-face rules); their raw vote counts become per-annotator-style votes
(``<annotator>:ferplus-1`` ...), dropping single votes as FER+ does, so ``votes()`` is the FER+
distribution and the current label is its majority (ties go to FER+'s own top emotion).
"""

from __future__ import annotations

import csv
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from core.data import FERPLUS_COLUMNS, IMAGE_SUFFIXES, is_ferplus_folder, list_images, read_ferplus
from core.labels import normalise_label

from .records import ImportReport

if TYPE_CHECKING:
    from .store import AnnotationStore

__all__ = ["ImportItem", "iter_items", "import_paths"]

MAX_MEMBER_BYTES = 256 * 1024 * 1024  # refuse zip members that would inflate past this


@dataclass
class ImportItem:
    source: str  # where it came from, for reports only
    filename: str | None
    read: Callable[[], bytes]
    votes: list[tuple[str, str]] = field(default_factory=list)
    origin: str = "import"


def _folder_vote(parts: Sequence[str], labels: Sequence[str], annotator: str, notes: set[str]) -> list[tuple[str, str]]:
    """The vote a class-per-subfolder layout implies: the first folder below the import root."""
    if len(parts) < 2:
        return []
    name = normalise_label(parts[0])
    if name not in labels:
        notes.add(f"folder {parts[0]!r} is not a label of the set; its images were imported unlabelled")
        return []
    return [(name, annotator)]


def _zip_items(
    path: Path, labels_from_folders: bool, labels: Sequence[str], annotator: str, notes: set[str]
) -> Iterator[ImportItem]:
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
    for info in sorted(members, key=lambda i: i.filename):
        member = PurePosixPath(info.filename)
        if member.suffix.lower() not in IMAGE_SUFFIXES or member.name.startswith("._") or "__MACOSX" in member.parts:
            continue

        def read(info: zipfile.ZipInfo = info) -> bytes:
            if info.file_size > MAX_MEMBER_BYTES:
                raise ValueError(f"member is {info.file_size} bytes, over the {MAX_MEMBER_BYTES} limit")
            with zipfile.ZipFile(path) as archive:
                return archive.read(info)

        votes = _folder_vote(member.parts, labels, annotator, notes) if labels_from_folders else []
        yield ImportItem(f"{path}!{info.filename}", member.name, read, votes)


def _ferplus_counts(folder: Path) -> dict[str, list[float]]:
    with open(folder / "label.csv", newline="") as handle:
        return {row[0].strip(): [float(v) for v in row[2:12]] for row in csv.reader(handle) if row and row[0].strip()}


def _ferplus_items(folder: Path, labels: Sequence[str], annotator: str, notes: set[str]) -> Iterator[ImportItem]:
    kept = read_ferplus(folder, labels, mode="distribution")
    for rule, count in kept.skipped.items():
        if count:
            notes.add(f"FER+ {folder}: {count} images left out ({rule})")
    counts = _ferplus_counts(folder)
    for path, top in zip(kept.paths, kept.label_indices):
        votes: list[str] = []
        for column, name in enumerate(FERPLUS_COLUMNS):
            label = normalise_label(name)
            n = int(counts[path.relative_to(folder).as_posix()][column])
            if label in labels and n > 1:  # FER+ treats a single vote as an outlier
                votes.extend([label] * n)
        votes.sort(key=lambda label: label == labels[int(top)])  # FER+'s top emotion voted last wins ties
        ballot = [(label, f"{annotator}:ferplus-{k + 1}") for k, label in enumerate(votes)]
        yield ImportItem(str(path), path.name, path.read_bytes, ballot, "ferplus")


def iter_items(
    paths: Sequence[str | Path], labels_from_folders: bool, labels: Sequence[str], annotator: str, report: ImportReport
) -> Iterator[ImportItem]:
    """Every importable item under ``paths``; sources that cannot even be listed go to ``report.skipped``."""
    notes: set[str] = set()
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_dir() and is_ferplus_folder(path):
                yield from _ferplus_items(path, labels, annotator, notes)
            elif path.is_dir():
                for file in list_images(path):
                    parts = file.relative_to(path).parts
                    votes = _folder_vote(parts, labels, annotator, notes) if labels_from_folders else []
                    yield ImportItem(str(file), file.name, file.read_bytes, votes)
            elif path.is_file() and zipfile.is_zipfile(path):
                yield from _zip_items(path, labels_from_folders, labels, annotator, notes)
            elif path.is_file():
                yield ImportItem(str(path), path.name, path.read_bytes)
            else:
                report.skipped.append((str(path), "no such file or folder"))
        except (OSError, ValueError, zipfile.BadZipFile, csv.Error) as error:
            report.skipped.append((str(path), f"{type(error).__name__}: {error}"))
    report.notes.extend(sorted(notes))


def import_paths(
    store: AnnotationStore,
    paths: Sequence[str | Path],
    labels_from_folders: bool = False,
    annotator: str = "import",
    progress: Callable[[int, str], None] | None = None,
) -> ImportReport:
    """Import everything under ``paths`` into ``store``; never stops on a bad file."""
    report = ImportReport()
    start = time.perf_counter()
    for done, item in enumerate(iter_items(paths, labels_from_folders, store.labels, annotator, report), start=1):
        try:
            _, added, written = store.ingest(item.read(), item.source, item.filename, item.votes, item.origin)
        except Exception as error:  # one bad file must not stop the rest; it is reported instead
            report.skipped.append((item.source, f"{type(error).__name__}: {error}"))
        else:
            report.added += added
            report.already_present += not added
            report.label_events += written
        if progress is not None:
            progress(done, item.source)
    report.seconds = time.perf_counter() - start
    return report
