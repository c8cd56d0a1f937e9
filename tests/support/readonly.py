"""A directory that can be made read-only as an SD card worn out into read-only mode is: a bind
mount of it remounted read-only (root with mount rights, as on these machines and in CI)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def card(tmp_path: Path) -> Iterator[tuple[Path, contextlib.AbstractContextManager[None]]]:
    """``(directory, read_only())``: the directory is writable until ``read_only()`` is
    entered, read-only inside it, and unmounted at the end."""
    backing, mounted = tmp_path / "card-backing", tmp_path / "card"
    backing.mkdir()
    mounted.mkdir()
    try:
        _mount("--bind", str(backing), str(mounted))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no bind mounts here ({exc}): a read-only card cannot be made")

    @contextlib.contextmanager
    def read_only() -> Iterator[None]:
        _mount("-o", "remount,bind,ro", str(mounted))
        yield

    try:
        yield mounted, read_only()
    finally:
        subprocess.run(["umount", "-l", str(mounted)], check=False, timeout=30)


@contextlib.contextmanager
def no_renames(folder: Path) -> Iterator[None]:
    """Nothing in ``folder`` can be renamed, created or removed (the immutable attribute; its
    files can still be written): what a card gone read-only refuses first, while a file
    already open still seems to work."""
    try:
        subprocess.run(["chattr", "+i", str(folder)], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no immutable attribute here ({exc})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False, timeout=30)
