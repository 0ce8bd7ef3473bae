"""Production effect chains (bsrnn_tf/datasets/production.py)."""

import numpy as np
import pytest

pytest.importorskip("pedalboard", reason="needs the PyPI package pedalboard")

from bsrnn_tf.datasets import production  # noqa: E402

SR = 44100
SOURCES = ("drums", "bass", "other", "vocals")


def _music(seconds=2.0, seed=0):
    """Decaying tone bursts with a little noise: (samples, 2) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = np.exp(-8 * (t % 0.25))
    mono = env * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    return (0.1 * np.stack([mono, 0.8 * mono], 1)).astype(np.float32)


@pytest.mark.parametrize("source", SOURCES)
def test_chains_keep_length_finiteness_and_level(source):
    audio = _music()
    rms = np.sqrt(np.mean(audio ** 2))
    rng = np.random.default_rng(1)
    for _ in range(6):
        chain = production.draw_chain(rng, source, 120.0)
        assert chain[-1]["effect"] == "width"
        out = production.apply_chain(audio, chain, SR)
        assert out.shape == audio.shape and out.dtype == np.float32
        assert np.all(np.isfinite(out))
        assert np.sqrt(np.mean(out ** 2)) == pytest.approx(rms, rel=1e-3)
        assert np.max(np.abs(out)) < 1.0


def test_chain_is_deterministic_and_changes_the_audio():
    audio = _music()
    chain = production.draw_chain(np.random.default_rng(5), "vocals", 100.0)
    a = production.apply_chain(audio, chain, SR)
    b = production.apply_chain(audio, chain, SR)
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - audio)) > 1e-3


def test_silence_stays_silence():
    silent = np.zeros((SR, 2), np.float32)
    chain = production.draw_chain(np.random.default_rng(0), "drums", 90.0)
    np.testing.assert_array_equal(production.apply_chain(silent, chain, SR), silent)


def test_width_zero_makes_mono_and_saturation_bounds_peaks():
    audio = _music()
    mono = production.apply_chain(audio, [{"effect": "width", "width": 0.0}], SR)
    np.testing.assert_allclose(mono[:, 0], mono[:, 1], atol=1e-7)
    loud = production._saturate(np.linspace(-4, 4, 101), drive_db=12.0, mix=1.0)
    assert np.max(np.abs(loud)) <= 10 ** (-12 / 20) + 1e-9  # tanh(g x) / g <= 1 / g


def test_room_impulse_decays_at_its_rt60_and_has_unit_energy():
    ir = production.room_impulse(rt60=0.5, predelay_ms=10.0, damping=0.5, seed=3,
                                 sample_rate=SR)
    assert ir.shape[1] == 2 and np.all(np.isfinite(ir))
    assert np.sum(ir ** 2) / 2 == pytest.approx(1.0, rel=1e-3)
    assert np.all(ir[: int(0.01 * SR) - 1] == 0)       # nothing before the pre-delay
    early = np.mean(ir[int(0.02 * SR): int(0.07 * SR)] ** 2)
    late = np.mean(ir[int(0.45 * SR): int(0.50 * SR)] ** 2)
    # 60 dB per rt60: 0.43 s later about 52 dB down (damping takes more).
    assert 10 * np.log10(early / late) > 40


def test_delay_echo_lands_at_the_tempo():
    click = np.zeros((SR, 2), np.float32)
    click[1000] = 1.0
    chain = [{"effect": "delay", "seconds": 0.25, "feedback": 0.0, "mix": 0.5}]
    out = production.apply_chain(click, chain, SR)
    echo = 1000 + int(0.25 * SR)
    assert abs(out[echo, 0]) > 0.3 * abs(out[1000, 0])


def test_produce_stems_draws_one_chain_per_stem():
    stems = {s: _music(seed=i) for i, s in enumerate(SOURCES)}
    out, chains = production.produce_stems(stems, np.random.default_rng(0), 128.0, SR)
    assert set(out) == set(chains) == set(SOURCES)
    mixture = sum(out.values())
    assert mixture.shape == (2 * SR, 2) and np.all(np.isfinite(mixture))
