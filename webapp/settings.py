"""What the app reads from its environment, resolved once at start so handlers never touch ``os.environ``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from retrain.layout import DEFAULT_HOME, DataLayout

__all__ = ["Settings", "parse_users"]


def parse_users(text: str | None) -> dict[str, str]:
    """``"alice:pw,bob:pw2"`` -> {"alice": "pw", "bob": "pw2"}; a password may itself contain ':'."""
    users: dict[str, str] = {}
    for entry in (text or "").split(","):
        name, sep, password = entry.strip().partition(":")
        if name.strip() and sep and password:
            users[name.strip()] = password
    return users


def _names(text: str | None) -> frozenset[str]:
    return frozenset(name.strip() for name in (text or "").split(",") if name.strip())


@dataclass(frozen=True)
class Settings:
    """Data directory, credentials and optional paths; ``from_env`` is what ``tsnet serve`` and the Space use.

    Passwords are kept out of ``repr`` so a logged settings object never shows them.
    """

    home: Path = DEFAULT_HOME
    users: dict[str, str] = field(default_factory=dict, repr=False)  # local sign-in (TSNET_USERS)
    allowed_users: frozenset[str] = frozenset()  # Hugging Face accounts allowed on a Space (TSNET_ALLOWED_USERS)
    on_space: bool = False  # SPACE_ID is set: offer the Hugging Face login button
    push_repo: str | None = None  # Hub repository retrain pushes to (TSNET_HUB_REPO, read by retrain too)
    student_path: Path | None = None  # explicit weights folders; default: served version, else shipped
    teacher_path: Path | None = None
    title: str = "T-SNet Studio"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {
            "home": DataLayout.from_env(env).home,
            "users": parse_users(env.get("TSNET_USERS")),
            "allowed_users": _names(env.get("TSNET_ALLOWED_USERS")),
            "on_space": bool(env.get("SPACE_ID")),
            "push_repo": env.get("TSNET_HUB_REPO") or None,
            "student_path": Path(env["TSNET_STUDENT"]) if env.get("TSNET_STUDENT") else None,
            "teacher_path": Path(env["TSNET_TEACHER"]) if env.get("TSNET_TEACHER") else None,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def gated(self) -> bool:
        """Annotate, retrain and promote need a signed-in user once any credentials are configured."""
        return bool(self.users or self.allowed_users)

    @property
    def oauth(self) -> bool:
        """Hugging Face OAuth only works inside a Space; locally it would need a logged-in token."""
        return self.on_space and bool(self.allowed_users)
