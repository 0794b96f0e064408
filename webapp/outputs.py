"""Pictures the handlers return, written as complete files before Gradio serves them.

Gradio writes a returned PIL image into its cache at a path derived from the image's bytes, in place: two
requests that produce the same picture (two users predicting the same example photo) write the same file
while it is being downloaded, and a client receives a truncated answer. Files the handlers return are instead
encoded here once, written under a temporary name and renamed into place, and Gradio copies a returned file
into its cache the same atomic way, so a reader always sees a whole file.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

from PIL import Image

from core.atomic import write_bytes_atomically

__all__ = ["OutputFolder"]


class OutputFolder:
    """A folder in the system temp directory (where Gradio may serve from) holding answers by content hash."""

    def __init__(self, root: Path | None = None, image_format: str = "webp") -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="tsnet-answers-"))
        self.image_format = image_format

    def save(self, image: Image.Image | None) -> str | None:
        """The path of a complete file holding ``image`` (None stays None)."""
        if image is None:
            return None
        buffer = io.BytesIO()
        image.save(buffer, format=self.image_format)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / digest[:2] / f"{digest[2:20]}.{self.image_format}"
        if path.is_file():
            return str(path)
        write_bytes_atomically(path, data)
        return str(path)
