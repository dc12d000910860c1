#!/usr/bin/env python3
"""The human-labelled data behind the bundles, fetched by name and checked by SHA-256.

`sources.json` pins every file: repository, commit, path, SHA-256 and size, and what the file
is for (`train`, `select` for dev splits, `test` for reported figures only). A file is taken,
in this order, from:

1. `<work>/data/<owner>+<name>/<path>` when it is already there with the right digest;
2. a local git mirror of the repository: `$PULSE_GIT_MIRRORS/<owner>+<name>/repo` (a bare
   git directory; `git show <commit>:<path>`);
3. `https://raw.githubusercontent.com/<owner>/<name>/<commit>/<path>`.

A digest that does not match is an error, never a warning: the figures in the model card hold
only for these exact bytes. None of these files is committed (see models/README.md, licences).

    python models/train/sources.py [--work-dir DIR]     # fetch and check everything
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "sources.json"
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


class SourceError(RuntimeError):
    pass


def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _from_mirror(entry: dict) -> bytes | None:
    root = os.environ.get("PULSE_GIT_MIRRORS")
    if not root:
        return None
    git_dir = Path(root) / entry["repo"].replace("/", "+") / "repo"
    if not git_dir.is_dir():
        return None
    result = subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{entry['commit']}:{entry['path']}"],
        capture_output=True,
    )
    return result.stdout if result.returncode == 0 else None


def _from_github(entry: dict) -> bytes:
    url = RAW_URL.format(**entry)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except OSError as e:
        raise SourceError(
            f"{entry['name']}: cannot download {url} ({e}); set PULSE_GIT_MIRRORS to a folder "
            f"holding a git mirror of {entry['repo']}"
        ) from e


def fetch(entry: dict, work_dir: Path) -> Path:
    """Returns the local path of one manifest entry, fetching it when needed."""
    dest = work_dir / "data" / entry["repo"].replace("/", "+") / entry["path"]
    if dest.is_file() and _digest(dest.read_bytes()) == entry["sha256"]:
        return dest
    data = _from_mirror(entry)
    if data is None:
        data = _from_github(entry)
    got = _digest(data)
    if got != entry["sha256"]:
        raise SourceError(f"{entry['name']}: SHA-256 {got} != pinned {entry['sha256']}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return dest


def fetch_all(work_dir: Path) -> dict[str, Path]:
    """Every file of the manifest by its name, fetched and checked."""
    return {entry["name"]: fetch(entry, work_dir) for entry in manifest()["files"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-dir", type=Path, default=HERE / ".work")
    args = ap.parse_args()
    try:
        paths = fetch_all(args.work_dir)
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
