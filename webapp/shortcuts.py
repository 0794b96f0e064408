"""Keyboard shortcuts for the Annotate tab, run once per page through ``demo.load(js=...)``.

Loaded as an event rather than ``launch(js=...)`` so a Space that only calls ``demo.launch()`` gets them too.
Keys act only while the Annotate panel is visible and never while typing in a field.
"""

SHORTCUTS_JS = """
() => {
  if (window.__tsnetShortcuts) return;
  window.__tsnetShortcuts = true;
  const keys = {Enter: "accept-btn", s: "skip-btn", z: "undo-btn"};
  document.addEventListener("keydown", (event) => {
    const panel = document.getElementById("annotate-panel");
    if (!panel || panel.offsetParent === null) return;
    const target = event.target;
    const typing = target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const id = /^[1-9]$/.test(event.key) ? "label-btn-" + event.key : keys[event.key];
    const button = id && document.getElementById(id);
    if (!button || button.disabled) return;
    event.preventDefault();
    button.click();
  });
}
"""
