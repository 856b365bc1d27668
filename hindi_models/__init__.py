"""hindi-models: small Hindi GPT-2, BERT, GPT+BERT hybrid and GPT-BERT language models, Hugging Face Hub-native.

Importing the package registers the remote-code architectures (the hybrid, GPT-BERT) with the transformers Auto
classes in this process, so their saved folders load without `trust_remote_code`; elsewhere the `.py` files saved
next to the weights serve as remote code. The architectures themselves are listed in `hindi_models.architectures`.
"""

from .architectures import ARCHITECTURES, Architecture, get_architecture, register_auto_classes
from .configuration_gpt_bert import GPTBERTConfig
from .configuration_hybrid import HybridGPTBERTConfig
from .evaluation import evaluate_model
from .factory import ModelFactory
from .modeling_gpt_bert import (
    GPTBERTForCausalLM,
    GPTBERTForMaskedLM,
    GPTBERTForPreTraining,
    GPTBERTForSequenceClassification,
    GPTBERTForTokenClassification,
    GPTBERTModel,
)
from .modeling_hybrid import (
    HybridGPTBERTForCausalLM,
    HybridGPTBERTForMaskedLM,
    HybridGPTBERTForPreTraining,
    HybridGPTBERTForSequenceClassification,
    HybridGPTBERTForTokenClassification,
    HybridGPTBERTModel,
)
from .models import build_model, count_parameters, make_model_config
from .presets import Preset, PresetError, TrainingHyperparameters, available_presets, load_preset

register_auto_classes()

__version__ = "0.1.0"
__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "GPTBERTConfig",
    "GPTBERTForCausalLM",
    "GPTBERTForMaskedLM",
    "GPTBERTForPreTraining",
    "GPTBERTForSequenceClassification",
    "GPTBERTForTokenClassification",
    "GPTBERTModel",
    "HybridGPTBERTConfig",
    "HybridGPTBERTForCausalLM",
    "HybridGPTBERTForMaskedLM",
    "HybridGPTBERTForPreTraining",
    "HybridGPTBERTForSequenceClassification",
    "HybridGPTBERTForTokenClassification",
    "HybridGPTBERTModel",
    "ModelFactory",
    "Preset",
    "PresetError",
    "TrainingHyperparameters",
    "available_presets",
    "build_model",
    "count_parameters",
    "evaluate_model",
    "get_architecture",
    "load_preset",
    "make_model_config",
]
