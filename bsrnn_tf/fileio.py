"""Writing files so that readers never see half of one.

Every output of the package (audio, models, configs, exports, figures) goes
through :func:`atomic_save`: written to a temporary name in the same folder,
then renamed into place. Temporaries of processes that died mid-write are
removed by the next write of the same file.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Callable

# The file names of a run directory and of an export directory.
MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
EXPORT_FILE = "export.json"
BEST_FILE = "best.json"  # the epoch and score of a run's model.keras


class JsonFileError(ValueError):
    """A JSON file that is missing (when required), unreadable or not valid
    JSON. ``str()`` is ``"<path>: <reason>"``; ``path`` and ``reason`` are
    kept for callers that raise their own error type around it."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


_REQUIRED = object()


def read_json(path: str, missing: Any = _REQUIRED) -> Any:
    """The JSON value in ``path``: the one reader of config-like JSON files.

    ``missing``: what a file that does not exist gives (an optional file);
    without it, a missing file is an error. Anything else (a folder, a file
    that cannot be read, bytes that are not UTF-8, text that is not JSON) is
    a :class:`JsonFileError` naming the file: a corrupt file is never taken
    for an absent one.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        if missing is not _REQUIRED:
            return missing
        raise JsonFileError(path, "no such file") from None
    except IsADirectoryError:
        raise JsonFileError(path, "is a folder, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise JsonFileError(path, f"cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise JsonFileError(path, f"not valid JSON ({e})") from None


def atomic_save(path: str, write: Callable[[str], Any]) -> str:
    """Calls ``write(tmp)`` with a temporary path in ``path``'s folder (same
    extension, so writers that go by it keep working), then renames it to
    ``path``: readers never see a half-written file. Returns ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.isfile(tmp):
            os.remove(tmp)
        raise
    return path


def temporary_path(path: str) -> str:
    """This process's temporary name for ``path`` (in the same folder), the
    one :func:`remove_stale_temporaries` knows."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".tmp{os.getpid()}_{name}")


def remove_stale_temporaries(path: str) -> list:
    """Removes the temporary files :func:`atomic_save` left for ``path`` in
    processes that no longer run (killed mid-write); returns their paths."""
    directory, name = os.path.split(os.path.abspath(path))
    removed = []
    for entry in os.listdir(directory):
        match = _TMP_NAME.match(entry)
        if match and match.group(2) == name and not _process_alive(int(match.group(1))):
            try:
                os.remove(os.path.join(directory, entry))
                removed.append(os.path.join(directory, entry))
            except OSError:
                pass
    return removed


_TMP_NAME = re.compile(r"^\.tmp(\d+)_(.+)$")


def temporary_dir(directory: str, prefix: str) -> str:
    """A new folder ``<prefix><pid>-<random>`` in ``directory`` for work
    files of this process; :func:`remove_stale_temporary_dirs` removes those
    of processes that died (remove it yourself when done)."""
    import tempfile
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=directory)


def remove_stale_temporary_dirs(directory: str, prefix: str) -> list:
    """Removes the :func:`temporary_dir` folders of ``prefix`` in ``directory``
    left by processes that no longer run (killed); returns their paths."""
    import shutil
    pattern = re.compile(re.escape(prefix) + r"(\d+)-")
    removed = []
    for entry in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        match = pattern.match(entry)
        path = os.path.join(directory, entry)
        if match and os.path.isdir(path) and not _process_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def atomic_write_bytes(path: str, data: bytes) -> str:
    """Writes ``data`` to ``path`` through a synced temporary file and a rename."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return atomic_save(path, write)


def atomic_write_text(path: str, text: str) -> str:
    """Writes ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_text(data: Any) -> str:
    """``data`` as indented JSON text, every non-finite float (a NaN: a score
    not computed or undefined) written as ``null``: standard JSON that any
    reader takes (Python's ``json`` alone would write the non-standard
    ``NaN``)."""
    return json.dumps(_finite(data), indent=1, allow_nan=False) + "\n"


def atomic_write_json(path: str, data: Any) -> str:
    """Writes :func:`json_text` of ``data`` to ``path`` atomically."""
    return atomic_write_text(path, json_text(data))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
