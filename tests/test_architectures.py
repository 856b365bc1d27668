"""The architecture registry: the remote-code files agree with it, every consumer reads it, a fourth architecture
is one entry, folders saved before the registry still load, and `training/` has no import circle."""

import ast
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, LlamaConfig, LlamaForCausalLM

import hindi_models  # noqa: F401  (registers the hybrid with the Auto classes)
from hindi_models import architectures, configuration_hybrid, modeling_hybrid
from hindi_models.architectures import ARCHITECTURES, Architecture, Variant, architecture_of
from hindi_models.evaluation import detect_kinds, evaluate_model
from hindi_models.models import build_model
from hindi_models.presets import load_preset
from test_pretrain import FAST, fast_preset, tokenizer_dir  # noqa: F401 (tokenizer_dir is a fixture)
from training.cli import build_parser
from training.pretrain import pretrain

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
LEGACY = sorted(FIXTURES.glob("hybrid_*_88984f5"))


def tiny_preset(model_type, positions):
    return load_preset("tiny", model_type=model_type, encoder_position_embeddings=positions, hidden_size=32,
                       intermediate_size=64, vocab_size=400)


def test_remote_code_auto_map_equals_the_registry():
    hybrid = ARCHITECTURES["hybrid"]
    from_registry = {"AutoConfig": f"configuration_hybrid.{hybrid.config_class.__name__}",
                     **{auto: f"modeling_hybrid.{cls.__name__}" for auto, cls in hybrid.auto_classes.items()}}
    assert configuration_hybrid.AUTO_MAP == from_registry
    assert set(from_registry) >= {"AutoModel", "AutoModelForPreTraining", "AutoModelForCausalLM",
                                  "AutoModelForMaskedLM", "AutoModelForSequenceClassification",
                                  "AutoModelForTokenClassification"}
    # what modeling_hybrid registers for `save_pretrained` (one Auto class per model class) is in the same map
    for cls in set(hybrid.auto_classes.values()):
        assert from_registry[cls._auto_class] == f"modeling_hybrid.{cls.__name__}"


def test_only_remote_code_architectures_ship_their_code():
    assert {name for name, arch in ARCHITECTURES.items() if arch.remote_code} == {"hybrid", "gpt_bert"}
    assert [name for name, arch in ARCHITECTURES.items() if arch.generates] == ["gpt", "hybrid", "gpt_bert"]


@pytest.mark.parametrize("positions", ["absolute", "rotary"])
@pytest.mark.parametrize("name", ["gpt", "bert", "hybrid", "gpt_bert"])
def test_every_consumer_reads_the_registry(name, positions, tmp_path, tokenizer):
    arch = ARCHITECTURES[name]
    variant = arch.variant(positions)
    model = build_model(tiny_preset(name, positions), vocab_size=len(tokenizer))
    assert type(model) is variant.model_class
    # FSDP units: named by the registry, present in the model, and what the hybrid's own post_init chooses
    assert model._no_split_modules == set(variant.layer_classes)
    assert set(variant.layer_classes) <= {type(m).__name__ for m in model.modules()}
    if name == "hybrid":
        assert type(model)(model.config)._no_split_modules == set(variant.layer_classes)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == variant.model_type
    assert architecture_of(config) == (arch, variant)
    assert detect_kinds(config) == dict(arch.sections)


def test_objective_text_comes_from_the_values_used():
    assert ARCHITECTURES["bert"].describe_objective(0.3, 0.5, 0.5) == "masked LM (30%, 80/10/10)"
    assert ARCHITECTURES["hybrid"].describe_objective(0.15, 0.7, 0.3) == "0.7·MLM + 0.3·CLM"
    assert ARCHITECTURES["gpt"].describe_objective(0.15, 0.5, 0.5) == "causal LM"


def test_mlm_probability_flag_reaches_collator_metrics_and_report(tmp_path, tokenizer_dir):
    args = build_parser().parse_args(["pretrain", "--model-type", "bert", "--output-dir", "x",
                                      "--mlm-probability", "0.3"])
    assert args.mlm_probability == 0.3
    metrics = pretrain(model_type="bert", preset=fast_preset(), output_dir=tmp_path / "bert",
                       tokenizer_path=tokenizer_dir, max_steps=2, mlm_probability=0.3, **FAST)
    assert metrics["hyperparameters"]["mlm_probability"] == 0.3
    assert metrics["objective"] == "masked LM (30%, 80/10/10)"


def llama_entry() -> Architecture:
    """A stock Llama as a fourth architecture: nothing but a registry entry."""
    return Architecture(
        name="llama", title="Llama style (causal LM)", objective="causal LM", collator="causal",
        sections={"causal": "causal"},
        config=lambda shape: LlamaConfig(
            vocab_size=shape.vocab_size, hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
            num_hidden_layers=shape.num_hidden_layers, num_attention_heads=shape.num_attention_heads,
            max_position_embeddings=shape.max_position_embeddings, pad_token_id=shape.pad_token_id,
            bos_token_id=shape.bos_token_id, eos_token_id=shape.eos_token_id),
        variants=architectures._every_position(Variant("llama", LlamaForCausalLM, ("LlamaDecoderLayer",),
                                                       "Llama style causal LM", "A Llama style causal LM")),
        loader="AutoModelForCausalLM", pipeline_tag="text-generation", usage="pipeline('text-generation', '{repo}')",
        tokenizer_template="causal",
    )


def test_a_fourth_architecture_is_one_registry_entry(monkeypatch, tmp_path, tokenizer_dir):
    monkeypatch.setitem(ARCHITECTURES, "llama", llama_entry())
    assert "llama" in build_parser().parse_args(["pretrain", "--model-type", "llama", "--output-dir", "x"]).model_type
    metrics = pretrain(model_type="llama", preset=fast_preset(), output_dir=tmp_path / "llama",
                       tokenizer_path=tokenizer_dir, max_steps=3, **FAST)
    assert metrics["objective"] == "causal LM" and "validation_clm_loss" in metrics
    assert "Llama style causal LM" in (tmp_path / "llama" / "README.md").read_text()
    assert hindi_models.ModelFactory("tiny").load_model(tmp_path / "llama").__class__ is LlamaForCausalLM
    sections = evaluate_model(tmp_path / "llama", eval_texts=["भारत एक देश है"], progress=False)["sections"]
    assert list(sections) == ["causal"] and sections["causal"]["language_model"]["bits_per_char"] > 0


# ------------------------------------------------------------------------------ folders saved before the registry


def expected_logits(folder):
    data = json.loads((folder / "expected_logits.json").read_text())
    return torch.tensor([data["input_ids"]]), torch.tensor(data["clm_logits_0_5"]), torch.tensor(data["mlm_logits_0_5"])


@pytest.mark.parametrize("folder", LEGACY, ids=lambda p: p.name)
def test_folders_saved_before_the_registry_load_in_process(folder):
    ids, clm, mlm = expected_logits(folder)
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["HybridGPTBERTModel"]
    with torch.no_grad():
        whole = AutoModel.from_pretrained(folder).eval()  # the package's classes, no remote code
        out = whole(ids, task="both")
        decoder = AutoModelForCausalLM.from_pretrained(folder).eval()
        encoder = AutoModelForMaskedLM.from_pretrained(folder).eval()
        # The expected logits were recorded on another CPU (AVX-512); its kernels differ in the last float bits.
        for logits, expected in ((out.clm_logits, clm), (out.mlm_logits, mlm), (decoder(ids).logits, clm),
                                 (encoder(ids).logits, mlm)):
            torch.testing.assert_close(logits[0, :, :5], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("folder", LEGACY, ids=lambda p: p.name)
def test_old_folders_load_with_the_new_remote_code(folder, tmp_path):
    """A Hub repo saved before the rename gets today's code pushed next to its old config.json: every class name
    its auto_map names must still resolve, in a process without hindi_models."""
    repo = tmp_path / folder.name
    shutil.copytree(folder, repo)
    for name in ("configuration_hybrid.py", "modeling_hybrid.py", "losses.py"):
        shutil.copy(REPO_ROOT / "hindi_models" / name, repo / name)
    script = textwrap.dedent(f"""
        import json, sys, torch
        sys.modules["hindi_models"] = None  # the package must not be needed
        from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM
        repo = {str(repo)!r}
        data = json.load(open(repo + "/expected_logits.json"))
        ids = torch.tensor([data["input_ids"]])
        with torch.no_grad():
            out = AutoModel.from_pretrained(repo, trust_remote_code=True).eval()(ids, task="both")
            dec = AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True).eval()(ids).logits
            enc = AutoModelForMaskedLM.from_pretrained(repo, trust_remote_code=True).eval()(ids).logits
        assert type(AutoModel.from_pretrained(repo, trust_remote_code=True)).__name__ == "HybridGPTBERTForPreTraining"
        for logits, key in ((out.clm_logits, "clm"), (out.mlm_logits, "mlm"), (dec, "clm"), (enc, "mlm")):
            # recorded on another CPU: equal to float noise (1e-5), not bitwise
            torch.testing.assert_close(logits[0, :, :5], torch.tensor(data[key + "_logits_0_5"]), rtol=0, atol=1e-5)
        print("ok")
    """)
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


# ------------------------------------------------------------------------------ import structure


def local_imports(package: str) -> dict[str, set[str]]:
    """{module: modules of the same package it imports}, from the source (absolute and relative imports)."""
    graph = {}
    for path in (REPO_ROOT / package).glob("*.py"):
        module, found = path.stem, set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 or node.module == package:
                    names = [node.module] if node.module and node.level else [a.name for a in node.names]
                    found |= {n.split(".")[0] for n in names if n}
                elif node.module and node.module.startswith(package + "."):
                    found.add(node.module.split(".")[1])
        graph[module] = found & {p.stem for p in (REPO_ROOT / package).glob("*.py")}
    return graph


@pytest.mark.parametrize("package", ["hindi_models", "training"])
def test_no_import_circle(package):
    graph = local_imports(package)
    state = {}

    def visit(module, path):
        if state.get(module) == "open":
            raise AssertionError(f"import circle in {package}: {' -> '.join(path + [module])}")
        if state.get(module) is None:
            state[module] = "open"
            for imported in sorted(graph.get(module, ())):
                visit(imported, path + [module])
            state[module] = "done"

    for module in sorted(graph):
        visit(module, [])
    assert not any("cli" in deps for deps in graph.values()), "nothing imports the CLI entry point"


def test_remote_code_files_import_only_each_other():
    graph = local_imports("hindi_models")
    assert graph["modeling_hybrid"] == {"configuration_hybrid", "losses"} and graph["configuration_hybrid"] == set()
    assert graph["modeling_gpt_bert"] == {"configuration_gpt_bert", "losses"}
    assert graph["configuration_gpt_bert"] == set() and graph["losses"] == set()
