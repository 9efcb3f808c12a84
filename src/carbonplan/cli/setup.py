"""`carbonplan init`: write a commented example site config."""

from __future__ import annotations

from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from carbonplan.cli.common import console


class Template(StrEnum):
    cloud = "cloud"
    slurm = "slurm"


def init(
    template: Annotated[Template, typer.Option(
        help="cloud: regions of AWS/GCP/Azure with spot and on-demand pools; slurm: on-prem "
             "clusters with owned GPUs, MIG and power caps.")] = Template.cloud,
    path: Annotated[Path, typer.Option(help="Where to write the config.")] = Path(
        "carbonplan.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example site config to edit."""
    from carbonplan.config import parse_config
    from carbonplan.errors import InputError

    if path.exists() and not force:
        raise InputError("--path", f"{path} exists; use --force to overwrite it")
    text = resources.files("carbonplan.templates").joinpath(f"{template.value}.toml").read_text()
    import tomllib

    parse_config(tomllib.loads(text)).to_site()  # a template must always load
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    console.print(f"Wrote {path} ({template.value} template). Edit it, then e.g.:\n"
                  f"  carbonplan submit --gpus 1 --hours 4 --within 1d -- python train.py")
