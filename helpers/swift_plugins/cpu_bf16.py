"""ms-swift plugin: bf16 matrix products on a CPU with native bf16, without rounding away what LoRA learns.

Loaded by `swift sft --external_plugins helpers/swift_plugins/cpu_bf16.py --callbacks ftlab_cpu_bf16`
(the helpers add both flags on the cpu track when the processor has AMX / AVX512-BF16).

Under bf16 autocast every frozen linear layer returns bf16, and PEFT adds the LoRA update to that
output and casts the sum back to bf16. bf16 keeps 8 significant bits: a LoRA update a thousand times
smaller than the layer's output is rounded away in the forward pass, so the model cannot see what it
learns (measured: eval loss +6 % after 6 steps, the same in a plain PyTorch loop). The hook (lora_fp32.py
beside this file) hands the frozen layer's output over in fp32, so PEFT's sum (and the residual stream
after it) stays fp32 while the big matrix product itself still runs in bf16.
"""

import importlib.util
import sys
from pathlib import Path

from swift.callbacks import TrainerCallback, callbacks_map

# loaded by its path: swift loads this file by path too, and a torchrun rank does not have the course on sys.path
_spec = importlib.util.spec_from_file_location("ftlab_lora_fp32", Path(__file__).with_name("lora_fp32.py"))
_lora_fp32 = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _lora_fp32  # importable by its name: torch.compile looks a traced hook's module up there
_spec.loader.exec_module(_lora_fp32)
keep_lora_sums_in_fp32 = _lora_fp32.keep_lora_sums_in_fp32


class CpuBf16Callback(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        hooked = keep_lora_sums_in_fp32(model)
        print(f"[ftlab] cpu_bf16: {hooked} LoRA layers add their update in fp32", flush=True)


callbacks_map["ftlab_cpu_bf16"] = CpuBf16Callback
