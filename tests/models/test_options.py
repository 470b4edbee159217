"""Model factories take their class's settings from the class's own signature (:func:`robustsweep.models.base.
options_from`): the registered signature lists them with their types and defaults, and the factory passes all of
them on."""
from __future__ import annotations

import inspect
import typing

import pytest

from robustsweep.models.base import options_from
from robustsweep.models.causal import CausalHead
from robustsweep.models.deep_bayes import DeepBayes
from robustsweep.models.fusion import Backbone
from robustsweep.registry import MODELS


def _options(name: str) -> dict[str, inspect.Parameter]:
    return MODELS.settable_params(name)


def _settings(src, drop=()) -> dict[str, inspect.Parameter]:
    return {k: p for k, p in inspect.signature(src).parameters.items() if k not in drop}


def test_deep_bayes_factories_take_the_class_settings():
    own = _settings(DeepBayes, drop=("factorisation", "input_shape", "num_classes", "bounded"))
    for name in ("gfz", "gfy", "gbz", "gby", "dfx", "dfz", "dbx"):
        opts = _options(name)
        assert list(opts) == list(own)
        assert {k: p.default for k, p in opts.items()} == {k: p.default for k, p in own.items()}
        hints = typing.get_type_hints(MODELS.get(name).fn)
        assert hints["K"] is int and hints["sigma"] is float and hints["arch"] is str


def test_fusion_causal_and_cama_share_the_head_and_backbone_settings():
    head = _settings(CausalHead, drop=("x1_dim", "x2_dim", "num_classes"))
    backbone = _settings(Backbone)
    causal, cama, fusion = _options("causal"), _options("deep-cama"), _options("fusion")
    assert set(causal) == set(head) | set(backbone) | {"m_finetune"}
    assert set(cama) == set(head) - {"m_mode"} | {"m_finetune"}
    assert set(_options("fusion-backbone")) == set(backbone) - {"feature_depth"}
    assert set(fusion) - set(backbone) - {"head"} == {"dim_z", "hidden", "likelihood", "sigma", "K_train", "K", "layers"}
    # the factories' own defaults where they differ from the class's
    assert causal["sigma"].default == fusion["sigma"].default == 1.0 and cama["sigma"].default == 0.25
    assert (causal["backbone"].default, causal["feature_depth"].default) == ("vgg16", "conv9")
    assert (fusion["backbone"].default, fusion["feature_depth"].default) == ("cnn", "conv2")
    hints = typing.get_type_hints(MODELS.get("causal").fn)
    assert hints["backbone_weights"] == (str | None) and hints["m_finetune"] == (dict | None)


def test_options_from_passes_every_option_with_the_factory_defaults():
    def head(x_dim: int, width: int = 8, depth: int = 2, act: str = "relu") -> None: ...

    @options_from(head, drop=("x_dim",), depth=3)
    def build(input_shape: tuple[int, ...], num_classes: int, tag: str = "t", **options: typing.Any) -> dict:
        return {"tag": tag, **options}

    assert list(inspect.signature(build).parameters) == ["input_shape", "num_classes", "tag", "width", "depth", "act"]
    assert build((1,), 2) == {"tag": "t", "width": 8, "depth": 3, "act": "relu"}
    assert build((1,), 2, width=4) == {"tag": "t", "width": 4, "depth": 3, "act": "relu"}
    with pytest.raises(TypeError):
        build((1,), 2, height=1)  # not an option: the same error as a plain signature gives
    with pytest.raises(TypeError, match="no default"):
        options_from(head)(build.__wrapped__)
    with pytest.raises(TypeError, match="no source has"):
        options_from(head, drop=("x_dim",), heigth=1)(build.__wrapped__)
