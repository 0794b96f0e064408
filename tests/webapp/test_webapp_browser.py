"""End to end in real headless Chromium (Playwright): predict, keyboard labelling, retrain with a reload.

Screenshots of every tab go to ``test-artifacts/`` for a human look. Needs the ``chromium`` binary
(Debian package); ``playwright install`` is never used.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests._core_fixtures import pattern_image
from tests._webapp_fixtures import ARTIFACTS, LiveApp, astronaut_png, launch, pattern_pngs

os.environ.setdefault("OMP_NUM_THREADS", "1")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from launch(tmp_path_factory.mktemp("browser"), users="")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app: LiveApp):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(180_000)  # generous: two shared CPU cores run server and browser
    page.goto(app.url)
    page.get_by_role("tab", name="Predict").first.wait_for()
    yield page
    context.close()


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"webapp-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_tab(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name=name, exact=True).click()


def labelled_count(page) -> int:  # type: ignore[no-untyped-def]
    text = page.locator("#stats-summary").inner_text()
    match = re.search(r"(\d+) labelled", text)
    return int(match.group(1)) if match else -1


def test_upload_a_face_and_see_label_and_grad_cam(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photo = astronaut_png(tmp_path / "astronaut.png")
    started = time.perf_counter()
    page.locator("#photo-input input[type=file]").set_input_files(str(photo))
    page.locator("#predict-status").get_by_text("Answered by student").wait_for()
    page.locator("#student-cam img").wait_for()
    page.locator("#teacher-cam img").wait_for()
    elapsed = time.perf_counter() - started
    print(f"\nbrowser upload-to-result: {elapsed * 1000:.0f} ms (detection, 2 models, 2 Grad-CAMs, transfer)")
    probabilities = page.locator("#probs").inner_text()
    assert any(name in probabilities for name in ("angry", "happy", "sad", "neutral", "surprise", "disgust"))
    assert page.locator("#annotated img").count() == 1
    shot(page, "predict")


def test_bad_file_shows_a_message(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    page.locator("#photo-input input[type=file]").set_input_files(str(bad))
    page.get_by_text("Cannot read this file as a photo").first.wait_for()


def _add_unlabelled(app: LiveApp, count: int, seed: int) -> None:
    for path in pattern_pngs(app.home / "incoming", count, seed=seed):
        app.services.store.add_image(path, source="test")


def test_label_three_images_with_the_keyboard(page, app: LiveApp) -> None:  # type: ignore[no-untyped-def]
    _add_unlabelled(app, 4, seed=11)
    page.reload()
    open_tab(page, "Annotate")
    page.locator("#queue-info").get_by_text("Suggestion").wait_for()
    start = labelled_count(page)
    for key in ("1", "Enter", "3"):
        image_before = page.locator("#queue-info").inner_text()
        page.locator("body").press(key)
        expected = start + 1
        page.wait_for_function(
            "([n]) => (document.querySelector('#stats-summary')?.innerText || '').includes(n + ' labelled')",
            arg=[expected],
        )
        page.wait_for_function(
            "([old]) => document.querySelector('#queue-info')?.innerText !== old", arg=[image_before]
        )
        start = expected
    counts = page.locator("#counts").inner_text()
    assert "angry" in counts and "total" in counts
    stats = app.services.store.stats()
    assert stats["annotators"]["annotator"]["events"] >= 3
    labels = app.services.store.labels
    assert sum(row[labels[0]] for row in stats["counts"].values()) >= 1  # key 1 is the first class
    assert sum(row[labels[2]] for row in stats["counts"].values()) >= 1  # key 3 the third
    shot(page, "annotate")


def _fill_training_data(app: LiveApp) -> None:
    """Labelled faces for every class, so the store's 6:2:2 split has train, validation and test images."""
    rng = np.random.default_rng(0)
    labels = app.services.store.labels
    for index in range(4 * len(labels)):  # the 4th image of each class goes to test (6:2:2 cycle)
        buffer = io.BytesIO()
        pattern_image(index % len(labels), rng).save(buffer, format="PNG")
        image_id = app.services.store.add_image(buffer.getvalue(), source="test")
        app.services.store.label(image_id, labels[index % len(labels)], "ana")
    assert app.services.store.stats()["split_totals"]["test"] > 0


def test_retrain_progress_survives_reload_and_adds_a_version(page, app: LiveApp) -> None:  # type: ignore[no-untyped-def]
    _fill_training_data(app)
    open_tab(page, "Retrain")
    page.locator("#retrain-status").get_by_text("No retrain job yet").wait_for()
    shot(page, "retrain-idle")
    page.locator("#retrain-btn").click()
    status = page.locator("#retrain-status")
    status.get_by_text(re.compile("Stage: ")).wait_for()
    page.reload()
    open_tab(page, "Retrain")
    page.locator("#retrain-status").get_by_text("Stage:").wait_for()
    job_text = page.locator("#retrain-status").inner_text()
    assert "Stage" in job_text
    if "running" in job_text:
        assert page.locator("#retrain-btn").is_disabled()
        shot(page, "retrain-running")
    page.locator("#retrain-status").get_by_text("Stage: succeeded").wait_for(timeout=900_000)
    page.locator("#retrain-status").get_by_text("Candidate version").wait_for()
    assert "v1" in page.locator("#retrain-status").inner_text()
    page.wait_for_function("() => (document.querySelector('#comparison')?.innerText || '').includes('store_test')")
    # this app has no FER+ at hand: the tab says what the job did without, and the per-class table shows it
    assert "Warning: benchmark not run" in page.locator("#retrain-status").inner_text()
    page.wait_for_function("() => (document.querySelector('#per-class')?.innerText || '').includes('not run')")
    assert page.locator("#retrain-btn").is_enabled()
    shot(page, "retrain-done")
    open_tab(page, "Models")
    page.locator("#versions").get_by_text("v1").first.wait_for()
    page.locator("#served").get_by_text("Serving").wait_for()
    shot(page, "models")
    assert app.services.registry.current() == "v1"
    assert app.services.model_version() == "v1"  # the app follows the promotion


def test_screenshot_is_a_real_png(app: LiveApp) -> None:
    shots = sorted(ARTIFACTS.glob("webapp-*.png"))
    assert shots, "the browser tests should have written screenshots"
    for path in shots:
        with Image.open(path) as image:
            assert image.size[0] >= 1000
