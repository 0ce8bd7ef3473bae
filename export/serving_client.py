"""Separate an audio file through a TF Serving REST endpoint.

Example (after ``docker run ... tensorflow/serving``, see the README)::

    python export/serving_client.py song.wav --url http://localhost:8501 --model bsrnn \\
        -o separated/

The chunk length and target names are read from the model's signature
(``GET /v1/models/<name>/metadata``); chunks go to ``POST
/v1/models/<name>:predict`` in the row ("instances") or columnar ("inputs")
format and are joined by the shared overlap-add
(:func:`bsrnn_tf.inference.overlap_add.overlap_add`). The sample rate is not part of a
signature: pass ``--sample-rate`` if the model was not trained at 44.1 kHz
(it is in the export's ``export.json``). Writes ``OUT/<song>/<target>.wav``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import numpy as np

STYLES = ("instances", "inputs")


class ServingError(RuntimeError):
    """The server cannot be reached, refuses a request or answers something
    unexpected; the message names the URL."""


@dataclass
class ServedSignature:
    """What a served ``waveform -> {target: waveform}`` signature expects.

    Attributes:
      segment_samples, channels: the fixed chunk shape (samples, channels).
      targets: output names.
      input_name: the signature's input (``waveform``).
    """

    segment_samples: int
    channels: int
    targets: list
    input_name: str = "waveform"


def model_url(base_url: str, model: str, version: Optional[int] = None) -> str:
    url = f"{base_url.rstrip('/')}/v1/models/{model}"
    return url if version is None else f"{url}/versions/{version}"


def _http_json(url: str, body: Optional[dict], timeout: float) -> dict:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:500]
        raise ServingError(f"{url}: HTTP {e.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        raise ServingError(f"{url}: cannot reach the server ({getattr(e, 'reason', e)})") from None
    except json.JSONDecodeError as e:
        raise ServingError(f"{url}: answer is not JSON ({e})") from None


def fetch_signature(base_url: str, model: str, signature: str = "serving_default",
                    version: Optional[int] = None, timeout: float = 30.0) -> ServedSignature:
    """Reads the chunk shape and targets from the model metadata API."""
    url = f"{model_url(base_url, model, version)}/metadata"
    data = _http_json(url, None, timeout)
    try:
        signature_def = data["metadata"]["signature_def"]["signature_def"][signature]
        (input_name, tensor), = signature_def["inputs"].items()
        dims = [int(d["size"]) for d in tensor["tensor_shape"]["dim"]]
        targets = sorted(signature_def["outputs"])
    except (KeyError, TypeError, ValueError) as e:
        raise ServingError(f"{url}: no single-input signature {signature!r} "
                           f"({type(e).__name__}: {e})") from None
    if len(dims) != 3 or dims[1] <= 0:
        raise ServingError(f"{url}: input {input_name!r} has shape {dims}, "
                           f"expected (batch, segment, channels)")
    return ServedSignature(dims[1], dims[2], targets, input_name)


def request_body(chunks: np.ndarray, input_name: str = "waveform",
                 signature: str = "serving_default", style: str = "instances") -> dict:
    """The JSON body of a predict request for chunks ``(n, segment, channels)``.

    ``instances``: ``{"instances": [{"waveform": chunk}, ...]}`` (row format);
    ``inputs``: ``{"inputs": {"waveform": chunks}}`` (columnar format).
    """
    chunks = np.asarray(chunks, np.float32)
    if style == "instances":
        rows = [{input_name: chunk.tolist()} for chunk in chunks]
        return {"signature_name": signature, "instances": rows}
    if style == "inputs":
        return {"signature_name": signature, "inputs": {input_name: chunks.tolist()}}
    raise ValueError(f"unknown request style {style!r}; use one of {STYLES}")


def parse_response(data: dict, targets: Sequence[str]) -> Dict[str, np.ndarray]:
    """``{target: (n, segment, channels)}`` from a predict answer in either
    format (a single output comes back unnamed)."""
    if "error" in data:
        raise ServingError(f"server error: {data['error']}")
    if "predictions" in data:
        rows = data["predictions"]
        if rows and not isinstance(rows[0], dict):
            rows = [{targets[0]: row} for row in rows]
        return {t: np.asarray([row[t] for row in rows], np.float32) for t in targets}
    if "outputs" in data:
        outputs = data["outputs"]
        if not isinstance(outputs, dict):
            outputs = {targets[0]: outputs}
        return {t: np.asarray(outputs[t], np.float32) for t in targets}
    raise ServingError(f"answer has neither predictions nor outputs: {sorted(data)}")


def predict_fn(base_url: str, model: str, served: ServedSignature,
               signature: str = "serving_default", style: str = "instances",
               version: Optional[int] = None,
               timeout: float = 120.0) -> Callable[[np.ndarray], Dict[str, np.ndarray]]:
    """A chunk function for :func:`bsrnn_tf.inference.overlap_add.overlap_add` that
    sends every batch to the server."""
    url = f"{model_url(base_url, model, version)}:predict"

    def predict(chunks: np.ndarray) -> Dict[str, np.ndarray]:
        body = request_body(chunks, served.input_name, signature, style)
        stems = parse_response(_http_json(url, body, timeout), served.targets)
        for target, value in stems.items():
            if value.shape != chunks.shape:
                raise ServingError(f"{url}: {target!r} came back as {value.shape}, "
                                   f"expected {chunks.shape}")
        return stems
    return predict


def separate_file(path: str, out_dir: str, base_url: str, model: str,
                  sample_rate: int = 44100, style: str = "instances", batch: int = 1,
                  overlap: float = 0.25, version: Optional[int] = None,
                  timeout: float = 120.0, overwrite: bool = False,
                  progress: Optional[Callable[[float, float], None]] = None) -> Dict[str, str]:
    """Separates one file through the server.

    Returns:
      ``{target: written path}`` under ``out_dir/<file stem>/``.
    """
    from bsrnn_tf.audio import (AudioError, ensure_output_folder, from_stereo, load_audio,
                                resample, save_audio, to_stereo)
    from bsrnn_tf.inference.overlap_add import overlap_add

    song_dir = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0])
    try:  # before any request: a bad output folder should not cost a song's worth of calls
        ensure_output_folder(song_dir)
    except AudioError as e:
        raise ServingError(str(e)) from None
    served = fetch_signature(base_url, model, version=version, timeout=timeout)
    audio, rate = load_audio(path)
    channels = audio.shape[1]
    mix = resample(to_stereo(audio) if served.channels == 2 else audio, rate, sample_rate)
    stems = overlap_add(mix, predict_fn(base_url, model, served, style=style, version=version,
                                        timeout=timeout),
                        served.segment_samples, overlap, chunks_per_call=batch,
                        progress=progress, sample_rate=sample_rate)
    written = {}
    for target, stem in stems.items():
        stem = from_stereo(resample(stem, sample_rate, rate), channels)
        written[target] = save_audio(os.path.join(song_dir, f"{target}.wav"), stem, rate,
                                     overwrite=overwrite)
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("inputs", nargs="+", help="audio files")
    p.add_argument("--url", default="http://localhost:8501", help="TF Serving REST address")
    p.add_argument("--model", default="bsrnn", help="served model name")
    p.add_argument("--version", type=int, help="model version (default: the latest)")
    p.add_argument("-o", "--output", default="separated", help="output folder")
    p.add_argument("--style", choices=STYLES, default="instances",
                   help="request format: row (instances) or columnar (inputs)")
    p.add_argument("--batch", type=int, default=1, help="chunks per request")
    p.add_argument("--overlap", type=float, default=0.25, help="chunk overlap in [0, 1)")
    p.add_argument("--sample-rate", type=int, default=44100, help="the model's sample rate")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument("--overwrite", action="store_true", help="replace existing stems")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from bsrnn_tf.audio import AudioError
    try:
        for path in args.inputs:
            def progress(done: float, total: float) -> None:
                print(f"\r{os.path.basename(path)}: {done:6.1f} / {total:.1f} s", end="",
                      flush=True)
            written = separate_file(path, args.output, args.url, args.model, args.sample_rate,
                                    args.style, args.batch, args.overlap, args.version,
                                    args.timeout, args.overwrite, progress)
            print()
            for target, out in written.items():
                print(f"  {target:<10} {out}")
    except (ServingError, AudioError, ValueError) as e:
        print(f"\nserving_client.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
