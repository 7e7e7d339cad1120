"""The generative (LLM) path, in process: base models, LoRA adapters, a batching generation
engine and LoRA fine-tuning. torch, transformers and PEFT are imported lazily, inside the
functions that need them (``pip install 'learnloop[llm]'``): importing this package does not
import them."""

from learnloop.families.causal_lm.bases import BaseModelRef, resolve_base
from learnloop.families.causal_lm.detokenize import IncrementalDetokenizer
from learnloop.families.causal_lm.engine import GenerationEngine
from learnloop.families.causal_lm.extras import require_llm_extra
from learnloop.families.causal_lm.runtime import (
    ADAPTER_FAMILY,
    ADAPTER_FORMAT,
    LoadedBase,
    attach_adapter,
    load_base,
    save_adapter,
)
from learnloop.families.causal_lm.serving import LocalGenerator
from learnloop.families.causal_lm.sft import SftOutcome, SftParams, fit_lora
from learnloop.families.generation import (
    FinishReason,
    GenerationHandle,
    GenerationRequest,
    GenerationResult,
)
from learnloop.families.lora import DEFAULT_BASE, KNOWN_BASES

__all__ = [
    "ADAPTER_FAMILY",
    "ADAPTER_FORMAT",
    "DEFAULT_BASE",
    "KNOWN_BASES",
    "BaseModelRef",
    "FinishReason",
    "GenerationEngine",
    "GenerationHandle",
    "GenerationRequest",
    "GenerationResult",
    "IncrementalDetokenizer",
    "LoadedBase",
    "LocalGenerator",
    "SftOutcome",
    "SftParams",
    "attach_adapter",
    "fit_lora",
    "load_base",
    "require_llm_extra",
    "resolve_base",
    "save_adapter",
]
