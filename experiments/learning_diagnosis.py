"""Why does the model learn so little? Trains the cpu preset (or N, L given)
on the real training pipeline of the built-in sampled dataset and, every
``--every`` steps, scores the 32 fixed validation chunks that fit.py uses:

- gain: uSDR of the estimates minus that of the best-scaled mixture (dB,
  energies summed over chunks, as fit.py's validation);
- rescaled: the same for each estimate times its own least-squares gain
  (what the estimate's shape is worth, whatever its level);
- energy: estimate energy over reference energy (dB): below 0, too quiet.

    python -m experiments.learning_diagnosis --steps 300 --every 100 --loss bsrnn
    python -m experiments.learning_diagnosis --steps 300 --every 100 --loss bsrnn+sdr

Results of both on 2 CPU cores: experiments/results/cpu_recipe/, discussed in
experiments/CPU_RECIPE.md.
"""
import argparse, time, numpy as np, tensorflow as tf, keras
from bsrnn_tf.config import DataConfig
from bsrnn_tf.data.musdb import SOURCES, load_tracks
from bsrnn_tf.data.pipeline import train_dataset, valid_dataset
from bsrnn_tf.models import build_separator, preset
from bsrnn_tf.training.losses import multitask_loss, target_loss
p = argparse.ArgumentParser()
p.add_argument("--N", type=int, default=32); p.add_argument("--L", type=int, default=3)
p.add_argument("--lr", type=float, default=1e-3); p.add_argument("--steps", type=int, default=300)
p.add_argument("--every", type=int, default=50); p.add_argument("--batch", type=int, default=4)
p.add_argument("--seconds", type=float, default=2.0); p.add_argument("--loss", default="bsrnn")
p.add_argument("--norm", default="chunk"); p.add_argument("--sdr-weight", type=float, default=0.1); p.add_argument("--root", default="/root/.cache/bsrnn_tf/sampled-v1")
a = p.parse_args()
keras.utils.set_random_seed(0)
T = list(SOURCES)
cfg = preset("cpu"); cfg.feature_dim = a.N; cfg.num_layers = a.L; cfg.norm = a.norm
model = build_separator(cfg, targets=T)
d = DataConfig(segment_seconds=a.seconds, examples_per_epoch=a.steps * a.batch, valid_examples=32)
tr = load_tracks(a.root, subset="train", split="train"); va = load_tracks(a.root, subset="train", split="valid")
train = iter(train_dataset(tr, T, d, a.batch, 44100, seed=0))
valid = list(valid_dataset(va, T, d, 8, 44100).as_numpy_iterator())
seg = int(a.seconds * 44100)
opt = keras.optimizers.Adam(a.lr)
@tf.function
def step(mix, srcs):
    with tf.GradientTape() as tape:
        spec = model.stft(mix); est = model.estimate_spectra(spec, training=True)
        per = {t: target_loss(a.loss, est[t], model.stft(srcs[t]),
                              model.istft(est[t], seg), srcs[t], a.sdr_weight) for t in T}
        l = tf.reduce_mean(multitask_loss(per))
    g = tape.gradient(l, model.trainable_variables)
    g, _ = tf.clip_by_global_norm([tf.convert_to_tensor(x) for x in g], 5.0)
    opt.apply_gradients(zip(g, model.trainable_variables)); return l
def score():
    S = {t: 0.0 for t in T}; E = {k: {t: 0.0 for t in T} for k in ("est", "rescaled", "scaled_mix")}; En = {t: 0.0 for t in T}
    for mix, src in valid:
        out = model(tf.constant(mix), training=False)
        for t in T:
            s = src[t].astype(np.float64); e = out[t].numpy().astype(np.float64)
            for i in range(len(mix)):
                m = mix[i].astype(np.float64)
                S[t] += np.sum(s[i]**2); En[t] += np.sum(e[i]**2)
                E["est"][t] += np.sum((s[i]-e[i])**2)
                ge = np.sum(s[i]*e[i]) / max(np.sum(e[i]**2), 1e-20); E["rescaled"][t] += np.sum((s[i]-ge*e[i])**2)
                gm = np.sum(s[i]*m) / np.sum(m*m); E["scaled_mix"][t] += np.sum((s[i]-gm*m)**2)
    db = lambda x, y: 10*np.log10(x/y)
    gain = {t: db(S[t], E["est"][t]) - db(S[t], E["scaled_mix"][t]) for t in T}
    resc = {t: db(S[t], E["rescaled"][t]) - db(S[t], E["scaled_mix"][t]) for t in T}
    energy = {t: db(En[t], S[t]) for t in T}
    return gain, resc, energy
t0 = time.time()
for k in range(a.steps + 1):
    if k % a.every == 0:
        g, r, e = score()
        print(f"step {k:4d} {time.time()-t0:5.0f}s gain mean {np.mean(list(g.values())):+.2f} [" + " ".join(f"{v:+.1f}" for v in g.values())
              + f"] rescaled mean {np.mean(list(r.values())):+.2f} [" + " ".join(f"{v:+.1f}" for v in r.values()) + "] energy dB [" + " ".join(f"{v:+.1f}" for v in e.values()) + "]", flush=True)
    if k == a.steps: break
    mix, srcs = next(train)
    l = step(mix, srcs)
