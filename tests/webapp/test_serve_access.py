"""A gated server (TSNET_USERS set) as an anonymous client, a replaying client and a password guesser sees it.

The endpoint table is read from the running app, so a new endpoint is checked the day it is added: every
public ``api_name`` is called anonymously through ``gradio_client`` and every private event raw over HTTP.
Only ``predict`` and ``predict_frame`` (and the page's own predict-on-upload and who-am-I) may answer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests._serve_fixtures import Answer, call, endpoints, upload
from tests._webapp_fixtures import LiveApp, astronaut_png, launch, pattern_pngs
from webapp.access import CLIENT_COOKIE, SESSION_SECONDS, SignInThrottle

os.environ.setdefault("OMP_NUM_THREADS", "1")

OPEN_API = {"predict", "predict_frame"}
# private events that read nothing stored: predict on upload, choosing another face of the uploaded photo (the list
# after a prediction, a click on a face, its explanation), the sign-in banner, clearing the password box
OPEN_PRIVATE = {"predict", "face_choices", "face_at", "explain_face", "whoami", "lambda"}
SIGN_IN_WORDS = ("Sign in", "sign in", "Wrong name or password", "Not signed in")
PYTHON_WORDS = ("Traceback", "NoneType", "object has no attribute", "unsupported operand", "Error:", "/tmp/")


class Clock:
    """A clock the test moves by hand, so expiry and throttling are checked without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from launch(tmp_path_factory.mktemp("gated"), users="alice:wonder land,bob:builder")


@pytest.fixture(scope="module")
def stored(gated: LiveApp, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One labelled image in the gated store: what an anonymous client must not reach."""
    [path] = pattern_pngs(tmp_path_factory.mktemp("secret"), 1, seed=21)
    image_id = gated.services.store.add_image(path, source="test")
    gated.services.store.label(image_id, "happy", "alice")
    return image_id


@pytest.fixture
def clocks(gated: LiveApp) -> Iterator[tuple[Clock, Clock]]:
    """Hand-moved clocks for sessions and the sign-in throttle, put back afterwards."""
    sessions, throttle = gated.services.sessions, gated.services.sign_ins
    saved = sessions.clock, throttle
    session_clock, throttle_clock = Clock(), Clock()
    sessions.clock = session_clock
    gated.services.sign_ins = SignInThrottle(clock=throttle_clock)
    yield session_clock, throttle_clock
    sessions.clock, gated.services.sign_ins = saved


def _sign_in(url: str, name: str = "alice", password: str = "wonder land") -> Client:
    client = Client(url, verbose=False)
    assert name in client.predict(name, password, api_name="/sign_in")
    return client


def _anonymous_public(gated: LiveApp, client: Client, api_name: str, parameters: int, photo: Path) -> tuple[bool, str]:
    if api_name == "predict_frame":  # a stream event, which gradio_client cannot read: called as the page does
        [endpoint] = [e for e in endpoints(gated.url) if e.api_name == api_name]
        answer = call(gated.url, endpoint, [upload(gated.url, photo), None])
        return answer.ok, answer.error
    arguments: list[object] = [None] * parameters
    if api_name in OPEN_API:
        arguments[0] = handle_file(str(photo))
    try:
        client.predict(*arguments, api_name=f"/{api_name}")
    except AppError as error:
        return False, str(error)
    return True, ""


def test_every_endpoint_refuses_an_anonymous_client_but_prediction(
    gated: LiveApp, stored: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = astronaut_png(tmp_path / "astronaut.png")
    anonymous = Client(gated.url, verbose=False)
    named = anonymous.view_api(print_info=False, return_format="dict")["named_endpoints"]
    public = {name.strip("/"): len(info["parameters"]) for name, info in named.items()}
    assert {"next_image", "stats", "models", "retrain_status", "label", "import", "promote"} <= set(public)
    table = {}
    for api_name, parameters in sorted(public.items()):
        answered, message = _anonymous_public(gated, anonymous, api_name, parameters, photo)
        table[api_name] = "open" if answered else "refused"
        if not answered:
            assert any(words in message for words in SIGN_IN_WORDS), (api_name, message)
            assert not any(words in message for words in PYTHON_WORDS), (api_name, message)
    private = [e for e in endpoints(gated.url) if e.visibility == "private"]
    assert private, "the app has private events (page load, timers, label buttons)"
    distinct = {(e.api_name.rstrip("_0123456789"), e.inputs): e for e in private}  # one call per handler and arity
    for endpoint in distinct.values():
        answer = call(gated.url, endpoint)
        outcome = _private_outcome(endpoint.api_name, answer, stored)
        table[f"{endpoint.api_name} (private #{endpoint.index})"] = outcome
    with capsys.disabled():
        print("\nanonymous endpoint table:\n" + "\n".join(f"  {name}: {result}" for name, result in table.items()))
    assert {name for name, result in table.items() if result == "open" and "private" not in name} == OPEN_API
    for name, result in table.items():
        base = name.split(" (private")[0].rstrip("_0123456789")
        if "private" in name and base not in OPEN_PRIVATE:
            assert result in ("refused", "placeholder"), name


def _private_outcome(api_name: str, answer: Answer, stored: str) -> str:
    text = repr(answer.data)
    assert stored[:12] not in text and "annotations-media" not in text, (api_name, text[:300])
    if not answer.ok:
        assert not any(words in answer.error for words in PYTHON_WORDS), (api_name, answer.error)
        return "refused" if any(words in answer.error for words in SIGN_IN_WORDS) else f"error: {answer.error}"
    return "placeholder" if "Sign in" in text else "open"


def test_stored_files_are_not_served_by_path(gated: LiveApp, stored: str) -> None:
    record = gated.services.store.image(stored)
    for path in (record.original, record.crop):
        response = httpx.get(f"{gated.url}gradio_api/file={path}", timeout=30)
        assert response.status_code in (403, 404), path


def test_sign_in_acts_for_that_client_only_and_replays_act_for_nobody(
    gated: LiveApp, clocks: tuple[Clock, Clock], tmp_path: Path
) -> None:
    session_clock, _ = clocks
    [first, second, third] = pattern_pngs(tmp_path, 3, seed=31)
    alice = _sign_in(gated.url)
    assert "Added image" in alice.predict(handle_file(str(first)), "", "", api_name="/add_to_dataset")
    assert "alice" in alice.predict(api_name="/stats")["annotators"]

    thief = Client(gated.url, verbose=False)  # knows alice's session hash (it is in the queue URLs)
    thief.session_hash = alice.session_hash
    with pytest.raises(AppError, match="Sign in to add images"):
        thief.predict(handle_file(str(second)), "", "", api_name="/add_to_dataset")
    forged = Client(gated.url, verbose=False)
    forged.cookies[CLIENT_COOKIE] = alice.cookies[CLIENT_COOKIE][:-2] + "xx"  # a tampered signature
    with pytest.raises(AppError, match="Sign in to see the dataset"):
        forged.predict(api_name="/stats")

    stolen = dict(alice.cookies)
    assert "Not signed in" in alice.predict(api_name="/sign_out")
    with pytest.raises(AppError, match="Sign in to add images"):
        alice.predict(handle_file(str(second)), "", "", api_name="/add_to_dataset")
    replay = Client(gated.url, verbose=False)
    replay.cookies.update(stolen)  # the cookie after sign-out: signed, but bound to nobody now
    with pytest.raises(AppError, match="Sign in to see the dataset"):
        replay.predict(api_name="/stats")
    with pytest.raises(AppError, match="nothing to sign out"):
        replay.predict(api_name="/sign_out")

    bob = _sign_in(gated.url, "bob", "builder")
    assert "by bob" in bob.predict(handle_file(str(third)), "sad", "", api_name="/add_to_dataset")
    session_clock.now += SESSION_SECONDS + 1  # the sign-in expires
    with pytest.raises(AppError, match="Sign in to see the dataset"):
        bob.predict(api_name="/stats")
    assert "bob" in _sign_in(gated.url, "bob", "builder").predict(api_name="/stats")["annotators"]


def test_failed_sign_ins_are_throttled_and_logged_in_one_line(
    gated: LiveApp, clocks: tuple[Clock, Clock], caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    _, throttle_clock = clocks
    client = Client(gated.url, verbose=False)
    limit = gated.services.sign_ins.limit
    with caplog.at_level(logging.INFO, logger="webapp"):
        for attempt in range(limit):
            with pytest.raises(AppError, match="Wrong name or password"):
                client.predict("alice", f"guess-{attempt}", api_name="/sign_in")
        with pytest.raises(AppError, match="Too many failed sign-ins"):
            client.predict("alice", "wonder land", api_name="/sign_in")  # even the right password waits
        with pytest.raises(AppError, match="Too many failed sign-ins"):
            client.predict("bob", "builder", api_name="/sign_in")  # the same address is paused too
        throttle_clock.now += gated.services.sign_ins.window
        assert "alice" in client.predict("alice", "wonder land", api_name="/sign_in")
    failures = [r for r in caplog.records if "sign-in failed" in r.getMessage()]
    assert len(failures) == limit
    for record in caplog.records:
        text = record.getMessage()
        assert "\n" not in text and record.exc_info is None
        assert "guess-" not in text and "wonder land" not in text and "builder" not in text
    assert "Traceback" not in capfd.readouterr().err


def test_throttle_counts_per_name_and_per_address() -> None:
    clock = Clock()
    throttle = SignInThrottle(limit=3, window=60, clock=clock)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        throttle.failed("alice", address)
    assert throttle.wait_seconds("alice", "10.0.0.9") > 0  # the name is paused wherever it is tried from
    assert throttle.wait_seconds("bob", "10.0.0.1") == 0  # another name from those addresses is not
    for name in ("carol", "dave", "erin"):
        throttle.failed(name, "10.0.0.7")
    assert throttle.wait_seconds("frank", "10.0.0.7") > 0  # one address guessing many names is paused
    clock.now += 60
    assert throttle.wait_seconds("alice", "10.0.0.9") == 0 and throttle.wait_seconds("frank", "10.0.0.7") == 0


def test_open_server_answers_every_endpoint_without_python_text(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Odd arguments (all None) to every public endpoint of an open server: a result or a plain message."""
    for app in launch(tmp_path_factory.mktemp("open"), users=""):
        named = Client(app.url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
        for name, info in sorted(named.items()):
            if name in ("/retrain",):  # would start a real job: covered by the retrain tests
                continue
            if name == "/predict_frame":  # a stream event, which gradio_client cannot read
                [endpoint] = [e for e in endpoints(app.url) if e.api_name == "predict_frame"]
                answer = call(app.url, endpoint)
                assert answer.ok or not any(words in answer.error for words in PYTHON_WORDS), answer.error
                continue
            client = Client(app.url, verbose=False)
            try:
                client.predict(*[None] * len(info["parameters"]), api_name=name)
            except AppError as error:
                message = str(error)
                assert message and not any(words in message for words in PYTHON_WORDS), (name, message)
                assert str(app.home) not in message, (name, message)
