"""The typer application, logging set-up and exception -> exit-code mapping.

Exit codes: 0 ok; 1 a :class:`~lama_video.errors.LamaVideoError` (one line on stderr, no traceback);
2 usage error (typer/click); 130 Ctrl-C. ``--debug`` or ``LAMA_VIDEO_DEBUG=1`` re-raises with the
traceback.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TextIO

import typer
import typer.core
import typer.main

from lama_video._version import __version__
from lama_video.errors import LamaVideoError

# Flags of the root command that scripts also put at the end (`remove ... --quiet`).
GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose", "--debug"})


def hoist_global_flags(args: list[str]) -> list[str]:
    """Move global flags given after the sub-command in front of it (before ``--`` only).

    ``lama-video remove in.mp4 -o out.mp4 -q`` then means ``lama-video -q remove ...``. No
    sub-command takes a value that looks like one of these flags, so nothing else moves.
    """
    head: list[str] = []
    rest: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            rest.extend(args[i:])
            break
        (head if arg in GLOBAL_FLAGS else rest).append(arg)
    return head + rest


#: The sub-commands in the order ``--help`` lists them: name -> (the module that registers it, the
#: first paragraph of its help). ``lama-video --help`` lists them from here without importing
#: any command module (they import the pipeline's configuration, typer's parameter machinery for
#: each option, ...: 40 ms of a 150 ms help); a command imports its own module when it is looked
#: up (an unknown name imports them all, for typer's "did you mean"). A test keeps these texts
#: equal to the commands' own.
COMMANDS: dict[str, tuple[str, str]] = {
    "remove": (
        "lama_video.cli.remove",
        "Remove the masked object from INPUT; OUTPUT keeps its timing, audio and subtitles.",
    ),
    "image": (
        "lama_video.cli.image",
        "Remove the masked regions of still images (--dilate 0 reproduces LaMa's own output).",
    ),
    "finetune": (
        "lama_video.cli.finetune",
        "Fine-tune the inpainting generator with LaMa's recipe; the result loads with --model "
        "OUTPUT.",
    ),
    "ui": (
        "lama_video.cli.ui",
        "Open a local page to mark the object on keyframes, track it, remove it and save.",
    ),
    "mask": (
        "lama_video.cli.mask",
        "Track keyframe masks through INPUT and write every frame's hole as a PNG (0/255).",
    ),
    "batch": (
        "lama_video.cli.batch",
        "Clean every recording of SOURCE into OUTPUT; a rerun skips finished jobs.",
    ),
    "weights": (
        "lama_video.cli.weights",
        "Download, list and verify LaMa weights (cache: $LAMA_VIDEO_HOME or the user cache).",
    ),
}


def load_commands() -> None:
    """Import every command module (each registers its command on :data:`app`)."""
    for module, _help in COMMANDS.values():
        importlib.import_module(module)


class _Group(typer.core.TyperGroup):
    """The root group: global flags are accepted before or after the sub-command, and the
    command modules are imported only when a command is looked up (:data:`COMMANDS`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer vendors click
        return super().parse_args(ctx, hoist_global_flags(list(args)))

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            if cmd_name in COMMANDS:
                importlib.import_module(COMMANDS[cmd_name][0])
            else:  # a typo: typer suggests from the commands it has
                load_commands()
            self.commands.update(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        limit = formatter.width - 6 - max(map(len, COMMANDS))
        rows = [
            (name, typer.core.TyperCommand(name, help=text).get_short_help_str(limit))
            for name, (_module, text) in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


# Plain (click-style) help: metavars like PATH and [auto|lama], no type annotations in angle
# brackets, no rich boxes (pipes and narrow terminals read it as well).
HELP_MARKUP = None

app = typer.Typer(
    name="lama-video",
    help="Remove objects from video with LaMa inpainting extended over time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=HELP_MARKUP,
    cls=_Group,
)


def choice(*values: str, name: str) -> Callable[[str | None], str | None]:
    """An option callback that accepts None (not given) or one of ``values`` (exit 2 otherwise)."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in values:
            raise typer.BadParameter(
                f"{value!r} is not one of {', '.join(values)}", param_hint=f"'{name}'"
            )
        return value

    return check


def choices_metavar(*values: str) -> str:
    """``[a|b|c]``: how click lists the choices of an option."""
    return "[" + "|".join(values) + "]"


class _State:
    debug: bool = False
    quiet: bool = False


state = _State()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lama-video {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Log what each stage does.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Full tracebacks on errors.")] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="No progress bar, warnings only.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    state.debug = debug or os.environ.get("LAMA_VIDEO_DEBUG", "") not in ("", "0")
    state.quiet = quiet
    level = (
        logging.WARNING if quiet else (logging.DEBUG if (verbose or state.debug) else logging.INFO)
    )
    root = logging.getLogger("lama_video")
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(handler)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (tests swap it), not the one seen at creation,
    through tqdm: a message during a progress bar clears the bar, takes its own line and the
    bar is drawn again below it (written plainly, it landed in the middle of the bar's line)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm  # late: the CLI's start-up imports no command's libraries

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging's contract: a failing handler does not raise
            self.handleError(record)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, systemd, docker stop) turned into an interrupt: the same clean stop."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM unwinds like Ctrl-C (temporary outputs are removed)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (e.g. some test runners)
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(fn, *args, **kwargs):
    """Run ``fn`` mapping library errors to exit codes.

    1 for a LamaVideoError (one line) or an OS error such as a full or read-only disk, 130 for
    Ctrl-C, 143 for SIGTERM; nothing is left under the output's name in each case.
    """
    try:
        with _sigterm_as_interrupt():
            return fn(*args, **kwargs)
    except LamaVideoError as err:
        if state.debug:
            raise
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    except OSError as err:
        # Only the disk's own refusals (full, read-only, quota, permissions, I/O error) reach
        # here as OSError; a bug still shows its traceback.
        if state.debug or err.errno not in _DISK_ERRNOS:
            raise
        where = f" ({err.filename})" if err.filename else ""
        typer.echo(
            f"error: cannot write{where}: {err.strerror or err}; free space or choose a writable "
            "folder (nothing was left under the output's name)",
            err=True,
        )
        raise typer.Exit(1) from None
    except Terminated:
        if state.debug:
            raise
        typer.echo("terminated (SIGTERM): stopped cleanly, no output was written", err=True)
        raise typer.Exit(143) from None
    except KeyboardInterrupt:
        if state.debug:
            raise
        typer.echo("interrupted: stopped cleanly, no output was written", err=True)
        raise typer.Exit(130) from None


_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # raised outside a command (e.g. while importing torch)
        sys.exit(130)
