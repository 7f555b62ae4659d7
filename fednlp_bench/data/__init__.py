"""Text-classification datasets: local files, the Hugging Face Hub, and an offline demo set."""

from .demo import TOPICS, demo_dataset
from .hub import load_hub
from .local import SUPPORTED_EXTENSIONS, load_local
from .splits import TextClassificationData, encode_labels, fingerprint_of

__all__ = [
    "TOPICS",
    "SUPPORTED_EXTENSIONS",
    "TextClassificationData",
    "demo_dataset",
    "encode_labels",
    "fingerprint_of",
    "load_hub",
    "load_local",
]
