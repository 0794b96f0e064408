"""The store's schema, created and migrated by code.

Migrations are numbered and append-only: never edit one that has shipped, add the next number.
Each runs in its own ``BEGIN IMMEDIATE`` transaction together with its row in ``schema_migrations``
(and ``PRAGMA user_version``), so a crash leaves it either fully applied or not at all, and two
processes opening a new database at once cannot both apply it (the second sees the record and skips).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import sqlite_utils

from ._db import write_transaction

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]


def _v1_core_tables(db: sqlite_utils.Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["images"].create(
        {
            "id": str,  # SHA-256 of the file's bytes: the content address
            "filename": str,  # the user's name, metadata only, never a path
            "source": str,
            "media_type": str,
            "original": str,  # path of the stored bytes, relative to the media folder
            "size_bytes": int,
            "width": int,
            "height": int,
            "face_count": int,  # faces the detector found (0 without a detector: whole image used)
            "added_at": str,
            "split": str,  # NULL until the first label; never changed afterwards
            "split_class": str,  # the label that decided the split (the stratum)
            "split_at": str,
        },
        pk="id",
        not_null=["original", "size_bytes", "added_at"],
    )
    db["faces"].create(
        {"image_id": str, "face_index": int, "box": str, "crop": str, "detector": str},
        pk=("image_id", "face_index"),
        foreign_keys=[("image_id", "images", "id")],
        not_null=["crop"],
    )
    db["label_events"].create(
        {
            "id": int,
            "uid": str,  # makes a retried write idempotent
            "image_id": str,
            "label": str,
            "annotator": str,
            "created_at": str,
            "undone_at": str,
            "origin": str,  # "annotate", "import", "ferplus"
        },
        pk="id",
        foreign_keys=[("image_id", "images", "id")],
        not_null=["uid", "image_id", "label", "annotator", "created_at"],
    )
    db["label_events"].create_index(["uid"], unique=True)
    db["label_events"].create_index(["image_id", "annotator"])
    db["label_events"].create_index(["annotator"])
    db["images"].create_index(["split_class", "split"])


def _v2_prediction_cache(db: sqlite_utils.Database) -> None:
    db["predictions"].create(
        {"image_id": str, "model_version": str, "probabilities": str, "created_at": str},
        pk=("image_id", "model_version"),
        foreign_keys=[("image_id", "images", "id")],
    )


def _v3_split_groups(db: sqlite_utils.Database) -> None:
    """Columns only: every existing split, split class and row stays exactly as it was."""
    images = db["images"]
    images.add_column("phash", bytes)  # 256-bit dHash of the primary crop (labeling.groups); NULL until computed
    images.add_column("split_group", str)  # images of one group share a split; NULL: the image is its own group
    images.add_column("parent", str)  # for the second and later faces of a photo: that photo's id
    images.create_index(["split_group"])
    images.create_index(["parent"])


MIGRATIONS: tuple[tuple[int, str, Callable[[sqlite_utils.Database], None]], ...] = (
    (1, "core tables", _v1_core_tables),
    (2, "prediction cache", _v2_prediction_cache),
    (3, "split groups and near-duplicate hashes", _v3_split_groups),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def schema_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database) -> int:
    """Apply pending migrations in order; refuse a database written by newer code."""
    if not db["schema_migrations"].exists():
        write_transaction(
            db,
            lambda d: d["schema_migrations"].create(
                {"version": int, "name": str, "applied_at": str}, pk="version", if_not_exists=True
            ),
        )
    current = schema_version(db)
    if current > SCHEMA_VERSION:
        raise RuntimeError(f"database schema {current} is newer than this code ({SCHEMA_VERSION}); upgrade tsnet")
    for version, name, apply in MIGRATIONS:
        if version <= current:
            continue

        def step(d: sqlite_utils.Database, version: int = version, name: str = name, apply=apply) -> None:
            if d.execute("SELECT 1 FROM schema_migrations WHERE version = ?", [version]).fetchone():
                return  # another process applied it while we waited for the lock
            apply(d)
            applied_at = datetime.now(timezone.utc).isoformat()
            d["schema_migrations"].insert({"version": version, "name": name, "applied_at": applied_at})
            d.execute(f"PRAGMA user_version = {version}")

        write_transaction(db, step)
    return schema_version(db)
