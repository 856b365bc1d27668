"""The comparison report: Markdown with the "Architecture Comparison" table, and PNG figures."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hindi_models.cards import render_model_card
from hindi_models.files import write_text_atomic

# ../shared/BASELINES.md, minimal pairs as written (ties wrong), for comparison beside our models.
REFERENCE_PAIRS = {
    "word unigram (BASELINES)": {"all": 58.5, "S_O_V": 43.6, "S_PossPRN_O_V": 42.4, "S_PossPRN_PossN_O_V": 44.0,
                                 "S_ne_O_V": 70.8, "S_ne_PossPRN_O_V": 72.8, "S_ne_PossPRN_PossN_O_V": 77.6},
    "stock GPT-2 mini (BASELINES)": {"all": 73.8, "S_O_V": 71.6, "S_PossPRN_O_V": 69.8, "S_PossPRN_PossN_O_V": 71.4,
                                     "S_ne_O_V": 75.8, "S_ne_PossPRN_O_V": 75.6, "S_ne_PossPRN_PossN_O_V": 78.4},
}
# The fine-tuning protocol's table (task, metric, out-of-domain test or None, title): the issue's target metrics.
PROTOCOL_COLUMNS = (("pos", "accuracy", None, "POS acc"), ("pos", "accuracy", "pud", "PUD POS acc (out of domain)"),
                    ("ner", "f1", None, "NER F1"), ("bbc_topic", "macro_f1", None, "BBC macro-F1"),
                    ("iitp_sentiment", "macro_f1", None, "IITP macro-F1"))
# The comparison table's fine-tuning columns (task, metric, title): the same main metrics, in-domain only, so that
# table ranks on what early stopping, the learning-rate choice and the targets use (BBC's majority class is 40.6%).
FINETUNE_COLUMNS = tuple((task, metric, title) for task, metric, domain, title in PROTOCOL_COLUMNS if domain is None)


def save_figure(fig, path: str | Path) -> None:
    """Save a matplotlib figure as PNG through a temporary sibling (a killed run leaves no half image)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def read_log(path: str | Path) -> list[dict]:
    """The records of a `log.jsonl` written during pretraining (missing file → empty list)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_loss_curves(logs: dict[str, list[dict]], path: str | Path, objectives: dict[str, str] | None = None) -> Path:
    """Training and validation loss of every model against words seen, on one plot; `objectives` (the loss each
    model minimises, e.g. "0.5·MLM + 0.5·CLM") label the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
    for (name, records), color in zip(logs.items(), colors):
        label = f"{name}: {objectives[name]}" if objectives and objectives.get(name) else name
        train = [(r["words_seen"], r["loss"]) for r in records if "loss" in r]
        val = [(r["words_seen"], r["eval_loss"]) for r in records if "eval_loss" in r]
        if train:
            ax.plot(*zip(*train), color=color, alpha=0.45, linewidth=1, label=f"{label}, train")
        if val:
            ax.plot(*zip(*val), color=color, marker="o", markersize=3, linewidth=1.8, label=f"{label}, validation")
    ax.set_xlabel("words seen")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("Pretraining loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    save_figure(fig, path)
    return Path(path)


def plot_minimal_pairs(per_phenomenon: dict[str, dict[str, float]], path: str | Path) -> Path:
    """Grouped bars: minimal-pair accuracy per phenomenon, one bar per model (and baseline)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    phenomena = sorted({p for scores in per_phenomenon.values() for p in scores})
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(phenomena)), 4.2), dpi=120)
    width = 0.8 / max(1, len(per_phenomenon))
    for i, (name, scores) in enumerate(per_phenomenon.items()):
        xs = np.arange(len(phenomena)) + i * width
        ax.bar(xs, [100 * scores.get(p, float("nan")) for p in phenomena], width, label=name)
    ax.axhline(50, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(np.arange(len(phenomena)) + width * (len(per_phenomenon) - 1) / 2)
    ax.set_xticklabels([p.split("/")[-1] for p in phenomena], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Minimal pairs per phenomenon (ties count as wrong)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return Path(path)


def _fmt(value, spec=".3f", missing="–"):
    if value is None:
        return missing
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def _by_kind(model: dict, kind: str) -> dict:
    """The evaluation section of one kind ("causal" or "masked"): GPT/BERT have one, the hybrid both."""
    return next((ev for ev in model.get("evaluation", {}).values() if ev.get("kind") == kind), {})


def _finetune_cell(model: dict, task: str, metric: str) -> str:
    entry = model.get("finetune", {}).get(task, {}).get(metric)
    if not entry:
        return "–"
    spread = f" ± {100 * entry['std']:.1f}" if entry.get("std") else ""
    return f"{100 * entry['mean']:.1f}{spread}"


def _protocol_score(entry: dict, metric: str, test: str | None) -> dict | None:
    """mean/std of `metric` on the test split (`test` None) or an out-of-domain test of one summary entry."""
    return (entry.get("out_of_domain", {}).get(test, {}) if test else entry).get(metric)


def ranking_tasks(tasks: dict) -> list[str]:
    """The tasks (in-domain main metrics) on which pretraining ranks: the pretrained model's mean is above its
    from-scratch twin's by more than the larger of the two stds over seeds (with one seed, by more than 0)."""
    ranked = []
    for task, metric, _ in FINETUNE_COLUMNS:
        pretrained = tasks.get(task, {}).get(metric)
        scratch = tasks.get(task, {}).get("from_scratch", {}).get(metric)
        if pretrained and scratch and pretrained["mean"] - scratch["mean"] > max(pretrained["std"], scratch["std"]):
            ranked.append(task)
    return ranked


def finetune_protocol_table(results: dict) -> str | None:
    """Per model and task: pretrained and from-scratch scores (mean ± std over seeds, %), the pretraining gain in
    points and the learning rate (or the probe's C) used; the tasks where the gain exceeds the seeds' spread
    (`ranking_tasks`) and the fine-tuning time; then the majority floor. None when no model has a from-scratch twin."""
    models = {name: model["finetune"] for name, model in results["models"].items() if model.get("finetune")}
    if not any("from_scratch" in entry for tasks in models.values() for entry in tasks.values()):
        return None
    rows = ["| model | " + " | ".join(title for *_, title in PROTOCOL_COLUMNS)
            + " | gain > larger std | fine-tuning time (s) |",
            "|---|" + "---|" * (len(PROTOCOL_COLUMNS) + 2)]

    def cell(score):
        return "–" if not score else f"{100 * score['mean']:.1f} ± {100 * score['std']:.1f}"

    for name, tasks in models.items():
        cells = []
        for task, metric, test, _ in PROTOCOL_COLUMNS:
            entry = tasks.get(task)
            if not entry:
                cells.append("–")
                continue
            pretrained = _protocol_score(entry, metric, test)
            scratch = _protocol_score(entry.get("from_scratch", {}), metric, test)
            gain = f" (gain {100 * (pretrained['mean'] - scratch['mean']):+.1f})" if pretrained and scratch else ""
            choice = f"C {entry['C']:g}" if "C" in entry else f"lr {entry.get('learning_rate', 0):g}"
            cells.append(f"{cell(pretrained)} / {cell(scratch)}{gain}, {choice}")
        titles = {task: title for task, _, title in FINETUNE_COLUMNS}
        compared = [task for task in titles if "from_scratch" in tasks.get(task, {})]
        ranked = [titles[task] for task in ranking_tasks(tasks)]
        ranks = f"{len(ranked)} of {len(compared)}" + (f": {', '.join(ranked)}" if ranked else "")
        seconds = sum(entry.get("seconds", 0) for entry in tasks.values())
        rows.append(f"| **{name}** | " + " | ".join(cells) + f" | {ranks} | {seconds:,.0f} |")
    first = next(iter(models.values()))
    majority = []
    for task, metric, test, _ in PROTOCOL_COLUMNS:
        entry = first.get(task, {})
        floor = entry.get("majority_out_of_domain", {}).get(test) if test else entry.get("majority")
        majority.append(f"{100 * floor[metric]:.1f}" if floor else "–")
    rows.append("| majority floor | " + " | ".join(majority) + " | – | – |")
    return "\n".join(rows)


def comparison_table(results: dict) -> str:
    """The design's "Architecture Comparison" table, filled with measured numbers."""
    header = ("| | objective | params | train tokens/s | train time (s) | words seen | val CLM loss | "
              "val MLM loss | bits/char (causal) | pseudo-bits/char (masked) | minimal pairs | "
              + " | ".join(title for _, _, title in FINETUNE_COLUMNS) + " |")
    rows = [header, "|" + "---|" * (11 + len(FINETUNE_COLUMNS))]
    for name, model in results["models"].items():
        causal, masked = _by_kind(model, "causal"), _by_kind(model, "masked")
        pairs = [f"{kind} {100 * ev['minimal_pairs']['accuracy']:.1f}%"
                 for kind, ev in (("causal", causal), ("PLL", masked)) if ev.get("minimal_pairs")]
        rows.append(
            f"| **{name}** | {model.get('objective', name)} | {model['parameters']:,} | "
            f"{_fmt(model.get('train_tokens_per_second'), ',.0f')} | {_fmt(model.get('train_seconds'), '.0f')} | "
            f"{_fmt(model.get('words_seen'), ',')} | {_fmt(model.get('validation_clm_loss'))} | "
            f"{_fmt(model.get('validation_mlm_loss'))} | "
            f"{_fmt(causal.get('language_model', {}).get('bits_per_char'))} | "
            f"{_fmt(masked.get('language_model', {}).get('pseudo_bits_per_char'))} | "
            f"{' / '.join(pairs) or '–'} | "
            + " | ".join(_finetune_cell(model, task, metric) for task, metric, _ in FINETUNE_COLUMNS) + " |"
        )
    return "\n".join(rows)


def word_budget_phrase(run: dict) -> str:
    """How many words each model of a compare run trained on: one budget for all, or each model's own."""
    budgets = run.get("word_budgets")
    if not budgets:
        return f"same data and word budget ({run['word_budget']:,} words) for every model"
    per_model = ", ".join(f"{name} {words:,}" for name, words in budgets.items())
    return f"same data, word budgets set per model ({per_model} words)"


def write_report(results: dict, run_dir: str | Path, figures: dict[str, str]) -> Path:
    """`report.md` in the run folder: settings, the comparison table, figures, per-phenomenon scores, samples."""
    run = results["run"]
    lines = [
        f"# Architecture comparison: {run['preset']} preset, {run['corpus']}",
        "",
        f"Run of {run['date']} on {run['machine']} (torch {run['versions']['torch']}, transformers "
        f"{run['versions']['transformers']}); same tokenizer (vocab {results['tokenizer']['vocab_size']:,}, "
        f"{_fmt(results['tokenizer'].get('fertility', {}).get('chars_per_token'), '.2f')} chars/token on the "
        f"validation split), {word_budget_phrase(run)}; seed {run['seed']}; "
        f"encoder positions (bert, hybrid encoder): {run.get('encoder_position_embeddings', 'absolute')}.",
        "",
        comparison_table(results),
        "",
        "Validation losses are nats per predicted token on the packed validation split (MLM: masked positions only, "
        "same masks for every model). Bits per character are causal scores of whole validation lines "
        "(`[CLS] line [SEP]`); pseudo-bits per character come from pseudo-log-likelihood and are not comparable "
        "to causal bits. Minimal pairs: ties count as wrong.",
        "",
    ]
    finetune = run.get("finetune") or {}
    if any(m.get("finetune") for m in results["models"].values()):
        lines += [f"Fine-tuning ({finetune_description(finetune)}; mean ± std in %): UD Hindi-HDTB UPOS word "
                  "accuracy, IL-NER entity F1, BBC topic and IITP sentiment macro-F1; the hybrid through its encoder "
                  "heads, GPT-BERT through its bidirectional mode, GPT through GPT-2's heads.", ""]
        protocol_table = finetune_protocol_table(results)
        if protocol_table:
            chosen = "the probe's C" if finetune.get("protocol") == "probe" else "the learning rate"
            lines += ["## Fine-tuning against its floors", "",
                      "Each cell: pretrained / the same architecture randomly initialised and trained the same "
                      f"way (mean ± std over seeds, %), the gain from pretraining in points, {chosen} "
                      "chosen on dev; \"gain > larger std\" counts the tasks where pretraining ranks, its gain "
                      "above the larger of the two stds (with one seed, above 0); the last row is the majority class "
                      "(POS: each word's most frequent training tag).", "", protocol_table, ""]
    for title, name in (("Loss curves", "loss_curves"), ("Minimal pairs per phenomenon", "minimal_pairs")):
        if name in figures:
            lines += [f"## {title}", "", f"![{title}]({figures[name]})", ""]
    per_phen = {}
    for model_name, model in results["models"].items():
        for branch, ev in model.get("evaluation", {}).items():
            if ev.get("minimal_pairs"):
                per_phen[f"{model_name} ({branch})"] = ev["minimal_pairs"]
    if per_phen:
        phenomena = sorted({p for s in per_phen.values() for p in s.get("per_phenomenon", {})})
        columns = [*per_phen, *REFERENCE_PAIRS]
        lines += ["## Minimal pairs", "", "Accuracy % (pairs scored); the last columns are the reference numbers of "
                  "`../shared/BASELINES.md` on all 3,000 public pairs (the unigram column is the floor that word "
                  "frequency alone reaches).", "", "| phenomenon | " + " | ".join(columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for phen in phenomena:
            cells = []
            for scores in per_phen.values():
                entry = scores.get("per_phenomenon", {}).get(phen)
                cells.append(f"{100 * entry['accuracy']:.1f} (n={entry['total']})" if entry else "–")
            short = phen.split("/")[-1]
            cells += [f"{ref[short]:.1f}" if short in ref else "–" for ref in REFERENCE_PAIRS.values()]
            lines.append(f"| {phen} | " + " | ".join(cells) + " |")
        overall = [f"{100 * s['accuracy']:.1f} (n={s['total']})" for s in per_phen.values()]
        overall += [f"{ref['all']:.1f}" for ref in REFERENCE_PAIRS.values()]
        lines += ["| **all** | " + " | ".join(overall) + " |", ""]
    samples = {name: m["samples"] for name, m in results["models"].items() if m.get("samples")}
    if samples:
        lines += ["## Generation samples", "",
                  f"Sampling: {results['run'].get('sampling', 'temperature 0.8, top_k 50, top_p 0.95')}.", ""]
        for name, rows in samples.items():
            lines += [f"**{name}**", ""] + [f"- `{row['prompt']}` → {row['text']}" for row in rows] + [""]
    path = Path(run_dir) / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path


def headline_metrics(model: dict) -> dict[str, float]:
    """The numbers a model card's `model-index` carries: validation losses, (pseudo-)bits per character,
    minimal-pair accuracy per evaluated branch, and the fine-tuning means."""
    metrics = {key: model[key] for key in ("validation_clm_loss", "validation_mlm_loss") if model.get(key) is not None}
    for section, evaluation in model.get("evaluation", {}).items():
        language_model = evaluation.get("language_model", {})
        for key in ("bits_per_char", "pseudo_bits_per_char"):
            if key in language_model:
                metrics[f"{section}/{key}"] = language_model[key]
        if evaluation.get("minimal_pairs"):
            metrics[f"{section}/minimal_pairs_accuracy"] = evaluation["minimal_pairs"]["accuracy"]
    for task, metric, _ in FINETUNE_COLUMNS:
        entry = model.get("finetune", {}).get(task, {}).get(metric)
        if entry:
            metrics[f"finetune/{task}_{metric}"] = entry["mean"]
    return metrics


def evaluation_data(run: dict) -> dict[str, str]:
    """What a card says about its evaluation sets: sizes, seeds and the fine-tuning setting of the run."""
    finetune = run.get("finetune", {})
    return {
        "held-out text": f"{run['eval_texts']:,} lines of the validation text (bits per character)",
        "minimal pairs": f"{run['minimal_pairs_scored']:,} pairs of {run.get('minimal_pairs_file') or 'none'}, "
                         "ties counted wrong",
        "fine-tuning": finetune_description(finetune),
    }


def finetune_description(finetune: dict) -> str:
    """One phrase for the fine-tuning setting of a run (`results["run"]["finetune"]`), for the report and cards."""
    protocol, seeds = finetune.get("protocol", "quick"), finetune.get("seeds", [])
    if protocol == "quick":
        return (f"quick: Trainer, {finetune.get('epochs', 0):g} epoch(s) on at most {finetune.get('max_examples', 0):,} "
                f"training and evaluation examples per task, seeds {seeds}")
    if protocol == "probe":
        return ("linear probe: logistic regression on the frozen model's states, full train splits, C chosen on "
                "dev, no seed noise")
    return (f"the protocol of `hindi-lm finetune`: full train splits, up to 10 epochs with early stopping on dev "
            f"(patience 3), learning rate chosen on dev, seeds {seeds}")


def write_model_cards(results: dict, run_dir: str | Path, cards_dir: str | Path | None = None) -> list[Path]:
    """Re-render each model folder's `README.md` with its measured results (and copy it to `cards_dir/<model>.md`
    for reference runs kept in the repository)."""
    from transformers import AutoConfig

    run, written = results["run"], []
    for name, model in results["models"].items():
        folder = Path(run_dir) / name
        config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
        budget = (f"{model['words_seen']:,} words ({model['tokens_seen']:,} tokens, {model['steps']:,} steps), "
                  f"preset `{run['preset']}`, {model['train_seconds']:.0f} s on {run['machine']}")
        card = render_model_card(config, repo_id=f"hindi-{name}-{run['preset']}", metrics=headline_metrics(model),
                                 parameters=model["parameters"], datasets=run.get("datasets"),
                                 training_data=run["corpus"], training_budget=budget,
                                 hyperparameters={**model.get("hyperparameters", {}), "seed": run["seed"],
                                                  "precision": model.get("precision")},
                                 evaluation_data=evaluation_data(run))
        write_text_atomic(folder / "README.md", str(card))
        written.append(folder / "README.md")
        if cards_dir is not None:
            Path(cards_dir).mkdir(parents=True, exist_ok=True)
            write_text_atomic(Path(cards_dir) / f"{name}.md", str(card))
            written.append(Path(cards_dir) / f"{name}.md")
    return written
