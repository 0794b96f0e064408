"""Publishing to the Hugging Face Hub: push a folder as one commit, pull a snapshot back, with retries.

Why a wrapper over ``huggingface_hub``: the retrain loop and the Space publish unattended, so transient Hub trouble
(connection errors, 5xx, 429) must be retried with exponential backoff and a final failure must surface as one clear
:class:`PublishError` instead of whichever transport exception the client raised. The token comes from the caller or
``HF_TOKEN`` only (never a stored login, so what publishes is explicit) and is never logged or put in messages.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # before huggingface_hub reads its constants

from huggingface_hub import HfApi, constants, snapshot_download  # noqa: E402
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled  # noqa: E402

from ..registry.model_card import write_model_card  # noqa: E402

__all__ = ["PublishError", "PushResult", "push_folder", "pull_folder", "write_model_card", "DEFAULT_RETRIES"]

logger = logging.getLogger(__name__)

DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 2.0
MAX_BACKOFF = 60.0
RETRY_STATUS = frozenset({408, 429})
LIBRARY_NAME = "tsnet-studio"

T = TypeVar("T")


class PublishError(RuntimeError):
    """The Hub could not be reached or refused the request (after the retries, for transient failures)."""


@dataclass(frozen=True)
class PushResult:
    """Where a push landed; ``str()`` gives the commit URL."""

    repo_id: str
    repo_type: str
    commit_oid: str
    commit_url: str

    def __str__(self) -> str:
        return self.commit_url


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection/timeout exception types of whichever HTTP stack the installed huggingface_hub uses."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name, attribute in (("httpx2", "TransportError"), ("httpx", "TransportError")):
        try:
            module = __import__(module_name)
            found.append(getattr(module, attribute))
        except (ImportError, AttributeError):
            pass
    try:
        import requests

        found += [requests.ConnectionError, requests.Timeout]
    except ImportError:
        pass
    return tuple(found)


_TRANSPORT_ERRORS = _transport_errors()


def _status(error: HfHubHTTPError) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _is_transient(error: BaseException) -> bool:
    """Worth retrying: network trouble, 5xx, 408 and 429. Auth, not-found and validation errors are not."""
    if isinstance(error, OfflineModeIsEnabled):
        return False
    if isinstance(error, HfHubHTTPError):
        status = _status(error)
        return status is not None and (status >= 500 or status in RETRY_STATUS)
    if isinstance(error, LocalEntryNotFoundError):
        return True  # snapshot_download's wrapper around "could not reach the Hub"
    return isinstance(error, _TRANSPORT_ERRORS)


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _describe(error: BaseException, token: str | None) -> str:
    status = _status(error) if isinstance(error, HfHubHTTPError) else None
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    prefix = f"HTTP {status}: " if status else f"{type(error).__name__}: "
    return _scrub(prefix + first_line, token)


def _resolve_token(token: str | None, required: bool) -> str | None:
    token = token or os.environ.get("HF_TOKEN") or None
    if token is None and required:
        raise PublishError("No Hugging Face token: pass token= or set the HF_TOKEN environment variable")
    return token


def _keep_telemetry_off() -> None:
    constants.HF_HUB_DISABLE_TELEMETRY = True


def _with_retries(
    action: Callable[[], T], *, what: str, retries: int, backoff: float, token: str | None, endpoint: str | None
) -> T:
    """Run ``action``; on transient errors sleep backoff, 2*backoff, ... (capped) and retry ``retries`` times."""
    if retries < 0:
        raise ValueError("retries must be >= 0")
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except PublishError:
            raise
        except Exception as error:
            where = endpoint or constants.ENDPOINT
            if not _is_transient(error):
                hint = " (check the token and its write access)" if _status_of(error) in (401, 403) else ""
                raise PublishError(f"{what} on {where} failed: {_describe(error, token)}{hint}") from error
            if attempt == attempts:
                raise PublishError(
                    f"{what} on {where} failed after {attempts} attempt(s): {_describe(error, token)}"
                ) from error
            delay = min(MAX_BACKOFF, backoff * 2 ** (attempt - 1))
            logger.warning(
                "%s failed (attempt %d/%d): %s; retrying in %.1fs",
                what,
                attempt,
                attempts,
                _describe(error, token),
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def _status_of(error: BaseException) -> int | None:
    return _status(error) if isinstance(error, HfHubHTTPError) else None


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "model",
    commit_message: str,
    commit_description: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool | None = None,
    space_sdk: str | None = None,
    allow_patterns: Sequence[str] | None = None,
    ignore_patterns: Sequence[str] | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
) -> PushResult:
    """Upload ``folder`` to ``repo_id`` as one commit, creating the repo if it does not exist.

    Transient failures retry the whole create+upload with exponential backoff. Caveat: if the Hub applied a commit
    but the answer was lost, the retry makes a second commit with the same content (harmless, visible in history).
    ``space_sdk`` defaults to "gradio" for Spaces (the Hub requires one when creating a Space).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    if not commit_message.strip():
        raise ValueError("commit_message must not be empty")
    _keep_telemetry_off()
    token = _resolve_token(token, required=True)
    if repo_type == "space" and space_sdk is None:
        space_sdk = "gradio"
    api = HfApi(endpoint=endpoint, token=token, library_name=LIBRARY_NAME)

    def attempt() -> PushResult:
        api.create_repo(repo_id, repo_type=repo_type, exist_ok=True, private=private, space_sdk=space_sdk)
        info = api.upload_folder(
            folder_path=folder,
            repo_id=repo_id,
            repo_type=repo_type,
            commit_message=commit_message,
            commit_description=commit_description,
            allow_patterns=list(allow_patterns) if allow_patterns is not None else None,
            ignore_patterns=list(ignore_patterns) if ignore_patterns is not None else None,
        )
        return PushResult(repo_id=repo_id, repo_type=repo_type, commit_oid=info.oid, commit_url=info.commit_url)

    result = _with_retries(
        attempt,
        what=f"Pushing {folder} to {repo_type} repo {repo_id}",
        retries=retries,
        backoff=backoff,
        token=token,
        endpoint=endpoint,
    )
    logger.info("Pushed %s to %s (%s)", folder, repo_id, result.commit_oid)
    return result


def pull_folder(
    repo_id: str,
    dest: str | Path,
    *,
    repo_type: str = "model",
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    allow_patterns: Sequence[str] | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
) -> Path:
    """Download a snapshot of ``repo_id`` (at ``revision``) into ``dest`` and return ``dest``.

    A token is optional here (public repos); ``HF_TOKEN`` is used when set, a stored login never is.
    """
    _keep_telemetry_off()
    token = _resolve_token(token, required=False)
    dest = Path(dest)

    def attempt() -> Path:
        path = snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=revision,
            local_dir=dest,
            token=token if token is not None else False,
            endpoint=endpoint,
            allow_patterns=list(allow_patterns) if allow_patterns is not None else None,
        )
        return Path(path)

    return _with_retries(
        attempt,
        what=f"Pulling {repo_type} repo {repo_id}" + (f"@{revision}" if revision else ""),
        retries=retries,
        backoff=backoff,
        token=token,
        endpoint=endpoint,
    )
