"""
The LM-transfer classifier recipe (`--preset lm-transfer`): a vowel/consonant classifier made from a character LM.

Every dev example is a substring of text8-100k, so the LM is trained with each occurrence of a dev example and its
next character masked out of its targets (and so are the held-out training examples, so that the comparison below
is fair). Two classifiers come from it: zero-shot (its vowel vs consonant probability mass) and fine-tuned (a
classifier starting from its backbone, trained without the last `holdout_examples` training examples of each
class). The one more accurate on those held-out training examples is saved; eval_results.json reports both, on the
held-out examples and on dev.
"""

import dataclasses
import json
from pathlib import Path

from accelerate import PartialState

from .config import TrainingConfig
from .data import load_classification_examples
from .evaluation import evaluate_classifier
from .modeling_char_gru import CharGRUForCausalLM, CharGRUForSequenceClassification
from .training import EVAL_RESULTS_FILE, holdout_examples, save_trained_model, train

LEAK_FREE_LM_DIR = "leak-free-lm"


def train_lm_transfer(config: TrainingConfig) -> dict:
    """Train the leak-free LM, then the fine-tuned classifier; keep the better of it and the zero-shot one."""
    output_dir = Path(config.output_dir)
    lm_dir = output_dir / LEAK_FREE_LM_DIR
    lm_config = TrainingConfig.from_preset(
        "lm", "default", data_dir=config.data_dir, output_dir=str(lm_dir), exclude_dev_examples=True,
        holdout_examples=config.holdout_examples,
        seed=config.seed, normalize=config.normalize, progress_bar=config.progress_bar, cpu=config.cpu,
        mixed_precision=config.mixed_precision,
    )
    lm_summary = train(lm_config)
    summary = train(dataclasses.replace(config, init_from=str(lm_dir)))
    if not PartialState().is_main_process or "results" not in summary:
        return summary
    zero_shot = CharGRUForSequenceClassification.from_lm(CharGRUForCausalLM.from_pretrained(lm_dir))
    dev = load_classification_examples(config.data_dir, "dev", config.normalize)
    zero_shot_results = {
        "holdout": evaluate_classifier(zero_shot, *holdout_examples(config)),
        "dev": evaluate_classifier(zero_shot, *dev),
    }
    fine_tuned_results = {"holdout": summary["holdout"], "dev": summary["results"]}
    chosen = "zero-shot" if zero_shot_results["holdout"]["accuracy"] > fine_tuned_results["holdout"]["accuracy"] else "fine-tuned"
    print(
        f"held-out training examples: zero-shot {zero_shot_results['holdout']['accuracy']:.1f} %, "
        f"fine-tuned {fine_tuned_results['holdout']['accuracy']:.1f} %; saving the {chosen} classifier",
        flush=True,
    )
    summary.update(
        chosen=chosen, zero_shot=zero_shot_results, fine_tuned=fine_tuned_results,
        results=zero_shot_results["dev"] if chosen == "zero-shot" else fine_tuned_results["dev"],
        lm_results=lm_summary.get("results"), lm_train_seconds=lm_summary["train_seconds"],
        total_train_seconds=lm_summary["train_seconds"] + summary["train_seconds"],
    )
    if chosen == "zero-shot":
        save_trained_model(zero_shot, output_dir, config, summary)
    (output_dir / EVAL_RESULTS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
