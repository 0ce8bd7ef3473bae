"""Where a built-in dataset lives, and how it is made there once."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Callable


class GenerationError(RuntimeError):
    """A built-in dataset could not be created, or a folder is not one."""


def cached_dataset(env_var: str, default: str, marker: str, make: Callable[[str], object],
                   what: str, error: Callable[[str], Exception]) -> str:
    """The root of a dataset made on first use.

    ``$env_var`` if set, else ``default`` (``~`` expanded). When the root
    holds ``marker`` it is returned as it is. Otherwise ``make(tmp)`` writes
    the dataset into a temporary sibling folder, which is renamed into place:
    an interrupted run never leaves a folder that looks complete. An
    existing non-empty folder without the marker raises ``error(message)``.
    """
    root = os.path.abspath(os.path.expanduser(os.environ.get(env_var) or default))
    if os.path.isfile(os.path.join(root, marker)):
        return root
    if os.path.isdir(root) and os.listdir(root):
        raise error(f"{root} exists but is not a complete {what} (no {marker}); remove it or "
                    f"point {env_var} elsewhere")
    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.tmp-", dir=parent)
    try:
        print(f"Making the {what} in {root} (once) ...", flush=True)
        make(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private
        if os.path.isdir(root):
            os.rmdir(root)  # empty: checked above
        os.rename(tmp, root)
    except OSError:
        if not os.path.isfile(os.path.join(root, marker)):
            raise  # else another process finished first: use its dataset
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def require_program(name: str, debian_package: str) -> str:
    """Path of executable ``name``; :class:`GenerationError` naming the
    Debian package that installs it if it is not on PATH."""
    import shutil
    path = shutil.which(name)
    if path is None:
        raise GenerationError(f"{debian_package} not found ({name} is not on PATH): install "
                              f"the Debian package `{debian_package}` (scripts/install.sh does)")
    return path


def require_module(name: str, pypi_package: str, purpose: str):
    """The imported module ``name``; :class:`GenerationError` naming the
    PyPI package if it cannot be imported."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise GenerationError(f"{purpose} need the PyPI package `{pypi_package}` "
                              f"(pip install {pypi_package}; scripts/install.sh does)") from e
