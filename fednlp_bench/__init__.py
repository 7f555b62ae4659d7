"""fednlp-bench: a benchmark suite for federated learning on NLP tasks."""

__version__ = "0.1.0"
