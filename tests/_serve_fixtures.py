"""Calling a live app the way any HTTP client can: every event by its index, public or private.

``gradio_client`` only calls public endpoints, but the page's private events (page load, timers, label
buttons) answer anyone who posts to ``queue/join`` with their index, so access tests call those raw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


@dataclass(frozen=True)
class Endpoint:
    index: int
    api_name: str
    visibility: str  # "public", "private" or "undocumented"
    inputs: int
    trigger: int | None


@dataclass(frozen=True)
class Answer:
    ok: bool
    data: list[Any]
    error: str  # the message a refused call carries ("" when it answered)


def endpoints(url: str) -> list[Endpoint]:
    """Every event with a server-side function, from the running app's own config."""
    config = httpx.get(url + "config", timeout=30).json()
    found = []
    for dependency in config["dependencies"]:
        if not dependency.get("backend_fn"):
            continue
        targets = dependency.get("targets") or []
        found.append(
            Endpoint(
                dependency["id"],
                str(dependency.get("api_name")),
                dependency.get("api_visibility", "public"),
                len(dependency.get("inputs") or []),
                targets[0][0] if targets else None,
            )
        )
    return found


def call(url: str, endpoint: Endpoint, data: list[Any] | None = None, cookies: dict[str, str] | None = None) -> Answer:
    """Post one event to the queue and read its result from the event stream, as the page's own script does."""
    session = "raw" + endpoint.api_name.replace("_", "")[:12] + str(endpoint.index)
    payload = {
        "data": data if data is not None else [None] * endpoint.inputs,
        "fn_index": endpoint.index,
        "session_hash": session,
        "event_data": None,
        "trigger_id": endpoint.trigger,
    }
    with httpx.Client(base_url=url + "gradio_api/", cookies=cookies, timeout=120) as http:
        joined = http.post("queue/join", json=payload)
        if joined.status_code != 200:
            return Answer(False, [], joined.text)
        with http.stream("GET", "queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_streaming":  # a stream event's first answer (webcam frames)
                    return Answer(True, (message.get("output") or {}).get("data") or [], "")
                if message.get("msg") == "process_completed":
                    output = message.get("output") or {}
                    if message.get("success"):
                        return Answer(True, output.get("data") or [], "")
                    return Answer(False, [], str(output.get("error") or output))
    return Answer(False, [], "the event stream ended without a result")


def upload(url: str, path: Path, cookies: dict[str, str] | None = None) -> dict[str, Any]:
    """Upload a file as the page does; the FileData payload an event's input takes."""
    with path.open("rb") as handle:
        response = httpx.post(url + "gradio_api/upload", files={"files": handle}, cookies=cookies, timeout=60)
    response.raise_for_status()
    return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}
