"""Which exceptions are the user's mistakes (one line each, exit 1) rather than our bugs.

Imported only when something failed, so start-up never pays for the modules named here.
"""

from __future__ import annotations


class CommandError(Exception):
    """A mistake in how a command was called that options parsing cannot see."""


def user_error_lines(error: BaseException) -> list[str] | None:
    """The lines to print for a user error, or None for anything else (a bug: let it raise)."""
    from constellation.agent.agent import AgentError
    from constellation.apis.loader import ManifestError
    from constellation.apis.registry import UnknownKind
    from constellation.cli.sources import SourceError
    from constellation.client.apply import InvalidMerge
    from constellation.client.selector import SelectorError
    from constellation.runtime.cgroups import CgroupError
    from constellation.store import StoreError

    if isinstance(error, ManifestError):  # ManifestErrors too: one line per problem
        return list(error.messages)
    user_errors = (
        CommandError,
        SourceError,
        InvalidMerge,
        SelectorError,
        StoreError,
        UnknownKind,
        AgentError,
        CgroupError,
    )
    if isinstance(error, user_errors):
        return [str(error)]
    return None


def report_user_error(error: BaseException) -> bool:
    """Print a user error as one line per problem; False if `error` is not one (a bug)."""
    from constellation.cli import ui

    lines = user_error_lines(error)
    for text in lines or ():
        ui.error(text)
    return lines is not None
