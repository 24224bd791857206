"""Shapes of the two decoders in this course and how many numbers LoRA trains in them: the one place the
count is done (notebook 02, the disk estimate before a run, the GPU-memory estimate of the lesson run)."""

from __future__ import annotations

from dataclasses import dataclass


def full_params(d_in: int, d_out: int) -> int:
    """Trainable numbers in a d_in -> d_out weight matrix (no bias)."""
    return d_in * d_out


def lora_params(d_in: int, d_out: int, r: int) -> int:
    """LoRA adds A (r x d_in) and B (d_out x r): r * (d_in + d_out) trainable numbers."""
    return r * (d_in + d_out)


def saving_percent(full: int, lora: int) -> float:
    return 100 * (1 - lora / full)


@dataclass(frozen=True)
class DecoderShape:
    """The shapes that decide how many LoRA parameters a Llama/Qwen-style decoder gets."""

    name: str
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    params: float = 0.0  # all parameters (embeddings included)
    vocab: int = 0

    @classmethod
    def of_config(cls, cfg: dict, name: str = "") -> DecoderShape:
        """From a Hugging Face config.json."""
        return cls(name, cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"],
                   cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
                   vocab=cfg.get("vocab_size", 0))

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def linear_layers(self) -> dict[str, tuple[int, int]]:
        """(d_in, d_out) of every linear layer in one decoder block (what 'all-linear' targets)."""
        h, kv, i = self.hidden, self.kv_heads * self.head_dim, self.intermediate
        return {
            "q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
            "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h),
        }

    def lora_params(self, r: int = 8) -> int:
        per_block = sum(lora_params(d_in, d_out, r) for d_in, d_out in self.linear_layers().values())
        return per_block * self.layers

    def linear_params(self) -> int:
        """Numbers inside those linear layers (what full fine-tuning of them would train)."""
        return self.layers * sum(full_params(a, b) for a, b in self.linear_layers().values())


QWEN25_1_5B = DecoderShape("Qwen2.5-1.5B", hidden=1536, layers=28, intermediate=8960, heads=12, kv_heads=2,
                           params=1.54e9, vocab=151936)
SMOLLM2_135M = DecoderShape("SmolLM2-135M", hidden=576, layers=30, intermediate=1536, heads=9, kv_heads=3,
                            params=1.345e8, vocab=49152)
