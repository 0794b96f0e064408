"""Event handlers: a few lines each, calling core, labeling and retrain. Errors become ``gr.Error`` messages.

No ``from __future__ import annotations`` here: Gradio reads these type hints at runtime to inject
``gr.Request`` and ``gr.OAuthProfile``.

Two kinds of handler read stored data. API endpoints (``next_image``, ``stats``, ``models``, ...) refuse an
anonymous caller of a gated server with a plain message; the page's own views (``*_view``: page load,
timers, refreshes) show a "sign in" placeholder instead, so a visitor is not greeted by error toasts. Every
request takes the model snapshot once (``Services.snapshot``), so the version it reports answered it.
"""

import dataclasses
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from core import Face, FaceStream, ImageError, open_image
from core.explain import explainer, overlay_heatmap
from core.figures import confusion_figure
from core.images import read_image_bytes, to_rgb
from labeling import LabelNotInSetError, UnknownImageError
from labeling.importing import plain_reason
from labeling.store import AnnotatorNameError

from . import render
from .access import (
    check_password,
    client_address,
    loggable,
    refuse,
    require_user,
    resolve_user,
)
from .models import ModelSnapshot, card_metrics
from .outputs import OutputFolder
from .services import Services

__all__ = ["Handlers", "MAX_EXPLAINED_FACES", "MAX_EPOCHS"]

log = logging.getLogger(__name__)

MAX_EXPLAINED_FACES = 6  # Grad-CAM costs a backward pass per face; a crowd photo explains its largest six
MAX_EPOCHS = 100
NO_FACE = "No face found. Use a photo where a face is visible, frontal and at least ~60 px wide."
SIGN_IN_TO_SEE = "Sign in to see the dataset, the retrain jobs and the model versions."


def _job_dict(job: Any) -> dict[str, Any] | None:
    return dataclasses.asdict(job) if dataclasses.is_dataclass(job) else None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _photo_key(photo: Any) -> str:
    """One photo's name in :class:`RecentFaces`: the upload's path, or a digest of a webcam frame's bytes."""
    return photo if isinstance(photo, str) else hashlib.sha256(bytes(photo)).hexdigest()


class RecentFaces:
    """The faces of the last few photos predicted, so choosing another face explains it without detecting again.

    Keyed by the upload (Gradio gives every upload its own path) and the model version that found them: after a
    promotion the photo is predicted afresh. Bounded: the oldest photo is forgotten first.
    """

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._faces: OrderedDict[tuple[str, str], list[Face]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, photo: Any, version: str, faces: list[Face]) -> None:
        with self._lock:
            self._faces[(_photo_key(photo), version)] = faces
            self._faces.move_to_end((_photo_key(photo), version))
            while len(self._faces) > self._size:
                self._faces.popitem(last=False)

    def get(self, photo: Any, version: str) -> list[Face] | None:
        with self._lock:
            return self._faces.get((_photo_key(photo), version))


def face_number(value: Any, count: int) -> int | None:
    """The 1-based face a picker value names (``1``, ``"2"``), or ``None`` when it names no face of ``count``."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= count else None


class Handlers:
    """Bound to one ``Services``; ``build_demo`` wires these methods to components."""

    def __init__(self, services: Services, outputs: OutputFolder | None = None) -> None:
        self.services = services
        self.outputs = outputs or OutputFolder()  # pictures are returned as complete files (see webapp.outputs)
        self.recent = RecentFaces()

    @property
    def labels(self) -> list[str]:
        return list(self.services.store.labels)

    def _user(self, request: gr.Request | None, profile: Any, action: str, name: Any = "") -> str:
        return require_user(self.services.settings, self.services.sessions, request, profile, action, name)

    def _may_view(self, request: gr.Request | None, profile: Any) -> bool:
        """Whether the page's views may show stored data to this client (anyone on an open server)."""
        settings = self.services.settings
        if not settings.gated:
            return True
        user = resolve_user(settings, self.services.sessions, request, profile)
        return user is not None and (user in settings.users or user in settings.allowed_users)

    # -- predict -------------------------------------------------------------------------------------
    def _explain(self, classifier: Any, faces: list[Face], own_label: bool, first: int = 1) -> str | None:
        """One strip of Grad-CAM overlays, numbered from ``first``; the teacher explains its own label."""
        panels = []
        for number, face in enumerate(faces[:MAX_EXPLAINED_FACES], start=first):  # core.explain locks per explainer
            heat, name = explainer(classifier).crop_heatmap(face.aligned_crop, None if own_label else face.label)
            panels.append((overlay_heatmap(face.aligned_crop, heat), f"{number}. {name}"))
        return self.outputs.save(render.cam_strip(panels))

    @staticmethod
    def _photo(photo: Any, what: str = "file") -> Image.Image:
        """Decode an upload (a path, or bytes from a webcam data URL) with core's one decoder and its limits."""
        try:
            return to_rgb(open_image(Path(photo) if isinstance(photo, str) else bytes(photo)))
        except (ImageError, TypeError) as error:
            reason = str(error) if isinstance(error, ImageError) else "not an image"
            raise refuse(f"Cannot read this {what} as a photo: {reason}", title="Bad file") from None

    def predict(self, photo: Any, with_teacher: bool) -> tuple[Any, ...]:
        """Faces with labels, probabilities of face 1, Grad-CAM of student (and teacher), details and timing."""
        if not photo:
            raise refuse("Upload a photo or take one with the webcam first.", title="No photo")
        image = self._photo(photo)
        models: ModelSnapshot = self.services.snapshot()  # once: the version reported is the one that answers
        student, teacher = models.student, models.teacher
        started = time.perf_counter()
        faces = student.predict_image(image)
        predict_ms = (time.perf_counter() - started) * 1000
        details: dict[str, Any] = {"version": models.version, "faces": [f.to_dict() for f in faces]}
        if not faces:
            gr.Warning(NO_FACE)
            details.update(message=NO_FACE, latency_ms=round(predict_ms, 1))
            return self.outputs.save(image), None, None, None, details, f"**{NO_FACE}** ({predict_ms:.0f} ms)"
        student_cam = self._explain(student, faces, own_label=False)
        teacher_cam = self._explain(teacher, faces, own_label=True) if with_teacher and teacher else None
        total_ms = (time.perf_counter() - started) * 1000
        details.update(latency_ms=round(total_ms, 1), predict_ms=round(predict_ms, 1))
        status = (
            f"Answered by student **{models.version}** · {len(faces)} face(s) · "
            f"prediction {predict_ms:.0f} ms · with Grad-CAM {total_ms:.0f} ms"
        )
        if with_teacher and teacher is None:
            status += " · no teacher model installed"
        annotated = self.outputs.save(render.draw_faces(image, faces))
        self.recent.remember(photo, models.version, faces)
        return annotated, faces[0].probs, student_cam, teacher_cam, details, status

    def face_choices(self, details: Any) -> tuple[Any, Any]:
        """The face picker after a prediction: "Face N: label p" for every face found, face 1 chosen (and the
        probabilities titled for face 1 again: they are face 1's whichever face was chosen before)."""
        faces = details.get("faces") if isinstance(details, dict) else None
        title = gr.update(label="Face 1 probabilities")
        if not faces:
            return gr.update(choices=[], value=None, visible=False), title
        choices = [
            (f"Face {number}: {face['label']} {face['probs'].get(face['label'], 0):.0%}", number)
            for number, face in enumerate(faces, start=1)
        ]
        return gr.update(choices=choices, value=1, visible=True), title

    def face_at(self, details: Any, event: gr.EventData) -> Any:
        """The face whose box holds the clicked pixel (the smallest, where boxes overlap); no change elsewhere.

        Takes the plain ``EventData`` (not ``SelectData``, which Gradio builds by subscripting the event's data):
        a call made without a click, e.g. straight over HTTP, then changes nothing instead of failing.
        """
        data = getattr(event, "_data", None)
        point = data.get("index") if isinstance(data, dict) else None
        faces = details.get("faces") if isinstance(details, dict) else None
        number = render.face_at_point(faces if isinstance(faces, list) else [], point)
        return gr.update() if number is None else gr.update(value=number)

    def explain_face(self, photo: Any, with_teacher: bool, choice: Any) -> tuple[Any, ...]:
        """Probabilities and Grad-CAM (student, and teacher when asked) of the chosen face of the photo."""
        if not photo:
            raise refuse("Upload a photo or take one with the webcam first.", title="No photo")
        models: ModelSnapshot = self.services.snapshot()
        faces = self.recent.get(photo, models.version)
        if faces is None:  # an older photo, or a version promoted since: find its faces again
            faces = models.student.predict_image(self._photo(photo))
            self.recent.remember(photo, models.version, faces)
        number = face_number(choice, len(faces))
        if number is None:
            raise refuse(f"This photo has {len(faces)} face(s): choose one of them.", title="No such face")
        face = faces[number - 1]
        student_cam = self._explain(models.student, [face], own_label=False, first=number)
        teacher = models.teacher if with_teacher else None
        teacher_cam = self._explain(teacher, [face], own_label=True, first=number) if teacher else None
        return gr.update(value=face.probs, label=f"Face {number} probabilities"), student_cam, teacher_cam

    def predict_frame(self, frame: Any, stream: FaceStream | None) -> tuple[Any, ...]:
        """Live webcam: track faces across frames (FaceStream) and label each one."""
        if frame is None:
            return None, None, stream
        image = self._photo(frame, "frame")
        student = self.services.snapshot().student
        if not isinstance(stream, FaceStream) or stream.classifier is not student:
            stream = FaceStream(student)
        faces = stream.process(np.asarray(image))
        return self.outputs.save(render.draw_faces(image, faces)), faces[0].probs if faces else None, stream

    def add_to_dataset(
        self, photo: Any, label: Any, name: Any, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> str:
        """Send the photo on the Predict tab to the annotation store, labelled when a label was chosen."""
        user = self._user(request, profile, "add images to the dataset", name)
        if not photo:
            raise refuse("Upload a photo first.", title="No photo")
        try:
            data = read_image_bytes(Path(photo) if isinstance(photo, str) else photo)
            filename = Path(photo).name if isinstance(photo, str) else "webcam.png"
            image_id = self.services.store.add_image(data, source="predict", filename=filename)
            if label:
                self.services.store.label(image_id, label, user)
        except (ImageError, LabelNotInSetError, AnnotatorNameError) as error:
            raise refuse(plain_reason(error), "Not added") from None
        return f"Added image `{image_id[:12]}` to the dataset" + (f" labelled **{label}** by {user}." if label else ".")

    # -- access --------------------------------------------------------------------------------------
    def sign_in(self, name: Any, password: Any, request: gr.Request) -> str:
        """Local sign-in against TSNET_USERS, for this client (its cookie) until sign-out or expiry."""
        users = self.services.settings.users
        if not users:
            return "Local sign-in is not configured on this server."
        name, password = _text(name), password if isinstance(password, str) else ""
        address = client_address(request)
        wait = self.services.sign_ins.wait_seconds(name, address)
        if wait > 0:
            log.warning("sign-in refused for %s from %s: too many failed attempts", loggable(name), address)
            minutes = max(1, math.ceil(wait / 60))
            raise refuse(
                f"Too many failed sign-ins for this name or from this address: try again in {minutes} minute(s).",
                title="Sign-in paused",
            )
        if not check_password(users, name, password):
            self.services.sign_ins.failed(name, address)
            log.warning("sign-in failed for %s from %s", loggable(name), address)
            raise refuse("Wrong name or password.", title="Sign-in failed")
        if not self.services.sessions.sign_in(request, name):
            raise refuse("This client keeps no cookies, so a sign-in cannot stick: enable cookies and reload.")
        self.services.sign_ins.succeeded(name)
        log.info("signed in: %s from %s", loggable(name), address)
        return self.whoami(request, None)

    def sign_out(self, request: gr.Request) -> str:
        """End this client's sign-in; its cookie then acts as nobody (replaying it signs no one in)."""
        if not self.services.sessions.sign_out(request):
            raise refuse("Not signed in: there is nothing to sign out of.", title="Not signed in")
        return self.whoami(request, None)

    def whoami(self, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        settings = self.services.settings
        user = resolve_user(settings, self.services.sessions, request, profile)
        if not settings.gated:
            return "Open server: anyone may annotate and retrain; type your name on the Annotate tab."
        if user:
            return f"Signed in as **{user}**."
        return "Not signed in: prediction is open; annotating, retraining and promoting need a sign-in."

    # -- annotate ------------------------------------------------------------------------------------
    def import_files(
        self,
        files: Any,
        labels_from_folders: bool,
        name: Any,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
    ) -> str:
        """Images, zips or a folder's files into the store (bad files are listed, not fatal)."""
        user = self._user(request, profile, "import images", name)
        paths = [files] if isinstance(files, str) else [f for f in files or [] if isinstance(f, str)]
        if not paths:
            raise refuse("Choose images, a zip or a folder first.", title="Nothing to import")
        try:
            report = self.services.store.import_paths(
                [Path(f) for f in paths], labels_from_folders=bool(labels_from_folders), annotator=user
            )
        except AnnotatorNameError as error:
            raise refuse(str(error), title="Not imported") from None
        text = f"Imported {report.added} new image(s), {report.already_present} already present"
        text += f", {report.label_events} label(s) from folders." if report.label_events else "."
        skipped = "".join(f"\n- skipped `{Path(source).name}`: {reason}" for source, reason in report.skipped[:20])
        return text + skipped

    def _queue_item(self, name: Any, request: gr.Request, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        session = self.services.sessions.get(request)
        annotator = resolve_user(self.services.settings, self.services.sessions, request, profile) or _text(name)
        models = self.services.snapshot()
        items = self.services.store.next_to_label(
            len(session.skipped) + 1, classifier=models.student, annotator=annotator or None, teacher=models.teacher
        )
        item = next((i for i in items if i.image_id not in session.skipped), None)
        buttons = [gr.update(variant="secondary") for _ in self.labels]
        if item is None:
            return None, None, "", "", "**Queue empty.** Upload more images or clear skips by reloading.", *buttons
        record = self.services.store.image(item.image_id)
        suggestion = item.suggested_label or ""
        if suggestion in self.labels:
            buttons[self.labels.index(suggestion)] = gr.update(variant="primary")
        confidence = f" ({item.confidence:.0%})" if item.confidence is not None else ""
        info = f"**Suggestion:** {suggestion or '-'}{confidence} · {item.reason} · `{item.image_id[:12]}`"
        if item.votes:
            info += " · votes " + ", ".join(f"{k}: {v}" for k, v in item.votes.items())
        return str(record.original), str(record.crop), item.image_id, suggestion, info, *buttons

    def next_item(self, name: Any, request: gr.Request, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        """API: the most uncertain image this annotator has not labelled or skipped, with the model's suggestion."""
        self._user(request, profile, "see the annotation queue", name)
        return self._queue_item(name, request, profile)

    def next_item_view(self, name: Any, request: gr.Request, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        """The Annotate tab's queue: the next item, or a sign-in placeholder for an anonymous visitor."""
        if not self._may_view(request, profile):
            buttons = [gr.update(variant="secondary") for _ in self.labels]
            return None, None, "", "", f"**Sign in to annotate.** {SIGN_IN_TO_SEE}", *buttons
        return self._queue_item(name, request, profile)

    def label(self, image_id: Any, label: Any, name: Any, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Record one label for one image; the message names what was saved."""
        user = self._user(request, profile, "label images", name)
        if not image_id or not isinstance(image_id, str):
            raise refuse("No image to label: the queue is empty.", title="Nothing to label")
        try:
            event = self.services.store.label(image_id, label, user)
        except (UnknownImageError, LabelNotInSetError, AnnotatorNameError) as error:
            raise refuse(str(error), title="Not labelled") from None
        return f"Labelled `{image_id[:12]}` as **{event.label}** ({user})."

    def label_as(self, label: str) -> Callable[..., str]:
        """A label button's handler: ``label`` fixed, the rest as in :meth:`label`."""

        def label_button(image_id: Any, name: Any, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
            return self.label(image_id, label, name, request, profile)

        return label_button

    def skip(self, image_id: Any, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        self._user(request, profile, "skip images")
        if not image_id or not isinstance(image_id, str):
            return "Nothing to skip."
        self.services.sessions.get(request).skipped.add(image_id[:64])
        return f"Skipped `{image_id[:12]}`."

    def undo(self, name: Any, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        user = self._user(request, profile, "undo labels", name)
        try:
            event = self.services.store.undo_last(user)
        except AnnotatorNameError as error:
            raise refuse(str(error), title="Nothing undone") from None
        return f"Undid **{event.label}** on `{event.image_id[:12]}`." if event else f"{user} has no label to undo."

    def stats(self, request: gr.Request, profile: gr.OAuthProfile | None) -> dict[str, Any]:
        """Counts per class and split (by current label), annotators and agreement (the store's ``stats``)."""
        self._user(request, profile, "see the dataset statistics")
        return self.services.store.stats()

    def stats_view(self, request: gr.Request, profile: gr.OAuthProfile | None) -> tuple[list[list[Any]], str]:
        if not self._may_view(request, profile):
            return [], SIGN_IN_TO_SEE
        stats = self.services.store.stats()
        summary = (
            f"{stats['images']} images · {stats['labelled']} labelled · {stats['unlabelled']} unlabelled · "
            f"{stats['label_events']} label events · {len(stats['annotators'])} annotator(s)"
        )
        return render.counts_rows(stats), summary

    # -- retrain -------------------------------------------------------------------------------------
    def _retrain(self) -> Any:
        if self.services.retrain is None:
            raise refuse("Retraining is not available in this installation (no retrain package).")
        return self.services.retrain

    def start_retrain(
        self, epochs: Any, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> tuple[str, dict[str, Any] | None]:
        """Start the retrain job in the background; refused with a message while one runs."""
        from retrain import JobAlreadyRunning

        self._user(request, profile, "start a retrain")
        count = None
        if epochs not in (None, ""):
            if not isinstance(epochs, (int, float)) or not math.isfinite(epochs) or not 1 <= epochs <= MAX_EPOCHS:
                raise refuse(f"Epochs must be a whole number from 1 to {MAX_EPOCHS}.", title="Cannot retrain")
            count = int(epochs)
        try:
            job = self._retrain().start(epochs=count)
        except JobAlreadyRunning as error:
            gr.Warning(f"A retrain is already running: {error}")
            job = self._retrain().status()
        except (FileNotFoundError, ValueError) as error:
            raise refuse(plain_reason(error), title="Cannot retrain") from None
        return render.job_markdown(job), _job_dict(job)

    def _status(self, job_id: Any) -> Any:
        try:
            return self.services.retrain.status(job_id if isinstance(job_id, str) and job_id else None)
        except ValueError as error:  # an unknown or malformed job id
            raise refuse(str(error), title="No such job") from None

    def retrain_status(
        self, job_id: str | None = None, request: gr.Request = None, profile: gr.OAuthProfile | None = None
    ) -> dict[str, Any] | None:
        """The persisted state of a job (default: the latest), so it survives page reloads and restarts."""
        self._user(request, profile, "see retrain jobs")
        if self.services.retrain is None:
            return None
        return _job_dict(self._status(job_id))

    def job_view(self, request: gr.Request, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        """Everything the Retrain tab shows, polled by a timer (a placeholder for anonymous visitors)."""
        allowed = self._may_view(request, profile)
        job = self.services.retrain.status() if self.services.retrain is not None and allowed else None
        running = job is not None and job.state == "running"
        self.services.snapshot()  # follows a promotion made by the job (or by anyone) without waiting for a predict
        can_promote = job is not None and job.state == "succeeded" and bool(job.version) and not job.promoted
        return (
            render.job_markdown(job) if allowed else SIGN_IN_TO_SEE,
            render.comparison_rows(job.comparison if job else None),
            render.per_class_rows(job.comparison if job else None),
            gr.update(
                interactive=allowed and not running and self.services.retrain is not None,
                value="Retraining… (one job at a time)" if running else "Retrain",
            ),
            gr.update(interactive=running),
            gr.update(interactive=can_promote),
        )

    def cancel_retrain(self, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        self._user(request, profile, "cancel a retrain")
        return "Cancelling the running job…" if self._retrain().cancel() else "No job is running."

    # -- models --------------------------------------------------------------------------------------
    def _listing(self) -> dict[str, Any]:
        registry = self.services.registry
        if registry is None:
            models = self.services.snapshot()
            return {"current": models.version, "versions": [{"version": models.version, **_metrics(models)}]}
        from retrain.registry import BASE_VERSION

        listing = registry.list()
        for entry in listing["versions"]:
            if entry["version"] == BASE_VERSION and not entry.get("metrics"):  # the base's figures are in its card
                entry["metrics"] = card_metrics(registry.weights_folder(BASE_VERSION, "student"))
        return listing

    def models(self, request: gr.Request, profile: gr.OAuthProfile | None) -> dict[str, Any]:
        """Registry listing: ``{"current": v, "versions": [...]}`` (or only the loaded model without a registry)."""
        self._user(request, profile, "see the model versions")
        return self._listing()

    def _switch(self, change: Callable[[Any], str], refusal: str) -> str:
        registry = self.services.registry
        if registry is None:
            raise refuse("No model registry in this installation.")
        try:
            served = change(registry)
        except ValueError as error:  # the registry's own refusals are plain and name no path
            raise refuse(str(error), title=refusal) from None
        except FileNotFoundError:
            raise refuse("The weights of that version are missing on the server.", title=refusal) from None
        answering = self.services.reload_models().version
        return f"Now serving **{served}**." if answering == served else f"Now serving **{answering}**."

    def promote(self, version: Any, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Serve ``version`` (a registry name; default: the latest job's candidate) from now on."""
        self._user(request, profile, "promote a model")
        if not version:
            job = self.services.retrain.status() if self.services.retrain is not None else None
            version = job.version if job is not None and job.version else None
            if version is None:
                raise refuse("No candidate to promote: run a retrain first, or name a version.", "Not promoted")
        return self._switch(lambda registry: registry.promote(version), "Not promoted")

    def rollback(self, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        self._user(request, profile, "roll back the served model")
        message = self._switch(lambda registry: registry.rollback(), "Nothing to roll back")
        return message.replace("Now serving", "Rolled back: now serving", 1)

    def models_view(self, selected: Any, request: gr.Request, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        """Versions table, what is served, and the selected version's confusion matrix and training curves."""
        if not self._may_view(request, profile):
            return [], SIGN_IN_TO_SEE, gr.update(choices=[], value=None), None, None
        listing = self._listing()
        versions = [entry["version"] for entry in listing["versions"]]
        chosen = selected if selected in versions else listing["current"]
        entry = next((e for e in listing["versions"] if e["version"] == chosen), {})
        metrics = entry.get("metrics") or {}
        evaluations = metrics.get("evaluations") or {}
        name, evaluation = next(iter(evaluations.items()), (None, {}))
        matrix = evaluation.get("confusion_matrix") if evaluation else metrics.get("confusion_matrix")
        curves = (metrics.get("training_curves") or {}).get("student") or []
        served = f"Serving **{listing['current']}** (answering: {self.services.model_version()})."
        return (
            render.versions_rows(listing),
            served,
            gr.update(choices=versions, value=chosen),
            confusion_figure(matrix, evaluation.get("labels") or self.labels, f"{chosen}: {name or 'metrics'}"),
            render.curve_figure(curves, f"{chosen}: student training"),
        )


def _metrics(models: ModelSnapshot) -> dict[str, Any]:
    return {"metrics": card_metrics(models.student.source) if models.student.source else models.student.config.metrics}
