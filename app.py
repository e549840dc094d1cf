"""The chat page entry point.

The Gradio page is not built yet (it is the chat page issue); until then this says so
and points at the command line, instead of failing with a traceback.
"""

import sys

if __name__ == "__main__":
    sys.exit(
        "The chat page is not available yet. Ask from the command line instead:\n"
        '  scholar-chat ask "Which papers address federated learning?"'
    )
