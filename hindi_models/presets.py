"""YAML model presets (tiny/small/base/large): the one config loader, with validation that names file and key."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .architectures import architecture_names
from .configuration_hybrid import ENCODER_POSITION_EMBEDDINGS

PRESET_DIR = Path(__file__).parent / "presets"
# The one default masking rate of the masked objectives (bert, the hybrid's encoder); a preset's
# `training.<arch>.mlm_probability` or `--mlm-probability` changes it for a run.
MLM_PROBABILITY = 0.15
# GPT-BERT's share of causal examples per batch (the rest are masked next-token examples). 1/2 from the sweep at
# `mini`, 1M words, seed 42 (BENCHMARKS.md "GPT-BERT's causal fraction"): against 1/16, 1/8 and 1/4 it has the best
# validation CLM loss (5.967 vs 6.177-6.677) and MLM loss (6.679 vs 6.865-6.994), bits/char (2.617 vs 2.748-2.838)
# and POS (51.8% vs 46.7-47.7%); its minimal pairs are 1.7 points (causal) and 0.4 (PLL) under the best fraction's.
# The paper's 1:7 was found with many epochs over 10-100M words; a preset's `training.gpt_bert.causal_fraction` sets it.
CAUSAL_FRACTION = 0.5


class PresetError(ValueError):
    """A preset file or override that cannot be used; the message names the file and the key."""


@dataclass
class Preset:
    """Model shape (the design's keys) plus per-architecture training defaults.

    `training` maps an architecture (`gpt`/`bert`/`hybrid`/`gpt_bert`) or `all` to training hyperparameters; the
    pretraining script validates those keys.
    """

    model_type: str = "gpt"
    """An architecture of the registry (`gpt`, `bert`, `hybrid`, `gpt_bert`)."""
    vocab_size: int = 32000
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    """Shape of every stack: width, layers (per stack for the hybrid), attention heads."""
    max_length: int = 512
    intermediate_size: int = 3072
    dropout: float = 0.1
    """Positions, feed-forward width, dropout of attention and residuals."""
    mlm_loss_weight: float = 0.5
    clm_loss_weight: float = 0.5
    tie_lm_heads: bool = False
    """The hybrid's `loss = mlm_loss_weight * mlm + clm_loss_weight * clm`; tie its two heads to the embedding."""
    encoder_position_embeddings: str = "absolute"
    """BERT's learned absolute positions, or rotary ones (a stock RoFormer encoder), for `bert` and the hybrid's
    encoder; `gpt` ignores it, so one preset serves every architecture."""
    training: dict = field(default_factory=dict)
    """Training defaults per architecture (or `all`): keys of `TrainingHyperparameters`."""
    name: str = "custom"
    source: str = "<defaults>"

    def validate(self) -> "Preset":
        """Check values that types alone cannot; raise `PresetError` naming the file and key."""
        where = self.source
        names = architecture_names()
        if self.model_type not in names:
            raise PresetError(f"{where}: model_type: unknown value {self.model_type!r} (expected one of {names})")
        for key in ("vocab_size", "hidden_size", "num_layers", "num_heads", "max_length", "intermediate_size"):
            if getattr(self, key) <= 0:
                raise PresetError(f"{where}: {key}: must be positive, got {getattr(self, key)}")
        if self.hidden_size % self.num_heads:
            raise PresetError(
                f"{where}: hidden_size: {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise PresetError(f"{where}: dropout: must be in [0, 1), got {self.dropout}")
        if self.encoder_position_embeddings not in ENCODER_POSITION_EMBEDDINGS:
            raise PresetError(f"{where}: encoder_position_embeddings: unknown value "
                              f"{self.encoder_position_embeddings!r} (expected one of {ENCODER_POSITION_EMBEDDINGS})")
        if self.encoder_position_embeddings == "rotary" and (self.hidden_size // self.num_heads) % 2:
            raise PresetError(f"{where}: encoder_position_embeddings: rotary needs an even head size, got hidden_size "
                              f"{self.hidden_size} / num_heads {self.num_heads} = {self.hidden_size // self.num_heads}")
        for arch, values in self.training.items():
            if arch not in (*names, "all") or not isinstance(values, dict):
                raise PresetError(f"{where}: training.{arch}: expected a mapping under one of {(*names, 'all')}")
        return self

    def hyperparameters(self, model_type: str | None = None, **overrides) -> "TrainingHyperparameters":
        """`TrainingHyperparameters` defaults ← `training.all` ← `training.<model_type>` ← overrides (None values
        ignored), type-checked; an unknown or mistyped key raises `PresetError` naming the file."""
        model_type = model_type or self.model_type
        merged = self.training_defaults(model_type)
        for key, value in merged.items():
            if key not in _TRAINING_HINTS:
                raise PresetError(f"{self.source}: training.{model_type}: unknown key {key!r} "
                                  f"(known: {', '.join(_TRAINING_HINTS)})")
            if not _fits_training_type(key, value):
                raise PresetError(f"{self.source}: training.{key}: expected {_TRAINING_HINTS[key].__name__}, "
                                  f"got {value!r}")
        if not 0 <= merged.get("causal_fraction", CAUSAL_FRACTION) <= 1:
            raise PresetError(f"{self.source}: training.{model_type}.causal_fraction: must be in [0, 1], "
                              f"got {merged['causal_fraction']}")
        merged.update({k: v for k, v in overrides.items() if v is not None})  # flags: checked by the caller
        return TrainingHyperparameters(**merged)

    def with_overrides(self, **overrides) -> "Preset":
        """A copy with the given keys replaced (None values are ignored), type-checked and validated."""
        updates = {k: v for k, v in overrides.items() if v is not None}
        data = {**dataclasses.asdict(self), **updates}
        return _from_mapping(data, source=f"{self.source} (overrides: {', '.join(updates) or 'none'})")

    def training_defaults(self, model_type: str | None = None) -> dict:
        """Training hyperparameters for one architecture: `training.all` updated by `training.<model_type>`."""
        model_type = model_type or self.model_type
        return {**self.training.get("all", {}), **self.training.get(model_type, {})}

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("source",)}


@dataclass
class TrainingHyperparameters:
    """Optimiser, schedule, batch and masking of one pretraining run: the keys a preset's `training:` section may
    set; command-line flags override them. The defaults below apply where a preset says nothing."""

    learning_rate: float = 5e-4
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    lr_scheduler_type: str = "cosine"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    """AdamW betas: β2 0.95 as in GPT-3 / nanoGPT, steadier than 0.999 for small batches."""
    max_grad_norm: float = 1.0
    batch_size: int = 32
    gradient_accumulation_steps: int = 1
    mlm_probability: float = MLM_PROBABILITY
    causal_fraction: float = CAUSAL_FRACTION
    """GPT-BERT: the share of causal examples in a batch (0 = masked only, 1 = causal only); others ignore it."""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


_TRAINING_HINTS = typing.get_type_hints(TrainingHyperparameters)


def _fits_training_type(key: str, value) -> bool:
    """Whether `value` has the type of training hyperparameter `key` (an int where a float is expected fits)."""
    expected = _TRAINING_HINTS[key]
    return isinstance(value, expected) or (expected is float and isinstance(value, int))
_FIELDS = {f.name: f for f in dataclasses.fields(Preset)}
_HINTS = typing.get_type_hints(Preset)


def _check_type(key: str, value, source: str):
    expected = _HINTS[key]
    allowed = typing.get_args(expected) if isinstance(expected, types.UnionType) else (expected,)
    allowed = tuple(typing.get_origin(t) or t for t in allowed)
    ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        names = "/".join(t.__name__ for t in allowed)
        raise PresetError(f"{source}: {key}: expected {names}, got {type(value).__name__} {value!r}")
    return float(value) if allowed == (float,) else value


def _from_mapping(data: dict, source: str) -> Preset:
    if not isinstance(data, dict):
        raise PresetError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        known = ", ".join(k for k in _FIELDS if k not in ("name", "source"))
        raise PresetError(f"{source}: unknown key {unknown[0]!r} (known keys: {known})")
    values = {k: _check_type(k, v, source) for k, v in data.items() if k not in ("source",)}
    return Preset(**values, source=source).validate()


def split_overrides(values: dict, source: str = "--set") -> tuple[dict, dict]:
    """Split `{key: value}` overrides (e.g. from `hindi-lm pretrain --set dropout=0 --set adam_beta2=0.99`) into
    preset keys (shape, dropout, ...) and training hyperparameters, type-checking the latter; a key that is neither,
    or a value of the wrong type, raises `PresetError` naming it. Preset keys are checked by `with_overrides`."""
    shape, training = {}, {}
    fixed = ("name", "source", "training", "model_type")  # set by their own flags or files
    for key, value in values.items():
        if key in _TRAINING_HINTS:
            if isinstance(value, bool) or not _fits_training_type(key, value):
                raise PresetError(f"{source}: {key}: expected {_TRAINING_HINTS[key].__name__}, got {value!r}")
            training[key] = float(value) if _TRAINING_HINTS[key] is float else value
        elif key in _FIELDS and key not in fixed:
            shape[key] = value
        else:
            known = [k for k in _FIELDS if k not in fixed] + list(_TRAINING_HINTS)
            raise PresetError(f"{source}: unknown key {key!r} (known: {', '.join(known)})")
    return shape, training


def available_presets() -> list[str]:
    """Names of the bundled presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str | Path = "tiny", **overrides) -> Preset:
    """Load a bundled preset by name (`tiny`, `small`, `base`, `large`, ...) or a YAML file by path.

    Keyword overrides (e.g. `model_type="bert"`) replace file values and go through the same validation.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise PresetError(f"unknown preset {str(name_or_path)!r} (bundled: {', '.join(available_presets())})")
    if not path.is_file():
        raise PresetError(f"{path}: preset file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PresetError(f"{path}: YAML syntax error{at}: {getattr(err, 'problem', err)}") from None
    except UnicodeDecodeError as err:
        raise PresetError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    data = dict(data or {}) if isinstance(data, dict) or data is None else data
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    preset = _from_mapping(data, source=str(path))
    return preset.with_overrides(**overrides) if overrides else preset
