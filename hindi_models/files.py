"""Small shared file helpers: JSONL reading, atomic writes, and the rule that a run never overwrites a run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path


def iter_jsonl(path: str | Path) -> Iterable[tuple[int, object]]:
    """(line number, parsed record) for each non-empty line; invalid JSON raises naming `path:line`."""
    path = Path(path)
    with path.open(encoding="utf-8-sig") as f:  # -sig: tolerate a byte-order mark
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_no}: invalid JSON ({e.msg})") from None


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike):
    """Yield a temporary sibling of `target` to fill; on success swap it into place, on error delete it.

    The previous `target` stays complete until the new one is: it is moved aside, the new folder renamed in,
    and only then is the old one removed.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target}: output path exists and is a file, not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write through a temporary sibling and `os.replace`, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, data) -> None:
    """Write JSON atomically (see `write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | os.PathLike):
    """A JSON file's content; a damaged file is a `ValueError` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def check_output_dir(output_dir: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to write over an existing run unless asked; a file in the way is always an error."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"{output_dir}: output path exists and is a file")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (overwrite or resume):
        raise FileExistsError(f"{output_dir}: already holds a run; pass --overwrite to replace it or --resume")
    check_writable(output_dir)


def check_writable(path: Path) -> None:
    """Refuse, before any work, a folder that cannot be created or written: its nearest existing ancestor must be
    a writable folder."""
    path = Path(path).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(f"{path}: cannot create this folder, {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: cannot write here ({existing} is not writable)")
