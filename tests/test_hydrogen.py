"""Recorded Hydrogen drum kits (bsrnn_tf/datasets/hydrogen.py), on a small
kit written here: samples are generated constants, so every hit's level
and position can be computed by hand."""

import os

import numpy as np
import pytest
import soundfile as sf

from bsrnn_tf.datasets import hydrogen
from bsrnn_tf.datasets.cache import GenerationError
from bsrnn_tf.datasets.score import Note, Part

SR = 44100

KIT_XML = """<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit">
 <name>Test Kit</name>
 <instrumentList>
  <instrument><id>0</id><name>Kick</name><volume>1</volume><gain>0.5</gain>
   <pan_L>1</pan_L><pan_R>0.5</pan_R>
   <layer><filename>kick_soft.wav</filename><min>0</min><max>0.5</max><gain>1</gain><pitch>0</pitch></layer>
   <layer><filename>kick_hard.wav</filename><min>0.5</min><max>1</max><gain>0.8</gain><pitch>0</pitch></layer>
  </instrument>
  <instrument><id>1</id><name>Snare Rock</name>
   <instrumentComponent><layer><filename>snare.wav</filename><min>0</min><max>1</max></layer></instrumentComponent>
  </instrument>
  <instrument><id>2</id><name>Closed HH</name><filename>hat.wav</filename></instrument>
  <instrument><id>3</id><name>Open HH</name><filename>open.wav</filename></instrument>
  <instrument><id>4</id><name>Tom Hi</name><filename>missing.wav</filename></instrument>
 </instrumentList>
</drumkit_info>
"""


@pytest.fixture
def kit_dir(tmp_path):
    folder = tmp_path / "Test Kit"
    folder.mkdir()
    (folder / "drumkit.xml").write_text(KIT_XML)
    for name, value, seconds, channels in (("kick_soft", 0.1, 0.1, 1), ("kick_hard", 0.2, 0.1, 1),
                                           ("snare", 0.3, 0.1, 2), ("hat", 0.4, 0.05, 1),
                                           ("open", 0.5, 0.5, 1)):
        sf.write(str(folder / f"{name}.wav"),
                 np.full((int(seconds * SR), channels), value, np.float32), SR,
                 subtype="FLOAT")
    return folder


def test_parse_both_layouts_and_drop_missing_samples(kit_dir):
    kit = hydrogen.parse_drumkit(str(kit_dir / "drumkit.xml"))
    assert kit.name == "Test Kit"
    names = [i.name for i in kit.instruments]
    assert names == ["Kick", "Snare Rock", "Closed HH", "Open HH"]  # Tom Hi: no sample
    kick = kit.instruments[0]
    assert kick.gain == 0.5 and kick.pan == (1.0, 0.5)
    assert [(la.min, la.max, la.gain) for la in kick.layers] == [(0, 0.5, 1), (0.5, 1, 0.8)]
    assert kit.instruments[2].layers[0].min == 0 and kit.instruments[2].layers[0].max == 1


def test_velocity_layer_as_hydrogen_chooses_it(kit_dir):
    kick = hydrogen.parse_drumkit(str(kit_dir / "drumkit.xml")).instruments[0]
    # 50 / 127 = 0.394 -> [0, 0.5]; 100 / 127 = 0.787 -> [0.5, 1]; 127 -> 1.0 -> [0.5, 1]
    assert hydrogen.choose_layer(kick, 50).path.endswith("kick_soft.wav")
    assert hydrogen.choose_layer(kick, 100).path.endswith("kick_hard.wav")
    assert hydrogen.choose_layer(kick, 127).path.endswith("kick_hard.wav")


def test_general_midi_mapping_by_names_and_fallbacks(kit_dir):
    kit = hydrogen.parse_drumkit(str(kit_dir / "drumkit.xml"))
    mapping = hydrogen.map_general_midi(kit, np.random.default_rng(0))
    name = {k: v.name for k, v in mapping.items()}
    assert name[36] == "Kick" and name[38] == "Snare Rock" and name[42] == "Closed HH"
    assert name[46] == "Open HH" and name[44] == "Closed HH"   # pedal -> closed
    assert name[39] == "Snare Rock"                            # clap -> snare
    assert name[50] == "Snare Rock"                            # no toms -> snare
    assert name[49] == "Open HH" and name[51] == "Closed HH"    # crash, ride -> hats
    kit.instruments = kit.instruments[1:]
    with pytest.raises(GenerationError, match="36"):
        hydrogen.map_general_midi(kit, np.random.default_rng(0))


def test_hits_land_at_their_beats_with_velocity_gain_and_pan(kit_dir):
    kit = hydrogen.parse_drumkit(str(kit_dir / "drumkit.xml"))
    part = Part("drums", "rock", 9, [Note(0.0, 0.25, 36, 100), Note(1.0, 0.25, 36, 50),
                                     Note(2.0, 0.25, 38, 127)])
    out = hydrogen.render_drums(part, 120.0, kit, np.random.default_rng(0), SR * 2, SR,
                                timing_ms=0.0, velocity_sd=0.0, spread=0.0)
    # 120 bpm: a beat is 0.5 s. Kick at 100: hard layer 0.2 * 100/127 * 0.8 * 0.5,
    # left pan 1, right 0.5.
    hard = 0.2 * 100 / 127 * 0.8 * 0.5
    np.testing.assert_allclose(out[10], [hard, hard * 0.5], rtol=1e-6)
    soft = 0.1 * 50 / 127 * 1.0 * 0.5
    np.testing.assert_allclose(out[int(0.5 * SR) + 10], [soft, soft * 0.5], rtol=1e-6)
    np.testing.assert_allclose(out[SR + 10], [0.3, 0.3], rtol=1e-6)  # snare 127, gain 1
    assert np.all(out[int(0.2 * SR): int(0.45 * SR)] == 0)


def test_open_hat_is_choked_by_the_next_closed_hat_and_timing_is_humanised(kit_dir):
    kit = hydrogen.parse_drumkit(str(kit_dir / "drumkit.xml"))
    part = Part("drums", "rock", 9, [Note(0.0, 0.25, 46, 127), Note(0.5, 0.25, 42, 127)])
    out = hydrogen.render_drums(part, 120.0, kit, np.random.default_rng(0), SR, SR,
                                timing_ms=0.0, velocity_sd=0.0, spread=0.0)
    closed_at = int(0.25 * SR)
    # open hat (0.5 s long) stops where the closed one starts; only the closed plays on
    np.testing.assert_allclose(out[closed_at + 100], [0.4, 0.4], rtol=1e-6)
    late = hydrogen.render_drums(Part("drums", "rock", 9, [Note(1.0, 0.25, 36, 127)] * 1),
                                 120.0, kit, np.random.default_rng(1), SR * 2, SR,
                                 timing_ms=5.0, velocity_sd=0.0, spread=0.0)
    onset = int(np.flatnonzero(np.abs(late[:, 0]) > 0)[0])
    assert onset != int(0.5 * SR) and abs(onset - 0.5 * SR) < 0.03 * SR


def test_missing_kit_names_the_package(tmp_path):
    with pytest.raises(GenerationError, match="hydrogen-drumkits"):
        hydrogen.resolve_kit("No Such Kit", str(tmp_path))


@pytest.mark.skipif(not os.path.isdir(hydrogen.KIT_DIR), reason="needs hydrogen-drumkits")
def test_every_installed_kit_maps_the_required_pieces():
    from bsrnn_tf.datasets.produced import TRAIN_KITS
    kits = hydrogen.list_kits()
    assert set(hydrogen.TEST_KITS) <= set(kits) and set(TRAIN_KITS) <= set(kits)
    assert not set(hydrogen.TEST_KITS) & set(TRAIN_KITS)
    for name in kits:
        kit = hydrogen.parse_drumkit(hydrogen.resolve_kit(name))
        assert set(hydrogen.REQUIRED_KEYS) <= set(hydrogen.map_general_midi(
            kit, np.random.default_rng(0)))


def test_pieces_are_panned_like_overheads(kit_dir):
    kit = hydrogen.parse_drumkit(str(kit_dir / "drumkit.xml"))
    part = Part("drums", "rock", 9, [Note(0.0, 0.25, 42, 127)])
    pans = hydrogen.piece_pans(np.random.default_rng(0), 1.0)
    assert abs(pans[36]) < 0.2 and pans[42] * pans[51] < 0 and abs(pans[42]) > 0.3
    out = hydrogen.render_drums(part, 120.0, kit, np.random.default_rng(0), SR, SR,
                                timing_ms=0.0, velocity_sd=0.0, spread=1.0)
    left, right = out[10]
    assert abs(left - right) > 0.05 and left ** 2 + right ** 2 == pytest.approx(2 * 0.4 ** 2,
                                                                                rel=1e-4)
