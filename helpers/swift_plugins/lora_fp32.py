"""The heart of the cpu track's bf16 plugin, without ms-swift: hand each LoRA layer's frozen output over in fp32.

Under bf16 autocast every frozen linear layer returns bf16, and PEFT adds the LoRA update to that output and
casts the sum back to bf16: an update a thousand times smaller than the output is rounded away. The hook
returns the frozen layer's output in fp32, so PEFT's sum stays fp32 while the big product still runs in bf16.
Used by cpu_bf16.py (inside `swift sft`) and by helpers/pace.py (a measured step of the same kind).
"""

import torch


def _output_in_fp32(module, inputs, output):
    return output.float() if output.dtype == torch.bfloat16 else output


def keep_lora_sums_in_fp32(model) -> int:
    """Hook every LoRA-wrapped linear layer's frozen base layer; returns how many were hooked."""
    from peft.tuners.lora import LoraLayer

    hooked = 0
    for module in model.modules():
        base = getattr(module, "base_layer", None)
        if isinstance(module, LoraLayer) and isinstance(base, torch.nn.Linear):
            if not getattr(base, "_ftlab_fp32_out", False):
                base.register_forward_hook(_output_in_fp32)
                base._ftlab_fp32_out = True
            hooked += 1
    return hooked
