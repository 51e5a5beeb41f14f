"""``lama-video ui``: paint the mask in the browser, check the tracking, preview and save."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from lama_video.cli._app import app, run_command, state
from lama_video.cli.remove import ConfigOpt, EngineOpt, TemporalOpt, build_config
from lama_video.config import UI_PROXY_MAX_SIDE_PX as PROXY_MAX_SIDE_PX


@app.command()
def ui(
    input: Annotated[
        Path, typer.Argument(help="The video (or folder of frames) to edit.", metavar="INPUT")
    ],
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, help="Port on 127.0.0.1 (0 = any free).", metavar="PORT"
        ),
    ] = 0,
    work: Annotated[
        Path | None,
        typer.Option(
            "--work",
            help="Work folder for masks, preview and results (default INPUT.lama-ui).",
            metavar="PATH",
        ),
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the address only; open no browser.")
    ] = False,
    proxy_side: Annotated[
        int | None,
        typer.Option(
            "--proxy-side",
            min=64,
            help=f"Longest side of the frames shown in the page (default {PROXY_MAX_SIDE_PX}).",
            metavar="PX",
        ),
    ] = None,
    config: ConfigOpt = None,
    engine: EngineOpt = None,
    temporal: TemporalOpt = None,
) -> None:
    """Open a local page to mark the object on keyframes, track it, remove it and save.

    The server listens on 127.0.0.1 only and stops with Ctrl-C; masks are kept in the work folder
    as they are painted, so stopping loses nothing.
    """

    def job() -> None:
        from lama_video.ui import Session, UiServer

        cfg = build_config(config, inpaint={"engine": engine}, temporal={"enabled": temporal})
        side = PROXY_MAX_SIDE_PX if proxy_side is None else proxy_side
        session = Session(input, config=cfg, work_dir=work, proxy_max_side_px=side)
        try:
            server = UiServer(session, port)
        except OSError as err:
            from lama_video.errors import ConfigError

            raise ConfigError(
                f"cannot listen on 127.0.0.1:{port} ({err.strerror}); expected a free port; "
                "pass --port 0 to pick one"
            ) from err
        session.start()
        typer.echo(f"lama-video ui: {server.url}  (work folder {session.work}; Ctrl-C to stop)")
        if not no_browser:
            webbrowser.open(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            # Ctrl-C is how this server is meant to stop: masks are on disk already. Exit 130
            # like every command stopped with Ctrl-C (scripts can tell it from a clean exit).
            if not state.quiet:
                typer.echo(f"stopped; masks are kept in {session.work}", err=True)
            raise typer.Exit(130) from None
        finally:
            server.server_close()
            session.close()

    run_command(job)
