"""A tiny Llama causal LM and byte-level BPE tokenizer with a chat template, built locally in
about a second (no weights, nothing downloaded): the base the LLM tests serve and adapt.

Importable by any test: ``build_tiny_llama(directory)`` writes a Hugging Face model directory
(``config.json``, ``model.safetensors``, tokenizer files) and returns it.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

CORPUS = [
    "The capital of France is Paris.",
    "The quick brown fox jumps over the lazy dog.",
    "What is the weather like today? It is sunny and warm.",
    "Thank you for your feedback, we will improve the answer.",
    "Les élèves étudient à la bibliothèque, déjà très tôt.",
    "日本語のテキストも少し含めます。",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000.",
    "<|user|>hello<|assistant|>Hi! How can I help you?",
]


def build_tiny_tokenizer(directory: Path, *, vocab_size: int = 512) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer=trainer)
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", padding_side="left"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)


def build_tiny_llama(directory: Path, *, seed: int = 0, layers: int = 2) -> Path:
    """A randomly initialised LlamaForCausalLM (vocab 512, hidden 128, ``layers`` layers) and
    its tokenizer saved in ``directory``. The weights are drawn wider than usual so that the
    logits are well apart (greedy decoding does not sit on near-ties)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    build_tiny_tokenizer(directory)
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        initializer_range=0.1,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model.save_pretrained(directory)
    return directory
