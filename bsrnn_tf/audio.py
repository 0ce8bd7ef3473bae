"""Audio I/O at the edges, channel handling, resampling and the refined
paper's whole-waveform normalisation (section II.A).

Waveforms are float32 ``(samples, channels)``. Every failure to read or
write is an :class:`AudioError` whose one-line message names the file.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import struct
from typing import List, Optional, Tuple

import numpy as np
import soundfile as sf

from bsrnn_tf.fileio import atomic_save, remove_stale_temporaries, temporary_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf")
FORMATS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3", "aiff": "AIFF",
           "aif": "AIFF", "w64": "W64"}
SUBTYPES = {"int16": "PCM_16", "int24": "PCM_24", "float32": "FLOAT",
            "PCM_16": "PCM_16", "PCM_24": "PCM_24", "FLOAT": "FLOAT"}
WRITE_BLOCK = 1 << 18  # frames per block when writing a file


class AudioError(RuntimeError):
    """Reading or writing an audio file failed; the message names the file."""


# ------------------------------------------------------------------ reading

MAX_SAMPLE_RATE = 768_000  # Hz: a header claiming more is corrupt or crafted


def load_audio(path: str, offset: float = 0.0,
               duration: Optional[float] = None) -> Tuple[np.ndarray, int]:
    """Reads ``path`` (seconds ``offset`` .. ``offset + duration``).

    Returns:
      ``(audio (samples, channels) float32, sample_rate)``.
    Raises:
      AudioError: see :func:`open_audio`, or a corrupt or non-finite block.
    """
    with open_audio(path, offset, duration) as reader:
        return reader.read(0, reader.frames), reader.samplerate


def open_audio(path: str, offset: float = 0.0,
               duration: Optional[float] = None) -> "AudioReader":
    """Opens ``path`` to read seconds ``offset`` .. ``offset + duration`` block
    by block (:class:`AudioReader`; close it, or use it in a ``with``).

    Raises:
      AudioError: missing file, a directory, an empty or zero-length file,
        an unsupported format, an unreadable or corrupt file (a truncated
        WAV, a sample rate above :data:`MAX_SAMPLE_RATE`), or an offset past
        the end.
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
    if not 0 < info.samplerate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{path}: its header claims a sample rate of {info.samplerate} Hz "
                         f"(audio files have at most {MAX_SAMPLE_RATE} Hz): a corrupt header?")
    if riff_truncated(path):
        raise AudioError(f"{path}: truncated WAV: its header promises more audio than the file "
                         f"holds (an interrupted copy or download?); nothing read. To use the "
                         f"part present, rewrite it, e.g. ffmpeg -i in.wav fixed.wav")
    start = int(round(max(0.0, offset) * info.samplerate))
    if start >= info.frames:
        raise AudioError(f"{path}: offset {offset:g} s is past the end "
                         f"({info.frames / info.samplerate:.2f} s)")
    stop = info.frames if duration is None else min(
        info.frames, start + max(1, int(round(duration * info.samplerate))))
    return AudioReader(path, start, stop, info.samplerate, info.channels)


class AudioReader:
    """Frames ``[first, stop)`` of an audio file, read a block at a time.

    Attributes:
      frames: samples per channel from the offset to the end (or duration).
      samplerate, channels: the file's.
    """

    def __init__(self, path: str, first: int, stop: int, samplerate: int, channels: int):
        self.path, self.first = path, first
        self.frames, self.samplerate, self.channels = stop - first, int(samplerate), channels
        try:
            self._file = sf.SoundFile(path)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioError(f"{path}: cannot decode audio (corrupt file?): {_short(e)}") from None
        self._position = None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` (relative to the offset, cut at
        ``frames``) as ``(n, channels)`` float32; a file that ends before its
        header said gives zeros for the missing samples.

        Raises:
          AudioError: undecodable data, or NaN / infinite samples.
        """
        stop = min(stop, self.frames)
        if stop <= start:
            return np.zeros((0, self.channels), np.float32)
        try:
            if self._position != start:
                self._file.seek(self.first + start)
            audio = self._file.read(stop - start, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioError(f"{self.path}: cannot decode audio (corrupt file?): "
                             f"{_short(e)}") from None
        if start == 0 and audio.shape[0] == 0:
            raise AudioError(f"{self.path}: zero-length audio (no samples)")
        if audio.shape[0] < stop - start:
            audio = np.concatenate([audio, np.zeros((stop - start - audio.shape[0],
                                                     self.channels), np.float32)])
        self._position = stop
        if not np.all(np.isfinite(audio)):
            raise AudioError(f"{self.path}: contains NaN or infinite samples")
        return audio

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
    fmt, sf_subtype = _output_format(path, format, subtype, overwrite)
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    peak = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
    blocks = (audio[start:start + WRITE_BLOCK] for start in range(0, audio.shape[0],
                                                                  WRITE_BLOCK))
    return _encode(path, blocks, sample_rate, audio.shape[1], fmt, sf_subtype,
                   _clipper(peak, clip_mode), audio.size)


def _output_format(path: str, format: Optional[str], subtype: Optional[str],
                   overwrite: bool) -> Tuple[str, Optional[str]]:
    """``(format, libsndfile subtype)`` of an output, after checking that it
    can be written (format, existing file, folder)."""
    fmt = (format or os.path.splitext(path)[1].lstrip(".")).lower()
    if fmt not in FORMATS:
        raise AudioError(f"{path}: unsupported output format {fmt!r}; use one of "
                         f"{sorted(set(FORMATS))}")
    if FORMATS[fmt] not in sf.available_formats():
        raise AudioError(f"{path}: this libsndfile ({sf.__libsndfile_version__}) cannot write "
                         f"{fmt}")
    if os.path.exists(path) and not overwrite:
        raise AudioError(f"{path}: already exists (use --overwrite to replace it)")
    sf_subtype = _subtype(fmt, subtype)
    ensure_output_folder(os.path.dirname(os.path.abspath(path)), path)
    return fmt, sf_subtype


def _encode(path: str, blocks, sample_rate: int, channels: int, fmt: str,
            sf_subtype: Optional[str], clip, values: int) -> str:
    """Writes the ``(n, channels)`` ``blocks``, each through ``clip``, to
    ``path`` atomically; ``values``: samples x channels in all."""
    def write(tmp: str) -> None:
        with sf.SoundFile(tmp, "w", sample_rate, channels, format=FORMATS[fmt],
                          subtype=sf_subtype) as f:
            for block in blocks:
                f.write(clip(block))

    try:
        return atomic_save(path, write)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
        raise AudioError(f"{path}: cannot write audio: {_write_failure(path, values, e)}") from None


class StemWriter:
    """An output audio file written a block at a time, whatever its length.

    Blocks go to a float32 temporary file beside ``path`` (the peak is
    tracked, so ``rescale`` can divide by the peak of the whole stem);
    :meth:`finish` encodes it to ``path`` (atomically, in blocks) and removes
    it; :meth:`discard` removes it unfinished. Temporaries of killed runs are
    removed by the next writer of the same path.
    """

    SUFFIX = ".f32"

    def __init__(self, path: str, sample_rate: int, channels: int,
                 format: Optional[str] = None, subtype: Optional[str] = None,
                 clip_mode: str = "rescale", overwrite: bool = False):
        self.fmt, self.sf_subtype = _output_format(path, format, subtype, overwrite)
        _clipper(0.0, clip_mode)  # a bad mode fails now
        self.path, self.sample_rate, self.channels = path, int(sample_rate), int(channels)
        self.clip_mode, self.peak, self.values = clip_mode, 0.0, 0
        remove_stale_temporaries(path + self.SUFFIX)
        self.stage = temporary_path(path + self.SUFFIX)
        try:
            self._file = open(self.stage, "wb")
        except OSError as e:
            raise AudioError(f"{path}: cannot write audio: {_write_failure(path, 0, e)}") from None

    def write(self, block: np.ndarray) -> None:
        """Appends ``block`` ``(n, channels)``."""
        block = np.ascontiguousarray(block, np.float32)
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
        self.values += block.size
        try:
            self._file.write(block.tobytes())
        except OSError as e:
            self.discard()
            raise AudioError(f"{self.path}: cannot write audio: "
                             f"{_write_failure(self.path, self.values, e)}") from None

    def finish(self) -> str:
        """Encodes what was written to ``path``; returns it."""
        try:
            self._file.close()
        except OSError as e:
            self.discard()
            raise AudioError(f"{self.path}: cannot write audio: "
                             f"{_write_failure(self.path, self.values, e)}") from None
        try:
            with open(self.stage, "rb") as staged:
                def blocks():
                    while True:
                        data = np.fromfile(staged, np.float32, WRITE_BLOCK * self.channels)
                        if not data.size:
                            return
                        yield data.reshape(-1, self.channels)
                return _encode(self.path, blocks(), self.sample_rate, self.channels, self.fmt,
                               self.sf_subtype, _clipper(self.peak, self.clip_mode), self.values)
        finally:
            self.discard()

    def discard(self) -> None:
        """Removes the temporary file (nothing is written to ``path``)."""
        if not self._file.closed:
            try:
                self._file.close()
            except OSError:
                pass
        if os.path.exists(self.stage):
            os.remove(self.stage)


def _write_failure(path: str, values: int, error: Exception) -> str:
    """libsndfile says only 'System error.' for a full disk or a file-size
    limit: name the cause when the free space or the limit is less than the
    samples need."""
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    needed = values * 4  # at most float32 per sample
    errno = getattr(error, "errno", None)
    if free < needed or errno == 28:
        return (f"no space left on the device ({free / 1e6:.1f} MB free, the stem needs up to "
                f"{needed / 1e6:.1f} MB)")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if errno == 27 or limit != resource.RLIM_INFINITY and needed > limit:
        return (f"file too large: the stem needs up to {needed / 1e6:.1f} MB and the file-size "
                f"limit (ulimit -f) is {_limit_text(limit)}")
    return _short(error)


def _limit_text(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else f"{limit / 1e6:.1f} MB"


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


def _clipper(peak: float, mode: str):
    """The function that clips one block as ``mode`` says (``rescale``:
    divided by ``peak``, the whole stem's, when it exceeds 1)."""
    if mode == "rescale":
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


MAX_RESAMPLING_RATIO = 200_000  # up or down factor: a filter of 20 x this many taps


def resampling_factors(sr_in: int, sr_out: int) -> Tuple[int, int]:
    """``(up, down)`` of polyphase resampling from ``sr_in`` to ``sr_out`` Hz.

    Raises:
      AudioError: rates whose ratio needs a filter too large to build (a
        rate of 2147483647 Hz against 44100 Hz would need 43 billion taps).
    """
    g = math.gcd(int(sr_in), int(sr_out))
    up, down = int(sr_out) // g, int(sr_in) // g
    if max(up, down) > MAX_RESAMPLING_RATIO:
        raise AudioError(f"cannot resample {sr_in} Hz to {sr_out} Hz: the ratio {up}/{down} "
                         f"needs a filter of {20 * max(up, down) + 1} taps (at most "
                         f"{20 * MAX_RESAMPLING_RATIO + 1}); convert the file to a common rate "
                         f"first")
    return up, down


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling of ``(samples, channels)`` from ``sr_in`` to ``sr_out`` Hz."""
    if sr_in == sr_out:
        return np.asarray(audio, np.float32)
    from scipy.signal import resample_poly
    up, down = resampling_factors(sr_in, sr_out)
    out = resample_poly(np.asarray(audio, np.float64), up, down, axis=0)
    return out.astype(np.float32)


class StreamResampler:
    """:func:`resample` of a signal of known length, given and returned block
    by block: the output equals ``resample`` of the whole signal (the same
    filter as ``scipy.signal.resample_poly``, zeros before and after the
    signal), and only the filter's context is kept between blocks.

    Args:
      sr_in, sr_out: rates (Hz).
      num_in: samples of the whole input.
    """

    def __init__(self, sr_in: int, sr_out: int, num_in: int):
        self.identity = int(sr_in) == int(sr_out)
        self.num_in = int(num_in)
        self.given = 0  # outputs returned so far
        if self.identity:
            self.up = self.down = 1
            self.num_out = self.num_in
            return
        from scipy.signal import firwin
        up, down = resampling_factors(sr_in, sr_out)
        half_len = 10 * max(up, down)
        taps = firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", 5.0)) * up
        pre_pad = down - half_len % down
        self.filter = np.concatenate([np.zeros(pre_pad), taps])
        self.skip = (half_len + pre_pad) // down  # outputs of the padded filter to drop
        self.up, self.down = up, down
        self.num_out = -(-self.num_in * up // down)
        self.buffer = np.zeros((0, 0))
        self.buffer_start = 0  # input index of buffer[0], a multiple of `down`
        self.received = 0

    def push(self, block: np.ndarray) -> np.ndarray:
        """Takes the next input samples ``(n, channels)``; returns the output
        samples they complete, ``(m, channels)`` float32 (all the remaining
        ones once the whole input has been given)."""
        block = np.asarray(block)
        if self.identity:
            self.given += len(block)
            return block.astype(np.float32, copy=False)
        from scipy.signal import upfirdn
        if self.buffer.shape[1] != block.shape[1]:
            self.buffer = np.zeros((0, block.shape[1]))
        self.buffer = np.concatenate([self.buffer, np.asarray(block, np.float64)])
        self.received += len(block)
        up, down = self.up, self.down
        if self.received >= self.num_in:
            stop = self.num_out
        else:  # outputs whose newest input sample has arrived
            stop = min(self.num_out, (self.received * up - 1) // down + 1 - self.skip)
        if stop <= self.given:
            return np.zeros((0, block.shape[1]), np.float32)
        first = self.given + self.skip  # index into the padded filter's output
        # The buffer starts at a multiple of `down`: its outputs are the whole
        # signal's, shifted by a whole number of samples.
        offset = self.buffer_start * up // down
        filtered = upfirdn(self.filter, self.buffer, up, down, axis=0)
        lo, hi = first - offset, stop + self.skip - offset
        out = filtered[lo:hi]
        if len(out) < hi - lo:  # past the end: zeros (the filter's padded tail)
            out = np.concatenate([out, np.zeros((hi - lo - len(out), out.shape[1]))])
        self.given = stop
        # Keep what the next output still needs.
        keep_from = max(0, -(-((stop + self.skip) * down - len(self.filter) + 1) // up))
        drop = keep_from - self.buffer_start
        drop -= drop % down
        if drop > 0:
            self.buffer = self.buffer[drop:]
            self.buffer_start += drop
        return out.astype(np.float32)
