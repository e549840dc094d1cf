"""The chat page: ``python app.py`` serves it on http://127.0.0.1:7860 (settings as for the CLI)."""

from assistant.settings import load_settings
from assistant.ui import serve_command

if __name__ == "__main__":
    serve_command(load_settings())
