"""Tasks: one adapter module per family (with its metrics), task cards and run profiles, models and tokenizers,
and the built-in task registry; `adapter_class` gives a family's adapter."""
from .base import Task
from .classification import TextClassificationTask
from .registry import FAMILIES, TASKS, TaskSpec, get_spec, load_task_data


def adapter_class(family: str) -> type[Task]:
    """The Task adapter class of a family (imported on first use, so one family's extras never block another)."""
    if family == "text_classification":
        return TextClassificationTask
    if family == "sequence_tagging":
        from .tagging import SequenceTaggingTask

        return SequenceTaggingTask
    if family == "extractive_qa":
        from .qa import ExtractiveQATask

        return ExtractiveQATask
    if family == "seq2seq":
        from .seq2seq import Seq2SeqTask

        return Seq2SeqTask
    if family == "language_modeling":
        from .language_modeling import LanguageModelingTask

        return LanguageModelingTask
    raise KeyError(family)


__all__ = ["FAMILIES", "TASKS", "Task", "TaskSpec", "TextClassificationTask", "adapter_class", "get_spec",
           "load_task_data"]
