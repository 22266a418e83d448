"""Running the ``motcua`` command in this process (a subprocess costs 1.5 s of start-up)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Sequence

from bot.cli import main


def run_in_process(
    argv: Sequence[str], env: dict[str, str], stdin: str = ""
) -> tuple[int, str, str]:
    """``bot.cli.main(argv)`` as the console script runs it, with only ``env``'s MOTCUA_*
    variables set and its own standard streams; returns (exit status, stdout, stderr)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MOTCUA_")}
    # Every variable ``env`` sets is put back as it was afterwards (a test may pass a whole
    # copy of the environment: PATH and the like must survive the call).
    before = {key: os.environ.get(key) for key in env}
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update(env)
        sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin = old_stdin
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.environ.update(saved)
    return code, out.getvalue(), err.getvalue()
