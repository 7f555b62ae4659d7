"""Text-classification datasets: local files, the Hugging Face Hub, and an offline demo set."""

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
