"""``python -m assistant`` is the ``scholar-chat`` command."""

from assistant.cli import app

app(prog_name="scholar-chat")
