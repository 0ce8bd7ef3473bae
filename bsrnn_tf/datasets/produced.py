"""The levers of the produced sampled dataset: what a song is rendered with
beyond General MIDI soundfonts, and the part renderers that use them.

A :class:`Recipe` switches each lever on its own (so that each can be
measured against the plain sampled dataset):

* ``production``: the chance that a song is produced: every part goes
  through an effect chain drawn for it (:mod:`bsrnn_tf.datasets.production`);
* ``recorded_kits``: the chance that the drums are a recorded Hydrogen kit
  (:mod:`bsrnn_tf.datasets.hydrogen`) instead of a soundfont kit;
* ``sung_vocals``: the chance that the vocal parts are sung with words
  (:mod:`bsrnn_tf.datasets.sung`) instead of a soundfont voice preset;
* ``more_timbres``: every part other than drums is rendered with a
  soundfont drawn for it among the subset's fonts (so one song mixes
  fonts), and ``other`` parts may take any instrument family in any role
  (:data:`~bsrnn_tf.datasets.instruments.WIDE_WEIGHT`).

Train and test draw from disjoint kits and voices (``TRAIN_KITS`` /
``hydrogen.TEST_KITS``, ``sung.TRAIN_VOICES`` / ``sung.TEST_VOICES``). The
levers draw from their own random stream, ``(seed, subset, index, 1000)``:
switching one on leaves the composition, the instruments and the rendering
of every other part exactly as in the plain dataset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from bsrnn_tf.datasets import hydrogen, sung
from bsrnn_tf.datasets.cache import GenerationError

LEVER_STREAM = 1000
TRAIN_KITS = tuple(k for k in ("Audiophob", "BJA_Pacific", "ColomboAcousticDrumkit",
                               "ForzeeStereo", "HardElectro1", "Millo-Drums_v.1",
                               "Millo_MultiLayered2", "Millo_MultiLayered3", "VariBreaks",
                               "rumpf_kit_z01_h2") if k not in hydrogen.TEST_KITS)
# Soundfonts of the train songs with more timbres (every GM font Debian has
# but the test font TimGM6mb and the reserved MuseScore General): FluidR3 GM,
# its lossy mono edition (fluidr3mono-gm-soundfont), the csound GM bank
# (csound-soundfont) and an OPL3 FM-chip font (opl3-soundfont).
MORE_TRAIN_SOUNDFONTS = ("FluidR3_GM.sf2", "/usr/share/sounds/sf3/FluidR3Mono_GM.sf3",
                         "sf_GMbank.sf2", "OPL-3_FM_128M.sf2")


@dataclass(frozen=True)
class Recipe:
    """Probabilities of the levers per song (0 = off) and the sources they
    draw from (filled per subset by :func:`for_subset`)."""

    production: float = 0.0
    recorded_kits: float = 0.0
    sung_vocals: float = 0.0
    more_timbres: bool = False
    kits: tuple = field(default=())
    voices: tuple = field(default=())

    def __post_init__(self):
        for name in ("production", "recorded_kits", "sung_vocals"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise GenerationError(f"{name} must be a probability in [0, 1], got {value}")

    @property
    def active(self) -> bool:
        return bool(self.production or self.recorded_kits or self.sung_vocals or
                    self.more_timbres)

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# The held-out produced split (every song produced, drums always a held-out
# kit, half the songs sung) and the all-levers training candidate.
PRODUCED_TEST_RECIPE = Recipe(production=1.0, recorded_kits=1.0, sung_vocals=0.5)
PRODUCED_RECIPE = Recipe(production=0.8, recorded_kits=0.5, sung_vocals=0.5, more_timbres=True)


def for_subset(recipe: Recipe, subset: str) -> Recipe:
    """The recipe with the kits and voices of ``subset`` (test: held out)."""
    test = subset == "test"
    kits = recipe.kits or (hydrogen.TEST_KITS if test else TRAIN_KITS)
    voices = recipe.voices or (sung.TEST_VOICES if test else sung.TRAIN_VOICES)
    return replace(recipe, kits=tuple(kits), voices=tuple(voices))


def check_available(recipe: Recipe) -> None:
    """Raises :class:`GenerationError` (naming the package) if a lever that
    is on cannot run here."""
    if recipe.recorded_kits:
        for kit in recipe.kits:
            hydrogen.resolve_kit(kit)
    if recipe.sung_vocals:
        sung.find_espeak()
        sung._world()
    if recipe.production:
        from bsrnn_tf.datasets.production import _pedalboard
        _pedalboard()


class SongLevers:
    """The lever draws of one song: whether it is produced, which kit plays
    the drums, which voice sings, and the lyrics."""

    def __init__(self, recipe: Recipe, seed_key: list, song):
        self.recipe = recipe
        self.rng = np.random.default_rng([*seed_key, LEVER_STREAM])
        r = self.rng
        self.produced = bool(r.random() < recipe.production)
        self.kit = (recipe.kits[int(r.integers(len(recipe.kits)))]
                    if recipe.kits and r.random() < recipe.recorded_kits else None)
        self.voice = (recipe.voices[int(r.integers(len(recipe.voices)))]
                      if recipe.voices and r.random() < recipe.sung_vocals else None)
        lead = song.parts["vocals"][0].notes if song.parts.get("vocals") else []
        self.words = sung.lyrics(r, lead) if self.voice else {}
        self.chains = {}

    def render_part(self, source: str, index: int, part, tempo: float, num_samples: int,
                    sample_rate: int):
        """``(n, 2)`` float32 of a part played by a lever, or None when
        FluidSynth renders it."""
        if source == "drums" and self.kit:
            kit = hydrogen.parse_drumkit(hydrogen.resolve_kit(self.kit))
            return hydrogen.render_drums(part, tempo, kit, self.rng, num_samples, sample_rate)
        if source == "vocals" and self.voice:
            voice = self.voice if index == 0 else \
                self.recipe.voices[int(self.rng.integers(len(self.recipe.voices)))]
            return sung.render_sung(part, tempo, self.rng, num_samples, sample_rate, voice,
                                    self.words)
        return None

    def part_soundfont(self, source: str, program: tuple, song_font: str, fonts: list) -> str:
        """The soundfont of a FluidSynth part: with ``more_timbres`` one drawn
        among ``fonts`` that hold ``program`` (drums keep the song's)."""
        from bsrnn_tf.datasets.instruments import soundfont_presets
        if not self.recipe.more_timbres or source == "drums":
            return song_font
        usable = [f for f in fonts if program in soundfont_presets(f)]
        return usable[int(self.rng.integers(len(usable)))] if usable else song_font

    def produce(self, source: str, index: int, audio: np.ndarray, tempo: float,
                sample_rate: int) -> np.ndarray:
        """The part through its effect chain if the song is produced."""
        if not self.produced:
            return audio
        from bsrnn_tf.datasets.production import apply_chain, draw_chain
        chain = draw_chain(self.rng, source, tempo)
        self.chains[f"{source}_{index}"] = chain
        return apply_chain(audio, chain, sample_rate)

    def info(self) -> dict:
        return {"produced": self.produced, "kit": self.kit, "voice": self.voice,
                "lyrics": sorted(set(self.words.values())), "chains": self.chains}
