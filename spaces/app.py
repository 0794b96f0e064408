"""Hugging Face Space entry point (copied into the bundle as-is).

The runtime glue runs first because the app reads ``TSNET_HOME`` and the served weights when it is created.
``demo`` stays a module global so Gradio's reload mode and tests can import it; ``launch()`` takes its host and
port from ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` (set by Spaces, and by our tests).
"""

from space_runtime import prepare_space

runtime = prepare_space()

from webapp import create_app  # noqa: E402

demo = create_app()

if __name__ == "__main__":
    demo.launch(show_error=True, allowed_paths=[str(runtime.home / "examples")])  # as `tsnet serve` launches it
