"""Event handlers: a few lines each, calling core, labeling and retrain. Errors become ``gr.Error`` messages.

No ``from __future__ import annotations`` here: Gradio reads these type hints at runtime to inject
``gr.Request`` and ``gr.OAuthProfile``.
"""

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from core import Face, FaceStream, ImageError, open_image
from core.explain import overlay_heatmap
from core.images import to_rgb
from labeling import LabelNotInSetError, UnknownImageError

from . import render
from .access import check_password, require_user, resolve_user
from .services import Services

__all__ = ["Handlers", "MAX_EXPLAINED_FACES"]

MAX_EXPLAINED_FACES = 6  # Grad-CAM costs a backward pass per face; a crowd photo explains its largest six
NO_FACE = "No face found. Use a photo where a face is visible, frontal and at least ~60 px wide."


def _job_dict(job: Any) -> dict[str, Any] | None:
    return dataclasses.asdict(job) if dataclasses.is_dataclass(job) else None


class Handlers:
    """Bound to one ``Services``; ``build_demo`` wires these methods to components."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @property
    def labels(self) -> list[str]:
        return list(self.services.store.labels)

    def _user(self, request: gr.Request | None, profile: Any, action: str, name: str = "") -> str:
        return require_user(self.services.settings, self.services.sessions, request, profile, action, name)

    # -- predict -------------------------------------------------------------------------------------
    def _explain(self, classifier: Any, faces: list[Face], own_label: bool) -> Image.Image | None:
        panels = []
        with self.services.cam_lock:
            for number, face in enumerate(faces[:MAX_EXPLAINED_FACES], start=1):
                heat, name = classifier.gradcam.crop_heatmap(face.aligned_crop, None if own_label else face.label)
                panels.append((overlay_heatmap(face.aligned_crop, heat), f"{number}. {name}"))
        return render.cam_strip(panels)

    def predict(self, photo: str | None, with_teacher: bool) -> tuple[Any, ...]:
        """Faces with labels, probabilities of face 1, Grad-CAM of student (and teacher), details and timing."""
        if not photo:
            raise gr.Error("Upload a photo or take one with the webcam first.", title="No photo")
        try:
            image = to_rgb(open_image(Path(photo)))
        except ImageError as error:
            raise gr.Error(f"Cannot read this file as a photo: {error}", title="Bad file") from None
        student, teacher = self.services.student, self.services.teacher
        started = time.perf_counter()
        faces = student.predict_image(image)
        predict_ms = (time.perf_counter() - started) * 1000
        details: dict[str, Any] = {"version": self.services.model_version(), "faces": [f.to_dict() for f in faces]}
        if not faces:
            gr.Warning(NO_FACE)
            details.update(message=NO_FACE, latency_ms=round(predict_ms, 1))
            return image, None, None, None, details, f"**{NO_FACE}** ({predict_ms:.0f} ms)"
        student_cam = self._explain(student, faces, own_label=False)
        teacher_cam = self._explain(teacher, faces, own_label=True) if with_teacher and teacher else None
        total_ms = (time.perf_counter() - started) * 1000
        details.update(latency_ms=round(total_ms, 1), predict_ms=round(predict_ms, 1))
        status = (
            f"Answered by student **{details['version']}** · {len(faces)} face(s) · "
            f"prediction {predict_ms:.0f} ms · with Grad-CAM {total_ms:.0f} ms"
        )
        if with_teacher and teacher is None:
            status += " · no teacher model installed"
        return render.draw_faces(image, faces), faces[0].probs, student_cam, teacher_cam, details, status

    def predict_frame(self, frame: np.ndarray | None, stream: FaceStream | None) -> tuple[Any, ...]:
        """Live webcam: track faces across frames (FaceStream) and label each one."""
        if frame is None:
            return None, None, stream
        if stream is None or stream.classifier is not self.services.student:
            stream = FaceStream(self.services.student)
        faces = stream.process(frame)
        return render.draw_faces(Image.fromarray(frame), faces), faces[0].probs if faces else None, stream

    def add_to_dataset(
        self, photo: str | None, label: str | None, name: str, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> str:
        """Send the photo on the Predict tab to the annotation store, labelled when a label was chosen."""
        user = self._user(request, profile, "add images to the dataset", name)
        if not photo:
            raise gr.Error("Upload a photo first.", title="No photo")
        data = Path(photo).read_bytes()
        try:
            open_image(data)
            image_id = self.services.store.add_image(data, source="predict", filename=Path(photo).name)
            if label:
                self.services.store.label(image_id, label, user)
        except (ImageError, LabelNotInSetError) as error:
            raise gr.Error(str(error), title="Not added") from None
        return f"Added image `{image_id[:12]}` to the dataset" + (f" labelled **{label}** by {user}." if label else ".")

    # -- access --------------------------------------------------------------------------------------
    def sign_in(self, name: str, password: str, request: gr.Request) -> str:
        """Local sign-in against TSNET_USERS; remembered for this browser tab or client session only."""
        users = self.services.settings.users
        if not users:
            return "Local sign-in is not configured on this server."
        if not check_password(users, name or "", password or ""):
            raise gr.Error("Wrong name or password.", title="Sign-in failed")
        self.services.sessions.get(request).user = name.strip()
        return self.whoami(request, None)

    def sign_out(self, request: gr.Request) -> str:
        self.services.sessions.get(request).user = None
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
        files: list[str] | None,
        labels_from_folders: bool,
        name: str,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
    ) -> str:
        """Images, zips or a folder's files into the store (bad files are listed, not fatal)."""
        user = self._user(request, profile, "import images", name)
        if not files:
            raise gr.Error("Choose images, a zip or a folder first.", title="Nothing to import")
        report = self.services.store.import_paths(
            [Path(f) for f in files], labels_from_folders=labels_from_folders, annotator=user
        )
        text = f"Imported {report.added} new image(s), {report.already_present} already present"
        text += f", {report.label_events} label(s) from folders." if report.label_events else "."
        skipped = "".join(f"\n- skipped `{Path(source).name}`: {reason}" for source, reason in report.skipped[:20])
        return text + skipped

    def next_item(self, name: str, request: gr.Request, profile: gr.OAuthProfile | None) -> tuple[Any, ...]:
        """The most uncertain image this annotator has not labelled or skipped, with the model's suggestion."""
        session = self.services.sessions.get(request)
        annotator = resolve_user(self.services.settings, self.services.sessions, request, profile) or name or None
        items = self.services.store.next_to_label(len(session.skipped) + 1, annotator=annotator)
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

    def label(self, image_id: str, label: str, name: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Record one label for one image; the message names what was saved."""
        user = self._user(request, profile, "label images", name)
        if not image_id:
            raise gr.Error("No image to label: the queue is empty.", title="Nothing to label")
        try:
            event = self.services.store.label(image_id, label, user)
        except (UnknownImageError, LabelNotInSetError, ValueError) as error:
            raise gr.Error(str(error), title="Not labelled") from None
        return f"Labelled `{image_id[:12]}` as **{event.label}** ({user})."

    def label_as(self, label: str) -> Callable[..., str]:
        """A label button's handler: ``label`` fixed, the rest as in :meth:`label`."""

        def label_button(image_id: str, name: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
            return self.label(image_id, label, name, request, profile)

        return label_button

    def skip(self, image_id: str, request: gr.Request) -> str:
        if image_id:
            self.services.sessions.get(request).skipped.add(image_id)
        return f"Skipped `{image_id[:12]}`." if image_id else "Nothing to skip."

    def undo(self, name: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        user = self._user(request, profile, "undo labels", name)
        event = self.services.store.undo_last(user)
        return f"Undid **{event.label}** on `{event.image_id[:12]}`." if event else f"{user} has no label to undo."

    def stats(self) -> dict[str, Any]:
        """Counts per class and split (by current label), annotators and agreement (the store's ``stats``)."""
        return self.services.store.stats()

    def stats_view(self) -> tuple[list[list[Any]], str]:
        stats = self.stats()
        summary = (
            f"{stats['images']} images · {stats['labelled']} labelled · {stats['unlabelled']} unlabelled · "
            f"{stats['label_events']} label events · {len(stats['annotators'])} annotator(s)"
        )
        return render.counts_rows(stats), summary

    # -- retrain -------------------------------------------------------------------------------------
    def _retrain(self) -> Any:
        if self.services.retrain is None:
            raise gr.Error("Retraining is not available in this installation (no retrain package).")
        return self.services.retrain

    def start_retrain(
        self, epochs: float | None, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> tuple[str, dict[str, Any] | None]:
        """Start the retrain job in the background; refused with a message while one runs."""
        from retrain import JobAlreadyRunning

        self._user(request, profile, "start a retrain")
        try:
            job = self._retrain().start(epochs=int(epochs) if epochs else None)
        except JobAlreadyRunning as error:
            gr.Warning(f"A retrain is already running: {error}")
            job = self._retrain().status()
        except (FileNotFoundError, ValueError) as error:
            raise gr.Error(str(error), title="Cannot retrain") from None
        return render.job_markdown(job), _job_dict(job)

    def retrain_status(self, job_id: str | None = None) -> dict[str, Any] | None:
        """The persisted state of a job (default: the latest), so it survives page reloads and restarts."""
        if self.services.retrain is None:
            return None
        return _job_dict(self.services.retrain.status(job_id or None))

    def job_view(self) -> tuple[Any, ...]:
        """Everything the Retrain tab shows, polled by a timer."""
        job = self.services.retrain.status() if self.services.retrain is not None else None
        running = job is not None and job.state == "running"
        if job is not None and not running and job.promoted and job.version == self._registry_current():
            self._follow_registry()
        can_promote = job is not None and job.state == "succeeded" and bool(job.version) and not job.promoted
        return (
            render.job_markdown(job),
            render.comparison_rows(job.comparison if job else None),
            gr.update(
                interactive=not running and self.services.retrain is not None,
                value="Retraining… (one job at a time)" if running else "Retrain",
            ),
            gr.update(interactive=running),
            gr.update(interactive=can_promote),
        )

    def cancel_retrain(self, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        self._user(request, profile, "cancel a retrain")
        return "Cancelling the running job…" if self._retrain().cancel() else "No job is running."

    # -- models --------------------------------------------------------------------------------------
    def _registry_current(self) -> str | None:
        registry = self.services.registry
        return registry.current() if registry is not None else None

    def _follow_registry(self) -> None:
        """Reload the served models when the registry's current version is not the one answering."""
        if self.services.model_version() != self._registry_current():
            self.services.reload_models()

    def models(self) -> dict[str, Any]:
        """Registry listing: ``{"current": v, "versions": [...]}`` (or only the loaded model without a registry)."""
        registry = self.services.registry
        if registry is None:
            version = self.services.model_version()
            return {
                "current": version,
                "versions": [{"version": version, "metrics": self.services.student.config.metrics}],
            }
        return registry.list()

    def promote(self, version: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Serve ``version`` (default: the latest job's candidate) from now on."""
        self._user(request, profile, "promote a model")
        registry = self.services.registry
        if registry is None:
            raise gr.Error("No model registry in this installation.")
        if not version:
            job = self.services.retrain.status()
            version = job.version if job is not None else ""
        try:
            served = registry.promote(version)
        except (ValueError, FileNotFoundError) as error:
            raise gr.Error(str(error), title="Not promoted") from None
        self.services.reload_models()
        return f"Now serving **{served}**."

    def rollback(self, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        self._user(request, profile, "roll back the served model")
        registry = self.services.registry
        if registry is None:
            raise gr.Error("No model registry in this installation.")
        try:
            served = registry.rollback()
        except (ValueError, FileNotFoundError) as error:
            raise gr.Error(str(error), title="Nothing to roll back") from None
        self.services.reload_models()
        return f"Rolled back: now serving **{served}**."

    def models_view(self, selected: str | None) -> tuple[Any, ...]:
        """Versions table, what is served, and the selected version's confusion matrix and training curves."""
        listing = self.models()
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
            render.confusion_figure(matrix, evaluation.get("labels") or self.labels, f"{chosen}: {name or 'metrics'}"),
            render.curve_figure(curves, f"{chosen}: student training"),
        )
