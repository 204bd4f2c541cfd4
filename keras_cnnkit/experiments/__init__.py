"""Complete, reproducible experiments built from the library's parts."""

from keras_cnnkit.experiments.translation import TranslationResult, run_translation_experiment

__all__ = ["TranslationResult", "run_translation_experiment"]
