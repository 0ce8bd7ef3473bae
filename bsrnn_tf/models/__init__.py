"""Models: Backbone, Separator, presets and save/load."""

from bsrnn_tf.models.backbone import Backbone
from bsrnn_tf.models.io import ModelLoadError, load_separator, save_separator
from bsrnn_tf.models.presets import PRESETS, build_separator, count_parameters, preset
from bsrnn_tf.models.separator import Separator
from bsrnn_tf.models.transfer import separator_from_backbone

__all__ = ["Backbone", "ModelLoadError", "PRESETS", "Separator", "build_separator",
           "count_parameters", "load_separator", "preset", "save_separator",
           "separator_from_backbone"]
