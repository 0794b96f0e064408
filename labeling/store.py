"""AnnotationStore: images, label history, splits and predictions in one SQLite file plus a media folder."""

from __future__ import annotations

import io
import json
import threading
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import sqlite_utils
from PIL import Image

from core.labels import default_labels, normalise_label

from ._db import connect, retrying, write_transaction
from ._schema import migrate
from .groups import HashIndex, perceptual_hash
from .media import FaceFinder, FoundFace, MediaFolder, content_id, decode_image, find_faces, kept_face
from .queries import Ingested
from .records import FaceRecord, ImageRecord, LabelEvent, Sample
from .splits import SPLITS, choose_split
from .votes import Tally, Vote, tally

__all__ = [
    "AnnotationStore",
    "AnnotatorNameError",
    "LabelNotInSetError",
    "MAX_ANNOTATOR_LENGTH",
    "UnknownImageError",
    "check_annotator",
]

MAX_ANNOTATOR_LENGTH = 100  # a name, not a document: stats serves every annotator's name to the app
MAX_FILENAME_LENGTH = 255  # what most file systems allow; longer "names" are kept shortened


class UnknownImageError(ValueError):
    """No image with that id is in the store."""


class LabelNotInSetError(ValueError):
    """A label outside the store's label set."""


class AnnotatorNameError(ValueError):
    """An annotator name that is empty, too long or holds control characters."""


def check_annotator(name: object) -> str:
    """The stripped name, or a plain :class:`AnnotatorNameError` saying what is wrong with it."""
    if not isinstance(name, str) or not name.strip():
        raise AnnotatorNameError("an annotator name is required")
    name = name.strip()
    if len(name) > MAX_ANNOTATOR_LENGTH:
        raise AnnotatorNameError(f"annotator names are at most {MAX_ANNOTATOR_LENGTH} characters, not {len(name)}")
    if any(unicodedata.category(character).startswith("C") for character in name):
        raise AnnotatorNameError("annotator names cannot contain control or invisible format characters")
    return name


def _short_id(image_id: object) -> str:
    text = str(image_id)
    return repr(text if len(text) <= 16 else text[:12] + "…")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class _NewImage(NamedTuple):
    """A new photo's rows (the photo, then each further face) and face rows, before they are added."""

    rows: list[dict[str, Any]]
    face_rows: list[dict[str, Any]]
    detected: int  # faces the detector found (0 when the photo was used whole)
    whole: bool


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _detect(image: Image.Image, detect_faces: FaceFinder) -> list[tuple[FoundFace, Image.Image]]:
    """Faces largest first with their aligned crops (the crop of the second and later faces is a new image)."""
    found = [(tuple(float(v) for v in box), crop) for box, crop in detect_faces(image)]
    found.sort(key=lambda item: -(item[0][2] - item[0][0]) * (item[0][3] - item[0][1]))
    return [(FoundFace(box, kept_face(crop)), crop) for box, crop in found]  # type: ignore[arg-type]


class AnnotationStore:
    """One annotation database: ``AnnotationStore(path, labels=None)``; see ``labeling`` for the tour.

    Safe to share between threads (one connection behind a lock) and between processes (WAL, immediate
    write transactions, retry on SQLITE_BUSY). ``labels=None`` uses the set recorded when the database
    was created (``core.labels.default_labels()`` for a new one), so a later ``TSNET_LABELS`` change
    cannot silently reorder class indices.
    """

    def __init__(
        self,
        path: str | Path,
        labels: Sequence[str] | None = None,
        detect_faces: FaceFinder | None = None,
        classifier: Any = None,
        teacher: Any = None,
        media_dir: str | Path | None = None,
        durable: bool = True,
    ) -> None:
        self.path = Path(path)
        self.media = MediaFolder(
            Path(media_dir) if media_dir else self.path.parent / f"{self.path.stem}-media", durable
        )
        self.detect_faces = detect_faces
        self.classifier = classifier
        self.teacher = teacher
        self._lock = threading.RLock()
        self._hashes = HashIndex()
        self.db: sqlite_utils.Database = connect(self.path)
        migrate(self.db)
        self.labels: tuple[str, ...] = self._settle_labels(labels)
        self._backfill_hashes()

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> AnnotationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return retrying(lambda: list(self.db.query(sql, params or [])))

    def _write(self, body):
        with self._lock:
            return write_transaction(self.db, body)

    def _settle_labels(self, requested: Sequence[str] | None) -> tuple[str, ...]:
        wanted = tuple(normalise_label(name) for name in requested) if requested is not None else None

        def body(db: sqlite_utils.Database) -> tuple[str, ...]:
            row = db.execute("SELECT value FROM meta WHERE key = 'labels'").fetchone()
            if row is None:
                chosen = wanted or default_labels()
                db["meta"].insert({"key": "labels", "value": json.dumps(list(chosen))})
                return tuple(chosen)
            return tuple(json.loads(row[0]))

        recorded = self._write(body)
        if wanted is not None and wanted != recorded:
            raise ValueError(f"{self.path} was created with labels {list(recorded)}, not {list(wanted)}")
        return recorded

    def check_label(self, label: str) -> str:
        """The canonical name of ``label``; refuses names outside the label set (aliases accepted)."""
        if not isinstance(label, str) or not label.strip():
            raise LabelNotInSetError(f"no label given; choose one of: {', '.join(self.labels)}")
        if len(label) > 64:
            raise LabelNotInSetError(f"that is not a label of this store; choose one of: {', '.join(self.labels)}")
        canonical = normalise_label(label)
        if canonical not in self.labels:
            raise LabelNotInSetError(f"label {label!r} is not in this store's label set: {', '.join(self.labels)}")
        return canonical

    # -- images --------------------------------------------------------------------------------------
    def add_image(self, data: bytes | Path, source: str | None = None, filename: str | None = None) -> str:
        """Store an image once by content; returns its id (SHA-256). Re-adding the same bytes is a no-op."""
        if isinstance(data, Path):
            filename = filename or data.name
            source = source if source is not None else str(data)
            data = data.read_bytes()
        return self.ingest(data, source, filename).image_id

    def ingest(
        self,
        data: bytes,
        source: str | None,
        filename: str | None,
        votes: Iterable[tuple[str, str]] = (),
        origin: str = "import",
        group: str | None = None,
    ) -> Ingested:
        """Add ``data`` and, per (label, annotator) in ``votes``, a label unless that annotator already has one.

        Returns :class:`Ingested`: the image id, whether it was new, label events written, how many faces a
        new photo gave and whether it was used whole. With a face detector every face becomes a sample: the
        largest is the photo's own crop (what a label on the photo refers to), each further face is stored as an
        image of its own (its aligned crop, linked to the photo by ``parent``) that gets the same votes and the
        same split group. ``group`` names the split group (images of one group share a split); without it a
        near-duplicate's group is joined. Files are written before the one transaction that adds the rows, so
        a crash leaves a consistent store.
        """
        votes = [(self.check_label(label), check_annotator(annotator)) for label, annotator in votes]
        group = (group.strip()[:MAX_FILENAME_LENGTH] or None) if isinstance(group, str) else None
        if filename is not None and len(filename) > MAX_FILENAME_LENGTH:
            filename = filename[: MAX_FILENAME_LENGTH - 1] + "…"
        image_id = content_id(data)
        if self.has_image(image_id):
            if not votes and group is None:
                return Ingested(image_id, False, 0, 0, False)
            new = _NewImage([], [], 0, False)
        else:
            new = self._store_files(data, image_id, source, filename, group)
        added, written = self._write(lambda db: self._record(db, image_id, new, group, votes, origin))
        return Ingested(image_id, added, written, new.detected if added else 0, new.whole and added)

    def _store_files(
        self, data: bytes, image_id: str, source: str | None, filename: str | None, group: str | None
    ) -> _NewImage:
        """Decode a new photo, find its faces and write its media files; the rows it will add, not yet added."""
        decoded = decode_image(data)
        detector = self.detect_faces
        crop_rule = getattr(detector, "is_face_crop", None)
        whole = detector is None or bool(crop_rule is not None and crop_rule(decoded.image))
        found = [] if whole else _detect(decoded.image, detector)  # type: ignore[arg-type]
        faces = [face for face, _ in found] or find_faces(decoded.image, None)  # none: the whole picture
        name = None if whole else getattr(detector, "__name__", "custom")
        digest = perceptual_hash(faces[0].crop)
        own_group = group or self._near_duplicate_group(digest, image_id)
        original = self.media.write_original(image_id, decoded.media_type, data)
        face_rows = [self._face_row(image_id, index, face, name) for index, face in enumerate(faces)]
        rows = [
            {
                "id": image_id,
                "filename": filename,
                "source": source,
                "media_type": decoded.media_type,
                "original": original,
                "size_bytes": len(data),
                "width": decoded.width,
                "height": decoded.height,
                "face_count": None if whole else len(found),
                "added_at": _now(),
                "phash": digest,
                "split_group": own_group,
                "parent": None,
            }
        ]
        for number, (face, crop) in enumerate(found[1:], start=2):
            rows.append(self._face_image(crop, face, image_id, own_group or image_id, source))
            rows[-1]["filename"] = f"face {number} of {filename}"[:MAX_FILENAME_LENGTH] if filename else None
            face_rows.append(self._face_row(rows[-1]["id"], 0, face, name))
        return _NewImage(rows, face_rows, len(found), whole)

    def _record(
        self,
        db: sqlite_utils.Database,
        image_id: str,
        new: _NewImage,
        group: str | None,
        votes: Sequence[tuple[str, str]],
        origin: str,
    ) -> tuple[bool, int]:
        """In one transaction: the new rows (unless another writer added the image first), or the stored image
        joining ``group``; then the votes on the image and its further faces. Returns (added, label events)."""
        added = False
        if new.rows and not db.execute("SELECT 1 FROM images WHERE id = ?", [image_id]).fetchone():
            rows = [
                row for row in new.rows if not db.execute("SELECT 1 FROM images WHERE id = ?", [row["id"]]).fetchone()
            ]
            kept = {row["id"] for row in rows}
            db["images"].insert_all(rows)
            db["faces"].insert_all(face for face in new.face_rows if face["image_id"] in kept)
            added = True
        elif group is not None:
            self._join_group(db, image_id, group)
        targets = [image_id] + [r[0] for r in db.execute("SELECT id FROM images WHERE parent = ?", [image_id])]
        written = sum(
            self._insert_label(db, target, label, annotator, origin, uuid.uuid4().hex, True, searched=added) is not None
            for target in targets
            for label, annotator in votes
        )
        return added, written

    def _face_image(
        self, crop: Image.Image, face: FoundFace, parent: str, group: str, source: str | None
    ) -> dict[str, Any]:
        """The row of a photo's second or later face: its aligned crop stored as an image of its own."""
        data = _png(crop)
        face_id = content_id(data)
        return {
            "id": face_id,
            "filename": None,
            "source": source,
            "media_type": "PNG",
            "original": self.media.write_original(face_id, "PNG", data),
            "size_bytes": len(data),
            "width": crop.width,
            "height": crop.height,
            "face_count": 1,
            "added_at": _now(),
            "phash": perceptual_hash(face.crop),
            "split_group": group,
            "parent": parent,
        }

    def _near_duplicate_group(self, digest: bytes, image_id: str) -> str | None:
        """The split group of a stored near-duplicate of a crop with hash ``digest``, if any.

        The nearest one whose group already has a split wins (so the new image lands with it), else the nearest.
        """
        with self._lock:
            retrying(lambda: self._refresh_hashes(self.db))
            groups = []
            for other in self._hashes.near(digest, exclude=image_id):
                rows = self._read("SELECT coalesce(split_group, id) AS grp FROM images WHERE id = ?", [other])
                if rows:
                    groups.append(rows[0]["grp"])
            for group in groups:
                if retrying(lambda group=group: self._group_split(self.db, group)) is not None:
                    return group
        return groups[0] if groups else None

    def _refresh_hashes(self, db: sqlite_utils.Database) -> None:
        rows = db.execute(
            "SELECT rowid, id, phash FROM images WHERE rowid > ? AND phash IS NOT NULL ORDER BY rowid",
            [self._hashes.last_rowid],
        ).fetchall()
        self._hashes.refresh(rows)

    def _join_group(self, db: sqlite_utils.Database, image_id: str, group: str) -> None:
        """Put a stored image that is its own group (and its faces) into ``group``, unless splits disagree.

        An image already in a group (a near-duplicate's, an earlier import's) stays there, and an image whose
        split differs from the split ``group`` already has keeps both: frozen splits are never moved.
        """
        row = db.execute("SELECT split_group FROM images WHERE id = ?", [image_id]).fetchone()
        if row is None or row[0] is not None:
            return
        theirs, mine = self._group_split(db, group), self._group_split(db, image_id)
        if theirs is not None and mine is not None and theirs != mine:
            return
        db.execute(
            "UPDATE images SET split_group = ? WHERE id = ? OR (parent = ? AND split_group = ?)",
            [group, image_id, image_id, image_id],
        )

    @staticmethod
    def _group_split(db: sqlite_utils.Database, group: str) -> str | None:
        row = db.execute(
            "SELECT split FROM images WHERE (split_group = ? OR id = ?) AND split IS NOT NULL LIMIT 1", [group, group]
        ).fetchone()
        return row[0] if row else None

    def _split_for(self, db: sqlite_utils.Database, image_id: str, label: str, searched: bool = False) -> str:
        """The split of an image's group (or of a near-duplicate's), else the stratified choice for ``label``.

        ``searched``: the image was added in this transaction, its near-duplicates looked up just before.
        """
        group, digest = db.execute(
            "SELECT coalesce(split_group, id), phash FROM images WHERE id = ?", [image_id]
        ).fetchone()
        split = self._group_split(db, group)
        if split is None and digest is not None and not searched:
            self._refresh_hashes(db)
            for other in self._hashes.near(digest, exclude=image_id):
                (theirs,) = db.execute("SELECT coalesce(split_group, id) FROM images WHERE id = ?", [other]).fetchone()
                split = self._group_split(db, theirs)
                if split is not None:
                    break
        if split is None:
            counts = dict(
                db.execute(
                    "SELECT split, count(*) FROM images WHERE split_class = ? AND split IS NOT NULL GROUP BY split",
                    [label],
                ).fetchall()
            )
            split = choose_split(counts)
        return split

    def _backfill_hashes(self) -> None:
        """Hash the primary crop of images stored before hashes existed (once; unreadable crops are left)."""
        rows = self._read(
            "SELECT i.id, f.crop FROM images i JOIN faces f ON f.image_id = i.id AND f.face_index = 0"
            " WHERE i.phash IS NULL"
        )
        for start in range(0, len(rows), 500):
            updates = []
            for row in rows[start : start + 500]:
                try:
                    with Image.open(self.media.resolve(row["crop"])) as crop:
                        updates.append((perceptual_hash(np.asarray(crop.convert("L"))), row["id"]))
                except (OSError, ValueError):
                    continue
            self._write(
                lambda db, updates=updates: db.conn.executemany("UPDATE images SET phash = ? WHERE id = ?", updates)
            )

    def _face_row(self, image_id: str, index: int, face: FoundFace, detector: str | None) -> dict[str, Any]:
        crop = self.media.write_crop(image_id, index, face.crop)
        box = json.dumps(list(face.box)) if face.box is not None else None
        return {"image_id": image_id, "face_index": index, "box": box, "crop": crop, "detector": detector}

    def has_image(self, image_id: str) -> bool:
        return bool(self._read("SELECT 1 AS found FROM images WHERE id = ?", [image_id]))

    def image(self, image_id: str) -> ImageRecord:
        rows = self._read("SELECT * FROM images WHERE id = ?", [image_id])
        if not rows:
            raise UnknownImageError(f"no image {_short_id(image_id)} in the store")
        row = rows[0]
        faces = tuple(
            FaceRecord(
                face["face_index"],
                tuple(json.loads(face["box"])) if face["box"] else None,
                self.media.resolve(face["crop"]),
            )
            for face in self._read("SELECT * FROM faces WHERE image_id = ? ORDER BY face_index", [image_id])
        )
        return ImageRecord(
            id=row["id"],
            filename=row["filename"],
            source=row["source"],
            media_type=row["media_type"],
            original=self.media.resolve(row["original"]),
            size_bytes=row["size_bytes"],
            width=row["width"],
            height=row["height"],
            face_count=row["face_count"],
            added_at=row["added_at"],
            split=row["split"],
            faces=faces,  # type: ignore[arg-type]
            group=row["split_group"] or row["id"],
            parent=row["parent"],
        )

    def image_ids(self) -> list[str]:
        """All image ids in the order they were added."""
        return [row["id"] for row in self._read("SELECT id FROM images ORDER BY rowid")]

    def crop_paths(self, image_ids: Sequence[str] | None = None) -> dict[str, Path]:
        """The primary (largest-face) crop of each image."""
        rows = self._read("SELECT image_id, crop FROM faces WHERE face_index = 0")
        wanted = set(image_ids) if image_ids is not None else None
        return {r["image_id"]: self.media.resolve(r["crop"]) for r in rows if wanted is None or r["image_id"] in wanted}

    # -- labels --------------------------------------------------------------------------------------
    def label(self, image_id: str, label: str, annotator: str, origin: str = "annotate") -> LabelEvent:
        """Record ``annotator``'s label for an image (kept forever in the history); returns the event."""
        canonical = self.check_label(label)
        annotator = check_annotator(annotator)
        uid = uuid.uuid4().hex  # fixed across retries, so a redone transaction cannot add a second event

        def body(db: sqlite_utils.Database) -> int:
            if not db.execute("SELECT 1 FROM images WHERE id = ?", [image_id]).fetchone():
                raise UnknownImageError(f"no image {_short_id(image_id)} in the store")
            event_id = self._insert_label(db, image_id, canonical, annotator, origin, uid, False)
            assert event_id is not None
            return event_id

        event_id = self._write(body)
        return LabelEvent.from_row(self._read("SELECT * FROM label_events WHERE id = ?", [event_id])[0])

    def _insert_label(
        self,
        db: sqlite_utils.Database,
        image_id: str,
        label: str,
        annotator: str,
        origin: str,
        uid: str,
        only_if_new: bool,
        searched: bool = False,
    ) -> int | None:
        if (
            only_if_new
            and db.execute(
                "SELECT 1 FROM label_events WHERE image_id = ? AND annotator = ? AND undone_at IS NULL",
                [image_id, annotator],
            ).fetchone()
        ):
            return None
        db.execute(
            "INSERT OR IGNORE INTO label_events (uid, image_id, label, annotator, created_at, origin)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [uid, image_id, label, annotator, _now(), origin],
        )
        event_id = db.execute("SELECT id FROM label_events WHERE uid = ?", [uid]).fetchone()[0]
        if db.execute("SELECT split FROM images WHERE id = ?", [image_id]).fetchone()[0] is None:
            db.execute(
                "UPDATE images SET split = ?, split_class = ?, split_at = ? WHERE id = ? AND split IS NULL",
                [self._split_for(db, image_id, label, searched), label, _now(), image_id],
            )
        return int(event_id)

    def undo_last(self, annotator: str) -> LabelEvent | None:
        """Withdraw ``annotator``'s most recent live label (kept in history as undone); None if none is left."""
        annotator = check_annotator(annotator)

        def body(db: sqlite_utils.Database) -> int | None:
            row = db.execute(
                "SELECT id FROM label_events WHERE annotator = ? AND undone_at IS NULL ORDER BY id DESC LIMIT 1",
                [annotator],
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE label_events SET undone_at = ? WHERE id = ?", [_now(), row[0]])
            return int(row[0])

        event_id = self._write(body)
        if event_id is None:
            return None
        return LabelEvent.from_row(self._read("SELECT * FROM label_events WHERE id = ?", [event_id])[0])

    def history(self, image_id: str | None = None, annotator: str | None = None) -> list[LabelEvent]:
        """Every label event, undone ones included, oldest first."""
        clauses, params = [], []
        if image_id is not None:
            clauses.append("image_id = ?")
            params.append(image_id)
        if annotator is not None:
            clauses.append("annotator = ?")
            params.append(annotator)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [LabelEvent.from_row(r) for r in self._read(f"SELECT * FROM label_events {where} ORDER BY id", params)]

    def tallies(self, image_ids: Sequence[str] | None = None) -> dict[str, Tally]:
        """Each image's standing votes and current label (images without live votes are left out)."""
        # SQLite returns the bare columns of the row holding max(id): each annotator's latest live vote.
        rows = self._read(
            "SELECT image_id, annotator, label, max(id) AS id FROM label_events"
            " WHERE undone_at IS NULL GROUP BY image_id, annotator"
        )
        wanted = set(image_ids) if image_ids is not None else None
        grouped: dict[str, list[Vote]] = {}
        for row in rows:
            if wanted is None or row["image_id"] in wanted:
                grouped.setdefault(row["image_id"], []).append(Vote(row["annotator"], row["label"], row["id"]))
        return {image_id: tally(votes) for image_id, votes in grouped.items()}

    def _tally(self, image_id: str) -> Tally:
        rows = self._read(
            "SELECT annotator, label, max(id) AS id FROM label_events"
            " WHERE image_id = ? AND undone_at IS NULL GROUP BY annotator",
            [image_id],
        )
        return tally(Vote(r["annotator"], r["label"], r["id"]) for r in rows)

    def votes(self, image_id: str) -> dict[str, int]:
        """The FER+-style vote distribution: label -> annotators whose latest live label it is."""
        return self._tally(image_id).votes

    def current_label(self, image_id: str) -> str | None:
        return self._tally(image_id).current

    def groups(self, image_ids: Sequence[str] | None = None) -> dict[str, str]:
        """Each image's split group: its user group, a near-duplicate's group, or its own id."""
        rows = self._read("SELECT id, coalesce(split_group, id) AS grp FROM images")
        wanted = set(image_ids) if image_ids is not None else None
        return {r["id"]: r["grp"] for r in rows if wanted is None or r["id"] in wanted}

    def split_of(self, image_id: str) -> str | None:
        rows = self._read("SELECT split FROM images WHERE id = ?", [image_id])
        if not rows:
            raise UnknownImageError(f"no image {_short_id(image_id)} in the store")
        return rows[0]["split"]

    # -- training view -------------------------------------------------------------------------------
    def samples(self, split: str) -> list[Sample]:
        """Labelled images of ``split`` with their current label index and vote-share soft target."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        rows = self._read(
            "SELECT id, coalesce(split_group, id) AS grp FROM images WHERE split = ? ORDER BY rowid", [split]
        )
        ids = [r["id"] for r in rows]
        tallies = self.tallies(ids)
        crops = self.crop_paths(ids)
        samples = []
        for row in rows:
            image_id = row["id"]
            result = tallies.get(image_id)
            if result is None or result.current not in self.labels:
                continue  # every label withdrawn: keeps its split, sits out of training
            label_index = self.labels.index(result.current)
            samples.append(Sample(image_id, crops[image_id], label_index, result.soft_target(self.labels), row["grp"]))
        return samples

    # -- queries for stats and the queue ---------------------------------------------------------------
    def image_splits(self) -> dict[str, str | None]:
        """Every image id with its split (None until its first label)."""
        return {row["id"]: row["split"] for row in self._read("SELECT id, split FROM images")}

    def annotator_activity(self) -> dict[str, dict[str, int]]:
        """Per annotator: label events, how many were undone, and distinct images labelled."""
        rows = self._read(
            "SELECT annotator, count(*) AS events, sum(undone_at IS NOT NULL) AS undone,"
            " count(DISTINCT image_id) AS images FROM label_events GROUP BY annotator ORDER BY annotator"
        )
        return {
            row["annotator"]: {"events": row["events"], "undone": row["undone"], "images": row["images"]}
            for row in rows
        }

    def event_counts(self) -> dict[str, int]:
        """All label events (``events``) and the undone ones (``undone``)."""
        row = self._read("SELECT count(*) AS n, sum(undone_at IS NOT NULL) AS undone FROM label_events")[0]
        return {"events": row["n"], "undone": row["undone"] or 0}

    def stored_predictions(self, model_version: str) -> dict[str, np.ndarray]:
        """Cached probabilities (store label order) of one model version, by image id."""
        rows = self._read("SELECT image_id, probabilities FROM predictions WHERE model_version = ?", [model_version])
        return {row["image_id"]: np.asarray(json.loads(row["probabilities"]), dtype=np.float32) for row in rows}

    def save_predictions(self, model_version: str, probabilities: Mapping[str, Any]) -> None:
        """Cache probabilities (image id -> one row in store label order) for ``model_version``."""
        now = _now()
        rows = [
            {
                "image_id": image_id,
                "model_version": model_version,
                "probabilities": json.dumps(np.asarray(row).tolist()),
                "created_at": now,
            }
            for image_id, row in probabilities.items()
        ]
        self._write(lambda db: db["predictions"].insert_all(rows, replace=True))

    # -- facades over the single-job modules ---------------------------------------------------------
    def import_paths(
        self,
        paths: Sequence[str | Path],
        labels_from_folders: bool = False,
        annotator: str = "import",
        progress=None,
        group_by: str | None = None,
    ):
        from .importing import import_paths

        return import_paths(
            self,
            paths,
            labels_from_folders=labels_from_folders,
            annotator=annotator,
            progress=progress,
            group_by=group_by,
        )

    def next_to_label(self, n: int = 10, classifier: Any = None, annotator: str | None = None, teacher: Any = None):
        from .queue import next_to_label

        return next_to_label(self, n, classifier or self.classifier, annotator, teacher or self.teacher)

    def predictions(self, classifier: Any, image_ids: Sequence[str] | None = None, model_version: str | None = None):
        from .queue import cached_predictions

        return cached_predictions(self, classifier, image_ids, model_version)

    def stats(self) -> dict[str, Any]:
        from .stats import compute_stats

        return compute_stats(self)

    def export_dataset(self, image: str = "crop"):
        from .export import build_dataset_dict

        return build_dataset_dict(self, image=image)

    def export_folder(self, directory: str | Path, image: str = "crop") -> Path:
        from .export import export_folder

        return export_folder(self, directory, image=image)

    def push_dataset(
        self, repo_id: str, token: str | None = None, endpoint: str | None = None, private: bool | None = None
    ) -> str:
        from .export import push_dataset

        return push_dataset(self, repo_id, token=token, endpoint=endpoint, private=private)
