"""The ``pktchar`` command: parses arguments, calls the pipeline stages, renders the results."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from .errors import PktcharError

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


def friendly(fn: F) -> F:
    """Turn known errors into one line on stderr and a non-zero exit; never a bare traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PktcharError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            print("pktchar: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            raise typer.Exit(0) from None
        except typer.Exit:
            raise
        except Exception as e:  # last resort: still one line, with a way to see more
            if os.environ.get("PKTCHAR_DEBUG"):
                raise
            _fail(f"internal error: {type(e).__name__}: {e} (set PKTCHAR_DEBUG=1 for the traceback)", 1)
        return None

    return wrapper  # type: ignore[return-value]


class Fmt(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


class Only(str, Enum):
    all = "all"
    layers = "layers"
    splits = "splits"


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
        print(f"wrote {out}", file=sys.stderr)


@app.command("models")
@friendly
def models_cmd(
    contains: Annotated[str | None, typer.Argument(help="Only names containing this text")] = None,
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format")] = Fmt.table,
) -> None:
    """List every model pktchar knows, with parameter counts (torchvision's and models/)."""
    from rich.progress import track

    from . import zoo
    from .render import Column, Table, render

    reg = zoo.registry()
    names = sorted(n for n in reg if contains is None or contains.lower() in n.lower())
    if not names:
        _fail(f"no model name contains {contains!r}")
    rows = []
    for n in track(names, description="building on meta", transient=True, disable=not sys.stderr.isatty()):
        spec = reg[n]
        m = zoo.build(spec, device="meta")
        params = sum(p.numel() for p in {id(p): p for p in m.parameters()}.values())
        rows.append(
            {"name": n, "source": spec.source, "params": params, "default_res": spec.default_res,
             "description": spec.description}
        )
    if fmt == Fmt.json:
        _emit(json.dumps(rows, indent=2), None)
        return
    cols = [
        Column("name", "model"),
        Column("params", "params", "int"),
        Column("default_res", "native res", "int"),
        Column("source", "source"),
        Column("description", "description"),
    ]
    table = Table(f"{len(rows)} models", cols, rows)
    if fmt == Fmt.table:
        from .render import to_rich

        _console().print(to_rich(table))
    else:
        _emit(render(table, fmt.value), None)


@app.command("profile")
@friendly
def profile_cmd(
    model: Annotated[str, typer.Argument(help="Model name (see `pktchar models`) or path/to/file.py:factory")],
    res: Annotated[
        str | None,
        typer.Option(
            "--res",
            "-r",
            help="Input resolution: 224, 720p, 1080p, 4k, 8k, x10, x100 (N x 8K's pixels) or HxW "
            "(height x width). Default: the model's native size.",
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size")] = 1,
    dtype: Annotated[str, typer.Option("--dtype", "-d", help="Payload dtype: fp32, fp16, bf16, int8, int4")] = "fp32",
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format")] = Fmt.table,
    only: Annotated[Only, typer.Option("--only", help="Print only the layers or the split points")] = Only.all,
    num_classes: Annotated[int | None, typer.Option("--num-classes", min=1, help="Classifier width")] = None,
    in_channels: Annotated[int, typer.Option("--in-channels", min=1, help="Input channels")] = 3,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Checkpoint (state dict) to check against the model")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout")] = None,
) -> None:
    """Exact per-layer and per-split payloads of MODEL at an input resolution (meta tensors, no compute)."""
    from . import views
    from .profile import profile
    from .render import render

    p = profile(
        model, res, dtype=dtype, batch=batch, in_channels=in_channels, num_classes=num_classes,
        weights=str(weights) if weights else None,
    )
    if fmt == Fmt.json:
        d = p.to_dict()
        if only == Only.layers:
            d.pop("splits")
        elif only == Only.splits:
            d.pop("layers")
        _emit(json.dumps(d, indent=2), out)
        return
    tables = []
    if only in (Only.all, Only.layers):
        tables.append(views.layers_table(p))
    if only in (Only.all, Only.splits):
        tables.append(views.splits_table(p))
    if fmt == Fmt.table and out is None:
        from .render import to_rich

        console = _console()
        for t in tables:
            console.print(to_rich(t))
        for line in views.summary_lines(p):
            console.print(line, highlight=False)
        return
    parts = []
    if fmt == Fmt.md:
        parts.append(f"## {views.profile_title(p)}\n\n" + "\n".join(f"- {x}" for x in views.summary_lines(p)) + "\n")
    for t in tables:
        text = render(t, fmt.value)
        parts.append(f"# {t.title}\n{text}" if fmt == Fmt.csv and len(tables) > 1 else text)
    _emit("\n".join(parts), out)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("pktchar: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
