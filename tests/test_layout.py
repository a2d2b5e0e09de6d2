"""The architecture, checked: who imports whom, the loop's lack of task branches, and the lean loop's contract."""

import ast
import inspect
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hf_charnn"
REMOTE_CODE = {"models/configuration_char_gru.py", "models/modeling_char_gru.py", "models/tokenization_char_gru.py"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every hf_charnn module a file imports, at module level or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("hf_charnn")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("hf_charnn"):
                found.add(target)
                found |= {f"{target}.{alias.name}" for alias in node.names}  # `from . import exercise`
    modules = {module_name(file) for file in PACKAGE.rglob("*.py")}
    return {target for target in found if target in modules}


GRAPH = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def test_only_the_command_line_imports_the_exercise():
    importers = {
        module for module, targets in GRAPH.items() if any(t.startswith("hf_charnn.exercise") for t in targets)
    }
    outside = {module for module in importers if not module.startswith("hf_charnn.exercise")}
    assert outside == {"hf_charnn.cli"}


def test_the_import_graph_has_no_cycle():
    # Submodules import their own package's __init__ only through the interpreter, not as an edge that matters here.
    edges = {
        module: {t for t in targets if t != module and not module.startswith(t + ".")}
        for module, targets in GRAPH.items()
    }
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join(path + [module])}"
        state[module] = "open"
        for target in edges.get(module, ()):
            visit(target, path + [module])
        state[module] = "done"

    for module in edges:
        visit(module, [])


def test_the_loop_and_the_card_never_import_the_hub():
    def reaches(module, seen=None):
        seen = seen if seen is not None else set()
        for target in GRAPH.get(module, ()):
            if target not in seen:
                seen.add(target)
                reaches(target, seen)
        return seen

    for module in ("hf_charnn.training.loop", "hf_charnn.card", "hf_charnn.training.tasks"):
        assert "hf_charnn.hub" not in reaches(module), module


def test_the_remote_code_files_import_only_each_other_torch_numpy_and_transformers():
    allowed = {
        *("torch", "numpy", "transformers", "json", "os", "re", "unicodedata", "dataclasses", "inspect", "typing"),
        "logging",
        "tokenizers",  # transformers' own dependency: the tokenizers-backed tokenizer a tagger saves
    }
    for relative in REMOTE_CODE:
        tree = ast.parse((PACKAGE / relative).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    assert f"models/{node.module}.py" in REMOTE_CODE, (relative, node.module)
                    continue
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, (relative, roots)


def test_the_loop_has_no_branch_on_the_task():
    source = (PACKAGE / "training" / "loop.py").read_text()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.If | ast.IfExp | ast.While | ast.comprehension):
            test = node.test if not isinstance(node, ast.comprehension) else node.iter
            text = ast.unparse(test)
            assert ".task" not in text and "kind" not in text and "Task" not in text, text
    for word in ("vowel", "consonant", "exercise", "dev_", '"lm"', '"classifier"', "27"):
        assert word not in source, word


def test_general_modules_do_not_speak_of_the_exercise():
    """The exercise's words (and its 27-symbol, 20-character, 2-label numbers) live in the exercise."""
    for path in [
        PACKAGE / "training" / "loop.py",
        *PACKAGE.glob("training/tasks/**/*.py"),
        PACKAGE / "evaluation.py",
        PACKAGE / "card.py",
        PACKAGE / "hub.py",
        PACKAGE / "training" / "precision.py",
        *PACKAGE.glob("data/*.py"),
    ]:
        source = path.read_text()
        for word in ("sane", "normalizes", "dev_perplexity", "dev_accuracy", "vowel", "exercise_data"):
            assert word not in source, (path.name, word)


def test_the_lean_sample_loop_fails_loudly_on_another_transformers(monkeypatch):
    from transformers import GenerationMixin

    from hf_charnn.models import modeling_char_gru

    modeling_char_gru.check_sample_signature()  # the installed transformers is the one the loop was written for

    def changed(
        self, input_ids, logits_processor, stopping_criteria, generation_config, new_setting=None, **model_kwargs
    ):
        raise AssertionError("never called")

    monkeypatch.setattr(GenerationMixin, "_sample", changed)
    with pytest.raises(RuntimeError, match="_sample now takes .*new_setting.*lean_generation = False"):
        modeling_char_gru.check_sample_signature()
    assert inspect.signature(GenerationMixin._sample) == inspect.signature(changed)
