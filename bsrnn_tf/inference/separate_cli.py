"""``bsrnn-tf separate``: the command line over :mod:`bsrnn_tf.inference.separate`.

This module owns the subcommand's options (:func:`register_cli`), the
check of the ``--filename`` template and the output names it gives, and
:class:`SeparateJob`, which opens one model, separates every input (files,
or folders walked for audio files), writes the stems and reports each
problem on one stderr line while the other inputs go on. Each input is
read, separated (:func:`bsrnn_tf.inference.separate.separate_stream`) and written
(:class:`bsrnn_tf.audio.StemWriter`) a block at a time, so memory does not
grow with the song; no output is ever an input file::

    bsrnn-tf separate song.mp3 album/ -m saved_models/small-mtl-v7 -o separated
    bsrnn-tf separate song.wav -m model.keras --two-stems vocals --format flac
"""

from __future__ import annotations

import argparse
import os
import string
import sys
from typing import Dict, List, Optional, Tuple

from bsrnn_tf.audio import (AUDIO_EXTENSIONS, AudioError, StemWriter, list_audio_files,
                            open_audio)
from bsrnn_tf.config import check_number
from bsrnn_tf.inference.separate import (COMPLEMENT_PREFIX, SeparationError, open_model,
                                         select_targets, separate_stream)

DEFAULT_FILENAME = "{track}/{target}.{ext}"
FILENAME_FIELDS = ("track", "trackext", "target", "stem", "ext")
OUTPUT_FORMATS = ("wav", "flac", "ogg", "mp3")
SUBTYPES = ("int16", "int24", "float32")
CLIP_MODES = ("rescale", "clamp", "none")

def register_cli(subparsers) -> argparse.ArgumentParser:
    """Adds ``separate FILE_OR_DIR... -m MODEL -o OUT`` to argparse subparsers."""
    p = subparsers.add_parser(
        "separate", help="separate audio files into stems",
        description="Separate audio files (or every audio file under folders) into stems. "
                    "Any sample rate and channel count; outputs have the input's rate and "
                    "length, and its channels up to two (mono stays mono; with more than two "
                    "channels the model hears the first two and the stems are stereo).")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR",
                   help="audio files, or folders searched recursively for "
                        f"{', '.join(AUDIO_EXTENSIONS)} files")
    p.add_argument("-m", "--model",
                   help=".keras file, run directory, SavedModel directory or .tflite file "
                        "(default: $BSRNN_TF_MODEL or the pretrained model shipped in "
                        "saved_models/bsrnn-cpu-mtl: trained on soundfont renders, not MUSDB18)")
    p.add_argument("-o", "--out", default="separated", help="output folder (default separated)")
    p.add_argument("--targets", nargs="+", metavar="TARGET",
                   help="stems to write (default: all of the model's)")
    p.add_argument("--two-stems", metavar="TARGET",
                   help="write TARGET and no_TARGET (the input minus TARGET)")
    p.add_argument("--segment", type=float, metavar="SECONDS",
                   help="chunk length (default: the model's)")
    p.add_argument("--overlap", type=float, default=0.25,
                   help="fraction of a chunk shared with the next (default 0.25)")
    p.add_argument("--offset", type=float, default=0.0, metavar="SECONDS",
                   help="start this far into every input")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="separate at most this much of every input")
    p.add_argument("--filename", default=DEFAULT_FILENAME,
                   help="output path under OUT; fields {track} (input name without extension, "
                        "relative to a folder given; a file named mixture.* is named after "
                        "its folder, as in MUSDB), {trackext}, {target} (alias {stem}), "
                        "{ext} (default %(default)s)")
    p.add_argument("--format", default="wav", choices=OUTPUT_FORMATS,
                   help="output format (mp3 where libsndfile has it; default wav)")
    p.add_argument("--wav-subtype", default="int16", choices=SUBTYPES,
                   help="sample format of wav (and flac: int16/int24) outputs (default int16)")
    p.add_argument("--clip-mode", default="rescale", choices=CLIP_MODES,
                   help="stems above full scale: rescale (divide by the peak), clamp, or none "
                        "(float32 wav only keeps them) (default rescale)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--batch-size", type=int, default=4, help="chunks per model call")
    p.add_argument("--xla", action="store_true",
                   help="compile a Keras model with XLA: faster on long songs, after a "
                        "one-off compilation (seconds to a minute)")
    p.add_argument("--threads", type=int, default=1,
                   help="TFLite interpreter threads (default 1; which is faster depends on "
                        "the CPU: see benchmarks/README.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cli_separate)
    return p


def _cli_separate(args: argparse.Namespace) -> int:
    job = SeparateJob(args)
    try:
        job.check_options()
        job.open_model()
    except (SeparationError, AudioError) as e:
        job.error(str(e))
        return 2
    except ValueError as e:  # BackendError and ModelLoadError are ValueErrors
        job.error(str(e))
        return 2
    inputs = job.expand_inputs()
    try:
        for path, track in inputs:
            job.run_one(path, track)
    except KeyboardInterrupt:
        job.error(job.interrupted_line(len(inputs)))
        return 130
    return job.finish()


class SeparateJob:
    """``bsrnn-tf separate``: one model, many inputs; one stderr line per
    problem, the other inputs still processed."""

    name = "bsrnn-tf separate"

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.backend = None
        self.targets: List[str] = []
        self.failed = 0
        self.skipped = 0
        self.done = 0
        self.last_done: Optional[str] = None
        self.written: Dict[str, str] = {}  # output path -> input that produced it
        self.inputs: Dict[object, str] = {}  # real path and (device, inode) -> input
        # The input in progress: (path, its outputs, those finished so far).
        self.current: Optional[Tuple[str, List[str], List[str]]] = None

    # -- set-up --------------------------------------------------------------------
    def error(self, message: str) -> None:
        print(f"{self.name}: error: {message}", file=sys.stderr)

    def check_options(self) -> None:
        a = self.args
        check_filename_template(a.filename)
        if a.format == "mp3":
            import soundfile as sf
            if "MP3" not in sf.available_formats():
                raise SeparationError(f"this libsndfile ({sf.__libsndfile_version__}) cannot "
                                      f"write mp3; use --format wav, flac or ogg")
        if a.format == "flac" and a.wav_subtype == "float32":
            raise SeparationError("flac cannot hold float32 samples; use --wav-subtype int16 "
                                  "or int24")
        if not 0.0 <= a.overlap < 1.0:
            raise SeparationError(f"--overlap must be in [0, 1), got {a.overlap}")
        for flag, value, minimum, inclusive in [("--segment", a.segment, 0, False),
                                                ("--offset", a.offset, 0, True),
                                                ("--duration", a.duration, 0, False)]:
            if value is not None:
                check_number(flag, value, minimum, min_inclusive=inclusive)
        if a.batch_size < 1:
            raise SeparationError(f"--batch-size must be positive, got {a.batch_size}")
        if a.threads < 1:
            raise SeparationError(f"--threads must be positive, got {a.threads}")
        if a.targets and a.two_stems:
            raise SeparationError("give either --targets or --two-stems, not both")

    def open_model(self) -> None:
        if self.args.model is None:
            from bsrnn_tf.inference.pretrained import default_model
            try:
                self.args.model = default_model()
            except FileNotFoundError as e:
                raise SeparationError(str(e)) from None
        self.backend = open_model(self.args.model, self.args.segment, self.args.batch_size,
                                  self.args.xla, self.args.threads)
        self.targets = select_targets(self.backend.targets, self.args.targets,
                                      self.args.two_stems)

    def output_names(self) -> List[str]:
        two = self.args.two_stems
        return [two, COMPLEMENT_PREFIX + two] if two else list(self.targets)

    def expand_inputs(self) -> List[Tuple[str, str]]:
        """``[(path, track name)]``: files as given (named by their base name),
        folders walked (named by their path relative to the folder)."""
        found = []
        for given in self.args.inputs:
            if not os.path.isdir(given):
                found.append((given, _track_name(given, _strip_ext(os.path.basename(given)))))
                continue
            files = list_audio_files(given)
            if not files:
                self.error(f"{given}: folder holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
                self.failed += 1
            found.extend((f, _track_name(f, _strip_ext(os.path.relpath(f, given))))
                         for f in files)
        self.inputs = {key: f for f, _ in found for key in _file_keys(f)}
        return found

    # -- one input -----------------------------------------------------------------
    def run_one(self, path: str, track: str) -> None:
        """Separates one input into its outputs, reading, separating and
        writing a block at a time (memory does not grow with the song)."""
        outputs = self.plan_outputs(path, track)
        if outputs is None:
            return
        self.current = (path, list(outputs.values()), [])
        writers: Dict[str, StemWriter] = {}
        try:
            with open_audio(path, self.args.offset, self.args.duration) as reader:
                if reader.channels > 2:
                    print(f"{self.name}: warning: {path} has {reader.channels} channels; the "
                          f"model separates the first two and its stems are stereo",
                          file=sys.stderr)
                out_channels = min(reader.channels, 2)
                writers = {name: StemWriter(out_path, reader.samplerate, out_channels,
                                            format=self.args.format, subtype=self.subtype(),
                                            clip_mode=self.args.clip_mode,
                                            overwrite=self.args.overwrite)
                           for name, out_path in outputs.items()}
                for _, stems in self.separate(reader, track):
                    for name, writer in writers.items():
                        writer.write(stems[name])
            for name, writer in writers.items():
                self.current[2].append(writer.finish())
        except (AudioError, SeparationError) as e:
            self.error(str(e) if path in str(e) else f"{path}: {e}")
            self.failed += 1
            self.current = None
            return
        except MemoryError:
            self.error(f"{path}: out of memory while separating it (a smaller --segment or "
                       f"--batch-size needs less)")
            self.failed += 1
            self.current = None
            return
        finally:
            for writer in writers.values():
                writer.discard()
        self.current = None
        self.written.update({p: path for p in outputs.values()})
        self.done += 1
        self.last_done = path

    def plan_outputs(self, path: str, track: str) -> Optional[Dict[str, str]]:
        """``{output name: path}`` still to write for one input; None when
        there is nothing to do (all exist, or a clash reported)."""
        ext = os.path.splitext(path)[1].lstrip(".")
        planned = {name: os.path.join(self.args.out, self.args.filename.format(
            track=track, trackext=ext, target=name, stem=name, ext=self.args.format))
            for name in self.output_names()}
        clashes = [(o, self.inputs[key]) for o in planned.values()
                   for key in _file_keys(o) if key in self.inputs]
        if clashes:
            self.error(f"{path}: not separated: its output "
                       + ", ".join(f"{o} is the input {i}" for o, i in clashes)
                       + " (inputs are never written over, with --overwrite or not); use "
                         "another -o or --filename")
            self.failed += 1
            return None
        for out_path in planned.values():
            if out_path in self.written:
                self.error(f"{path}: output {out_path} was already written for "
                           f"{self.written[out_path]}; use a --filename with {{track}} that "
                           f"tells them apart")
                self.failed += 1
                return None
        if self.args.overwrite:
            return planned
        todo = {}
        for name, out_path in planned.items():
            if os.path.exists(out_path):
                print(f"{self.name}: skipped {out_path}: already exists (use --overwrite to "
                      f"replace it)", file=sys.stderr)
            else:
                todo[name] = out_path
        if not todo:
            self.skipped += 1
            return None
        return todo

    def separate(self, reader, track: str):
        """:func:`~bsrnn_tf.inference.separate.separate_stream` of one opened input,
        with a progress bar."""
        from tqdm import tqdm

        total = reader.frames / reader.samplerate
        with tqdm(total=round(total, 2), desc=track, unit="s", disable=True if
                  self.args.quiet else None, leave=False,
                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s "
                             "[{elapsed}<{remaining}]") as bar:
            def progress(done: float, _total: float) -> None:
                bar.update(round(min(done * total / _total, total), 2) - bar.n)

            yield from separate_stream(reader, self.backend, self.targets, self.args.overlap,
                                       progress=progress, complement=self.args.two_stems)

    def subtype(self) -> Optional[str]:
        return self.args.wav_subtype if self.args.format in ("wav", "flac") else None

    def interrupted_line(self, total: int) -> str:
        """What a Ctrl-C leaves: the inputs done, and of the one in progress
        the outputs that were finished and those that were not."""
        line = (f"interrupted: {self.done} of {total} inputs separated into {self.args.out}"
                f"{f' (last: {self.last_done})' if self.last_done else ''}; ")
        if self.current is None:
            return line + "rerun to do the rest (finished outputs are skipped)"
        path, outputs, finished = self.current
        if not finished:
            return line + (f"{path} was in progress: none of its outputs was written (rerun to "
                           f"do the rest: finished outputs are skipped)")
        missing = [o for o in outputs if o not in finished]
        return line + (f"of {path}, {', '.join(finished)} written, {', '.join(missing)} not "
                       f"(rerun to write the rest: finished outputs are skipped)")

    def finish(self) -> int:
        print(f"{self.done} separated into {self.args.out}, {self.skipped} skipped (outputs "
              f"exist), {self.failed} failed")
        return 1 if self.failed else 0


def check_filename_template(template: str) -> None:
    """Raises :class:`SeparationError` for unknown fields or a template that
    does not name every target apart."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        template.format(**{f: "x" for f in FILENAME_FIELDS})
    except (ValueError, KeyError, IndexError) as e:
        raise SeparationError(f"--filename {template!r}: bad template ({e}); fields are "
                              f"{', '.join('{' + f + '}' for f in FILENAME_FIELDS)}") from None
    if not fields & {"target", "stem"}:
        raise SeparationError(f"--filename {template!r} must contain {{target}} (or {{stem}}), "
                              f"else every stem goes to the same file")
    if not template.strip() or template.endswith(("/", os.sep)):
        raise SeparationError(f"--filename {template!r} must name a file")
    example = os.path.normpath(template.format(**{f: "x" for f in FILENAME_FIELDS}))
    if os.path.isabs(example) or example.split(os.sep)[0] == os.pardir:
        raise SeparationError(f"--filename {template!r} leads outside the output folder (-o); "
                              f"give a path under it, e.g. {DEFAULT_FILENAME!r}")


def _file_keys(path: str) -> list:
    """What identifies a file whatever the path that names it: its real path
    and, when it exists, its (device, inode) (hard links, bind mounts)."""
    keys = [os.path.realpath(path)]
    try:
        stat = os.stat(path)
        keys.append((stat.st_dev, stat.st_ino))
    except OSError:
        pass
    return keys


def _strip_ext(name: str) -> str:
    return os.path.splitext(name)[0]


def _track_name(path: str, track: str) -> str:
    """``track``, except that a file named ``mixture.*`` (the MUSDB layout,
    one folder per song) is named after its folder."""
    if os.path.basename(track) != "mixture":
        return track
    parent = os.path.dirname(track)
    return parent or os.path.basename(os.path.dirname(os.path.abspath(path))) or track
