"""The ``pktchar`` command: the typer app, its one-line errors and its output helpers.

Each command lives in :mod:`pktchar.cli.commands` (its options, from :mod:`pktchar.cli.options`, one
call into a stage, one view), which registers them on :data:`app` in the order ``pktchar --help`` lists
them; importing :mod:`pktchar.cli` (as importing this module does first) registers them."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer

from ..core.errors import PktcharError
from .options import Fmt

app = typer.Typer(
    help=(
        "pktchar: what traffic does a split neural network put on the network, and can the network "
        "carry it? Exact payloads per layer and split point at any resolution, packets, rates, 5G QoS."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


def _fail(msg: str, code: int = 2) -> None:
    print(f"pktchar: error: {msg}", file=sys.stderr)
    raise typer.Exit(code)


def _flags(fn: Callable[..., Any]) -> dict[str, str]:
    """A command's fields and their flags, from its typer declarations: ``{"edge_link": "--edge-link"}``."""
    import typing

    out = {}
    for name, hint in typing.get_type_hints(fn, include_extras=True).items():
        info = next(
            (m for m in getattr(hint, "__metadata__", ()) if isinstance(m, typer.models.OptionInfo)), None
        )
        if info is not None:
            # in an Annotated declaration typer keeps the first name where a default would be
            names = [info.default, *(info.param_decls or ())]
            decls = [d for d in names if isinstance(d, str) and d.startswith("--")]
            out[name] = decls[0].split("/")[0] if decls else "--" + name.replace("_", "-")
    return out


def friendly(fn: F) -> F:
    """Turn known errors into one line on stderr and a non-zero exit; never a bare traceback. A library
    error names fields (`` `link` ``); the line names this command's flags (``--link``) instead."""
    from ..core.errors import raw, say

    flags: dict[str, str] = {}

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PktcharError as e:
            if not flags:
                flags.update(_flags(fn))
            _fail(say(raw(e), flags))
        except KeyboardInterrupt:
            print("pktchar: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            raise typer.Exit(0) from None
        except typer.Exit:
            raise
        except OSError as e:
            if e.filename is None:  # not about a file: a defect, reported below as an internal error
                if os.environ.get("PKTCHAR_DEBUG"):
                    raise
                _fail(f"internal error: {type(e).__name__}: {e} (set PKTCHAR_DEBUG=1 for the traceback)", 1)
            _fail(f"cannot use {e.filename}: {e.strerror or e}")
        except Exception as e:  # last resort: still one line, with a way to see more
            if os.environ.get("PKTCHAR_DEBUG"):
                raise
            _fail(f"internal error: {type(e).__name__}: {e} (set PKTCHAR_DEBUG=1 for the traceback)", 1)
        return None

    return wrapper  # type: ignore[return-value]


def _console() -> Any:
    from rich.console import Console

    # piped output keeps long shapes on one line; a terminal keeps its own width
    return Console() if sys.stdout.isatty() else Console(width=200)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        from ..present.views import wrote_line

        print(f"pktchar: {wrote_line(out)}", file=sys.stderr)


def _progress(description: str) -> Callable[[Any], Any]:
    from rich.progress import track

    def wrap(items: Any) -> Any:
        return track(items, description=description, transient=True, console=_err_console())

    return wrap


def _err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _warn(msg: str) -> None:
    """One line on stderr, the command goes on."""
    print(f"pktchar: warning: {msg}", file=sys.stderr)


def _present(output: Any, fmt: str, out: Path | None = None) -> None:
    """A command's ``views.Output``: rich tables on a terminal, or md/csv/tex/json text to stdout or ``out``."""
    if fmt == "table" and out is None:
        output.print(_console())
        return
    _emit(output.text(fmt), out)


@contextlib.contextmanager
def _phases_shown(show: Callable[[str], None]) -> Iterator[None]:
    """While inside, every phase the library announces (:mod:`pktchar.core.phases`) goes to ``show``."""
    import logging

    from ..core.phases import LOGGER

    class Shown(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            show(record.getMessage())

    log = logging.getLogger(LOGGER)
    level, propagate, handler = log.level, log.propagate, Shown(logging.INFO)
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


@contextlib.contextmanager
def _bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """Progress of a live run on stderr: yields ``progress(done, total)``. On a terminal, a progress bar
    whose description is the run's current phase (:mod:`pktchar.core.phases`); elsewhere (a pipe, a log file,
    CI) one line a phase and one every 10 s of progress, each with the seconds since the start."""
    import time

    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        cols = (
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*cols, console=_err_console(), transient=True) as bar:
            task = bar.add_task(description, total=None)
            with _phases_shown(lambda text: bar.update(task, description=text)):
                yield lambda done, n: bar.update(task, completed=done, total=n)
        return
    start = time.monotonic()
    said = {"at": 0.0}

    def line(text: str) -> None:
        print(f"pktchar: [{time.monotonic() - start:.0f} s] {text}", file=sys.stderr, flush=True)

    def progress(done: int, n: int) -> None:
        now = time.monotonic()
        if done >= n or now - said["at"] >= 10:
            said["at"] = now
            line(f"{description} {done}/{n}")

    with _phases_shown(line):
        yield progress


def _live_end(
    outputs: list[Any],
    data: Any,
    fmt: Fmt,
    files: list[Path],
    errors: list[str],
    wrote_report: Path | None = None,
) -> None:
    """The end of every live command: its tables (or JSON), every file it wrote, and exit 3 with one line
    when a run stopped early (its measurements are in the files)."""
    from ..present import views

    if fmt == Fmt.json:
        _present(views.Output([], data), "json")
    else:
        for o in outputs:
            _present(o, "table")
    lines = [views.wrote_line(p) for p in files] + (views.folder_lines(wrote_report) if wrote_report else [])
    for line in lines:
        print(f"pktchar: {line}", file=sys.stderr)
    if errors:
        print(f"pktchar: error: {errors[0]} (measurements kept in the result files)", file=sys.stderr)
        raise typer.Exit(3)


def _writable_folder(path: Path | None, flag: str) -> None:
    """Create ``path`` (a folder the command will write) now, before any work, or fail with one line."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise PktcharError(f"{flag} {path}: a file of that name exists (give a folder)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PktcharError(f"{flag} {path}: cannot create the folder: {e.strerror or e}") from e
    if not os.access(path, os.W_OK | os.X_OK):
        raise PktcharError(f"{flag} {path}: the folder is not writable")


def _command_line(name: str) -> str:
    return f"pktchar {name} " + " ".join(sys.argv[2:])


def main() -> None:
    """The console script. Usage errors (an unknown option, a value out of range) are one line too,
    naming the command's --help, instead of typer's framed box."""
    try:
        rc = app(standalone_mode=False)
    except KeyboardInterrupt:
        print("pktchar: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Abort:
        print("pktchar: aborted", file=sys.stderr)
        sys.exit(1)
    except typer.TyperException as e:  # typer's usage errors (click's UsageError family)
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `pktchar` or `pktchar testbed`: the help
            e.show()  # type: ignore[attr-defined]
            sys.exit(0)
        ctx = getattr(e, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        msg = " ".join(e.format_message().split())
        print(f"pktchar: error: {msg}{where}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":  # python -m pktchar.cli.app: pktchar.cli.app's app, where the commands registered
    from pktchar.cli.app import main as _main

    _main()
