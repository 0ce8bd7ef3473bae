"""Audio I/O at the edges, channel handling, resampling and the refined
paper's whole-waveform normalisation (section II.A).

Waveforms are float32 ``(samples, channels)``. Every failure to read or
write is an :class:`AudioError` whose one-line message names the file.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
from typing import List, Optional, Tuple

import numpy as np
import soundfile as sf

from bsrnn_tf.fileio import atomic_save

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf")
FORMATS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3", "aiff": "AIFF",
           "aif": "AIFF", "w64": "W64"}
SUBTYPES = {"int16": "PCM_16", "int24": "PCM_24", "float32": "FLOAT",
            "PCM_16": "PCM_16", "PCM_24": "PCM_24", "FLOAT": "FLOAT"}
WRITE_BLOCK = 1 << 18  # frames per block when writing a file


class AudioError(RuntimeError):
    """Reading or writing an audio file failed; the message names the file."""


# ------------------------------------------------------------------ reading

def load_audio(path: str, offset: float = 0.0,
               duration: Optional[float] = None) -> Tuple[np.ndarray, int]:
    """Reads ``path`` (seconds ``offset`` .. ``offset + duration``).

    Returns:
      ``(audio (samples, channels) float32, sample_rate)``.
    Raises:
      AudioError: missing file, a directory, an empty or zero-length file,
        an unsupported format, an unreadable or corrupt file, or an offset
        past the end.
    """
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        ext = os.path.splitext(path)[1].lower()
        what = ("unsupported audio format" if ext not in AUDIO_EXTENSIONS
                else "cannot read audio (corrupt or unsupported file)")
        raise AudioError(f"{path}: {what}: {_short(e)}") from None
    if info.frames == 0:
        raise AudioError(f"{path}: zero-length audio (no samples)")
    if riff_truncated(path):
        raise AudioError(f"{path}: truncated WAV: its header promises more audio than the file "
                         f"holds (an interrupted copy or download?); nothing read. To use the "
                         f"part present, rewrite it, e.g. ffmpeg -i in.wav fixed.wav")
    start = int(round(max(0.0, offset) * info.samplerate))
    if start >= info.frames:
        raise AudioError(f"{path}: offset {offset:g} s is past the end "
                         f"({info.frames / info.samplerate:.2f} s)")
    stop = None if duration is None else min(info.frames,
                                             start + int(round(duration * info.samplerate)))
    try:
        audio, rate = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{path}: cannot decode audio (corrupt file?): {_short(e)}") from None
    if audio.shape[0] == 0:
        raise AudioError(f"{path}: zero-length audio (no samples)")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: contains NaN or infinite samples")
    return audio, int(rate)


def riff_truncated(path: str) -> bool:
    """True when a RIFF/WAVE file's data chunk claims more bytes than the
    file holds (or there is no data chunk). Not RIFF: False (soundfile
    decides)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, length = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                return length != 0xFFFFFFFF and length > size - pos - 8
            pos += 8 + length + (length & 1)
    return True


def _short(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__


def ensure_output_folder(directory: str, for_path: Optional[str] = None) -> str:
    """Creates ``directory`` (for the output file ``for_path``, if given) and
    checks that it is writable; returns it.

    Raises:
      AudioError: naming ``for_path`` (else ``directory``) and the problem.
    """
    name, where = (for_path, f" {directory}") if for_path else (directory, "")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise AudioError(f"{name}: cannot create output folder{where}: {_short(e)}") from None
    if not os.access(directory, os.W_OK):
        raise AudioError(f"{name}: output folder{where} is not writable")
    return directory


def list_audio_files(folder: str) -> List[str]:
    """Audio files (known extensions) under ``folder``, recursively, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in files
                     if os.path.splitext(f)[1].lower() in AUDIO_EXTENSIONS
                     and not f.startswith("."))
    return sorted(found)


# ------------------------------------------------------------------ writing

def save_audio(path: str, audio: np.ndarray, sample_rate: int, format: Optional[str] = None,
               subtype: Optional[str] = None, clip_mode: str = "rescale",
               overwrite: bool = False) -> str:
    """Writes ``audio`` ``(samples, channels)`` atomically (a temporary file in
    the same folder, then a rename).

    Args:
      format: wav, flac, ogg, mp3 (where libsndfile has it), ...; default
        from the extension.
      subtype: for wav: int16, int24 or float32 (default int16).
      clip_mode: ``rescale`` (divide by the peak if it exceeds 1), ``clamp``
        (clip to [-1, 1]) or ``none``.
      overwrite: replace an existing file.
    """
    fmt = (format or os.path.splitext(path)[1].lstrip(".")).lower()
    if fmt not in FORMATS:
        raise AudioError(f"{path}: unsupported output format {fmt!r}; use one of "
                         f"{sorted(set(FORMATS))}")
    if FORMATS[fmt] not in sf.available_formats():
        raise AudioError(f"{path}: this libsndfile ({sf.__libsndfile_version__}) cannot write "
                         f"{fmt}")
    if os.path.exists(path) and not overwrite:
        raise AudioError(f"{path}: already exists (use --overwrite to replace it)")
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    clip = _clipper(audio, clip_mode)
    ensure_output_folder(os.path.dirname(os.path.abspath(path)), path)

    def write(tmp: str) -> None:  # in blocks: no clipped copy of a long song
        with sf.SoundFile(tmp, "w", sample_rate, audio.shape[1], format=FORMATS[fmt],
                          subtype=_subtype(fmt, subtype)) as f:
            for start in range(0, audio.shape[0], WRITE_BLOCK):
                f.write(clip(audio[start:start + WRITE_BLOCK]))

    try:
        return atomic_save(path, write)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
        raise AudioError(f"{path}: cannot write audio: {_write_failure(path, audio, e)}") from None


def _write_failure(path: str, audio: np.ndarray, error: Exception) -> str:
    """libsndfile says only 'System error.' for a full disk: name the cause
    when the free space is less than the samples need."""
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    needed = audio.size * 4  # at most float32 per sample
    if free < needed or getattr(error, "errno", None) == 28:
        return (f"no space left on the device ({free / 1e6:.1f} MB free, the stem needs up to "
                f"{needed / 1e6:.1f} MB)")
    return _short(error)


def _subtype(fmt: str, subtype: Optional[str]) -> Optional[str]:
    if fmt == "ogg":
        return "VORBIS"
    if fmt == "mp3":
        return "MPEG_LAYER_III"
    if subtype is None:
        return "PCM_16" if fmt in ("wav", "flac", "aiff", "aif", "w64") else None
    if subtype not in SUBTYPES:
        raise AudioError(f"unknown sample format {subtype!r}; use int16, int24 or float32")
    if fmt == "flac" and SUBTYPES[subtype] == "FLOAT":
        raise AudioError("flac cannot hold float32 samples; use int16 or int24")
    return SUBTYPES[subtype]


def _clipper(audio: np.ndarray, mode: str):
    """The function that clips one block of ``audio`` as ``mode`` says
    (``rescale`` looks at the whole of ``audio`` once, without a copy)."""
    if mode == "rescale":
        peak = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
        if peak > 1.0:
            return lambda block: block / np.float32(peak)
        return lambda block: block
    if mode == "clamp":
        return lambda block: np.clip(block, -1.0, 1.0)
    if mode == "none":
        return lambda block: block
    raise AudioError(f"unknown clip mode {mode!r}; use rescale, clamp or none")


# ------------------------------------------------------- channels and rates

def to_stereo(audio: np.ndarray) -> np.ndarray:
    """Mono is duplicated; stereo is kept; more channels: the first two."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.shape[1] == 1:
        return np.repeat(audio, 2, axis=1)
    return audio[:, :2]


def from_stereo(audio: np.ndarray, channels: int) -> np.ndarray:
    """Back to the input's channel count: mono is the mean of left and right;
    inputs with more than two channels come back as stereo."""
    if channels == 1:
        return audio.mean(axis=1, keepdims=True)
    return audio


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling of ``(samples, channels)`` from ``sr_in`` to ``sr_out`` Hz."""
    if sr_in == sr_out:
        return np.asarray(audio, np.float32)
    from scipy.signal import resample_poly
    g = math.gcd(int(sr_in), int(sr_out))
    out = resample_poly(np.asarray(audio, np.float64), sr_out // g, sr_in // g, axis=0)
    return out.astype(np.float32)
