"""Discriminative learning rates: smaller steps for the shallow stages of a backbone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras

from keras_cnnkit._api import PACKAGE
from keras_cnnkit.backbones import backbone_model, stage_of_layers
from keras_cnnkit.errors import SpecError

_CLASSES: dict[type, type] = {}
_SUFFIX = "WithLRMultipliers"


def _layer_of(variable) -> str:
    return variable.path.split("/", 1)[0]


def lr_multiplier_class(base: type) -> type:
    """Return the subclass of optimizer class ``base`` that scales per-layer learning rates.

    The subclass takes one more argument, ``lr_multipliers`` (``{layer name:
    factor}``), multiplies the learning rate of each variable of those layers by
    its factor in ``update_step`` (so it is exact for every optimizer, Adam
    included), and writes it into its config. It is registered under
    ``keras_cnnkit>{Base}WithLRMultipliers``; the classes of every
    ``keras.optimizers`` optimizer exist once ``keras_cnnkit.finetune`` is
    imported, so ``.keras`` files load with their optimizer. For a custom
    optimizer, call this function before loading.

    Args:
        base: A ``keras.optimizers.Optimizer`` subclass.

    Returns:
        The registered subclass.

    Raises:
        SpecError: If ``base`` is not an optimizer class.

    Example:
        >>> import keras
        >>> lr_multiplier_class(keras.optimizers.Adam).__name__
        'AdamWithLRMultipliers'
    """
    if not (isinstance(base, type) and issubclass(base, keras.optimizers.Optimizer)):
        raise SpecError(f"expected a keras.optimizers.Optimizer subclass, got {base!r}")
    if getattr(base, "_lr_multiplier_base", None) is not None:
        return base
    if base in _CLASSES:
        return _CLASSES[base]

    def __init__(self, *args, lr_multipliers: Mapping[str, float] | None = None, **kwargs):
        base.__init__(self, *args, **kwargs)
        self.lr_multipliers = _check_multipliers(lr_multipliers or {})
        self._lr_mult_by_key = {}

    def build(self, variables):
        base.build(self, variables)
        self._lr_mult_by_key = {
            self._var_key(v): float(self.lr_multipliers[_layer_of(v)])
            for v in variables
            if _layer_of(v) in self.lr_multipliers
        }

    def update_step(self, gradient, variable, learning_rate):
        factor = self._lr_mult_by_key.get(self._var_key(variable), 1.0)
        if factor != 1.0:
            learning_rate = learning_rate * factor
        return base.update_step(self, gradient, variable, learning_rate)

    def get_config(self):
        config = base.get_config(self)
        config["lr_multipliers"] = dict(self.lr_multipliers)
        return config

    name = f"{base.__name__}{_SUFFIX}"
    cls = type(
        name,
        (base,),
        {
            "__init__": __init__,
            "build": build,
            "update_step": update_step,
            "get_config": get_config,
            "_lr_multiplier_base": base,
            "__module__": __name__,
            "__doc__": f"{base.__name__} with per-layer learning-rate multipliers.",
        },
    )
    cls = keras.saving.register_keras_serializable(package=PACKAGE, name=name)(cls)
    _CLASSES[base] = cls
    return cls


def _check_multipliers(multipliers: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(multipliers, Mapping):
        raise SpecError(f"lr_multipliers must map layer names to factors, got {multipliers!r}")
    out = {}
    for key, value in multipliers.items():
        factor = float(value)
        if factor < 0:
            raise SpecError(f"learning-rate multiplier of layer {key!r} is negative: {value!r}")
        out[str(key)] = factor
    return out


def with_lr_multipliers(
    optimizer: keras.optimizers.Optimizer | str, lr_multipliers: Mapping[str, float]
) -> keras.optimizers.Optimizer:
    """Copy a standard Keras optimizer, adding per-layer learning-rate multipliers.

    Args:
        optimizer: An unbuilt optimizer instance or its name (``"adam"``).
        lr_multipliers: ``{layer name: factor}``; layers not listed use factor 1.
            For a model from :func:`~keras_cnnkit.backbones.build_classifier`,
            :func:`stage_lr_multipliers` computes it.

    Returns:
        An optimizer of the registered subclass (see :func:`lr_multiplier_class`),
        with the same configuration, for ``model.compile``.

    Raises:
        SpecError: On a bad optimizer or a negative factor.

    Example:
        >>> opt = with_lr_multipliers(keras.optimizers.SGD(0.1), {"conv1": 0.01})
        >>> type(opt).__name__, opt.lr_multipliers
        ('SGDWithLRMultipliers', {'conv1': 0.01})
    """
    optimizer = keras.optimizers.get(optimizer)
    base = getattr(type(optimizer), "_lr_multiplier_base", None) or type(optimizer)
    cls = lr_multiplier_class(base)
    config = optimizer.get_config()
    config["lr_multipliers"] = _check_multipliers(lr_multipliers)
    return cls.from_config(config)


def stage_lr_multipliers(
    model: keras.Model, lr_mult: float | Sequence[float] = 0.1
) -> dict[str, float]:
    """Per-layer learning-rate factors for the backbone stages of ``model``.

    The head keeps factor 1. With a number ``lr_mult`` (in ``(0, 1]``), the
    first stage gets ``lr_mult`` and the factors grow geometrically to the head:
    stage ``k`` of ``n`` gets ``lr_mult ** ((n - k + 1) / n)`` (fastai's
    ``lr_mult`` as a factor; timm's layer decay per stage). A sequence gives one
    factor per stage, shallow to deep.

    Args:
        model: A model from :func:`keras_cnnkit.backbones.build_classifier`.
        lr_mult: The factor of the first stage, or one factor per stage.

    Returns:
        ``{layer name: factor}`` for every backbone layer that has weights.

    Raises:
        SpecError: On a factor outside ``(0, 1]`` or a sequence of the wrong length.

    Example:
        >>> from keras_cnnkit.backbones import build_classifier
        >>> m = build_classifier("vgg16", 2, input_shape=(32, 32, 3), weights=None)
        >>> mults = stage_lr_multipliers(m, 0.01)
        >>> round(mults["block1_conv1"], 4), round(mults["block5_conv3"], 4)
        (0.01, 0.3981)
    """
    backbone = backbone_model(model)
    stages = stage_of_layers(backbone)
    n = max(stages.values())
    if isinstance(lr_mult, (int, float)):
        if not 0.0 < float(lr_mult) <= 1.0:
            raise SpecError(f"lr_mult must be in (0, 1], got {lr_mult!r}")
        factors = [float(lr_mult) ** ((n - k + 1) / n) for k in range(1, n + 1)]
    else:
        factors = [float(f) for f in lr_mult]
        if len(factors) != n or any(not 0.0 <= f for f in factors):
            raise SpecError(
                f"lr_mult must hold {n} non-negative factors (one per stage of backbone "
                f"{backbone.name!r}), got {lr_mult!r}"
            )
    return {
        layer.name: factors[stages[layer.name] - 1]
        for layer in backbone.layers
        if layer.name in stages and layer.weights
    }


for _name in dir(keras.optimizers):
    _obj = getattr(keras.optimizers, _name)
    if (
        isinstance(_obj, type)
        and issubclass(_obj, keras.optimizers.Optimizer)
        and _obj is not keras.optimizers.Optimizer
        and _obj is not keras.optimizers.LossScaleOptimizer
    ):
        lr_multiplier_class(_obj)
