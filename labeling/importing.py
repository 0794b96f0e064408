"""Import: files, folders, zip archives, class-per-subfolder trees and the FER+ layout.

Every source becomes a stream of items (bytes reader + provenance + optional votes) fed one by one
to ``AnnotationStore.ingest``; each image commits on its own, so a crash loses at most the image in
flight and the next import picks up where it stopped. Re-importing is idempotent: images are keyed by
content and an import vote is only written when that annotator has no live label on the image yet.
A file that fails (unreadable, not an image, truncated, too big) is reported in ``ImportReport.skipped``
with a reason in plain words and the import goes on.

Zip archives are checked from their directory before anything is inflated: at most
``MAX_ZIP_MEMBERS`` entries and ``MAX_ZIP_BYTES`` inflated in all; each member is then stream-read
with a limit (its declared size, at most ``MAX_MEMBER_BYTES``), so a lying header cannot inflate
more than that either. Every image goes through core's one decoder with its pixel limit.

FER+ (``label.csv`` + PNGs): ``core.data.read_ferplus(mode="distribution")`` decides which images are
kept (its outlier and unknown/not-a-face rules); their raw vote counts become per-annotator-style votes
(``<annotator>:ferplus-1`` ...), dropping single votes as FER+ does, so ``votes()`` is the FER+
distribution and the current label is its majority (ties go to FER+'s own top emotion).

Faces: with the store's face finder (the app's, and ``tsnet label import`` by default) photos become their
aligned face crops, one sample per face; face crops already (at most 100 px a side) are used whole; a photo
without a face is skipped with that reason and counted in ``ImportReport.no_face``.

Groups: ``group_by`` (``folder`` or a regular expression, see ``labeling.groups``) names each file's split
group from its path below the import root; images of one group always share a split.

A labels CSV (a ``.csv`` file with a header naming a ``path`` column, and optionally ``label`` and ``group``
or ``subject``, like taiwanese-dev's ``labels.csv``) imports the files it lists, relative to its own folder
(never outside it), with their label and group.
"""

from __future__ import annotations

import csv
import logging
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from core.data import FERPLUS_COLUMNS, IMAGE_SUFFIXES, is_ferplus_folder, list_images, read_ferplus
from core.data.ferplus import read_ferplus_votes
from core.images import MAX_FILE_BYTES, ImageError
from core.labels import normalise_label

from .faces import NoFaceFoundError
from .groups import GroupRule
from .records import ImportReport

if TYPE_CHECKING:
    from .queries import StoreQueries

__all__ = ["ImportItem", "ImportRefused", "iter_items", "import_paths"]

log = logging.getLogger(__name__)

MAX_MEMBER_BYTES = MAX_FILE_BYTES  # one image file, inside a zip or not
MAX_ZIP_MEMBERS = 10_000  # entries in one archive's directory
MAX_ZIP_BYTES = 2 * 1024**3  # what one archive's images may inflate to, in all
MAX_CSV_BYTES = 64 * 1024**2  # a labels CSV: a list of files, not a data set
CSV_PATH_COLUMNS = ("path", "file", "filename", "image")
CSV_GROUP_COLUMNS = ("group", "subject")


class ImportRefused(ValueError):
    """A file or archive over a limit; ``str(error)`` says which, in plain words."""


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.0f} MB"


def read_file(path: Path) -> bytes:
    """A file's bytes, refused before reading when it is larger than any image the product accepts."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImportRefused(f"file is {_megabytes(size)}: at most {_megabytes(MAX_FILE_BYTES)} per image")
    return path.read_bytes()


def plain_reason(error: BaseException) -> str:
    """Why an item was skipped, in words for the person importing: no exception names, no server paths."""
    if isinstance(error, (ImageError, ImportRefused)):
        return str(error)
    if isinstance(error, zipfile.BadZipFile):
        return "not a readable zip archive (damaged or truncated)"
    if isinstance(error, UnicodeDecodeError):
        return "the CSV file is not UTF-8 text"
    if isinstance(error, csv.Error):
        return "the CSV file is not valid CSV"
    if isinstance(error, FileNotFoundError):
        return "no such file or folder"
    if isinstance(error, PermissionError):
        return "the file cannot be read (permission denied)"
    if isinstance(error, OSError):
        return f"the file cannot be read ({error.strerror or 'input/output error'})"
    if isinstance(error, ValueError) and type(error).__module__.startswith(("labeling", "core")):
        return str(error)  # our own refusals (a label outside the set, a bad name) are already plain
    log.warning("import: unexpected %s on one item", type(error).__name__, exc_info=error)
    return "could not be imported (an unexpected error; the server log has the details)"


@dataclass
class ImportItem:
    source: str  # where it came from, for reports only
    filename: str | None
    read: Callable[[], bytes]
    votes: list[tuple[str, str]] = field(default_factory=list)
    origin: str = "import"
    parts: tuple[str, ...] = ()  # the path below the import root, for --group-by
    group: str | None = None  # a group the source itself names (a labels CSV's group column)


def _folder_vote(parts: Sequence[str], labels: Sequence[str], annotator: str, notes: set[str]) -> list[tuple[str, str]]:
    """The vote a class-per-subfolder layout implies: the first folder below the import root."""
    if len(parts) < 2:
        return []
    name = normalise_label(parts[0])
    if name not in labels:
        notes.add(f"folder {parts[0]!r} is not a label of the set; its images were imported unlabelled")
        return []
    return [(name, annotator)]


def _check_archive(members: Sequence[zipfile.ZipInfo]) -> None:
    """Refuse an archive from its directory alone: too many entries, or more inflated bytes than allowed."""
    if len(members) > MAX_ZIP_MEMBERS:
        raise ImportRefused(f"zip has {len(members)} entries: at most {MAX_ZIP_MEMBERS} per archive")
    total = sum(info.file_size for info in members)
    if total > MAX_ZIP_BYTES:
        raise ImportRefused(
            f"zip would inflate to {_megabytes(total)}: at most {_megabytes(MAX_ZIP_BYTES)} per archive"
        )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Stream-read one member, never more than its declared size (itself capped) plus one byte."""
    if info.file_size > MAX_MEMBER_BYTES:
        raise ImportRefused(
            f"zip member is {_megabytes(info.file_size)}: at most {_megabytes(MAX_MEMBER_BYTES)} per image"
        )
    try:
        with archive.open(info) as stream:
            data = stream.read(info.file_size + 1)
    except zipfile.BadZipFile:  # zipfile stops at the declared size and then finds the checksum wrong
        raise ImportRefused("zip member is damaged: its data does not match its entry") from None
    if len(data) > info.file_size:
        raise ImportRefused("zip member is damaged: its data does not match its entry (longer than declared)")
    return data


def _zip_items(
    path: Path, labels_from_folders: bool, labels: Sequence[str], annotator: str, notes: set[str]
) -> Iterator[ImportItem]:
    """Members in name order; the archive stays open while its items are read, one at a time."""
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_MEMBERS:  # before building anything per entry
            raise ImportRefused(f"zip has {len(entries)} entries: at most {MAX_ZIP_MEMBERS} per archive")
        members = []
        for info in entries:
            member = PurePosixPath(info.filename)
            if info.is_dir() or member.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if member.name.startswith("._") or "__MACOSX" in member.parts:
                continue
            members.append(info)
        _check_archive(members)
        for info in sorted(members, key=lambda i: i.filename):
            member = PurePosixPath(info.filename)
            votes = _folder_vote(member.parts, labels, annotator, notes) if labels_from_folders else []
            read = lambda info=info: _read_member(archive, info)  # noqa: E731
            yield ImportItem(f"{path}!{info.filename}", member.name, read, votes, parts=member.parts)


def _ferplus_items(folder: Path, labels: Sequence[str], annotator: str, notes: set[str]) -> Iterator[ImportItem]:
    kept = read_ferplus(folder, labels, mode="distribution")
    for rule, count in kept.skipped.items():
        if count:
            notes.add(f"FER+ {folder}: {count} images left out ({rule})")
    counts = read_ferplus_votes(folder)
    for path, top in zip(kept.paths, kept.label_indices):
        votes: list[str] = []
        for column, name in enumerate(FERPLUS_COLUMNS):
            label = normalise_label(name)
            n = int(counts[path.relative_to(folder).as_posix()][column])
            if label in labels and n > 1:  # FER+ treats a single vote as an outlier
                votes.extend([label] * n)
        votes.sort(key=lambda label: label == labels[int(top)])  # FER+'s top emotion voted last wins ties
        ballot = [(label, f"{annotator}:ferplus-{k + 1}") for k, label in enumerate(votes)]
        parts = path.relative_to(folder).parts
        yield ImportItem(str(path), path.name, lambda path=path: read_file(path), ballot, "ferplus", parts)


def _refused(reason: str) -> Callable[[], bytes]:
    def read() -> bytes:
        raise ImportRefused(reason)

    return read


def _csv_items(path: Path, labels: Sequence[str], annotator: str, notes: set[str]) -> Iterator[ImportItem]:
    """The files a labels CSV lists (relative to its folder), with the label and group of their row."""
    if path.stat().st_size > MAX_CSV_BYTES:
        raise ImportRefused(f"labels CSV is {_megabytes(path.stat().st_size)}: at most {_megabytes(MAX_CSV_BYTES)}")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = {name.strip().lower(): name for name in reader.fieldnames or [] if name}
        rows = list(reader)
    path_column = next((columns[name] for name in CSV_PATH_COLUMNS if name in columns), None)
    if path_column is None:
        raise ImportRefused("a labels CSV needs a header row with a 'path' column (and 'label', 'group' or 'subject')")
    label_column = columns.get("label")
    group_column = next((columns[name] for name in CSV_GROUP_COLUMNS if name in columns), None)
    root = path.parent.resolve()
    for number, row in enumerate(rows, start=2):
        relative = (row.get(path_column) or "").strip()
        source = f"{path}:{number}"
        file = (root / relative).resolve()
        if not relative or not file.is_relative_to(root):
            yield ImportItem(source, None, _refused("the CSV row names no file inside the CSV's folder"))
            continue
        votes: list[tuple[str, str]] = []
        label = (row.get(label_column) or "").strip() if label_column else ""
        if label and normalise_label(label) in labels:
            votes = [(normalise_label(label), annotator)]
        elif label:
            notes.add(f"label {label!r} in {path.name} is not a label of the set; its images were imported unlabelled")
        group = ((row.get(group_column) or "").strip() or None) if group_column else None
        parts = file.relative_to(root).parts
        yield ImportItem(str(file), file.name, lambda file=file: read_file(file), votes, parts=parts, group=group)


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
                    yield ImportItem(str(file), file.name, lambda file=file: read_file(file), votes, parts=parts)
            elif path.is_file() and zipfile.is_zipfile(path):
                yield from _zip_items(path, labels_from_folders, labels, annotator, notes)
            elif path.is_file() and path.suffix.lower() == ".csv":
                yield from _csv_items(path, labels, annotator, notes)
            elif path.is_file():
                yield ImportItem(str(path), path.name, lambda path=path: read_file(path), parts=(path.name,))
            else:
                report.skipped.append((str(path), "no such file or folder"))
        except (OSError, ValueError, zipfile.BadZipFile, csv.Error) as error:
            report.skipped.append((str(path), plain_reason(error)))
    report.notes.extend(sorted(notes))


def import_paths(
    store: StoreQueries,
    paths: Sequence[str | Path],
    labels_from_folders: bool = False,
    annotator: str = "import",
    progress: Callable[[int, str], None] | None = None,
    group_by: str | None = None,
) -> ImportReport:
    """Import everything under ``paths`` into ``store``; never stops on a bad file.

    ``group_by`` is checked before anything is read: a bad pattern raises ``GroupRuleError`` (plain words).
    """
    rule = GroupRule.parse(group_by) if group_by is not None else None
    report = ImportReport()
    ungrouped = 0
    start = time.perf_counter()
    for done, item in enumerate(iter_items(paths, labels_from_folders, store.labels, annotator, report), start=1):
        group = rule.group_of(item.parts, labels_from_folders) if rule is not None else item.group
        try:
            result = store.ingest(item.read(), item.source, item.filename, item.votes, item.origin, group)
        except Exception as error:  # one bad file must not stop the rest; it is reported instead
            report.no_face += isinstance(error, NoFaceFoundError)
            report.skipped.append((item.source, plain_reason(error)))
        else:
            ungrouped += rule is not None and group is None
            report.added += result.added
            report.already_present += not result.added
            report.label_events += result.label_events
            report.faces += result.faces
            report.whole += result.whole
        if progress is not None:
            progress(done, item.source)
    if ungrouped:
        report.notes.append(f"{ungrouped} images matched no --group-by {rule.text!r}: each is a group of its own")
    report.seconds = time.perf_counter() - start
    return report
