"""hindi-models: small Hindi GPT-2, BERT and GPT+BERT hybrid language models, Hugging Face Hub-native.

Importing the package registers the hybrid with the transformers Auto classes in this process, so saved hybrid
folders load without `trust_remote_code`; elsewhere the `.py` files saved next to the weights serve as remote code.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .configuration_hybrid import HybridGPTBERTConfig
from .modeling_hybrid import (
    HybridGPTBERTForCausalLM,
    HybridGPTBERTForMaskedLM,
    HybridGPTBERTForSequenceClassification,
    HybridGPTBERTForTokenClassification,
    HybridGPTBERTModel,
)
from .evaluation import evaluate_model
from .factory import ModelFactory
from .models import HindiBERTModel, HindiGPTModel, build_model, count_parameters, make_model_config
from .presets import Preset, PresetError, available_presets, load_preset

AutoConfig.register(HybridGPTBERTConfig.model_type, HybridGPTBERTConfig, exist_ok=True)
for _auto, _cls in (
    (AutoModel, HybridGPTBERTModel),
    (AutoModelForPreTraining, HybridGPTBERTModel),
    (AutoModelForCausalLM, HybridGPTBERTForCausalLM),
    (AutoModelForMaskedLM, HybridGPTBERTForMaskedLM),
    (AutoModelForSequenceClassification, HybridGPTBERTForSequenceClassification),
    (AutoModelForTokenClassification, HybridGPTBERTForTokenClassification),
):
    _auto.register(HybridGPTBERTConfig, _cls, exist_ok=True)

__version__ = "0.1.0"
__all__ = [
    "HindiBERTModel",
    "HindiGPTModel",
    "HybridGPTBERTConfig",
    "HybridGPTBERTForCausalLM",
    "HybridGPTBERTForMaskedLM",
    "HybridGPTBERTForSequenceClassification",
    "HybridGPTBERTForTokenClassification",
    "HybridGPTBERTModel",
    "ModelFactory",
    "Preset",
    "PresetError",
    "available_presets",
    "build_model",
    "count_parameters",
    "evaluate_model",
    "load_preset",
    "make_model_config",
]
