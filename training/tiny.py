"""Tiny local causal LMs: built in seconds on CPU, never downloaded (tests, `manage.py demo_experiment`).

A byte-level BPE tokenizer is trained with `tokenizers` on in-memory text and wrapped in
`PreTrainedTokenizerFast` with a ChatML chat template; the model is a 2-layer `Qwen2Config`
(hidden size 32) with random weights, saved with `save_pretrained`. The directory loads with
`AutoTokenizer.from_pretrained` / `AutoModelForCausalLM.from_pretrained` like any HF model dir.

    from training.tiny import build_tiny_model
    model_dir = build_tiny_model(tmp_path / "tiny")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] }}"
    "{% if not (loop.last and continue_final_message is defined and continue_final_message) %}"
    "{{ '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

DEFAULT_CORPUS = (
    "The quick brown fox jumps over the lazy dog. ",
    "Response A is better than response B because it is more helpful and honest. ",
    "Rank the responses from best to worst: A > B > C = D. Answer: A. Answer: B. ",
    "Persona: a 34-year-old teacher from Kenya who values clear, kind explanations. ",
    "user assistant system prompt ranking best worst helpful harmless honest 0123456789 ",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz .,:;!?()[]{}<>=+-*/'\"\n",
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the tiny model; defaults are the smallest that still exercises real code."""

    vocab_size: int = 512
    hidden_size: int = 32
    num_layers: int = 2
    num_heads: int = 2
    num_kv_heads: int = 1
    intermediate_size: int = 64
    max_position_embeddings: int = 2048
    seed: int = 0


def build_tiny_tokenizer(corpus: tuple[str, ...] = DEFAULT_CORPUS, vocab_size: int = 512) -> Any:
    """A byte-level BPE tokenizer (any text encodes) with ChatML special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(corpus) * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(target_dir: Path, spec: TinyModelSpec | None = None) -> Path:
    """Write a random-weight tiny Qwen2 model and its tokenizer into `target_dir`; return it."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    spec = spec or TinyModelSpec()
    tokenizer = build_tiny_tokenizer(vocab_size=spec.vocab_size)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position_embeddings,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target_dir)
    tokenizer.save_pretrained(target_dir)
    return target_dir
