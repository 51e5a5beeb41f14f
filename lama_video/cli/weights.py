"""``lama-video weights download|list|verify``: prepare the LaMa weights for offline use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lama_video.cli._app import app, run_command, state
from lama_video.errors import WeightsError

if TYPE_CHECKING:
    from lama_video.model.registry import WeightsSpec

# NOTE: none of these commands loads weights (which imports torch: seconds of start-up); they use
# the torch-free lama_video.model.registry and download modules, imported inside the commands.

weights_app = typer.Typer(
    name="weights",
    help="Download, list and verify LaMa weights (cache: $LAMA_VIDEO_HOME or the user cache).",
    no_args_is_help=True,
)
app.add_typer(weights_app, name="weights")

NameArg = Annotated[
    str, typer.Argument(help="Registry name (big-lama, ...; see `lama-video weights list`).")
]


@weights_app.command("download")
def download(
    name: NameArg = "big-lama",
    url: Annotated[
        str | None,
        typer.Option("--url", help="Download from this URL instead (a mirror).", metavar="URL"),
    ] = None,
    dest: Annotated[
        Path | None,
        typer.Option("--dest", help="Target folder instead of the cache.", metavar="PATH"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Download even if present.")] = False,
) -> None:
    """Download released weights into the cache and verify their checksum."""

    def job() -> None:
        from tqdm import tqdm

        from lama_video.model.download import download_weights

        bar: list[tqdm] = []

        def on_start(total: int | None, already: int) -> None:
            bar.append(
                tqdm(
                    total=total,
                    initial=already,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=name,
                    disable=state.quiet,
                )
            )

        try:
            path = download_weights(
                name,
                dest_dir=dest,
                url=url,
                force=force,
                progress=lambda n: bar[0].update(n) if bar else None,
                on_start=on_start,
            )
        finally:
            for b in bar:
                b.close()
        typer.echo(str(path))

    run_command(job)


@weights_app.command("list")
def list_weights() -> None:
    """Show the known weights, whether they are in the cache, and where."""

    def job() -> None:
        from lama_video.model.registry import REGISTRY, cache_candidates, cache_dir

        typer.echo(f"cache: {cache_dir()}")
        for name, spec in REGISTRY.items():
            found = [p for p in cache_candidates(spec) if p.exists()]
            where = str(found[0]) if found else "not downloaded"
            status = "present" if found else "missing"
            typer.echo(f"{name:24s} {status:8s} {where}")
            typer.echo(f"{'':24s} {spec.format}, from {spec.url}")

    run_command(job)


@weights_app.command("verify")
def verify(
    target: Annotated[
        str | None,
        typer.Argument(
            help="Registry name or file path; default: every cached file.", metavar="TARGET"
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Registry entry to check a PATH against.", metavar="TEXT"),
    ] = None,
) -> None:
    """Check the size and checksums of cached weights (or of a given file)."""

    def job() -> None:
        from lama_video.model.download import verify_weights
        from lama_video.model.registry import REGISTRY, cache_candidates, cache_dir, get_spec

        checks = []
        if target is None:
            for spec in REGISTRY.values():
                checks += [(p, spec) for p in cache_candidates(spec) if p.is_file()]
            if not checks:
                raise WeightsError(
                    f"no weights in the cache ({cache_dir()}); run `lama-video weights download`"
                )
        elif target in REGISTRY and not Path(target).exists():
            spec = REGISTRY[target]
            path = cache_candidates(spec)[0]
            if not path.is_file():
                raise WeightsError(
                    f"{target} is not in the cache ({path}); run "
                    f"`lama-video weights download {target}`"
                )
            checks.append((path, spec))
        else:
            path = Path(target)
            spec = get_spec(name) if name else _spec_for_file(path)
            checks.append((path, spec))
        failed = []
        for path, spec in checks:
            report = verify_weights(path, spec)
            digest = report.actual.sha256 if report.actual else "-"
            if report.ok is None:
                verdict = "unverified (no known checksum)"
            else:
                verdict = "ok" if report.ok else "MISMATCH: " + "; ".join(report.problems)
            typer.echo(f"{path}  [{spec.name}]  sha256 {digest}  {verdict}")
            if report.ok is False:
                failed.append(str(path))
        if failed:
            raise WeightsError(
                f"checksum mismatch for {', '.join(failed)}: delete and download again "
                "(`lama-video weights download --force`)"
            )

    run_command(job)


def _spec_for_file(path: Path) -> WeightsSpec:
    """The registry entry whose file name matches ``path``; WeightsError if none does."""
    from lama_video.model.registry import REGISTRY

    for spec in REGISTRY.values():
        if spec.file_name == path.name:
            return spec
    known = ", ".join(s.file_name for s in REGISTRY.values())
    raise WeightsError(
        f"{path.name} is not a registry file name ({known}); pass --name NAME to say which "
        "weights it should be"
    )
