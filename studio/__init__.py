"""Gradio UI and the ``cstudio`` entry point."""
