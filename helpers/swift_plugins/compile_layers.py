"""ms-swift plugin: torch.compile each decoder layer (bench/bench_cpu_training.py measures it; the cpu track's
experiments 4-6 load it where bf16 is native, tracks.compile_layers()).

Loaded by `swift sft --external_plugins helpers/swift_plugins/compile_layers.py --callbacks ftlab_compile_layers`
(after the cpu_bf16 plugin's callback where bf16 is native, so the compiled layers include its fp32 hooks).
The decoder layers are identical modules: compiled in place (nn.Module.compile, dynamic shapes, since every
batch has its own width), one graph serves them all, where transformers' `--torch_compile` compiles the whole
model again for new shapes (12 steps took 549 s against the cpu track's 92 s, fp32, 2 cores, 2026-12-03).
What it can fuse is the small work between the big matrix products: norms, activations, the rotary embedding
and, in bf16, the casts. In fp32 the products are three quarters of a step (torch.profiler: mm + bmm 76 %), and
it did not pay: in one interleaved bench run (24 steps, each setting twice) 1.73× ms-swift's defaults against
the cpu track's 1.94×, 1.91× against 1.99× from step 2 on, identical losses (AMD EPYC, no native bf16). On a
2-core Xeon with AMX, where the products are fast and the rest of a step dominates, 4.09× the defaults from step 2
on against the cpu track's 2.04-2.25×, the first compile about 45 s (2026-12-03). The KV
cache is switched off for training (each layer's cache index would be a new graph). Needs a C++ compiler.
"""

import torch
from swift.callbacks import TrainerCallback, callbacks_map


def decoder_layers(model) -> torch.nn.ModuleList:
    """The model's stack of decoder layers: the largest ModuleList named `layers` (through PEFT's wrappers)."""
    stacks = [m for name, m in model.named_modules() if name.endswith("layers") and isinstance(m, torch.nn.ModuleList)]
    if not stacks:
        raise ValueError(f"no decoder layers found in {type(model).__name__}")
    return max(stacks, key=len)


class CompileLayersCallback(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        model.config.use_cache = False
        layers = decoder_layers(model)
        for layer in layers:
            layer.compile(dynamic=True)
        print(f"[ftlab] compile_layers: {len(layers)} decoder layers compiled with torch.compile", flush=True)


callbacks_map["ftlab_compile_layers"] = CompileLayersCallback
