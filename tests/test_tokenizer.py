"""The tiny model's WordPiece tokenizer: the same texts give the same tokenizer in every process."""
from __future__ import annotations

import subprocess
import sys

from fednlp_bench.data import demo_dataset
from fednlp_bench.tasks.models import tokenizer_hash, train_wordpiece_tokenizer

TEXTS = ["The cat sat on the mat.", "A dog sat on the log!", "Cats and dogs, dogs and cats.", "Zebra-crossing 42"]

SCRIPT = """
from fednlp_bench.data import demo_dataset
from fednlp_bench.tasks.models import tokenizer_hash, train_wordpiece_tokenizer
print(tokenizer_hash(train_wordpiece_tokenizer(list(demo_dataset(num_train=800, num_test=10).train_texts))))
"""


def test_same_texts_give_the_same_tokenizer_in_fresh_processes():
    # tokenizers' WordPieceTrainer gave a different vocabulary in every process (Rust's randomised hash maps)
    hashes = {subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout.strip()
              for _ in range(3)}
    assert len(hashes) == 1
    here = tokenizer_hash(train_wordpiece_tokenizer(list(demo_dataset(num_train=800, num_test=10).train_texts)))
    assert hashes == {here}


def test_vocabulary_covers_every_character_and_keeps_frequent_words_whole():
    tok = train_wordpiece_tokenizer(TEXTS, vocab_size=60)
    vocab = tok.get_vocab()
    assert [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    for text in TEXTS:  # no [UNK]: every character is in the vocabulary, alone and as a continuation
        assert tok.unk_token_id not in tok(text)["input_ids"]
    assert tok.tokenize("the cat sat")[:3] == ["the", "cat", "sat"]  # frequent words are single tokens
    assert tok.tokenize("zebra-crossing")[0] in ("zebra", "z")
    assert tok.decode(tok("dogs and cats")["input_ids"], skip_special_tokens=True) == "dogs and cats"
    small = train_wordpiece_tokenizer(TEXTS, vocab_size=10)
    assert len(small.get_vocab()) > 10  # characters are never dropped, even past vocab_size
    assert "sat" not in small.get_vocab()


def test_words_fill_the_vocabulary_up_to_its_size():
    base_vocab = train_wordpiece_tokenizer(TEXTS, vocab_size=1).get_vocab()  # specials and characters only
    base = len(base_vocab)
    grown = train_wordpiece_tokenizer(TEXTS, vocab_size=base + 3).get_vocab()
    assert len(grown) == base + 3
    assert set(grown) - set(base_vocab) == {"the", "and", "cats"}  # "the" 3 times, then ties of 2 go by the word
