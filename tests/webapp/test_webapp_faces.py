"""Any face of a group photo: chosen from the list or by clicking its box, it gets its probabilities and Grad-CAM.

The pure pieces are tested directly; the whole path runs in headless Chromium against a live server, as in
``test_webapp_browser.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._webapp_fixtures import ARTIFACTS, LiveApp, launch
from webapp.handlers import RecentFaces, face_number
from webapp.render import face_at_point

os.environ.setdefault("OMP_NUM_THREADS", "1")

FACES = [{"box": [0, 0, 100, 100]}, {"box": [40, 40, 60, 60]}, {"box": [200, 10, 260, 70]}]


def test_a_click_chooses_the_smallest_box_that_holds_it():
    assert face_at_point(FACES, [10, 10]) == 1
    assert face_at_point(FACES, [50, 50]) == 2  # inside faces 1 and 2: the smaller one
    assert face_at_point(FACES, (230.5, 70)) == 3  # edges count
    assert face_at_point(FACES, [150, 50]) is None
    assert face_at_point(FACES, None) is None and face_at_point([], [1, 1]) is None


def test_picker_values_name_faces_of_the_photo_only():
    assert face_number(2, 3) == 2 and face_number("3", 3) == 3
    assert face_number(0, 3) is None and face_number(4, 3) is None
    assert face_number(None, 3) is None and face_number("face", 3) is None


def test_recent_faces_are_kept_per_photo_and_version_and_bounded():
    recent = RecentFaces(size=2)
    recent.remember("/upload/a.png", "base", ["a"])  # type: ignore[list-item]
    recent.remember(b"frame", "base", ["frame"])  # type: ignore[list-item]
    assert recent.get("/upload/a.png", "base") == ["a"] and recent.get(b"frame", "base") == ["frame"]
    assert recent.get("/upload/a.png", "v1") is None  # another version finds the faces afresh
    recent.remember("/upload/b.png", "base", ["b"])  # type: ignore[list-item]
    assert recent.get("/upload/a.png", "base") is None  # the oldest is forgotten
    assert recent.get("/upload/b.png", "base") == ["b"]


sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

# the image's pixel under a click, for an <img> drawn with object-fit: contain (as Gradio shows it)
_CLICK_POINT_JS = """([x, y]) => {
  const img = document.querySelector('#annotated img');
  const box = img.getBoundingClientRect();
  const scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
  const left = box.left + (box.width - img.naturalWidth * scale) / 2;
  const top = box.top + (box.height - img.naturalHeight * scale) / 2;
  return [left + x * scale, top + y * scale];
}"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from launch(tmp_path_factory.mktemp("faces"), users="")


@pytest.fixture(scope="module")
def page(app: LiveApp) -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(180_000)  # two shared CPU cores run server and browser
        page.goto(app.url)
        page.get_by_role("tab", name="Predict").first.wait_for()
        yield page
        browser.close()


def _probabilities_title(page, number: int) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "([n]) => (document.querySelector('#probs')?.innerText || '').includes('Face ' + n + ' probabilities')",
        arg=[number],
    )


@needs_chromium
def test_choose_any_face_from_the_list_or_by_clicking_it(page, app: LiveApp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from core.faces.canvas import astronaut_group

    canvas = astronaut_group(3, (960, 540), smallest=80, largest=120, seed=3)
    photo = tmp_path / "group.png"
    canvas.image.save(photo)
    faces = app.services.snapshot().student.predict_image(canvas.image)  # the order the app numbers them in
    assert len(faces) == 3

    page.locator("#photo-input input[type=file]").set_input_files(str(photo))
    page.locator("#predict-status").get_by_text("Answered by student").wait_for()
    picker = page.locator("#face-picker")
    for number in (1, 2, 3):
        picker.get_by_text(f"Face {number}:").wait_for()
    _probabilities_title(page, 1)
    student_before = page.locator("#student-cam img").get_attribute("src")

    picker.get_by_text("Face 2:").click()
    _probabilities_title(page, 2)
    page.wait_for_function(
        "([old]) => document.querySelector('#student-cam img')?.getAttribute('src') !== old", arg=[student_before]
    )
    page.locator("#teacher-cam img").wait_for()
    shown = page.locator("#probs").inner_text()
    assert faces[1].label in shown

    x0, y0, x1, y1 = faces[2].box
    x, y = page.evaluate(_CLICK_POINT_JS, [(x0 + x1) / 2, (y0 + y1) / 2])
    page.mouse.click(x, y)
    _probabilities_title(page, 3)
    assert page.locator("#face-picker input:checked").get_attribute("value") in ("3", 3)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webapp-predict-face-3.png"), full_page=True)

    # a new photo starts again at face 1, title included
    page.locator("#photo-input button[aria-label='Remove Image']").first.click()
    page.locator("#photo-input input[type=file]").set_input_files(str(photo))
    _probabilities_title(page, 1)
    page.wait_for_function("() => document.querySelector('#face-picker input:checked')?.value === '1'")
