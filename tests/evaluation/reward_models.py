"""Tiny local reward models for the evaluation tests (never downloaded): the tiny Qwen2 of
`training.tiny` as a sequence-classification model with one output, as the reward recipe saves one.

    build_tiny_reward_model(tmp_path / "rm")         # random weights
    build_exclaiming_reward_model(tmp_path / "rm")   # a reward whose answer is known (below)
"""
from __future__ import annotations

from pathlib import Path

MARK = "!"


def build_tiny_reward_model(target_dir: Path, seed: int = 0) -> Path:
    """A random-weight 2-layer Qwen2ForSequenceClassification (num_labels=1) with the tiny ChatML
    tokenizer, its pad token stored in the config as TRL's RewardTrainer stores it."""
    import torch
    from transformers import AutoModelForSequenceClassification, Qwen2Config

    from training.tiny import TinyModelSpec, build_tiny_tokenizer

    spec = TinyModelSpec(seed=seed)
    tokenizer = build_tiny_tokenizer(vocab_size=spec.vocab_size)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads, num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position_embeddings, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=None, num_labels=1,
    )
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target_dir)
    tokenizer.save_pretrained(target_dir)
    return target_dir


def build_exclaiming_reward_model(target_dir: Path) -> Path:
    """A reward model whose preference is known: its reward is 0 for a conversation without "!"
    and positive for one with "!" (the more of the conversation's tokens carry it, the higher).

    How: hidden dimension 0 is reserved for the mark (every token's embedding is 0 there, tokens
    containing "!" have 10); queries and keys are zeroed, so attention is uniform over the tokens
    so far; the first layer's value and output projections copy dimension 0 through attention,
    every other contribution to the residual stream is zeroed, and the score head reads dimension
    0 only. So the last token's dimension 0 is the (normalised) share of marked tokens."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = build_tiny_reward_model(target_dir)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    marked = [i for i in range(len(tokenizer)) if MARK in tokenizer.decode([i])]
    assert marked, "the tiny tokenizer has no token for the mark"
    with torch.no_grad():
        embed = model.model.embed_tokens.weight
        embed[:, 0] = 0.0
        embed[marked, 0] = 10.0
        for layer in model.model.layers:
            attn = layer.self_attn
            for proj in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, layer.mlp.down_proj):
                proj.weight.zero_()
                if proj.bias is not None:
                    proj.bias.zero_()
        first = model.model.layers[0].self_attn
        first.v_proj.weight[0, 0] = 1.0  # the shared key/value head's dimension 0 <- hidden dimension 0
        first.o_proj.weight[0, 0] = 1.0  # hidden dimension 0 <- head 0's dimension 0
        model.score.weight.zero_()
        model.score.weight[0, 0] = 1.0
    model.save_pretrained(path)
    return path
