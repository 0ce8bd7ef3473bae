"""Overfit 8 fixed chunks of one song and report, every ``--every`` steps,
the gain over the best-scaled mixture per target on those chunks and the
estimate/reference energy (dB). A model that cannot learn this has a bug;
used to compare the normalisations:

    python -m experiments.overfit_one_song --steps 40 --every 20 --norm chunk
    python -m experiments.overfit_one_song --steps 40 --every 20 --norm frame

(the default song is the first track of the built-in synth dataset,
``bsrnn-tf make-dataset --kind synth`` / ``~/.cache/bsrnn_tf/generated-v1``).
Results: experiments/results/cpu_recipe/overfit-norms.txt.
"""
import argparse
import time

import numpy as np, soundfile as sf, tensorflow as tf, keras
from bsrnn_tf.models import build_separator, preset
from bsrnn_tf.training.losses import bsrnn_loss, multitask_loss

p = argparse.ArgumentParser()
p.add_argument("--song", help="a MUSDB-layout track folder (default: the first train track "
                              "of the built-in synth dataset)")
p.add_argument("--preset", default="small"); p.add_argument("--N", type=int); p.add_argument("--L", type=int)
p.add_argument("--bands", default=None); p.add_argument("--num-edges", type=int)
p.add_argument("--norm", default=None)
p.add_argument("--seconds", type=float, default=1.0); p.add_argument("--batch", type=int, default=4)
p.add_argument("--lr", type=float, default=1e-3); p.add_argument("--steps", type=int, default=100)
p.add_argument("--every", type=int, default=20); p.add_argument("--clip", type=float, default=5.0)
p.add_argument("--loss", default="bsrnn"); p.add_argument("--scale", type=float, default=1.0)
a = p.parse_args()
T = ["drums", "bass", "other", "vocals"]
if a.song is None:
    import os
    from bsrnn_tf.data.musdb import builtin_root
    train_dir = os.path.join(builtin_root("synth"), "train")
    a.song = os.path.join(train_dir, sorted(os.listdir(train_dir))[0])
src = {t: sf.read(f"{a.song}/{t}.wav", dtype="float32")[0] for t in T}
cfg = preset(a.preset)
if a.N: cfg.feature_dim = a.N
if a.L: cfg.num_layers = a.L
if a.bands: cfg.bands = a.bands
if a.num_edges: cfg.num_edges = a.num_edges
if a.norm: cfg.norm = a.norm
model = build_separator(cfg, targets=T)
seg = int(a.seconds * 44100)
n = len(src["drums"]); starts = np.linspace(0, n - seg, 8).astype(int)
S = {t: np.stack([src[t][s:s+seg] for s in starts]) * a.scale for t in T}
M = sum(S.values())
opt = keras.optimizers.Adam(a.lr)
def loss_fn(mix, srcs):
    spec = model.stft(mix)
    est = model.estimate_spectra(spec, training=True)
    per = {t: bsrnn_loss(est[t], model.stft(srcs[t]), model.istft(est[t], seg), srcs[t]) for t in T}
    return tf.reduce_mean(multitask_loss(per))
@tf.function(reduce_retracing=True)
def step(mix, srcs):
    with tf.GradientTape() as tape:
        l = loss_fn(mix, srcs)
    g = tape.gradient(l, model.trainable_variables)
    g = [tf.convert_to_tensor(x) for x in g]
    g, norm = tf.clip_by_global_norm(g, a.clip) if a.clip else (g, tf.linalg.global_norm(g))
    opt.apply_gradients(zip(g, model.trainable_variables))
    return l, norm
def usdr(s, e):
    return 10*np.log10((np.sum(s**2)+1e-7)/(np.sum((s-e)**2)+1e-7))
def evaluate():
    out = {t: [] for t in T}
    for i in range(0, 8, 4):
        o = model(tf.constant(M[i:i+4]), training=False)
        for t in T: out[t].append(o[t].numpy())
    res = {}
    for t in T:
        e = np.concatenate(out[t]); s = S[t]
        g = np.sum(s*M)/np.sum(M*M)
        res[t] = (usdr(s, e) - usdr(s, g*M), 10*np.log10(np.sum(e**2)/np.sum(s**2)))
    return res
rng = np.random.default_rng(0)
t0 = time.time()
for k in range(a.steps + 1):
    if k % a.every == 0:
        r = evaluate()
        print(f"step {k:4d} {time.time()-t0:6.0f}s gain " + " ".join(f"{t[:2]} {v[0]:+.2f}" for t, v in r.items())
              + f" mean {np.mean([v[0] for v in r.values()]):+.2f} | energy dB " + " ".join(f"{v[1]:+.1f}" for v in r.values()), flush=True)
    if k == a.steps: break
    idx = rng.choice(8, a.batch, replace=False)
    l, nrm = step(tf.constant(M[idx]), {t: tf.constant(S[t][idx]) for t in T})
    if k % a.every == 0: print(f"   loss {float(l):.4f} gnorm {float(nrm):.3f}", flush=True)
