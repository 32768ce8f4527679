"""The user a replica runs as, resolved to numbers in the agent before forking: a forked child
of a multi-threaded process must not call into NSS (it may take locks another thread held)."""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass


@dataclass(frozen=True)
class UserIds:
    uid: int
    gid: int
    groups: tuple[int, ...]


def resolve_user(user: str) -> UserIds:
    """Resolve `name`, `uid`, `name:group` or `uid:gid` (either side a name or a number).

    A known user gets its primary group and its supplementary groups from the group database; a
    numeric uid the system does not know gets gid = uid and no supplementary groups (never
    gid 0, which would hand it root's group). An explicit group replaces the primary group.
    Raises ValueError with a message fit to show a user.
    """
    name, _, group = user.partition(":")
    if not name:
        raise ValueError(f'user "{user}": empty user name')
    entry = _passwd_entry(name)
    uid = entry.pw_uid if entry else int(name)
    gid = _group_id(group) if group else (entry.pw_gid if entry else uid)
    groups = tuple(os.getgrouplist(entry.pw_name, gid)) if entry else (gid,)
    return UserIds(uid, gid, groups)


def _passwd_entry(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        if name.isdigit():
            return None
        raise ValueError(
            f'unknown user "{name}": not in the password database '
            "(use a user that exists on the node, or a numeric uid)"
        ) from None


def _group_id(group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(
            f'unknown group "{group}": not in the group database '
            "(use a group that exists on the node, or a numeric gid)"
        ) from None
