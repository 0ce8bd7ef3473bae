"""Export: SavedModel (TF Serving layout, plain-TF load, REST bodies),
TFLite (builtin ops, both variants, every quantization), the frozen backbone,
the backend loader, and bad inputs. All on the ``tiny`` preset with short
segments; one export of everything is shared by the module."""

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from bsrnn_tf import deploy, spectral
from bsrnn_tf.deploy import ExportError
from bsrnn_tf.inference import backends
from bsrnn_tf.inference.backends import BackendError, KerasBackend, load_backend
from bsrnn_tf.inference.separate import open_model
from bsrnn_tf.models import build_separator, preset, save_separator, separator_from_backbone
from export import serving_client

TARGETS = ["drums", "vocals"]
SEGMENT = 4096  # tiny: n_fft 512, hop 128 -> 33 frames
SAMPLE_RATE = 44100


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny model saved as a run, exported in every format with parity."""
    root = tmp_path_factory.mktemp("export")
    model = build_separator(preset("tiny"), targets=TARGETS)
    run = str(root / "run")
    save_separator(model, run)
    out = str(root / "out")
    results = deploy.export_model(run, out, segment_seconds=SEGMENT / SAMPLE_RATE, name="bsrnn")
    keras_backend = KerasBackend(run, model=deploy.cpu_copy(model), segment_samples=SEGMENT)
    return {"model": model, "run": run, "out": out, "results": results, "keras": keras_backend}


def _chunks(n=2, seed=5, scale=0.2):
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((n, SEGMENT, 2))).astype(np.float32)


def _read_json(path):
    with open(path) as f:
        return json.load(f)


# -- SavedModel --------------------------------------------------------------------------

@pytest.mark.slow
def test_savedmodel_layout_metadata_and_parity(exported):
    version_dir = exported["results"]["savedmodel"]
    assert version_dir == os.path.join(exported["out"], "serving", "bsrnn", "1")
    for name in ("saved_model.pb", "variables", "config.json", "export.json"):
        assert os.path.exists(os.path.join(version_dir, name)), name
    info = _read_json(os.path.join(version_dir, "export.json"))
    assert info["format"] == "savedmodel" and info["version"] == 1
    assert info["model"]["segment_samples"] == SEGMENT
    assert info["model"]["targets"] == TARGETS
    assert info["size_bytes"] > 0
    assert info["parity_vs_keras"]["random_chunks"]["max_abs_error"] < 1e-5
    assert info["parity_vs_keras"]["song"]["min_sdr_db"] > 80
    assert _read_json(os.path.join(version_dir, "config.json"))["model"]["targets"] == TARGETS


@pytest.mark.slow
def test_savedmodel_loads_in_plain_tensorflow(exported, tmp_path):
    """A fresh process that imports only TensorFlow loads and calls both
    signatures; saved_model_cli documents them."""
    version_dir = exported["results"]["savedmodel"]
    chunks = _chunks(3)
    np.save(tmp_path / "in.npy", chunks)
    script = f"""
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load({version_dir!r})
assert not any(m.startswith("bsrnn_tf") for m in sys.modules), "bsrnn_tf was imported"
sig = loaded.signatures["serving_default"]
out = sig(waveform=tf.constant(np.load({str(tmp_path / 'in.npy')!r})))
spec = tf.zeros([1, 33, 257, 4])
masks = loaded.signatures["masks"](spectrum=spec)
np.savez({str(tmp_path / 'out.npz')!r}, **{{k: v.numpy() for k, v in out.items()}})
print(sorted(out), sorted(masks), masks["drums"].shape)
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    done = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "['drums', 'vocals'] ['drums', 'vocals'] (1, 33, 257, 4)" in done.stdout
    got = np.load(tmp_path / "out.npz")
    expected = exported["keras"](chunks)
    for target in TARGETS:
        np.testing.assert_allclose(got[target], expected[target], atol=1e-5)
    cli = shutil.which("saved_model_cli")
    if cli:
        shown = subprocess.run([cli, "show", "--dir", version_dir, "--all"], env=env,
                               capture_output=True, text=True, timeout=240)
        assert "inputs['waveform']" in shown.stdout
        assert f"(-1, {SEGMENT}, 2)" in shown.stdout
        assert "outputs['vocals']" in shown.stdout and "signature_def['masks']" in shown.stdout


@pytest.mark.slow
def test_savedmodel_versions_increment_and_never_overwrite(exported, tmp_path):
    model = deploy.cpu_copy(exported["model"])
    base = str(tmp_path / "serving" / "m")
    first = deploy.export_savedmodel(model, base, SEGMENT)
    stamp = os.path.getmtime(os.path.join(first, "saved_model.pb"))
    os.makedirs(os.path.join(base, "7"))  # a version placed by hand
    second = deploy.export_savedmodel(model, base, SEGMENT)
    assert os.path.basename(first) == "1" and os.path.basename(second) == "8"
    assert os.path.getmtime(os.path.join(first, "saved_model.pb")) == stamp
    assert not [d for d in os.listdir(base) if d.startswith(".tmp")]
    # the loader takes the highest version that holds a SavedModel
    assert backends.resolve_savedmodel_dir(base) == second


# -- TF Serving REST ----------------------------------------------------------------------

class _FakeServing(http.server.BaseHTTPRequestHandler):
    """TF Serving's REST predict and metadata APIs over a loaded SavedModel:
    row format answers ``predictions`` (one object per instance, bare values
    for a single output), columnar format answers ``outputs``."""

    loaded = None
    name = "bsrnn"

    def log_message(self, *args):
        pass

    def _send(self, code, data):
        body = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != f"/v1/models/{self.name}/metadata":
            return self._send(404, {"error": f"no route {self.path}"})
        defs = {}
        for key, sig in self.loaded.signatures.items():
            tensor = lambda s: {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [
                {"size": str(-1 if d is None else d)} for d in s.shape]}}
            defs[key] = {"inputs": {k: tensor(s) for k, s in
                                    sig.structured_input_signature[1].items()},
                         "outputs": {k: tensor(s) for k, s in sig.structured_outputs.items()},
                         "method_name": "tensorflow/serving/predict"}
        self._send(200, {"model_spec": {"name": self.name, "version": "1"},
                         "metadata": {"signature_def": {"signature_def": defs}}})

    def do_POST(self):
        if self.path != f"/v1/models/{self.name}:predict":
            return self._send(404, {"error": f"no route {self.path}"})
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        sig = self.loaded.signatures[request.get("signature_name", "serving_default")]
        names = list(sig.structured_input_signature[1])
        try:
            if "instances" in request:
                rows = request["instances"]
                columns = ({k: [r[k] for r in rows] for k in names} if isinstance(rows[0], dict)
                           else {names[0]: rows})
            else:
                columns = (request["inputs"] if isinstance(request["inputs"], dict)
                           else {names[0]: request["inputs"]})
            out = sig(**{k: tf.constant(np.asarray(v, np.float32)) for k, v in columns.items()})
        except Exception as e:  # noqa: BLE001  (TF Serving answers 400 with the message)
            return self._send(400, {"error": f"{type(e).__name__}: {e}"})
        out = {k: v.numpy() for k, v in out.items()}
        if "instances" in request:
            n = len(next(iter(out.values())))
            rows = [{k: v[i].tolist() for k, v in out.items()} if len(out) > 1
                    else next(iter(out.values()))[i].tolist() for i in range(n)]
            return self._send(200, {"predictions": rows})
        cols = ({k: v.tolist() for k, v in out.items()} if len(out) > 1
                else next(iter(out.values())).tolist())
        self._send(200, {"outputs": cols})


@pytest.fixture(scope="module")
def serving(exported):
    handler = type("Handler", (_FakeServing,), {
        "loaded": tf.saved_model.load(exported["results"]["savedmodel"])})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("style", serving_client.STYLES)
def test_rest_request_bodies_match_the_signature(exported, serving, style):
    served = serving_client.fetch_signature(serving, "bsrnn", timeout=30)
    assert (served.segment_samples, served.channels, served.targets) == (SEGMENT, 2, TARGETS)
    chunks = _chunks(2, seed=11)
    body = serving_client.request_body(chunks, style=style)
    assert json.loads(json.dumps(body)) == body  # plain JSON values only
    predict = serving_client.predict_fn(serving, "bsrnn", served, style=style, timeout=60)
    got, expected = predict(chunks), exported["keras"](chunks)
    for target in TARGETS:
        np.testing.assert_allclose(got[target], expected[target], atol=1e-5)


def test_rest_answers_in_both_formats(tmp_path):
    unnamed = {"predictions": [[[0.5, 0.5]], [[1.0, 1.0]]]}
    assert serving_client.parse_response(unnamed, ["vocals"])["vocals"].shape == (2, 1, 2)
    assert serving_client.parse_response({"outputs": [[[1.0, 2.0]]]}, ["bass"])["bass"].shape \
        == (1, 1, 2)
    named = {"outputs": {"bass": [[[1.0, 2.0]]], "drums": [[[0.0, 0.0]]]}}
    assert sorted(serving_client.parse_response(named, ["bass", "drums"])) == ["bass", "drums"]
    with pytest.raises(serving_client.ServingError, match="server error: boom"):
        serving_client.parse_response({"error": "boom"}, ["bass"])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(serving_client.ServingError, match="cannot create output folder"):
        serving_client.separate_file(str(tmp_path / "a.wav"), str(blocker), "http://x", "m")


@pytest.mark.slow
def test_rest_errors(serving):
    with pytest.raises(serving_client.ServingError, match="HTTP 404"):
        serving_client.fetch_signature(serving, "no-such-model", timeout=30)
    with pytest.raises(serving_client.ServingError, match="cannot reach"):
        serving_client.fetch_signature("http://127.0.0.1:9", "bsrnn", timeout=5)


@pytest.mark.slow
def test_serving_client_separates_a_file(exported, serving, tmp_path):
    from bsrnn_tf.audio import load_audio, save_audio
    from bsrnn_tf.inference.overlap_add import overlap_add

    _, song = deploy.music_chunks(SAMPLE_RATE, SEGMENT, 2, 3)
    mix = song.reshape(-1, 2)[:10000]
    wav = save_audio(str(tmp_path / "song.wav"), mix, SAMPLE_RATE, subtype="float32")
    written = serving_client.separate_file(wav, str(tmp_path / "out"), serving, "bsrnn",
                                           batch=2, timeout=60)
    assert sorted(written) == TARGETS
    expected = overlap_add(load_audio(wav)[0], exported["keras"], SEGMENT, chunks_per_call=2)
    for target, path in written.items():
        assert path == str(tmp_path / "out" / "song" / f"{target}.wav")
        audio, rate = load_audio(path)
        assert rate == SAMPLE_RATE and audio.shape == mix.shape
        np.testing.assert_allclose(audio, expected[target], atol=2e-4)  # int16 files


# -- TFLite -------------------------------------------------------------------------------

def _tflite_paths(exported):
    return {os.path.basename(p): p for p in exported["results"]["tflite"]}


@pytest.mark.slow
def test_tflite_files_builtin_only_with_metadata(exported):
    paths = _tflite_paths(exported)
    assert sorted(paths) == sorted(f"bsrnn-{v}-{q}.tflite" for v in ("waveform", "spectrum")
                                   for q in ("float32", "float16", "dynamic-int8"))
    info = _read_json(os.path.join(exported["out"], "tflite", "export.json"))
    for name, path in paths.items():
        with open(path, "rb") as f:
            content = f.read()
        ops = deploy.tflite_op_names(content)
        assert not [op for op in ops if op.startswith("CUSTOM")], (name, ops)
        assert "WHILE" not in ops  # LSTMs unrolled
        meta = backends.tflite_metadata_from_bytes(content)
        assert meta["targets"] == TARGETS and meta["segment_samples"] == SEGMENT
        assert meta["sample_rate"] == SAMPLE_RATE and meta["variant"] in name
        assert info["artifacts"][name]["size_bytes"] == len(content)
    sizes = {n: info["artifacts"][n]["size_bytes"] for n in paths}
    for variant in ("waveform", "spectrum"):
        assert sizes[f"bsrnn-{variant}-float16.tflite"] < sizes[f"bsrnn-{variant}-float32.tflite"]


@pytest.mark.slow
def test_quantized_tflite_runs_close_to_keras(exported):
    """float16 and dynamic-range int8 waveform models in the interpreter,
    against the Keras model on the same chunk, measured here (not read from
    export.json): SDR of each stem against Keras's."""
    from ai_edge_litert.interpreter import Interpreter

    paths = _tflite_paths(exported)
    chunk = _chunks(1, seed=33)
    expected = exported["keras"](chunk)
    for quantization in ("float16", "dynamic-int8"):
        runner = Interpreter(model_path=paths[f"bsrnn-waveform-{quantization}.tflite"])
        got = runner.get_signature_runner("waveform")(waveform=chunk)
        for target in TARGETS:
            ref = np.asarray(expected[target], np.float64)
            err = np.asarray(got[target], np.float64) - ref
            sdr = 10 * np.log10(np.sum(ref ** 2) / max(np.sum(err ** 2), 1e-30))
            # measured on this randomly initialised tiny model: about 60 dB
            # (float16) and 37 dB (int8)
            assert sdr > 30.0, (quantization, target, sdr)


@pytest.mark.slow
def test_tflite_interpreter_matches_keras(exported):
    """The interpreter itself (not export.json): waveform variant end to
    end, spectrum variant mask by mask against ``Separator.masks``."""
    from ai_edge_litert.interpreter import Interpreter

    paths = _tflite_paths(exported)
    chunk = _chunks(1, seed=21)
    model = exported["keras"].model
    waveform = Interpreter(model_path=paths["bsrnn-waveform-float32.tflite"])
    assert waveform.get_signature_list() == {"waveform": {"inputs": ["waveform"],
                                                          "outputs": TARGETS}}
    got = waveform.get_signature_runner("waveform")(waveform=chunk)
    expected = exported["keras"](chunk)
    for target in TARGETS:
        np.testing.assert_allclose(got[target], expected[target], atol=1e-5)
    spectrum = spectral.numpy_stft(chunk, model.n_fft, model.hop_length)
    runner = Interpreter(model_path=paths["bsrnn-spectrum-float32.tflite"])
    masks = runner.get_signature_runner("spectrum")(spectrum=spectrum)
    expected_masks = model.masks(tf.constant(spectrum))
    for target in TARGETS:
        assert masks[target].shape == (1, 33, 257, 4)
        np.testing.assert_allclose(masks[target], expected_masks[target].numpy(), atol=1e-5)


def test_numpy_stft_is_the_models_stft():
    from bsrnn_tf.layers.stft import istft, stft
    wave = _chunks(2, seed=3)
    packed = spectral.numpy_stft(wave, 512, 128)
    np.testing.assert_allclose(packed, stft(wave, 512, 128).numpy(), atol=2e-4)
    np.testing.assert_allclose(spectral.numpy_istft(packed, 512, 128, SEGMENT),
                               istft(tf.constant(packed), 512, 128, SEGMENT).numpy(), atol=1e-5)
    np.testing.assert_allclose(spectral.numpy_istft(packed, 512, 128, SEGMENT), wave, atol=1e-5)


# -- frozen backbone -----------------------------------------------------------------------

@pytest.mark.slow
def test_backbone_export_feeds_a_new_head(exported):
    import keras

    directory = exported["results"]["backbone"]
    info = _read_json(os.path.join(directory, "export.json"))
    assert info["parity_vs_keras"]["backbone_savedmodel"]["max_abs_error"] < 1e-5
    assert info["parity_vs_keras"]["heads_savedmodel"]["max_abs_error"] < 1e-5
    model = exported["model"]
    spectrum = model.stft(_chunks(1, seed=8))
    features = model.backbone(spectrum).numpy()
    backbone = keras.saving.load_model(os.path.join(directory, "backbone.keras"))
    np.testing.assert_allclose(backbone(spectrum).numpy(), features, atol=1e-5)
    heads = keras.saving.load_model(os.path.join(directory, "heads.keras"))
    np.testing.assert_allclose(heads(features)["vocals"].numpy(),
                               model.heads["vocals"](features).numpy(), atol=1e-5)
    # A new separator on the exported backbone: same features, frozen, and a
    # training step moves only the new head.
    new = separator_from_backbone(directory, ["piano"])
    assert new.targets == ["piano"] and not new.backbone.trainable
    np.testing.assert_allclose(new.backbone(spectrum).numpy(), features, atol=1e-5)
    before = [w.numpy().copy() for w in new.backbone.weights]
    head_before = [w.numpy().copy() for w in new.heads["piano"].weights]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(new.estimate_spectra(spectrum)["piano"]))
    grads = tape.gradient(loss, new.trainable_weights)
    keras.optimizers.Adam(1e-2).apply_gradients(zip(grads, new.trainable_weights))
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, new.backbone.weights))
    assert any(not np.array_equal(a, w.numpy())
               for a, w in zip(head_before, new.heads["piano"].weights))


# -- backends ------------------------------------------------------------------------------

@pytest.mark.slow
def test_backend_loader_on_every_artifact(exported):
    out, run = exported["out"], exported["run"]
    paths = [run, os.path.join(run, "model.keras"), os.path.join(out, "serving", "bsrnn"),
             exported["results"]["savedmodel"], *exported["results"]["tflite"]]
    chunks = _chunks(2, seed=13)
    expected = exported["keras"](chunks)
    for path in paths:
        backend = load_backend(path, segment_samples=SEGMENT)
        assert (backend.sample_rate, backend.segment_samples, backend.channels) == \
            (SAMPLE_RATE, SEGMENT, 2), path
        assert backend.targets == TARGETS
        assert backend.max_batch == (1 if path.endswith(".tflite") else 4)
        got = backend(chunks)
        tolerance = 1e-5 if "int8" not in path and "float16" not in path else 5e-2
        for target in TARGETS:
            assert got[target].shape == chunks.shape
            np.testing.assert_allclose(got[target], expected[target], atol=tolerance,
                                       err_msg=path)
    # Interpreter threads (bsrnn-tf separate --threads) reach the interpreter
    # and do not change the result.
    path = exported["results"]["tflite"][0]
    one, two = open_model(path, threads=1), open_model(path, threads=2)
    assert (one.num_threads, two.num_threads) == (1, 2)
    a, b = one(chunks), two(chunks)
    for target in TARGETS:
        np.testing.assert_allclose(a[target], b[target], atol=1e-6)


@pytest.mark.slow
def test_backend_errors_name_the_path(exported, tmp_path):
    missing = str(tmp_path / "nothing")
    with pytest.raises(BackendError, match="nothing: no such file"):
        load_backend(missing)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(BackendError, match="notes.txt: not a separator artifact"):
        load_backend(str(text))
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(BackendError, match="fake.tflite: not a TFLite flatbuffer"):
        load_backend(str(fake))
    with pytest.raises(BackendError, match="holds neither"):
        load_backend(str(tmp_path))
    backbone_dir = exported["results"]["backbone"]
    with pytest.raises(BackendError, match="no export.json"):
        load_backend(os.path.join(backbone_dir, "backbone_savedmodel"))
    with pytest.raises(BackendError, match="not a bsrnn_tf Separator"):
        load_backend(os.path.join(backbone_dir, "backbone.keras"))
    with pytest.raises(BackendError, match="holds neither"):
        load_backend(backbone_dir)
    backend = load_backend(exported["results"]["savedmodel"])
    with pytest.raises(BackendError, match=r"expected chunks \(n, 4096, 2\)"):
        backend(np.zeros((1, 100, 2), np.float32))


@pytest.mark.slow
def test_export_errors(exported, tmp_path):
    with pytest.raises(ExportError, match="no such file"):
        deploy.export_model(str(tmp_path / "missing.keras"), str(tmp_path / "o"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="not writable"):
        deploy.export_model(exported["run"], str(blocker / "sub"))
    with pytest.raises(ExportError, match="full-integer int8 is not supported"):
        deploy.convert_tflite(str(tmp_path), "waveform", "int8")
    with pytest.raises(ExportError, match="unknown quantization"):
        deploy.export_model(exported["run"], str(tmp_path / "o"), quantizations=["int8"])
    with pytest.raises(ExportError, match="shorter than n_fft"):
        deploy.export_model(exported["run"], str(tmp_path / "o"), segment_seconds=0.001)


@pytest.mark.slow
def test_cli(exported, tmp_path, capsys):
    from bsrnn_tf.commands import export as cli
    assert cli.main(["-m", str(tmp_path / "none"), "-o", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    code = cli.main(["-m", exported["run"], "-o", str(tmp_path / "o"), "--format", "savedmodel",
                     "--segment", str(SEGMENT / SAMPLE_RATE), "--no-parity"])
    assert code == 0
    assert os.path.exists(tmp_path / "o" / "serving" / "run" / "1" / "saved_model.pb")
    assert "serving/run/1" in capsys.readouterr().out


# -- issue 18: export errors create nothing and never overwrite silently -------------

def test_export_with_a_corrupt_config_or_a_bad_model_creates_nothing(tmp_path):
    import shutil
    run = tmp_path / "run"
    save_separator(build_separator(preset("tiny"), targets=["vocals"]), str(run))
    (run / "config.json").write_text("{ not json")
    with pytest.raises(ExportError, match="config.json: not a readable config JSON"):
        deploy.export_model(str(run), str(tmp_path / "o1"))
    assert not (tmp_path / "o1").exists()
    with pytest.raises(ExportError, match="no such file"):
        deploy.export_model(str(tmp_path / "missing"), str(tmp_path / "o2"))
    assert not (tmp_path / "o2").exists()
    shutil.rmtree(run)
    with pytest.raises(ExportError, match="segment must be a finite number"):
        save_separator(build_separator(preset("tiny"), targets=["vocals"]), str(run))
        deploy.export_model(str(run), str(tmp_path / "o3"), segment_seconds=float("inf"))
    assert not (tmp_path / "o3").exists()


@pytest.mark.slow
def test_second_export_into_the_same_root_needs_overwrite(exported):
    with pytest.raises(ExportError, match="already exist from an earlier export; use --overwrite"):
        deploy.export_model(exported["run"], exported["out"], formats=["tflite"],
                            variants=["waveform"], quantizations=["none"], parity=False,
                            segment_seconds=SEGMENT / SAMPLE_RATE, name="bsrnn")
    with pytest.raises(ExportError, match="backbone already exist"):
        deploy.export_model(exported["run"], exported["out"], formats=["backbone"],
                            parity=False)


@pytest.mark.slow
def test_truncated_tflite_file_is_one_clear_error(exported, tmp_path):
    path = exported["results"]["tflite"][0]
    data = open(path, "rb").read()
    cut = tmp_path / "t.tflite"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(BackendError, match="t.tflite: "):
        load_backend(str(cut))


@pytest.mark.slow
def test_ctrl_c_during_tflite_conversion_leaves_only_whole_files(exported, tmp_path,
                                                                 monkeypatch, capsys):
    from bsrnn_tf.commands import export as script
    from bsrnn_tf.deploy import tflite
    real, calls = tflite.convert_tflite, []

    def interrupted_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tflite, "convert_tflite", interrupted_second)
    out = tmp_path / "out"
    code = script.main(["-m", exported["run"], "-o", str(out), "--format", "tflite",
                        "--variant", "spectrum", "--quantize", "none", "float16",
                        "--segment", str(SEGMENT / SAMPLE_RATE), "--name", "b", "--no-parity"])
    assert code == 130
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "interrupted" in err[0] and "--overwrite" in err[0], err
    assert sorted(os.listdir(out / "tflite")) == ["b-spectrum-float32.tflite"]
    load_backend(str(out / "tflite" / "b-spectrum-float32.tflite"))


# -- issue 26: leftovers of killed exports, a run config that contradicts the model ----

def test_a_killed_conversion_s_temporary_folder_is_removed_by_the_next_export(tmp_path,
                                                                              monkeypatch):
    from bsrnn_tf.deploy import tflite

    out = tmp_path / "tflite"
    dead = out / f"{tflite.TMP_PREFIX}999999999-abcd"  # no such process
    alive = out / f"{tflite.TMP_PREFIX}{os.getpid()}-efgh"  # this one: still running
    for folder in (dead, alive):
        (folder / "variables").mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"x" * 1000)

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(tflite, "separator_archive", stop)
    logs = []
    model = build_separator(preset("tiny"), targets=["vocals"])
    with pytest.raises(Stop):
        tflite.export_tflite(model, str(out), log=logs.append)
    assert not dead.exists() and alive.exists()
    assert any("left by an export that was killed" in line for line in logs), logs
    assert sorted(os.listdir(out)) == [alive.name]  # its own temporary is gone too


def test_a_run_config_that_contradicts_the_model_is_refused(tmp_path):
    run = tmp_path / "run"
    save_separator(build_separator(preset("tiny"), targets=["vocals"]), str(run))
    config = _read_json(run / "config.json")
    config["model"]["targets"] = ["drums", "bass"]
    config["model"]["feature_dim"] = 999
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match=r"config.json contradicts model.keras beside it: "
                                          r"feature_dim 999 \(model.keras: \d+\); targets "):
        deploy.export_model(str(run), str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_model_with_channels_in_the_batch_exports_to_tflite(tmp_path):
    """channels='batch' (the authors' layout) reshapes around the backbone;
    its float32 waveform TFLite graph runs in the interpreter like Keras."""
    from ai_edge_litert.interpreter import Interpreter

    config = preset("tiny")
    config.channels = "batch"
    model = build_separator(config, targets=TARGETS)
    run = str(tmp_path / "run")
    save_separator(model, run)
    out = str(tmp_path / "out")
    deploy.export_model(run, out, formats=["tflite"], variants=["waveform"],
                        quantizations=["none"], segment_seconds=SEGMENT / SAMPLE_RATE,
                        name="bsrnn")
    paths = [os.path.join(d, f) for d, _, files in os.walk(out) for f in files
             if f.endswith(".tflite")]
    assert len(paths) == 1
    chunk = _chunks(1, seed=22)
    got = Interpreter(model_path=paths[0]).get_signature_runner("waveform")(waveform=chunk)
    expected = model(chunk)
    for target in TARGETS:
        np.testing.assert_allclose(got[target], expected[target].numpy(), atol=1e-5)
    with pytest.raises(ExportError, match="channels"):
        deploy.export_model(run, str(tmp_path / "b"), formats=["backbone"])
