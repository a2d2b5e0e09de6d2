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
from pathlib import Path

from accelerate import PartialState

from ..models.modeling_char_gru import CharGRUForCausalLM
from ..training.checkpoints import complete_checkpoints
from ..training.loop import save_trained_model, train, train_or_reuse
from ..training.run_folder import write_eval_results
from ..training.settings import TrainingConfig
from .files import VOWEL_GROUPS, load_classification_examples
from .harness import evaluate_classifier
from .tasks import ExerciseLanguageModelingTask, VowelConsonantTask, holdout_examples

LEAK_FREE_LM_DIR = "leak-free-lm"


def train_lm_transfer(config: TrainingConfig) -> dict:
    """Train the leak-free LM, then the fine-tuned classifier; keep the better of it and the zero-shot one."""
    output_dir = Path(config.output_dir)
    lm_dir = output_dir / LEAK_FREE_LM_DIR
    lm_config = TrainingConfig.from_preset(
        "lm",
        "default",
        data_dir=config.data_dir,
        output_dir=str(lm_dir),
        exclude_dev_examples=True,
        holdout_examples=config.holdout_examples,
        normalize=config.normalize,
        **config.stage_settings(),
    )
    lm_summary = train_or_reuse(lm_config, ExerciseLanguageModelingTask(lm_config))
    resume = config.resume_from if config.resume_from and complete_checkpoints(output_dir) else None
    classifier_config = dataclasses.replace(config, model_name_or_path=str(lm_dir), resume_from=resume)
    task = VowelConsonantTask(classifier_config)
    summary = train(classifier_config, task)
    if not PartialState().is_main_process or "results" not in summary:
        return summary
    zero_shot = CharGRUForCausalLM.from_pretrained(lm_dir).symbol_group_classifier(VOWEL_GROUPS)
    dev = load_classification_examples(config.data_dir, "dev", config.normalize)
    zero_shot_results = {
        "holdout": evaluate_classifier(zero_shot, *holdout_examples(config)),
        "dev": evaluate_classifier(zero_shot, *dev),
    }
    fine_tuned_results = {"holdout": summary["holdout"], "dev": summary["results"]}
    chosen = (
        "zero-shot"
        if zero_shot_results["holdout"]["accuracy"] > fine_tuned_results["holdout"]["accuracy"]
        else "fine-tuned"
    )
    print(
        f"held-out training examples: zero-shot {zero_shot_results['holdout']['accuracy']:.1f} %, "
        f"fine-tuned {fine_tuned_results['holdout']['accuracy']:.1f} %; saving the {chosen} classifier",
        flush=True,
    )
    summary.update(
        chosen=chosen,
        zero_shot=zero_shot_results,
        fine_tuned=fine_tuned_results,
        results=zero_shot_results["dev"] if chosen == "zero-shot" else fine_tuned_results["dev"],
        lm_results=lm_summary.get("results"),
        lm_train_seconds=lm_summary["train_seconds"],
        total_train_seconds=lm_summary["train_seconds"] + summary["train_seconds"],
    )
    if chosen == "zero-shot":
        save_trained_model(zero_shot, output_dir, task, summary)
    write_eval_results(output_dir, summary)
    return summary
