"""core.atomic: a file is replaced whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.atomic import replacing, write_bytes_atomically


def test_a_write_replaces_the_file_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "file.bin"
    write_bytes_atomically(path, b"old")
    write_bytes_atomically(path, b"new", durable=True)
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["file.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "file.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), replacing(path) as temporary:
        temporary.write_text("half")
        raise RuntimeError("died mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["file.json"]
