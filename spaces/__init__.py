"""The Hugging Face Space bundle: build a self-contained Space folder and push it (``tsnet space build|push``).

``runtime.py`` and ``app.py`` are templates copied into the bundle; they are not imported from here.
"""

from .bundle import SpaceBuild, build_space, push_space, requirements_lines, space_metadata

__all__ = ["SpaceBuild", "build_space", "push_space", "requirements_lines", "space_metadata"]
