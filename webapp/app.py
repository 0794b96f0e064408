"""The Gradio Blocks app: layout and event wiring only; behaviour lives in :mod:`webapp.handlers`.

Every event a client may call has a stable ``api_name``; UI-only events are private (but still reachable
over HTTP by their index, so their handlers check access too). Predict runs concurrently; retrain has
``concurrency_limit=1`` so one user's job cannot pile up behind another's.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from core.images import MAX_FILE_BYTES

from .cookies import ClientCookieMiddleware
from .handlers import MAX_EPOCHS, Handlers
from .services import Services
from .shortcuts import SHORTCUTS_JS

__all__ = ["build_demo", "PREDICT_CONCURRENCY", "MAX_UPLOAD"]

PREDICT_CONCURRENCY = 4  # CPU inference: a few at once keeps latency fair without oversubscribing cores
POLL_SECONDS = 2.0
MAX_UPLOAD = "1gb"  # per uploaded file (a zip of photos); each image inside is held to core's own limits


def _data_url_bytes(url: str) -> bytes | None:
    """The bytes of a ``data:image/...;base64,`` URL (webcam frames), refused past core's file size limit."""
    head, _, body = url.partition(",")
    if not head.endswith(";base64") or len(body) > (MAX_FILE_BYTES * 4) // 3 + 4:
        return None
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def photo_input(**options: Any) -> gr.Image:
    """A filepath ``gr.Image`` that hands the upload to the handler undecoded: core decodes it, with its limits.

    Gradio's own preprocessing opens the file with PIL (webcam data URLs are decoded in full) before any
    size check; an instance override (not a subclass: Gradio writes a ``.pyi`` beside every component
    subclass) passes the uploaded path, or a data URL's bytes, straight on. Which paths a client may name
    is still checked by Gradio before this runs (uploads and its cache only).
    """
    image = gr.Image(type="filepath", image_mode=None, **options)

    def preprocess(payload: Any) -> str | bytes | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            return _data_url_bytes(payload.url) or b"-"  # b"-" is refused by core as "not an image"
        return None if payload.path is None else str(payload.path)

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


def _header(services: Services, handlers: Handlers) -> tuple[gr.Markdown, list[gr.events.Dependency]]:
    """Title, who is signed in, and the sign-in form; returns the events after which the views refresh."""
    settings = services.settings
    gr.Markdown(
        f"# {settings.title}\nFacial expressions with a small distilled student (T-SNet), explained by Grad-CAM."
    )
    with gr.Row():
        whoami = gr.Markdown(elem_id="whoami")
        if settings.oauth:
            gr.LoginButton()
    if settings.users:
        with gr.Accordion("Sign in (annotate, retrain, promote)", open=False):
            with gr.Row():
                name = gr.Textbox(label="Name", scale=2)
                password = gr.Textbox(label="Password", type="password", scale=2)
                sign_in = gr.Button("Sign in", scale=1)
                sign_out = gr.Button("Sign out", scale=1, variant="secondary")
        signed_in = sign_in.click(handlers.sign_in, [name, password], whoami, api_name="sign_in")
        signed_in.then(lambda: "", None, password, api_visibility="private")
        signed_out = sign_out.click(handlers.sign_out, None, whoami, api_name="sign_out")
        return whoami, [signed_in, signed_out]
    return whoami, []


@dataclass
class _PhotoView:
    """The Photo tab's components, as the events wire them."""

    photo: gr.Image
    with_teacher: gr.Checkbox
    run: gr.Button
    annotated: gr.Image
    status: gr.Markdown
    face_picker: gr.Radio
    probabilities: gr.Label
    student_cam: gr.Image
    teacher_cam: gr.Image
    details: gr.JSON


def _photo_layout(services: Services, labels: list[str]) -> _PhotoView:
    with gr.Row():
        with gr.Column(scale=1):
            photo = photo_input(
                label="Photo (upload or webcam)", sources=["upload", "webcam"], elem_id="photo-input", height=360
            )
            with_teacher = gr.Checkbox(
                label="Also explain with the teacher (paper Fig. 6)",
                value=services.teacher is not None,
                interactive=services.teacher is not None,
            )
            run = gr.Button("Predict", variant="primary", elem_id="predict-btn")
            gr.Examples([str(path) for path in services.examples], inputs=photo, label="Examples")
        with gr.Column(scale=1):
            annotated = gr.Image(label="Faces", elem_id="annotated", height=360, interactive=False)
            status = gr.Markdown(elem_id="predict-status")
            face_picker = gr.Radio(
                label="Face (or click it on the photo)", choices=[], visible=False, elem_id="face-picker"
            )
            probabilities = gr.Label(label="Face 1 probabilities", num_top_classes=len(labels), elem_id="probs")
    with gr.Row():
        student_cam = gr.Image(label="Grad-CAM: student", elem_id="student-cam", interactive=False)
        teacher_cam = gr.Image(label="Grad-CAM: teacher", elem_id="teacher-cam", interactive=False)
    with gr.Accordion("All faces (JSON)", open=False):
        details = gr.JSON(label="Faces, model version, latency")
    return _PhotoView(
        photo, with_teacher, run, annotated, status, face_picker, probabilities, student_cam, teacher_cam, details
    )


def _photo_events(handlers: Handlers, view: _PhotoView) -> None:
    """Predict (button or upload), then the face list; another face from the list or by a click on its box."""
    predicting: dict[str, Any] = {"concurrency_limit": PREDICT_CONCURRENCY, "concurrency_id": "predict"}
    inputs = [view.photo, view.with_teacher]
    outputs = [view.annotated, view.probabilities, view.student_cam, view.teacher_cam, view.details, view.status]
    predicted = [
        view.run.click(handlers.predict, inputs, outputs, api_name="predict", **predicting),
        view.photo.upload(handlers.predict, inputs, outputs, api_visibility="private", **predicting),
    ]
    for event in predicted:
        event.then(
            handlers.face_choices, view.details, [view.face_picker, view.probabilities], api_visibility="private"
        )
    explained = (
        [view.photo, view.with_teacher, view.face_picker],
        [view.probabilities, view.student_cam, view.teacher_cam],
    )
    view.face_picker.input(handlers.explain_face, *explained, api_visibility="private", **predicting)
    clicked = view.annotated.select(handlers.face_at, view.details, view.face_picker, api_visibility="private")
    clicked.then(handlers.explain_face, *explained, api_visibility="private", **predicting)


def _predict_tab(services: Services, handlers: Handlers, annotator: gr.Textbox) -> None:
    labels = handlers.labels
    with gr.Tab("Predict", id="predict"):
        with gr.Tab("Photo"):
            view = _photo_layout(services, labels)
            with gr.Accordion("Add this photo to the dataset", open=False):
                with gr.Row():
                    dataset_label = gr.Dropdown([""] + labels, value="", label="Label (optional)", scale=2)
                    add = gr.Button("Add to dataset", scale=1, elem_id="add-btn")
                added = gr.Markdown()
        with gr.Tab("Live webcam"):
            gr.Markdown("Faces are detected every few frames and tracked in between (FaceStream).")
            with gr.Row():
                camera = photo_input(label="Webcam", sources=["webcam"], streaming=True)
                live = gr.Image(label="Live result", interactive=False)
            live_probabilities = gr.Label(label="Face 1", num_top_classes=3)
            stream_state = gr.State(None)
    _photo_events(handlers, view)
    camera.stream(
        handlers.predict_frame,
        [camera, stream_state],
        [live, live_probabilities, stream_state],
        api_name="predict_frame",
        stream_every=0.15,
        time_limit=300,
        concurrency_limit=PREDICT_CONCURRENCY,
        concurrency_id="live",
    )
    add.click(handlers.add_to_dataset, [view.photo, dataset_label, annotator], added, api_name="add_to_dataset")


@dataclass
class _QueueView:
    """The Annotate tab's queue: the image and its face, the label buttons and what the keys press."""

    original: gr.Image
    crop: gr.Image
    info: gr.Markdown
    label_buttons: list[gr.Button]
    accept: gr.Button
    skip: gr.Button
    undo: gr.Button
    message: gr.Markdown
    image_id: gr.Textbox
    suggestion: gr.Textbox
    queue_api: gr.Button  # carries the next_image API endpoint

    @property
    def outputs(self) -> list[Any]:
        return [self.original, self.crop, self.image_id, self.suggestion, self.info, *self.label_buttons]


def _queue_layout(labels: list[str]) -> _QueueView:
    with gr.Row():
        original = gr.Image(label="Next image", elem_id="queue-image", height=320, interactive=False)
        crop = gr.Image(label="Face the label is for", height=320, interactive=False)
    info = gr.Markdown(elem_id="queue-info")
    with gr.Row():
        label_buttons = [
            gr.Button(f"{number} · {name}", elem_id=f"label-btn-{number}", min_width=90)
            for number, name in enumerate(labels, start=1)
        ]
    with gr.Row():
        accept = gr.Button("Accept suggestion (Enter)", variant="primary", elem_id="accept-btn")
        skip = gr.Button("Skip (s)", elem_id="skip-btn")
        undo = gr.Button("Undo (z)", elem_id="undo-btn")
    message = gr.Markdown(elem_id="annotate-message")
    hidden = gr.Textbox(visible=False), gr.Textbox(visible=False), gr.Button(visible=False)
    return _QueueView(original, crop, info, label_buttons, accept, skip, undo, message, *hidden)


def _annotate_tab(
    services: Services,
    handlers: Handlers,
    annotator: gr.Textbox,
    demo: gr.Blocks,
    access_changed: list[gr.events.Dependency],
) -> None:
    labels = handlers.labels
    with gr.Tab("Annotate", id="annotate"):
        with gr.Column(elem_id="annotate-panel"):
            with gr.Row():
                with gr.Column(scale=3):
                    queue = _queue_layout(labels)
                with gr.Column(scale=2):
                    annotator.render()
                    summary = gr.Markdown(elem_id="stats-summary")
                    counts = gr.Dataframe(
                        headers=["class", "train", "validation", "test", "total"],
                        label="Labelled images",
                        interactive=False,
                        elem_id="counts",
                    )
                    gr.Markdown("Keys: **1-7** label · **Enter** accept the suggestion · **s** skip · **z** undo")
            with gr.Accordion("Upload images, a zip or a folder", open=False):
                with gr.Row():
                    files = gr.File(label="Images or zips", file_count="multiple", file_types=["image", ".zip"])
                    folder = gr.File(label="A folder", file_count="directory")
                labels_from_folders = gr.Checkbox(label="Use folder names as labels (e.g. happy/img1.jpg)")
                imported = gr.Markdown()
    stats_outputs = [counts, summary]

    def after(event: gr.events.Dependency) -> None:
        event.then(handlers.next_item_view, annotator, queue.outputs, api_visibility="private").then(
            handlers.stats_view, None, stats_outputs, api_visibility="private"
        )

    image_id, message = queue.image_id, queue.message
    for button, name in zip(queue.label_buttons, labels):
        after(button.click(handlers.label_as(name), [image_id, annotator], message, api_visibility="private"))
    after(queue.accept.click(handlers.label, [image_id, queue.suggestion, annotator], message, api_name="label"))
    after(queue.skip.click(handlers.skip, image_id, message, api_name="skip"))
    after(queue.undo.click(handlers.undo, annotator, message, api_name="undo"))
    importing = [labels_from_folders, annotator]
    after(files.upload(handlers.import_files, [files, *importing], imported, api_name="import"))
    after(folder.upload(handlers.import_files, [folder, *importing], imported, api_visibility="private"))
    # the page shows the queue (or a sign-in placeholder); the API endpoint refuses anonymous callers outright
    demo.load(handlers.next_item_view, annotator, queue.outputs, api_visibility="private")
    demo.load(handlers.stats_view, None, stats_outputs, api_visibility="private")
    queue.queue_api.click(handlers.next_item, annotator, queue.outputs, api_name="next_image")
    for event in access_changed:
        after(event)


def _retrain_tab(services: Services, handlers: Handlers) -> gr.Timer:
    with gr.Tab("Retrain", id="retrain"):
        gr.Markdown(
            "Fine-tunes the served student on your labelled faces (with a replay of FER+ faces so it does not forget), "
            "then promotes the candidate only when it is shown better on your test faces (a 95 % interval over groups "
            "of similar shots) and stays within 0.5 point on the FER+ benchmark. Anything the job had to do without "
            "is shown as a warning."
            + (
                f" Promoted versions are pushed to `{services.settings.push_repo}`."
                if services.settings.push_repo
                else ""
            )
        )
        with gr.Row():
            default_epochs = getattr(getattr(services.retrain, "settings", None), "epochs", 3)
            # bounds checked by the handler (a plain message, no server traceback), not by gr.Number
            epochs = gr.Number(label=f"Epochs (1-{MAX_EPOCHS})", value=default_epochs, precision=0, scale=1)
            start = gr.Button("Retrain", variant="primary", elem_id="retrain-btn", scale=2)
            cancel = gr.Button("Cancel", variant="stop", elem_id="cancel-btn", interactive=False, scale=1)
        started = gr.Markdown(elem_id="retrain-message")
        job_json = gr.JSON(visible=False)
        progress = gr.Markdown("Loading job status…", elem_id="retrain-status")
        comparison = gr.Dataframe(
            headers=["evaluation set", "samples", "current", "candidate", "delta (points)", "verdict"],
            label="Candidate vs current",
            interactive=False,
            elem_id="comparison",
        )
        per_class = gr.Dataframe(
            headers=["class", "your test faces (current -> candidate)", "benchmark (current -> candidate)"],
            label="Per class",
            interactive=False,
            elem_id="per-class",
        )
        with gr.Row():
            promote = gr.Button("Promote candidate", elem_id="promote-btn", interactive=False)
            rollback = gr.Button("Roll back to previous", elem_id="rollback-btn")
        decided = gr.Markdown(elem_id="promote-message")
        candidate = gr.Textbox(visible=False)
        timer = gr.Timer(POLL_SECONDS)
    job_outputs = [progress, comparison, per_class, start, cancel, promote]
    start.click(handlers.start_retrain, epochs, [started, job_json], api_name="retrain", concurrency_limit=1).then(
        handlers.job_view, None, job_outputs, api_visibility="private"
    )
    timer.tick(
        handlers.job_view, None, job_outputs, api_visibility="private", concurrency_limit=None, show_progress="hidden"
    )
    cancel.click(handlers.cancel_retrain, None, started, api_name="cancel_retrain")
    promote.click(
        handlers.promote, candidate, decided, api_name="promote", concurrency_limit=1, concurrency_id="registry"
    )
    rollback.click(
        handlers.rollback, None, decided, api_name="rollback", concurrency_limit=1, concurrency_id="registry"
    )
    return timer


def _models_tab(handlers: Handlers, demo: gr.Blocks) -> gr.Tab:
    with gr.Tab("Models", id="models") as tab:
        served = gr.Markdown(elem_id="served")
        versions = gr.Dataframe(
            headers=["", "version", "created", "parent", "accuracy", "promoted", "pushed"],
            label="Versions",
            interactive=False,
            elem_id="versions",
        )
        with gr.Row():
            chosen = gr.Dropdown(label="Show version", choices=[], scale=3)
            refresh = gr.Button("Refresh", scale=1)
        with gr.Row():
            confusion = gr.Plot(label="Confusion matrix")
            curves = gr.Plot(label="Training curves")
    outputs = [versions, served, chosen, confusion, curves]
    for event in (tab.select, refresh.click, chosen.input):
        event(handlers.models_view, chosen, outputs, api_visibility="private")
    return tab


def build_demo(services: Services) -> gr.Blocks:
    """The whole app for one ``Services``; launch it, mount it, or drive it with ``gradio_client``."""
    handlers = Handlers(services)
    with gr.Blocks(title=services.settings.title) as demo:
        whoami, access_changed = _header(services, handlers)
        annotator = gr.Textbox(
            label="Annotator",
            value="annotator",
            render=False,
            elem_id="annotator",
            info="Your signed-in name is used when sign-in is configured.",
            interactive=not services.settings.gated,
        )
        with gr.Tabs():
            _predict_tab(services, handlers, annotator)
            _annotate_tab(services, handlers, annotator, demo, access_changed)
            _retrain_tab(services, handlers)
            _models_tab(handlers, demo)
        # JSON endpoints for gradio_client (outside the tabs: they have no component)
        gr.api(handlers.stats, api_name="stats")
        gr.api(handlers.retrain_status, api_name="retrain_status")
        gr.api(handlers.models, api_name="models")
        demo.load(handlers.whoami, None, whoami, api_visibility="private")
        demo.load(None, None, None, js=SHORTCUTS_JS)
    demo.queue(default_concurrency_limit=2)
    _serve_with_client_cookie(demo, services)
    return demo


def _serve_with_client_cookie(demo: gr.Blocks, services: Services) -> None:
    """Make every ``demo.launch(...)`` (``tsnet serve``, a Space's ``app.py``, tests) install the client cookie.

    The sign-in is bound to that cookie (see :mod:`webapp.access`), so a launch without it could not sign
    anyone in; an instance override keeps ``create_app().launch()`` the whole recipe. The upload size cap
    is set here too unless the caller chose one.
    """
    launch = demo.launch

    def launch_with_client_cookie(*args: Any, **kwargs: Any) -> Any:
        app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
        cookie = Middleware(ClientCookieMiddleware, sessions=services.sessions, cross_site=services.settings.on_space)
        app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), cookie]
        kwargs.setdefault("max_file_size", MAX_UPLOAD)
        return launch(*args, app_kwargs=app_kwargs, **kwargs)

    demo.launch = launch_with_client_cookie  # type: ignore[method-assign]
