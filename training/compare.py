"""The main job: one tokenizer, every architecture pretrained on the same data, evaluated, reported.

    hindi-lm compare                                   # bundled sample, tiny preset, minutes on 2 CPU cores
    hindi-lm compare --corpus shared --preset small --word-budget 5e6 --output-dir runs/small
    hindi-lm compare --corpus shared --preset mini --word-budget 25e6 hybrid=14.5e6   # the hybrid's own budget

Writes `<run-dir>/`: `tokenizer/`, one Hub-ready model folder per architecture (`gpt/`, `bert/`, `hybrid/`,
`gpt_bert/`), `checkpoints/` (Trainer state and logs; `<model>/compare_metrics.json` once a model is trained,
evaluated and fine-tuned), `compare_settings.json`, `results.json`, `report.md`, `loss_curves.png` and, when minimal
pairs were scored, `minimal_pairs.png`. `--resume` continues a stopped run: finished models are kept, the one in
progress continues from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import transformers

from hindi_models.architectures import architecture_names, get_architecture
from hindi_models.evaluation import evaluate_model, load_minimal_pairs
from hindi_models.files import atomic_directory, check_output_dir, read_json, write_json
from hindi_models.presets import Preset, load_preset
from hindi_models.tokenizer import load_tokenizer, train_tokenizer
from training import options
from training.callbacks import last_complete_checkpoint
from training.data import corpus_datasets, describe_corpus, load_corpus, shared_data_dir
from training.finetune import TASKS, finetune_suite
from training.pretrain import pretrain
from training.probe import probe_suite
from training.report import plot_loss_curves, plot_minimal_pairs, read_log, write_model_cards, write_report

PROMPTS = ["भारत एक", "आज सुबह", "मेरे गाँव में", "विज्ञान के अनुसार"]
SAMPLING = dict(do_sample=True, temperature=0.8, top_k=50, top_p=0.95, max_new_tokens=40)
DEFAULT_WORD_BUDGET = 1_000_000
FINETUNE_PROTOCOLS = ("quick", "full", "probe")  # `--finetune-protocol`


def generation_samples(model_dir: Path, prompts=PROMPTS, seed: int = 0) -> list[dict]:
    """Samples from a causal model (GPT, hybrid decoder) with the design's settings; the folder's tokenizer opens
    each prompt as a document (`[CLS] prompt`), as a user's plain `tokenizer(prompt)` call does."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=True).eval()
    rows = []
    for i, prompt in enumerate(prompts):
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        torch.manual_seed(seed + i)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=tokenizer.pad_token_id,
                             **SAMPLING)
        rows.append({"prompt": prompt, "text": tokenizer.decode(out[0, 1:], skip_special_tokens=True)})
    return rows


def minimal_pairs_subset(shared_data: str | None, max_pairs: int | None) -> tuple[list[dict] | None, str | None]:
    """The shared minimal pairs (when present), at most `max_pairs` taken evenly across phenomena."""
    path = shared_data_dir(shared_data) / "bhs_hindi_minimal_pairs" / "pairs.public.jsonl"
    if not path.is_file():
        return None, None
    pairs = load_minimal_pairs(path)
    if max_pairs and len(pairs) > max_pairs:
        by_phenomenon: dict[str, list[dict]] = {}
        for pair in pairs:
            by_phenomenon.setdefault(pair.get("phenomenon"), []).append(pair)
        per_group = max(1, max_pairs // len(by_phenomenon))
        pairs = [pair for group in by_phenomenon.values() for pair in group[:per_group]]
    return pairs, str(path)


def compare(
    run_dir: str | os.PathLike = "runs/compare",
    preset="tiny",
    corpus=None,
    word_budget: int = DEFAULT_WORD_BUDGET,
    model_types=None,
    word_budgets: dict[str, int] | None = None,
    seed: int = 42,
    shared_data: str | None = None,
    max_eval_texts: int = 200,
    max_pairs: int | None = 600,
    finetune_examples: int = 400,
    finetune_seeds=(0,),
    finetune_protocol: str = "quick",
    overwrite: bool = False,
    resume: bool = False,
    cards_dir: str | os.PathLike | None = None,
    encoder_position_embeddings: str | None = None,
    **pretrain_kwargs,
) -> dict:
    """Train one tokenizer, pretrain each architecture on the same words (or each on its own budget from
    `word_budgets`), evaluate all, write the report.

    Fine-tuning (POS, NER, two classification sets from the shared data): `finetune_protocol="quick"` uses at most
    `finetune_examples` examples per task and one epoch per seed, `"full"` the protocol of `training.finetune` (full
    splits, early stopping, learning-rate choice, floors), `"probe"` linear probes on the frozen states
    (`training.probe`, full splits, the same floors); `finetune_examples=0` skips it. Each model folder's card
    is re-rendered with the measured results at the end, and also written to `cards_dir/<model>.md` when given.
    `resume=True` continues a stopped run with the same settings: models already finished are kept, the one in
    progress continues from its newest checkpoint. `word_budgets` ({model: words}) overrides `word_budget` for the
    models it names, e.g. to give each model the same training time rather than the same words.
    """
    started = time.time()
    model_types = list(model_types or architecture_names())
    budgets = model_word_budgets(model_types, word_budget, word_budgets)
    if overwrite and resume:
        raise ValueError("--overwrite and --resume exclude each other")
    if finetune_protocol not in FINETUNE_PROTOCOLS:
        raise ValueError(f"--finetune-protocol must be one of {', '.join(FINETUNE_PROTOCOLS)}, got "
                         f"{finetune_protocol!r}")
    run_dir = Path(run_dir)
    check_output_dir(run_dir, overwrite, resume=resume)
    preset_obj = preset if isinstance(preset, Preset) else load_preset(preset)
    preset_obj = preset_obj.with_overrides(encoder_position_embeddings=encoder_position_embeddings)
    record_settings(run_dir, resume, preset=preset_obj.to_dict(), corpus=describe_corpus(corpus),
                    word_budget=word_budget, word_budgets={m: budgets[m] for m in word_budgets or {}} or None,
                    models=model_types, seed=seed, max_eval_texts=max_eval_texts, max_pairs=max_pairs,
                    finetune_examples=finetune_examples, finetune_seeds=list(finetune_seeds),
                    finetune_protocol=finetune_protocol,
                    # the allocator decides where tensors live, not results: a run may resume with another
                    pretrain={k: v for k, v in pretrain_kwargs.items() if k != "allocator"})
    splits = load_corpus(corpus, validation_fraction=0.05 if corpus is None else 0.01)
    if resume and (run_dir / "tokenizer" / "fertility.json").is_file():  # written last: the folder is complete
        tokenizer = load_tokenizer(run_dir / "tokenizer")
        tokenizer.fertility = read_json(run_dir / "tokenizer" / "fertility.json")
    else:
        with atomic_directory(run_dir / "tokenizer") as tmp:
            tokenizer = train_tokenizer(splits["train"]["text"], vocab_size=preset_obj.vocab_size, output_dir=tmp,
                                        held_out=splits["validation"]["text"])
    texts = splits["validation"]["text"][:max_eval_texts]
    pairs, pairs_file = minimal_pairs_subset(shared_data, max_pairs)
    finetuning = dict(shared_data=shared_data, seeds=finetune_seeds, protocol=finetune_protocol,
                      examples=finetune_examples if finetune_protocol == "quick" else None) \
        if finetune_examples and pairs_file else None  # the fine-tuning sets live beside the minimal pairs

    models, logs = {}, {}
    for model_type in model_types:
        models[model_type] = train_and_evaluate(model_type, run_dir, preset_obj, corpus, budgets[model_type], seed,
                                                texts, pairs, finetuning, pretrain_kwargs, resume)
        logs[model_type] = read_log(run_dir / "checkpoints" / model_type / "log.jsonl")

    results = {
        "run": {
            "preset": preset_obj.name,
            "encoder_position_embeddings": preset_obj.encoder_position_embeddings,
            "corpus": describe_corpus(corpus),
            "datasets": corpus_datasets(corpus),
            "word_budget": word_budget,
            **({"word_budgets": budgets} if word_budgets else {}),
            "seed": seed,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores"
            + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
            "sampling": ", ".join(f"{k} {v}" for k, v in SAMPLING.items()),
            "eval_texts": len(texts),
            "minimal_pairs_file": pairs_file,
            "minimal_pairs_scored": len(pairs) if pairs else 0,
            "finetune": {"protocol": finetune_protocol, "seeds": list(finetune_seeds),
                         **({"max_examples": finetune_examples, "epochs": 1.0}
                            if finetune_protocol == "quick" else {})},
        },
        "tokenizer": {"vocab_size": len(tokenizer), "fertility": tokenizer.fertility},
        "models": models,
    }
    figures = write_figures(models, logs, run_dir)
    results["run"]["wall_seconds"] = round(time.time() - started, 1)
    write_json(run_dir / "results.json", results)
    report = write_report(results, run_dir, figures)
    write_model_cards(results, run_dir, cards_dir)
    print(f"\nReport: {report}\nResults: {run_dir / 'results.json'} ({results['run']['wall_seconds']:.0f} s)")
    return results


def model_word_budgets(model_types: list[str], word_budget: int, word_budgets: dict[str, int] | None) -> dict[str, int]:
    """Each compared model's word budget: `word_budgets[model]` where given, else `word_budget`; refuses a budget
    that is not positive or names a model that is not compared."""
    word_budgets = word_budgets or {}
    if int(word_budget) <= 0:
        raise ValueError(f"--word-budget must be positive, got {word_budget:g}")
    for name, words in word_budgets.items():
        if name not in model_types:
            raise ValueError(f"--word-budget {name}={words:g}: {name!r} is not among the compared models "
                             f"({', '.join(model_types)})")
        if int(words) <= 0:
            raise ValueError(f"--word-budget {name}={words:g}: must be positive")
    return {name: int(word_budgets.get(name, word_budget)) for name in model_types}


def parse_word_budgets(values: list[str]) -> tuple[int, dict[str, float]]:
    """`--word-budget 25e6 hybrid=14.5e6` → (25_000_000, {"hybrid": 14_500_000}): at most one budget for every
    model, then `model=words` for the models that train on another number of words (checked by
    `model_word_budgets`)."""
    default, per_model = DEFAULT_WORD_BUDGET, {}
    if sum("=" not in value for value in values) > 1:
        raise ValueError(f"--word-budget takes one budget for every model and model=words pairs, got "
                         f"{' '.join(values)}")
    for value in values:
        name, _, number = value.rpartition("=")
        try:
            words = int(float(number)) if "=" not in value else float(number)
        except (ValueError, OverflowError):  # "lots", "nan", "inf"
            raise ValueError(f"--word-budget {value}: {number!r} is not a number of words") from None
        if "=" not in value:
            default = words
        elif name not in architecture_names():
            raise ValueError(f"--word-budget {value}: {name!r} is not an architecture "
                             f"({', '.join(architecture_names())})")
        elif name in per_model:
            raise ValueError(f"--word-budget {value}: {name} is given two budgets")
        else:
            per_model[name] = words
    return default, per_model


def record_settings(run_dir: Path, resume: bool, **settings) -> None:
    """Write what decides a compare run's results to `compare_settings.json`; on resume, refuse settings that
    differ from the stopped run's, naming the first that differs."""
    settings = json.loads(json.dumps(settings, default=str))  # Paths and tuples as the file will hold them
    path = run_dir / "compare_settings.json"
    if not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(path, settings)
        return
    if not path.is_file():
        raise FileNotFoundError(f"{path}: --resume given but this folder holds no compare run to resume")
    saved = read_json(path)
    for key in sorted(set(saved) | set(settings)):
        if saved.get(key) != settings.get(key):
            raise ValueError(f"{path}: {key} was {saved.get(key)!r}, now {settings.get(key)!r}; --resume needs the "
                             f"stopped run's settings")


def train_and_evaluate(model_type: str, run_dir: Path, preset: Preset, corpus, word_budget: int, seed: int,
                       texts, pairs, finetuning: dict | None, pretrain_kwargs: dict, resume: bool = False) -> dict:
    """Pretrain one architecture into `run_dir/<model_type>`, evaluate it, sample from it (causal side) and
    fine-tune it (when `finetuning` is given); returns its metrics, also written to
    `checkpoints/<model_type>/compare_metrics.json`. With `resume`, a finished model is read back from there and a
    pretraining in progress continues from its newest checkpoint."""
    checkpoint_dir = run_dir / "checkpoints" / model_type
    done = checkpoint_dir / "compare_metrics.json"
    if resume and done.is_file():
        print(f"\n=== {model_type}: finished before the stop, kept ===")
        return read_json(done)
    if resume and (checkpoint_dir / "metrics.json").is_file():  # written after the model folder is saved
        print(f"\n=== {model_type}: pretrained before the stop, kept ===")
        metrics = read_json(checkpoint_dir / "metrics.json")
    else:
        continues = resume and checkpoint_dir.is_dir() and last_complete_checkpoint(checkpoint_dir) is not None
        print(f"\n=== {model_type}: pretraining on {word_budget:,} words"
              f"{' (continued from its last checkpoint)' if continues else ''} ===")
        metrics = pretrain(model_type=model_type, preset=preset, corpus=corpus, output_dir=run_dir / model_type,
                           checkpoint_dir=checkpoint_dir, tokenizer_path=run_dir / "tokenizer",
                           word_budget=word_budget, seed=seed, overwrite=not continues, resume=continues,
                           **pretrain_kwargs)
    print(f"=== {model_type}: evaluating ===")
    metrics["evaluation"] = evaluate_model(run_dir / model_type, eval_texts=texts, minimal_pairs=pairs,
                                           trust_remote_code=True)["sections"]
    if get_architecture(model_type).generates:
        metrics["samples"] = generation_samples(run_dir / model_type)
    if finetuning:
        print(f"=== {model_type}: fine-tuning ===")
        if finetuning["protocol"] == "probe":
            summary = probe_suite(run_dir / model_type, finetuning["shared_data"], tasks=tuple(TASKS),
                                  seed=finetuning["seeds"][0])
        else:
            summary = finetune_suite(run_dir / model_type, finetuning["shared_data"], tasks=tuple(TASKS),
                                     seeds=finetuning["seeds"], quick=finetuning["protocol"] == "quick",
                                     max_train_examples=finetuning["examples"],
                                     max_eval_examples=finetuning["examples"])
        metrics["finetune"] = summary["tasks"]
    write_json(done, metrics)
    return metrics


def write_figures(models: dict, logs: dict, run_dir: Path) -> dict[str, str]:
    """Loss curves (every model) and minimal pairs per phenomenon (every scored section); their file names."""
    objectives = {name: m.get("objective", name) for name, m in models.items()}
    figures = {"loss_curves": plot_loss_curves(logs, run_dir / "loss_curves.png", objectives).name}
    per_phenomenon = {
        f"{name} ({section})": {p: v["accuracy"] for p, v in ev["minimal_pairs"]["per_phenomenon"].items()}
        for name, m in models.items() for section, ev in m["evaluation"].items() if ev.get("minimal_pairs")
    }
    if per_phenomenon:
        figures["minimal_pairs"] = plot_minimal_pairs(per_phenomenon, run_dir / "minimal_pairs.png").name
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `hindi-lm compare` options."""
    # `--run-dir` was this option's first name; kept so existing commands still run.
    parser.add_argument("--output-dir", "--run-dir", dest="run_dir", type=Path, default=Path("runs/compare"),
                        help="run folder: tokenizer, one folder per model, results.json, report.md")
    options.add_preset_argument(parser)
    options.add_corpus_argument(parser)
    parser.add_argument("--word-budget", nargs="+", default=[str(DEFAULT_WORD_BUDGET)], metavar="WORDS|MODEL=WORDS",
                        help="words each model trains on (the corpus repeats if shorter); MODEL=WORDS sets one "
                             "model's own budget, e.g. `25e6 hybrid=14.5e6` for about equal training time")
    parser.add_argument("--models", nargs="+", choices=architecture_names(), default=list(architecture_names()),
                        help="architectures to compare")
    options.add_seed_argument(parser)
    options.add_position_argument(parser)
    options.add_mlm_probability_argument(parser)
    options.add_causal_fraction_argument(parser)
    options.add_shared_data_argument(parser)
    parser.add_argument("--max-eval-texts", type=int, default=200, help="validation lines scored for bits/char")
    parser.add_argument("--max-pairs", type=int, default=600, help="minimal pairs scored per model (0 = all)")
    parser.add_argument("--finetune-examples", type=int, default=400,
                        help="training/eval examples per fine-tuning task with the quick protocol (0 = skip "
                             "fine-tuning)")
    parser.add_argument("--finetune-seeds", type=int, nargs="+", default=[0], help="one fine-tuning run per seed")
    parser.add_argument("--finetune-protocol", choices=FINETUNE_PROTOCOLS, default="quick",
                        help="quick: one epoch on --finetune-examples; full: `hindi-lm finetune`'s protocol (full "
                             "splits, early stopping on dev, learning rate chosen on dev, majority and from-scratch "
                             "floors); probe: `hindi-lm finetune --linear-probe` (frozen states, full splits, the "
                             "same floors, minutes per model)")
    options.add_precision_argument(parser)
    options.add_allocator_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue a stopped run in --output-dir with the same settings: finished models are "
                             "kept, the one in progress continues from its last checkpoint")
    parser.add_argument("--cards-dir", type=Path, default=None,
                        help="also write each model's card here as <model>.md, e.g. model_cards/reference_mini "
                             "(default: only in the model folders)")


def run(args: argparse.Namespace) -> int:
    """Run `hindi-lm compare` from parsed arguments."""
    word_budget, word_budgets = parse_word_budgets(args.word_budget)
    compare(run_dir=args.run_dir, preset=args.preset, corpus=options.single(args.corpus),
            word_budget=word_budget, word_budgets=word_budgets,
            model_types=args.models, seed=args.seed, shared_data=args.shared_data,
            max_eval_texts=args.max_eval_texts, max_pairs=args.max_pairs or None, overwrite=args.overwrite,
            resume=args.resume,
            finetune_examples=args.finetune_examples, finetune_seeds=tuple(args.finetune_seeds),
            finetune_protocol=args.finetune_protocol, precision=args.precision, cards_dir=args.cards_dir,
            encoder_position_embeddings=args.encoder_position_embeddings,
            mlm_probability=args.mlm_probability, causal_fraction=args.causal_fraction, allocator=args.allocator)
    return 0
