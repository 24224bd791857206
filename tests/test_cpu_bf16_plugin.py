"""The course's ms-swift plugins: the cpu track's bf16 plugin (bf16 matrix products, LoRA updates still added in
fp32) and the compiled decoder layers of its long runs."""

import importlib
import importlib.util
import json

import pytest
import torch
from peft import LoraConfig, get_peft_model

from helpers import paths, tracks

PLUGIN = paths.COURSE_ROOT / tracks.CPU_BF16_PLUGIN


def _plugin(path=PLUGIN):
    """A plugin loaded by its path, as swift loads it."""
    spec = importlib.util.spec_from_file_location(f"ftlab_{path.stem}_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_lora(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64))
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["2"], lora_dropout=0.0))
    for name, p in model.named_parameters():
        if "lora_B" in name:  # a small learned update, as after a few steps
            torch.nn.init.normal_(p, std=1e-4)
    return model


def test_plugin_registers_its_callback_under_the_name_the_command_uses():
    from swift.callbacks import callbacks_map

    _plugin()
    assert tracks.cpu_speed_flags().get("callbacks", "ftlab_cpu_bf16") in callbacks_map


def test_lora_update_survives_bf16_autocast_only_with_the_plugin():
    x = torch.randn(8, 64) * 10  # the last layer's outputs are a few units; its LoRA update is far smaller

    def seen_update(model, autocast: bool) -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            with model.disable_adapter():
                without = model(x).float()
            return model(x).float() - without

    true_update = seen_update(_tiny_lora(), autocast=False)

    def error(hooked: bool) -> float:
        model = _tiny_lora()
        if hooked:
            assert _plugin().keep_lora_sums_in_fp32(model) == 1
        return float((seen_update(model, autocast=True) - true_update).abs().mean() / true_update.abs().mean())

    plain, with_plugin = error(False), error(True)
    assert plain > 0.5, plain  # a bf16 sum rounds most of the update away
    assert with_plugin < 0.05, with_plugin


def test_the_hook_is_importable_by_its_module_name_as_torch_compile_needs():
    import sys

    hook = _plugin()._lora_fp32._output_in_fp32
    assert importlib.import_module(hook.__module__) is sys.modules[hook.__module__]


def test_hooks_are_added_once():
    plugin = _plugin()
    model = _tiny_lora()
    plugin.keep_lora_sums_in_fp32(model)
    plugin.keep_lora_sums_in_fp32(model)
    base = model.base_model.model[2].base_layer
    assert len(base._forward_hooks) == 1


@pytest.mark.parametrize("native", [True, False])
def test_bf16_flags_only_where_the_cpu_has_native_bf16(monkeypatch, native):
    monkeypatch.setattr(tracks.environment, "cpu_bf16", lambda: (native, "test"))
    monkeypatch.setattr(tracks.environment, "gpu_info", lambda: None)
    flags = tracks.cpu_speed_flags()
    assert flags["gradient_checkpointing"] is False and flags["lora_dropout"] == 0.0
    assert ("external_plugins" in flags) == native == flags.get("bf16", False)
    if native:
        assert (paths.COURSE_ROOT / flags["external_plugins"]).is_file() and flags["attn_impl"] == "eager"


def _tiny_decoder():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(0)
    return get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.0))


def test_compile_plugin_compiles_each_decoder_layer_through_peft_and_turns_the_cache_off(capsys):
    from swift.callbacks import callbacks_map

    plugin = _plugin(paths.SWIFT_PLUGINS / "compile_layers.py")
    assert callbacks_map["ftlab_compile_layers"] is plugin.CompileLayersCallback
    model = _tiny_decoder()
    layers = plugin.decoder_layers(model)
    assert len(layers) == 3 and layers is model.base_model.model.model.layers
    assert all(layer._compiled_call_impl is None for layer in layers)
    plugin.CompileLayersCallback(None, None).on_train_begin(None, None, None, model=model)
    assert all(layer._compiled_call_impl is not None for layer in layers)  # compiled lazily, at the first call
    assert model.config.use_cache is False
    assert "3 decoder layers compiled" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no decoder layers found in Sequential"):
        plugin.decoder_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_the_long_runs_compile_their_layers_where_bf16_is_native_and_a_switch_turns_it_off(monkeypatch):
    """Issue 34: experiments 4-6 of the cpu track load the compile plugin where bf16 is native (AMX), after the
    bf16 plugin's callback; never in fp32 or on other tracks; FTLAB_COMPILE=0 / =1 turn it off / on anywhere."""
    monkeypatch.setattr(tracks.environment, "gpu_info", lambda: None)
    monkeypatch.delenv(tracks.COMPILE_ENV, raising=False)

    def compiled(track="cpu"):
        plan = tracks.experiments(track) + [tracks.calculator_experiment(track)]
        return [e.number for e in plan if tracks.COMPILE_PLUGIN in e.params.get("external_plugins", [])]

    monkeypatch.setattr(tracks.environment, "cpu_bf16", lambda: (True, "bf16: this CPU has AMX"))
    assert compiled() == [4, 5, 6] and compiled("ci") == [] and compiled("gpu") == []
    e4 = tracks.experiments("cpu")[3].params
    assert e4["external_plugins"] == [tracks.CPU_BF16_PLUGIN, tracks.COMPILE_PLUGIN]
    assert e4["callbacks"] == ["ftlab_cpu_bf16", "ftlab_compile_layers"]  # the fp32 hooks first, then compiled
    monkeypatch.setenv(tracks.COMPILE_ENV, "0")
    assert compiled() == [] and "FTLAB_COMPILE=0" in tracks.compile_layers()[1]
    monkeypatch.setenv(tracks.COMPILE_ENV, "1")
    monkeypatch.setattr(tracks.environment, "cpu_bf16", lambda: (False, "fp32"))
    assert compiled() == [4, 5, 6] and tracks.experiments("cpu")[3].params["external_plugins"] == [tracks.COMPILE_PLUGIN]
    monkeypatch.delenv(tracks.COMPILE_ENV)
    assert compiled() == [] and "did not pay" in tracks.compile_layers()[1]
    monkeypatch.setenv(tracks.COMPILE_ENV, "yes")
    with pytest.raises(ValueError, match="use 0"):
        tracks.compile_layers()


def test_a_run_with_compiled_layers_trains_through_swift_on_any_cpu(tmp_path, monkeypatch):
    """The code path the long runs take where bf16 is native, run for real here (in fp32 when the CPU has no AMX):
    swift loads the plugin, the callback compiles every decoder layer, the run trains and evaluates."""
    from helpers import models, training

    monkeypatch.setattr(paths, "OUTPUT_DIR", tmp_path / "output")
    p = tracks.with_compiled_layers({**tracks.experiments("ci")[3].params, "max_steps": 2})
    run = training.sft(models.get_model(), **p, label="compiled", show=False)
    assert run.status == "finished", run.error
    log = (run.run_dir / "swift.log").read_text(errors="replace")
    layers = json.loads((paths.embedded_model_dir() / "config.json").read_text())["num_hidden_layers"]
    assert f"[ftlab] compile_layers: {layers} decoder layers compiled" in log
    assert "--external_plugins" in run.command and tracks.COMPILE_PLUGIN in run.command
    assert run.curves().train and run.curves().evals
