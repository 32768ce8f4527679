"""Where a sync's manifests come from: a folder as it is now, or the tip of a git branch.

Both hand out a `Revision`: an identifier (a commit, or a hash of the folder's manifest files)
and the text of every manifest file in it. A git source fetches only `--branch` into a bare
repository of its own under the data dir, with a forced refspec, and reads files straight from
the commit's tree: what gets applied is always a committed state of that branch, never a
working copy's edits, and a force-push to an older commit is followed like any other move.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
GIT_TIMEOUT_SECONDS = 300
# A git URL, as opposed to a local folder: scheme://..., or scp-like user@host:path.
_GIT_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)


class SourceError(Exception):
    """The source cannot be read (missing folder, failed fetch); one line for the user."""


@dataclass(frozen=True)
class ManifestFile:
    name: str  # as errors show it: the path inside the source, `apps/web.yaml`
    text: str
    digest: str  # of the text: parsed objects are cached by it


@dataclass(frozen=True)
class Revision:
    id: str  # a commit, or `sha256:<hash>` of a folder's manifest files
    files: list[ManifestFile]


class Source(Protocol):
    description: str  # the source as the user named it (with branch and path)

    def read(self) -> Revision:
        """The current revision; raises SourceError."""
        ...


def is_git_url(source: str) -> bool:
    return bool(_GIT_URL.match(source))


def _is_manifest(relative: PurePosixPath) -> bool:
    """Manifest files by suffix; hidden files and folders (`.git`, editors' temporary files)
    are never part of the source."""
    hidden = any(part.startswith(".") for part in relative.parts)
    return relative.suffix in MANIFEST_SUFFIXES and not hidden


def _checked_subdir(path: str) -> PurePosixPath:
    sub = PurePosixPath(path.strip("/") or ".")
    if sub.is_absolute() or ".." in sub.parts:
        raise SourceError(f"--path {path}: must be a folder inside the source")
    return sub


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FolderSource:
    """Every manifest file under a folder (recursively), as it is on disk now."""

    def __init__(self, folder: Path, path: str = "") -> None:
        self.root = folder.resolve() / _checked_subdir(path)
        self.shown_root = Path(folder, _checked_subdir(path))  # errors name files by it
        self.description = str(folder) + (f" (path {path})" if path else "")

    def read(self) -> Revision:
        if not self.root.is_dir():
            raise SourceError(f"{self.root}: no such folder")
        files: list[ManifestFile] = []
        listing = []  # relative names and digests: the revision does not depend on the cwd
        for path in sorted(self._manifest_paths()):
            data = self._read_bytes(path)
            if data is None:
                continue  # deleted while reading: the watcher reports that change next
            relative = path.relative_to(self.root)
            name = str(self.shown_root / relative)
            files.append(ManifestFile(name, _decode(data, name), _digest(data)))
            listing.append(f"{relative.as_posix()}\0{files[-1].digest}")
        combined = "\n".join(listing)
        return Revision("sha256:" + _digest(combined.encode()), files)

    def _manifest_paths(self) -> list[Path]:
        found = []
        for directory, folders, names in os.walk(self.root):
            folders[:] = [name for name in folders if not name.startswith(".")]
            for name in names:
                path = Path(directory, name)
                if _is_manifest(PurePosixPath(path.relative_to(self.root).as_posix())):
                    found.append(path)
        return found

    @staticmethod
    def _read_bytes(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise SourceError(f"{path}: {error.strerror}") from None


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{name}: not a UTF-8 text file") from None


class GitSource:
    """The committed tree of one branch of a git repository, fetched into `checkout`."""

    def __init__(self, url: str, checkout: Path, branch: str | None = None, path: str = "") -> None:
        self.url = url
        self.repo = checkout
        self.branch = branch
        self.subdir = _checked_subdir(path)
        self.description = url + (f" (branch {branch})" if branch else "")
        self.description += f" (path {path})" if path else ""

    def read(self) -> Revision:
        commit = self.fetch()
        return Revision(commit, self._files(commit))

    def fetch(self) -> str:
        """Fetch the branch (forced: a force-push moves it back) and return its commit."""
        if not (self.repo / "HEAD").exists():
            self.repo.mkdir(parents=True, exist_ok=True)
            self._git("init", "--quiet", "--bare")
        branch = self.branch or self._default_branch()
        ref = "refs/gitops/tip"
        refspec = f"+refs/heads/{branch}:{ref}"
        self._git("fetch", "--quiet", "--force", "--no-tags", "--depth=1", self.url, refspec)
        return self._git("rev-parse", "--verify", f"{ref}^{{commit}}").strip()

    def _default_branch(self) -> str:
        """The branch the remote's HEAD names (what `git clone` would check out)."""
        output = self._git("ls-remote", "--symref", self.url, "HEAD")
        for line in output.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                return line.removeprefix("ref: refs/heads/").removesuffix("\tHEAD")
        raise SourceError(f"{self.url}: cannot tell its default branch: pass --branch")

    def _files(self, commit: str) -> list[ManifestFile]:
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", commit, "--", self._pathspec())
        blobs: list[tuple[str, str]] = []
        for entry in listing.split("\0"):
            if not entry:
                continue
            info, _, path = entry.partition("\t")
            mode, kind, sha = info.split()
            relative = PurePosixPath(path).relative_to(self.subdir)
            if kind == "blob" and mode != "120000" and _is_manifest(relative):
                blobs.append((relative.as_posix(), sha))
        contents = self._cat_blobs([sha for _, sha in blobs])
        return [
            ManifestFile(name, _decode(contents[sha], name), sha) for name, sha in sorted(blobs)
        ]

    def _pathspec(self) -> str:
        return "." if self.subdir == PurePosixPath(".") else self.subdir.as_posix()

    def _cat_blobs(self, shas: list[str]) -> dict[str, bytes]:
        """Every blob in one `git cat-file --batch` run."""
        if not shas:
            return {}
        output = self._run_git(["cat-file", "--batch"], ("\n".join(shas) + "\n").encode())
        contents: dict[str, bytes] = {}
        position = 0
        while position < len(output):
            header_end = output.index(b"\n", position)
            sha, _, size = output[position:header_end].decode().split()
            start = header_end + 1
            contents[sha] = output[start : start + int(size)]
            position = start + int(size) + 1  # the newline after each blob
        return contents

    def _git(self, *args: str) -> str:
        return self._run_git(list(args)).decode("utf-8", errors="replace")

    def _run_git(self, args: list[str], stdin: bytes | None = None) -> bytes:
        try:
            result = subprocess.run(
                ["git", "--git-dir", str(self.repo), *args],
                input=stdin,
                capture_output=True,
                timeout=GIT_TIMEOUT_SECONDS,
                env=_git_environment(),
            )
        except FileNotFoundError:
            raise SourceError("git is not installed: the git command is needed") from None
        except subprocess.TimeoutExpired:
            raise SourceError(f"git {args[0]} {self.url}: timed out") from None
        if result.returncode != 0:
            lines = result.stderr.decode(errors="replace").strip().splitlines()
            reason = lines[-1] if lines else f"exit status {result.returncode}"
            raise SourceError(f"git {args[0]} {self.url}: {reason}")
        return result.stdout


def _git_environment() -> dict[str, str]:
    """Never wait for a password or a host-key question nobody is there to answer."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env
