"""Subcommands built on first use, so start-up pays for the command it runs and not for all.

typer turns every registered command into a click command before it parses argv (reading each
signature and evaluating its annotations), and registering a command means importing its module
first; with fifteen commands that costs more than the rest of `constellation version`. Here a
command is named by "module:attribute" and only imported and built when click looks it up: once
for the command that runs, for all of them when `--help` lists them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, ClassVar

import typer
from typer._click import Command  # typer's vendored click: the type TyperGroup.commands holds
from typer.core import TyperGroup


class LazyCommands(MutableMapping[str, Command]):
    """Command name -> click command, in the order of `targets`; built when first looked up."""

    def __init__(self, targets: Mapping[str, str], built: Mapping[str, Command]) -> None:
        self._targets = dict(targets)
        self._built = dict(built)

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            self._built[name] = build_command(name, self._targets[name])
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._targets.pop(name, None)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._targets), **self._built})

    def __len__(self) -> int:
        return len(self._targets.keys() | self._built.keys())


class LazyGroup(TyperGroup):
    """A typer group whose subclasses list their commands in `targets` ("module:attribute" of a
    command function or of a Typer sub-app) instead of registering them on the Typer app."""

    targets: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.targets, built=self.commands)


def build_command(name: str, target: str) -> Command:
    """Register the target on a throwaway Typer app and build that app's group, so a lazy
    command comes out exactly as `app.command()` or `app.add_typer` would have made it."""
    module, attribute = target.split(":")
    found = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer()
    if isinstance(found, typer.Typer):
        holder.add_typer(found, name=name)
    else:
        holder.command(name=name)(found)
    return typer.main.get_group(holder).commands[name]
