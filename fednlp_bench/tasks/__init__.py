"""Task adapters (one module per family) and the built-in task registry."""
from .base import Task
from .classification import TextClassificationTask
from .registry import TASKS, TaskSpec, get_spec, load_task_data

ADAPTERS = {"text_classification": TextClassificationTask}

__all__ = ["ADAPTERS", "TASKS", "Task", "TaskSpec", "TextClassificationTask", "get_spec", "load_task_data"]
