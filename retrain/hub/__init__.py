"""The Hugging Face Hub: generic folder push and pull with retries (``transport``) and one version's push
(``version_push``)."""

from .transport import PublishError, PushResult, pull_folder, push_folder

__all__ = ["PublishError", "PushResult", "pull_folder", "push_folder"]
