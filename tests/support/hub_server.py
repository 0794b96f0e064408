"""A small, faithful Hugging Face Hub stand-in for tests, plus the ``hub_server`` pytest fixture.

Why: the product publishes models, datasets and Spaces with the real ``huggingface_hub`` and ``datasets`` clients and
this machine has no internet. The stand-in speaks the protocol those clients use against huggingface.co (REST API,
NDJSON commits, Git LFS batch/upload/verify, ``resolve`` with ETag/X-Repo-Commit headers and redirects of LFS files to
a separate "CDN" origin) so the clients run unmodified. It is written against the installed client sources
(``huggingface_hub/_commit_api.py``, ``lfs.py``, ``file_download.py``, ``hf_api.py``), not against guesses.

Two servers run on 127.0.0.1: the Hub itself (``endpoint``) and a CDN/S3 look-alike on another port (``cdn_endpoint``)
that receives LFS uploads and serves LFS downloads, because the client treats another origin differently (drops the
token, takes metadata from the redirect) and we want that path exercised.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import mimetypes
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import pytest

__all__ = ["HubServer", "HubFile", "HubCommit", "hub_server", "point_clients_at"]

REPO_TYPE_BY_API_SEGMENT = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# The Hub stores files above 10 MB in LFS even without a matching .gitattributes rule.
DEFAULT_LFS_THRESHOLD = 10 * 1024 * 1024
# What huggingface.co writes as the first commit of a new repo (abridged, same semantics).
DEFAULT_GITATTRIBUTES = (
    "\n".join(
        f"{pattern} filter=lfs diff=lfs merge=lfs -text"
        for pattern in (
            "*.7z *.arrow *.bin *.bz2 *.ckpt *.ftz *.gz *.h5 *.joblib *.lfs.* *.mlmodel *.model *.msgpack *.npy *.npz"
            " *.onnx *.ot *.parquet *.pb *.pickle *.pkl *.pt *.pth *.rar *.safetensors saved_model/**/* *.tar.* *.tar"
            " *.tflite *.tgz *.wasm *.xz *.zip *.zst *tfevents*"
        ).split()
    )
    + "\n"
)
TREE_PAGE_SIZE = 1000
TREE_PAGE_SIZE_EXPANDED = 50
COMMITS_PAGE_SIZE = 50


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[0].lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class HubFile:
    """One file in a commit; contents live in the content-addressed object store under their sha256."""

    path: str
    size: int
    sha256: str
    lfs: bool

    @property
    def pointer(self) -> bytes:
        return _lfs_pointer(self.sha256, self.size)

    @property
    def blob_oid(self) -> str:
        """The git blob id: of the contents for regular files, of the pointer file for LFS files (as git does)."""
        return _git_blob_oid(self.pointer) if self.lfs else self._content_oid

    _content_oid: str = ""


@dataclass
class HubCommit:
    oid: str
    parent: str | None
    title: str
    description: str
    author: str
    date: datetime
    files: dict[str, HubFile]

    @property
    def message(self) -> str:
        return self.title + (f"\n\n{self.description}" if self.description else "")


@dataclass
class HubRepo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None
    created_at: datetime
    uid: str = field(default_factory=lambda: secrets.token_hex(12))
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, HubCommit] = field(default_factory=dict)
    lfs_oids: set[str] = field(default_factory=set)
    pull_requests: int = 0


class _HttpError(Exception):
    """Raised inside handlers; becomes a JSON error response with the Hub's X-Error-Code/X-Error-Message headers."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


@dataclass
class _Request:
    method: str
    path: str
    segments: list[str]  # still percent-encoded: revisions and tree paths are quoted with safe=""
    query: dict[str, list[str]]
    headers: Any
    body: bytes


@dataclass
class _Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status=status, body=json.dumps(data).encode(), headers=headers or {})


class _BoundServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that remembers its connections so ``stop()`` really cuts keep-alive clients off."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], hub: HubServer, role: str):
        self.hub = hub
        self.role = role
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self.connections_lock:
            self.connections.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self.connections_lock:
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _BoundServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature fixed by the base class
        """Silence per-request logging; the hub keeps its own request log for assertions."""

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        split = urlsplit(self.path)
        request = _Request(
            method=self.command,
            path=split.path,
            segments=[segment for segment in split.path.split("/") if segment],
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=self._read_body(),
        )
        response = self.server.hub._dispatch(request, self.server.role)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if "Content-Length" not in response.headers:
            self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Content-Type", response.content_type)
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve


@dataclass
class _Failure:
    status: int
    path_contains: str | None
    remaining: int


class HubServer:
    """In-process Hub stand-in. Start it, point the clients at ``endpoint`` with ``token``, inspect repos afterwards.

    Repos, commits, branches and tags live in memory; file contents live on disk under ``root`` (content-addressed by
    sha256), so 10+ MB LFS files do not sit in RAM twice.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        username: str = "tsnet-tester",
        token: str | None = None,
        lfs_threshold: int = DEFAULT_LFS_THRESHOLD,
    ):
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.token = token or f"hf_test{secrets.token_hex(16)}"
        self.read_token = f"hf_read{secrets.token_hex(16)}"
        self.lfs_threshold = lfs_threshold
        self.requests: list[tuple[str, str, int]] = []
        self.errors: list[str] = []
        self._repos: dict[tuple[str, str], HubRepo] = {}
        self._failures: list[_Failure] = []
        self._lock = threading.RLock()
        self._servers: list[_BoundServer] = []
        self._ports: tuple[int, int] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> HubServer:
        """Start (or restart on the same ports, to simulate the Hub coming back) both HTTP servers."""
        if self._servers:
            return self
        hub_port, cdn_port = self._ports or (0, 0)
        hub = _BoundServer(("127.0.0.1", hub_port), self, "hub")
        cdn = _BoundServer(("127.0.0.1", cdn_port), self, "cdn")
        self._ports = (hub.server_address[1], cdn.server_address[1])
        self._servers = [hub, cdn]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop both servers and cut open connections: the clients then see the Hub as unreachable."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()
            server.cut_connections()

    @property
    def running(self) -> bool:
        return bool(self._servers)

    @property
    def endpoint(self) -> str:
        if self._ports is None:
            raise RuntimeError("HubServer not started")
        return f"http://127.0.0.1:{self._ports[0]}"

    @property
    def cdn_endpoint(self) -> str:
        if self._ports is None:
            raise RuntimeError("HubServer not started")
        return f"http://127.0.0.1:{self._ports[1]}"

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test helpers

    def fail_next(self, n: int = 1, status: int = 503, *, path_contains: str | None = None) -> None:
        """Answer the next ``n`` requests (whose path contains ``path_contains``, if given) with ``status``."""
        with self._lock:
            self._failures.append(_Failure(status=status, path_contains=path_contains, remaining=n))

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def repo_files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[str]:
        """Paths in the repo at ``revision`` (including the ``.gitattributes`` the Hub creates with every repo)."""
        with self._lock:
            return sorted(self._commit_at(self._repo(repo_type, repo_id), revision).files)

    def read_file(self, repo_id: str, path: str, repo_type: str = "model", revision: str = "main") -> bytes:
        with self._lock:
            entry = self._commit_at(self._repo(repo_type, repo_id), revision).files[path]
        return (self.objects / entry.sha256).read_bytes()

    def file_is_lfs(self, repo_id: str, path: str, repo_type: str = "model", revision: str = "main") -> bool:
        with self._lock:
            return self._commit_at(self._repo(repo_type, repo_id), revision).files[path].lfs

    def commits(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[HubCommit]:
        """History of ``revision``, newest first (like ``list_repo_commits``)."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            return list(self._history(repo, self._commit_at(repo, revision)))

    def requests_matching(self, fragment: str) -> list[tuple[str, str, int]]:
        return [request for request in self.requests if fragment in request[1]]

    # ------------------------------------------------------------------ storage

    def _repo(self, repo_type: str, repo_id: str) -> HubRepo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _HttpError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit_at(self, repo: HubRepo, revision: str) -> HubCommit:
        oid = repo.branches.get(revision) or repo.tags.get(revision)
        if oid is None and revision.startswith("refs/heads/"):
            oid = repo.branches.get(revision[len("refs/heads/") :])
        if oid is None and revision in repo.commits:
            oid = revision
        if oid is None and len(revision) >= 7:
            matches = [commit for commit in repo.commits if commit.startswith(revision)]
            oid = matches[0] if len(matches) == 1 else None
        if oid is None:
            raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def _history(self, repo: HubRepo, commit: HubCommit) -> Iterator[HubCommit]:
        current: HubCommit | None = commit
        while current is not None:
            yield current
            current = repo.commits.get(current.parent) if current.parent else None

    def _store(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.objects / sha256
        if not target.exists():
            temporary = self.objects / f".{sha256}.{secrets.token_hex(4)}"
            temporary.write_bytes(data)
            temporary.replace(target)
        return sha256

    def _regular_file(self, path: str, data: bytes) -> HubFile:
        return HubFile(path=path, size=len(data), sha256=self._store(data), lfs=False, _content_oid=_git_blob_oid(data))

    def _new_commit(
        self, repo: HubRepo, parent: HubCommit | None, title: str, description: str, files: dict[str, HubFile]
    ) -> HubCommit:
        seed = f"{parent.oid if parent else ''}\0{title}\0{time.time_ns()}\0{secrets.token_hex(8)}"
        commit = HubCommit(
            oid=hashlib.sha1(seed.encode()).hexdigest(),
            parent=parent.oid if parent else None,
            title=title,
            description=description,
            author=self.username,
            date=datetime.now(timezone.utc),
            files=files,
        )
        repo.commits[commit.oid] = commit
        return commit

    def _file_bytes(self, entry: HubFile) -> bytes:
        return (self.objects / entry.sha256).read_bytes()

    def _lfs_patterns(self, commit: HubCommit) -> list[str]:
        entry = commit.files.get(".gitattributes")
        if entry is None:
            return []
        patterns = []
        for line in self._file_bytes(entry).decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
                patterns.append(parts[0])
        return patterns

    @staticmethod
    def _matches(path: str, patterns: list[str]) -> bool:
        name = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(path if "/" in pattern else name, pattern) for pattern in patterns)

    def _card_data(self, commit: HubCommit) -> dict[str, Any] | None:
        entry = commit.files.get("README.md")
        if entry is None:
            return None
        text = self._file_bytes(entry).decode(errors="replace")
        if not text.startswith("---"):
            return None
        end = text.find("\n---", 3)
        if end < 0:
            return None
        try:
            import yaml

            data = yaml.safe_load(text[3:end])
        except Exception:  # a malformed card must not break repo_info, exactly like on the Hub
            return None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------------ HTTP plumbing

    def _dispatch(self, request: _Request, role: str) -> _Response:
        try:
            failure = self._take_failure(request.path)
            if failure is not None:
                response = _json({"error": f"Injected failure ({failure})"}, status=failure)
            elif role == "cdn":
                response = self._route_cdn(request)
            else:
                response = self._route_hub(request)
        except _HttpError as error:
            headers = {"X-Error-Message": error.message, **error.headers}
            if error.code:
                headers["X-Error-Code"] = error.code
            response = _json({"error": error.message}, status=error.status, headers=headers)
        except Exception as error:  # surface server bugs to the test instead of hanging the client
            self.errors.append(f"{request.method} {request.path}: {error!r}")
            response = _json({"error": f"Internal error: {error!r}"}, status=500)
        self.requests.append((request.method, request.path, response.status))
        return response

    def _take_failure(self, path: str) -> int | None:
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and (failure.path_contains is None or failure.path_contains in path):
                    failure.remaining -= 1
                    status = failure.status
                    self._failures = [item for item in self._failures if item.remaining > 0]
                    return status
        return None

    def _token_role(self, request: _Request) -> str | None:
        header = request.headers.get("Authorization") or ""
        if not header:
            return None
        token = header.removeprefix("Bearer ").strip()
        if token == self.token:
            return "write"
        if token == self.read_token:
            return "read"
        raise _HttpError(401, "Invalid credentials in Authorization header")

    def _require_write(self, request: _Request) -> None:
        role = self._token_role(request)
        if role is None:
            raise _HttpError(401, "Invalid username or password.")
        if role != "write":
            raise _HttpError(403, "You don't have the rights to write in this namespace (read-only token)")

    def _readable_repo(self, request: _Request, repo_type: str, repo_id: str) -> HubRepo:
        role = self._token_role(request)
        repo = self._repo(repo_type, repo_id)
        if repo.private and role is None:
            raise _HttpError(401, "Repository not found", "RepoNotFound")
        return repo

    def _repo_url(self, repo: HubRepo) -> str:
        return f"{self.endpoint}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    # ------------------------------------------------------------------ routing

    def _route_hub(self, request: _Request) -> _Response:
        segments = request.segments
        if segments[:1] == ["api"]:
            return self._route_api(request, segments[1:])
        repo_type = "model"
        if segments and segments[0] in ("datasets", "spaces"):
            repo_type = REPO_TYPE_BY_API_SEGMENT[segments[0]]
            segments = segments[1:]
        if len(segments) >= 2 and segments[1].endswith(".git"):
            repo_id = f"{unquote(segments[0])}/{unquote(segments[1])[: -len('.git')]}"
            if segments[2:] == ["info", "lfs", "objects", "batch"] and request.method == "POST":
                return self._lfs_batch(request, repo_type, repo_id)
            if segments[2:] == ["info", "lfs", "objects", "verify"] and request.method == "POST":
                return self._lfs_verify(request, repo_type, repo_id)
        if len(segments) >= 5 and segments[2] == "resolve" and request.method in ("GET", "HEAD"):
            repo_id = f"{unquote(segments[0])}/{unquote(segments[1])}"
            path = unquote("/".join(segments[4:]))
            return self._resolve(request, repo_type, repo_id, unquote(segments[3]), path)
        raise _HttpError(404, f"Not found: {request.method} {request.path}")

    def _route_api(self, request: _Request, segments: list[str]) -> _Response:
        method = request.method
        if segments == ["whoami-v2"] and method == "GET":
            return self._whoami(request)
        if segments == ["repos", "create"] and method == "POST":
            return self._create_repo(request)
        if segments == ["repos", "delete"] and method in ("DELETE", "POST"):
            return self._delete_repo(request)
        if segments == ["validate-yaml"] and method == "POST":
            return self._validate_yaml(request)
        if len(segments) >= 3 and segments[0] in REPO_TYPE_BY_API_SEGMENT:
            repo_type = REPO_TYPE_BY_API_SEGMENT[segments[0]]
            repo_id = f"{unquote(segments[1])}/{unquote(segments[2])}"
            rest = segments[3:]
            action = rest[0] if rest else ""
            if method == "GET" and not rest:
                return self._repo_info(request, repo_type, repo_id, "main")
            if method == "GET" and action == "revision" and len(rest) == 2:
                return self._repo_info(request, repo_type, repo_id, unquote(rest[1]))
            if method == "GET" and action == "tree" and len(rest) >= 2:
                return self._tree(request, repo_type, repo_id, unquote(rest[1]), unquote("/".join(rest[2:])))
            if method == "POST" and action == "paths-info" and len(rest) == 2:
                return self._paths_info(request, repo_type, repo_id, unquote(rest[1]))
            if method == "GET" and action == "commits" and len(rest) == 2:
                return self._list_commits(request, repo_type, repo_id, unquote(rest[1]))
            if method == "GET" and rest == ["refs"]:
                return self._refs(request, repo_type, repo_id)
            if method == "POST" and action == "preupload" and len(rest) == 2:
                return self._preupload(request, repo_type, repo_id, unquote(rest[1]))
            if method == "POST" and action == "commit" and len(rest) == 2:
                return self._commit(request, repo_type, repo_id, unquote(rest[1]))
            if action == "branch" and len(rest) >= 2 and method in ("POST", "DELETE"):
                return self._branch(request, repo_type, repo_id, unquote("/".join(rest[1:])))
            if action == "tag" and len(rest) >= 2 and method in ("POST", "DELETE"):
                return self._tag(request, repo_type, repo_id, unquote("/".join(rest[1:])))
        raise _HttpError(404, f"Not found: {request.method} {request.path}")

    def _route_cdn(self, request: _Request) -> _Response:
        segments = request.segments
        if request.method == "PUT" and len(segments) == 5 and segments[0] == "lfs-upload":
            repo_type, namespace, name, oid = (unquote(segment) for segment in segments[1:])
            return self._lfs_upload(request, repo_type, f"{namespace}/{name}", oid)
        if request.method in ("GET", "HEAD") and len(segments) == 2 and segments[0] == "lfs-objects":
            oid = unquote(segments[1])
            target = self.objects / oid
            if not target.is_file():
                raise _HttpError(404, "NoSuchKey")
            data = target.read_bytes()
            return self._content_response(request, data, {"ETag": f'"{oid}"'}, request.query.get("filename"))
        raise _HttpError(404, f"Not found: {request.method} {request.path}")

    # ------------------------------------------------------------------ account and repos

    def _whoami(self, request: _Request) -> _Response:
        role = self._token_role(request)
        if role is None:
            raise _HttpError(401, "Invalid username or password.")
        return _json(
            {
                "type": "user",
                "id": "0" * 24,
                "name": self.username,
                "fullname": "T-SNet Studio tests",
                "email": None,
                "emailVerified": True,
                "isPro": False,
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": f"tests-{role}", "role": role, "createdAt": _iso(datetime.now())},
                },
            }
        )

    def _create_repo(self, request: _Request) -> _Response:
        self._require_write(request)
        payload = json.loads(request.body or b"{}")
        name = payload.get("name")
        if not name or "/" in name:
            raise _HttpError(400, "Invalid repo name")
        repo_type = payload.get("type") or "model"
        if repo_type not in URL_PREFIX:
            raise _HttpError(400, f"Invalid repo type: {repo_type}")
        if repo_type == "space" and not payload.get("sdk"):
            raise _HttpError(400, "Space sdk is required")
        repo_id = f"{payload.get('organization') or self.username}/{name}"
        visibility = payload.get("visibility")
        private = visibility in ("private", "protected") if visibility is not None else bool(payload.get("private"))
        with self._lock:
            existing = self._repos.get((repo_type, repo_id))
            if existing is not None:
                message = f"You already created this {repo_type} repo"
                return _json(
                    {"error": message, "url": self._repo_url(existing)},
                    status=409,
                    headers={"X-Error-Message": message},
                )
            repo = HubRepo(
                repo_type=repo_type,
                repo_id=repo_id,
                private=private,
                sdk=payload.get("sdk"),
                created_at=datetime.now(timezone.utc),
            )
            attributes = self._regular_file(".gitattributes", DEFAULT_GITATTRIBUTES.encode())
            first = self._new_commit(repo, None, "initial commit", "", {".gitattributes": attributes})
            repo.branches["main"] = first.oid
            self._repos[(repo_type, repo_id)] = repo
        return _json({"url": self._repo_url(repo), "name": repo_id, "id": repo.uid})

    def _delete_repo(self, request: _Request) -> _Response:
        self._require_write(request)
        payload = json.loads(request.body or b"{}")
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.username}/{payload.get('name')}"
        with self._lock:
            self._repo(repo_type, repo_id)
            del self._repos[(repo_type, repo_id)]
        return _json({})

    def _validate_yaml(self, request: _Request) -> _Response:
        """Check the README metadata header parses to a mapping (the Hub also checks field schemas; we do not)."""
        text = json.loads(request.body or b"{}").get("content") or ""
        if not text.startswith("---"):
            return _json({"warnings": [{"message": "Empty or missing yaml metadata in repo card"}]})
        end = text.find("\n---", 3)
        try:
            import yaml

            data = yaml.safe_load(text[3:end]) if end > 0 else None
        except Exception as error:
            return _json({"errors": [{"message": f"Invalid YAML: {error}"}]}, status=400)
        if end < 0 or not isinstance(data, (dict, type(None))):
            return _json({"errors": [{"message": "Metadata must be a YAML mapping between --- lines"}]}, status=400)
        return _json({"warnings": []})

    def _repo_info(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            commit = self._commit_at(repo, revision)
            blobs = _truthy(request.query.get("blobs"))
            siblings = []
            for entry in sorted(commit.files.values(), key=lambda item: item.path):
                sibling: dict[str, Any] = {"rfilename": entry.path}
                if blobs:
                    sibling.update(size=entry.size, blobId=entry.blob_oid)
                    if entry.lfs:
                        sibling["lfs"] = {"size": entry.size, "sha256": entry.sha256, "pointerSize": len(entry.pointer)}
                siblings.append(sibling)
            card = self._card_data(commit)
            tags = card.get("tags") if card else None
            data: dict[str, Any] = {
                "_id": repo.uid,
                "id": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": commit.oid,
                "lastModified": _iso(commit.date),
                "createdAt": _iso(repo.created_at),
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [tags] if isinstance(tags, str) else list(tags or []),
                "siblings": siblings,
                "usedStorage": sum(entry.size for entry in commit.files.values()),
            }
            if card is not None:
                data["cardData"] = card
            if repo_type == "model":
                data.update(modelId=repo.repo_id, library_name=(card or {}).get("library_name"))
                data["pipeline_tag"] = (card or {}).get("pipeline_tag")
            elif repo_type == "space":
                data.update(
                    sdk=repo.sdk,
                    subdomain=repo.repo_id.replace("/", "-").lower(),
                    host=f"{self.endpoint}/spaces/{repo.repo_id}",
                    runtime={"stage": "BUILDING", "hardware": {"current": None, "requested": "cpu-basic"}},
                )
            else:
                data.update(description="", citation="")
        return _json(data)

    def _refs(self, request: _Request, repo_type: str, repo_id: str) -> _Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            branches = [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
                for name, oid in repo.branches.items()
                if not name.startswith("refs/pr/")
            ]
            tags = [{"name": name, "ref": f"refs/tags/{name}", "targetCommit": oid} for name, oid in repo.tags.items()]
            data: dict[str, Any] = {"branches": branches, "tags": tags, "converts": []}
            if _truthy(request.query.get("include_prs")):
                data["pullRequests"] = [
                    {"name": name, "ref": name, "targetCommit": oid}
                    for name, oid in repo.branches.items()
                    if name.startswith("refs/pr/")
                ]
        return _json(data)

    def _branch(self, request: _Request, repo_type: str, repo_id: str, branch: str) -> _Response:
        self._require_write(request)
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            if request.method == "DELETE":
                if branch not in repo.branches:
                    raise _HttpError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
                del repo.branches[branch]
                return _json({})
            if branch in repo.branches:
                raise _HttpError(409, f"Reference already exists: refs/heads/{branch}")
            payload = json.loads(request.body or b"{}")
            start = self._commit_at(repo, payload.get("startingPoint") or "main")
            if payload.get("emptyBranch"):
                start = self._new_commit(repo, None, "initial commit", "", {})
            repo.branches[branch] = start.oid
        return _json({})

    def _tag(self, request: _Request, repo_type: str, repo_id: str, name: str) -> _Response:
        self._require_write(request)
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            if request.method == "DELETE":
                if name not in repo.tags:
                    raise _HttpError(404, f"Invalid rev id: {name}", "RevisionNotFound")
                del repo.tags[name]
                return _json({})
            payload = json.loads(request.body or b"{}")
            tag = payload.get("tag")
            if not tag:
                raise _HttpError(400, "Missing tag name")
            if tag in repo.tags:
                raise _HttpError(409, f"Tag reference {tag} already exists")
            repo.tags[tag] = self._commit_at(repo, name).oid
        return _json({})

    # ------------------------------------------------------------------ listing

    @staticmethod
    def _folders(commit: HubCommit) -> set[str]:
        folders = set()
        for path in commit.files:
            parts = path.split("/")[:-1]
            folders.update("/".join(parts[: index + 1]) for index in range(len(parts)))
        return folders

    def _last_commit(self, repo: HubRepo, commit: HubCommit, path: str, folder: bool) -> dict[str, str]:
        def state(candidate: HubCommit) -> Any:
            if not folder:
                entry = candidate.files.get(path)
                return entry.blob_oid if entry else None
            prefix = path + "/"
            return sorted((key, value.blob_oid) for key, value in candidate.files.items() if key.startswith(prefix))

        current = commit
        while current.parent is not None and state(repo.commits[current.parent]) == state(current):
            current = repo.commits[current.parent]
        return {"id": current.oid, "title": current.title, "date": _iso(current.date)}

    def _entry_json(self, repo: HubRepo, commit: HubCommit, path: str, expand: bool) -> dict[str, Any]:
        entry = commit.files.get(path)
        if entry is not None:
            data: dict[str, Any] = {"type": "file", "oid": entry.blob_oid, "size": entry.size, "path": path}
            if entry.lfs:
                data["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": len(entry.pointer)}
        else:
            prefix = path + "/"
            listing = "\n".join(
                f"{key}:{value.blob_oid}" for key, value in sorted(commit.files.items()) if key.startswith(prefix)
            )
            data = {"type": "directory", "oid": hashlib.sha1(listing.encode()).hexdigest(), "size": 0, "path": path}
        if expand:
            data["lastCommit"] = self._last_commit(repo, commit, path, folder=entry is None)
        return data

    def _page(self, request: _Request, items: list[Any], page_size: int) -> _Response:
        cursor = int((request.query.get("cursor") or ["0"])[0] or 0)
        page = items[cursor : cursor + page_size]
        headers = {}
        if cursor + page_size < len(items):
            params = {key: values[-1] for key, values in request.query.items() if key != "cursor"}
            params["cursor"] = str(cursor + page_size)
            headers["Link"] = f'<{self.endpoint}{request.path}?{urlencode(params)}>; rel="next"'
        return _json(page, headers=headers)

    def _tree(self, request: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> _Response:
        path = path.strip("/")
        recursive = _truthy(request.query.get("recursive"))
        expand = _truthy(request.query.get("expand"))
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            commit = self._commit_at(repo, revision)
            folders = self._folders(commit)
            if path and path not in folders:
                raise _HttpError(404, f"Path {path} does not exist or is not a folder", "EntryNotFound")
            prefix = path + "/" if path else ""
            candidates = [item for item in [*folders, *commit.files] if item.startswith(prefix)]
            if not recursive:
                candidates = [item for item in candidates if "/" not in item[len(prefix) :]]
            # The Hub lists folders before files, each alphabetically.
            candidates.sort(key=lambda item: (item in commit.files, item))
            items = [self._entry_json(repo, commit, item, expand) for item in candidates]
        return self._page(request, items, TREE_PAGE_SIZE_EXPANDED if expand else TREE_PAGE_SIZE)

    def _paths_info(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        content_type = request.headers.get("Content-Type") or ""
        if "json" in content_type:
            form = json.loads(request.body or b"{}")
            paths, expand = form.get("paths") or [], bool(form.get("expand"))
        else:
            form = parse_qs(request.body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths") or [], _truthy(form.get("expand"))
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            commit = self._commit_at(repo, revision)
            folders = self._folders(commit)
            found = []
            for raw in paths:
                path = raw.strip("/")
                if path in commit.files or path in folders:
                    found.append(self._entry_json(repo, commit, path, expand))
        return _json(found)

    def _list_commits(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            items = [
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.description,
                    "authors": [{"user": commit.author, "avatar": None}],
                    "date": _iso(commit.date),
                    "formatted": {"title": commit.title, "message": commit.description},
                }
                for commit in self._history(repo, self._commit_at(repo, revision))
            ]
        return self._page(request, items, COMMITS_PAGE_SIZE)

    # ------------------------------------------------------------------ uploads

    def _preupload(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        self._require_write(request)
        payload = json.loads(request.body or b"{}")
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            create_pr = _truthy(request.query.get("create_pr"))
            if not create_pr and revision not in repo.branches:
                raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            commit = self._commit_at(repo, revision)
            patterns = self._lfs_patterns(commit)
            ignored = [line.strip() for line in (payload.get("gitIgnore") or "").splitlines()]
            ignored = [line for line in ignored if line and not line.startswith("#")]
            files = []
            for item in payload.get("files", []):
                path, size = item["path"], int(item["size"])
                sample = base64.b64decode(item.get("sample") or "")
                lfs = size >= self.lfs_threshold or self._matches(path, patterns) or b"\0" in sample
                existing = commit.files.get(path)
                files.append(
                    {
                        "path": path,
                        "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": self._matches(path, ignored),
                        "oid": existing.blob_oid if existing else None,
                    }
                )
        return _json({"files": files, "commitOid": commit.oid})

    def _lfs_batch(self, request: _Request, repo_type: str, repo_id: str) -> _Response:
        payload = json.loads(request.body or b"{}")
        operation = payload.get("operation")
        with self._lock:
            if operation == "upload":
                self._require_write(request)
                repo = self._repo(repo_type, repo_id)
            else:
                repo = self._readable_repo(request, repo_type, repo_id)
            objects = []
            for item in payload.get("objects", []):
                oid, size = item["oid"], int(item["size"])
                answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
                stored = self.objects / oid
                if operation == "upload":
                    if oid in repo.lfs_oids and stored.is_file() and stored.stat().st_size == size:
                        objects.append(answer)  # already there: no actions, the client skips the upload
                        continue
                    upload = f"{self.cdn_endpoint}/lfs-upload/{repo_type}/{quote(repo_id)}/{oid}"
                    upload = f"{upload}?X-Amz-Signature={secrets.token_hex(8)}"
                    verify = f"{self._repo_url(repo)}.git/info/lfs/objects/verify"
                    answer["actions"] = {
                        "upload": {"href": upload, "header": {}, "expires_in": 86400},
                        "verify": {"href": verify, "header": {}, "expires_in": 86400},
                    }
                elif oid in repo.lfs_oids and stored.is_file():
                    href = f"{self.cdn_endpoint}/lfs-objects/{oid}"
                    answer["actions"] = {"download": {"href": href, "header": {}, "expires_in": 3600}}
                else:
                    answer["error"] = {"code": 404, "message": "Object does not exist"}
                objects.append(answer)
        return _json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, headers={})

    def _lfs_upload(self, request: _Request, repo_type: str, repo_id: str, oid: str) -> _Response:
        data = request.body
        if hashlib.sha256(data).hexdigest() != oid:
            raise _HttpError(400, "BadDigest: the uploaded content does not match the expected sha256")
        self._store(data)
        with self._lock:
            self._repo(repo_type, repo_id).lfs_oids.add(oid)
        return _Response(status=200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'}, content_type="text/plain")

    def _lfs_verify(self, request: _Request, repo_type: str, repo_id: str) -> _Response:
        self._require_write(request)
        payload = json.loads(request.body or b"{}")
        oid, size = payload.get("oid"), payload.get("size")
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            stored = self.objects / str(oid)
            if oid not in repo.lfs_oids or not stored.is_file() or stored.stat().st_size != size:
                raise _HttpError(404, f"LFS object {oid} not found or has the wrong size")
        return _json({"success": True})

    def _commit(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        self._require_write(request)
        lines = [json.loads(line) for line in request.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HttpError(400, "The first NDJSON line must be the commit header")
        header = lines[0]["value"]
        title = (header.get("summary") or "").strip()
        if not title:
            raise _HttpError(400, "Commit summary is required")
        create_pr = _truthy(request.query.get("create_pr"))
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            if not create_pr and revision not in repo.branches:
                raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            base = self._commit_at(repo, revision)
            parent_commit = header.get("parentCommit")
            if parent_commit and parent_commit != base.oid:
                raise _HttpError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(base.files)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value") or {}
                path = (value.get("path") or "").strip("/")
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise _HttpError(400, f"Unsupported encoding for {path}")
                    files[path] = self._regular_file(path, base64.b64decode(value.get("content") or ""))
                elif key == "lfsFile":
                    oid = value.get("oid")
                    stored = self.objects / str(oid)
                    if value.get("algo", "sha256") != "sha256" or oid not in repo.lfs_oids or not stored.is_file():
                        raise _HttpError(422, f"LFS file {path} ({oid}) was never uploaded")
                    files[path] = HubFile(path=path, size=stored.stat().st_size, sha256=oid, lfs=True)
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise _HttpError(404, f"File not found: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = path + "/" if path else ""
                    files = {name: entry for name, entry in files.items() if not name.startswith(prefix)}
                else:
                    raise _HttpError(400, f"Unsupported commit operation: {key}")
            commit = self._new_commit(repo, base, title, header.get("description") or "", files)
            pr_url = None
            if create_pr:
                repo.pull_requests += 1
                repo.branches[f"refs/pr/{repo.pull_requests}"] = commit.oid
                pr_url = f"{self._repo_url(repo)}/discussions/{repo.pull_requests}"
            else:
                repo.branches[revision] = commit.oid
        return _json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self._repo_url(repo)}/commit/{commit.oid}",
                "hookOutput": "",
                "pullRequestUrl": pr_url,
            }
        )

    # ------------------------------------------------------------------ downloads

    def _content_response(
        self, request: _Request, data: bytes, headers: dict[str, str], filename: list[str] | None = None
    ) -> _Response:
        name = (filename or [""])[0]
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        headers = {**headers, "Accept-Ranges": "bytes"}
        range_header = request.headers.get("Range")
        if range_header and range_header.startswith("bytes="):
            total = len(data)
            start_text, _, end_text = range_header[len("bytes=") :].split(",")[0].partition("-")
            if start_text:
                start, end = int(start_text), int(end_text) if end_text else total - 1
            else:
                start, end = max(total - int(end_text), 0), total - 1
            end = min(end, total - 1)
            if start >= total or start > end:
                headers["Content-Range"] = f"bytes */{total}"
                return _Response(status=416, headers=headers, content_type=content_type)
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
            return _Response(status=206, body=data[start : end + 1], headers=headers, content_type=content_type)
        return _Response(status=200, body=data, headers=headers, content_type=content_type)

    def _resolve(self, request: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> _Response:
        with self._lock:
            repo = self._readable_repo(request, repo_type, repo_id)
            commit = self._commit_at(repo, revision)
            entry = commit.files.get(path)
            if entry is None:
                raise _HttpError(404, "Entry not found", "EntryNotFound", headers={"X-Repo-Commit": commit.oid})
        common = {"X-Repo-Commit": commit.oid}
        if entry.lfs:
            # Like huggingface.co: LFS files redirect to the CDN; metadata travels on the redirect itself.
            location = f"{self.cdn_endpoint}/lfs-objects/{entry.sha256}?{urlencode({'filename': path})}"
            headers = {
                **common,
                "Location": location,
                "ETag": f'"{entry.blob_oid}"',
                "X-Linked-Etag": f'"{entry.sha256}"',
                "X-Linked-Size": str(entry.size),
            }
            return _Response(status=302, headers=headers, content_type="text/plain")
        return self._content_response(
            request, self._file_bytes(entry), {**common, "ETag": f'"{entry.blob_oid}"'}, [path]
        )


# ---------------------------------------------------------------------- pointing the real clients at a server


def point_clients_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, home: Path) -> None:
    """Make ``huggingface_hub`` and ``datasets`` talk to ``endpoint`` and cache under ``home``.

    Both libraries read HF_ENDPOINT (and their cache folders) into module constants at import time, so setting the
    environment is not enough once they are imported: the constants are patched too. Environment variables are set
    as well so subprocesses (e.g. the ``tsnet`` CLI) and a later first import see the same values.
    """
    hub_home = home / "hf_home"
    cache = hub_home / "hub"
    datasets_cache = hub_home / "datasets"
    environment = {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(hub_home),
        "HF_HUB_CACHE": str(cache),
        "HF_DATASETS_CACHE": str(datasets_cache),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # A real token of the developer must never reach the stand-in, nor the stand-in's token the developer's files.
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HUGGINGFACE_CO_STAGING"):
        monkeypatch.delenv(name, raising=False)

    from huggingface_hub import constants

    patches: dict[str, Any] = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": frozenset(constants.HF_URL_HOSTS | {"127.0.0.1"}),
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
        "HF_HUB_OFFLINE": False,
        "HF_HOME": str(hub_home),
        "HF_HUB_CACHE": str(cache),
        "HUGGINGFACE_HUB_CACHE": str(cache),
        "HF_ASSETS_CACHE": str(hub_home / "assets"),
        "HF_XET_CACHE": str(hub_home / "xet"),
        "HF_TOKEN_PATH": str(hub_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hub_home / "stored_tokens"),
    }
    for name, value in patches.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, value)

    try:
        import datasets.config as datasets_config
    except ImportError:  # datasets is optional for tests that only use huggingface_hub
        return
    dataset_patches: dict[str, Any] = {
        "HF_ENDPOINT": endpoint,
        "HUB_DATASETS_URL": endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
        "HF_CACHE_HOME": str(hub_home),
        "HF_DATASETS_CACHE": datasets_cache,
        "DOWNLOADED_DATASETS_PATH": datasets_cache / "downloads",
        "EXTRACTED_DATASETS_PATH": datasets_cache / "downloads" / "extracted",
    }
    for name, value in dataset_patches.items():
        if hasattr(datasets_config, name):
            monkeypatch.setattr(datasets_config, name, value)


@pytest.fixture
def hub_server(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A running Hub stand-in with both real clients pointed at it; stopped (if still running) after the test."""
    root = tmp_path_factory.mktemp("hub")
    server = HubServer(root / "storage").start()
    point_clients_at(monkeypatch, server.endpoint, root)
    try:
        yield server
    finally:
        server.stop()
        try:
            from huggingface_hub import HfFileSystem

            HfFileSystem.clear_instance_cache()  # fsspec caches instances (and their listings) per endpoint
        except ImportError:
            pass
