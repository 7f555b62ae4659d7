"""Datasets of every task family (classification, tagging, QA, seq2seq, language modelling) from local files, domain
folders or the Hugging Face Hub, and an offline demo set; the text-classification loaders are exported here, the
other families' from their own modules (tagging, qa, seq2seq, lm)."""

from .demo import TOPICS, demo_dataset
from .domains import load_domains
from .hub import load_hub
from .local import SUPPORTED_EXTENSIONS, load_local
from .splits import TextClassificationData, data_fingerprint, encode_labels, fingerprint_of

__all__ = [
    "TOPICS",
    "SUPPORTED_EXTENSIONS",
    "TextClassificationData",
    "data_fingerprint",
    "demo_dataset",
    "load_domains",
    "encode_labels",
    "fingerprint_of",
    "load_hub",
    "load_local",
]
