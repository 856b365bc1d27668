"""YAML model presets (tiny/small/base/large): the one config loader, with validation that names file and key."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .configuration_hybrid import ENCODER_POSITION_EMBEDDINGS

PRESET_DIR = Path(__file__).parent / "presets"
MODEL_TYPES = ("gpt", "bert", "hybrid")
# `encoder_position_embeddings` (ENCODER_POSITION_EMBEDDINGS): BERT's learned absolute positions, or rotary ones (a
# stock RoFormer encoder); for `bert` and the hybrid's encoder (`gpt` ignores it, so one preset serves all three).
ARCHITECTURE_NAMES = {"gpt": "GPT-2 style (causal LM)", "bert": "BERT style (masked LM)", "hybrid": "GPT+BERT hybrid"}


class PresetError(ValueError):
    """A preset file or override that cannot be used; the message names the file and the key."""


@dataclass
class Preset:
    """Model shape (the design's keys) plus per-architecture training defaults.

    `training` maps an architecture (`gpt`/`bert`/`hybrid`) or `all` to training hyperparameters; the
    pretraining script validates those keys.
    """

    model_type: str = "gpt"
    vocab_size: int = 32000
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    max_length: int = 512
    intermediate_size: int = 3072
    dropout: float = 0.1
    mlm_loss_weight: float = 0.5
    clm_loss_weight: float = 0.5
    tie_lm_heads: bool = False
    encoder_position_embeddings: str = "absolute"
    training: dict = field(default_factory=dict)
    name: str = "custom"
    source: str = "<defaults>"

    def validate(self) -> "Preset":
        """Check values that types alone cannot; raise `PresetError` naming the file and key."""
        where = self.source
        if self.model_type not in MODEL_TYPES:
            raise PresetError(f"{where}: model_type: unknown value {self.model_type!r} (expected one of {MODEL_TYPES})")
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
            if arch not in (*MODEL_TYPES, "all") or not isinstance(values, dict):
                raise PresetError(
                    f"{where}: training.{arch}: expected a mapping under one of {(*MODEL_TYPES, 'all')}"
                )
        return self

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
        raise PresetError(f"{source}: unknown key {unknown[0]!r} (known keys: {', '.join(k for k in _FIELDS if k not in ('name', 'source'))})")
    values = {k: _check_type(k, v, source) for k, v in data.items() if k not in ("source",)}
    return Preset(**values, source=source).validate()


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
