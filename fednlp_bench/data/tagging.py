"""Sequence-tagging (NER) datasets: CoNLL-style local files and Hugging Face token-classification sets.

A sentence is a list of tokens with one tag each. Tags are "O" or "<prefix>-<TYPE>" with the prefixes of the
tag scheme: BIO (IOB2) and IOB1 use B/I, IOBES uses B/I/E/S. `tag_scheme="auto"` picks IOBES when any E-/S- tag
occurs, IOB1 when entities start with I- and never with B-, else BIO.

Checks: a tag outside its scheme's prefixes is an error (E-/S- under BIO); under IOBES the chunk order is
checked too (I-/E- must continue a B-/I- of the same type, B-/I- must be followed by I-/E-), because a BIO file
read as IOBES would otherwise score zero entities. Under BIO, an I- after O is tolerated and read as the start
of an entity, as conlleval does (BIO and IOB1 are chunked the same way by conlleval).

The label-skew label of a sentence is its most frequent entity type (mentions counted, ties broken
alphabetically), or "O" when it has no entity.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import UserError
from .local import read_text_file
from .splits import seeded_split

SCHEMES = ("BIO", "IOB1", "IOBES")
TAG_SCHEME_CHOICES = ("auto",) + SCHEMES
SCHEME_ALIASES = {"auto": "auto", "bio": "BIO", "iob2": "BIO", "iob1": "IOB1", "iobes": "IOBES", "bioes": "IOBES"}
SCHEME_PREFIXES = {"BIO": "BI", "IOB1": "BI", "IOBES": "BIES"}
NO_ENTITY = "O"
DOCSTART = "-DOCSTART-"
_TAG_RE = re.compile(r"^(?:O|[A-Za-z]-\S+)$")
_GENERIC_STEMS = {"train", "test", "dev", "valid", "validation", "data", "all"}


# ---------------------------------------------------------------------------------------------- data class


@dataclass
class SequenceTaggingData:
    """Train and test sentences (tokens + string tags) of a tagging task, plus the label-skew view."""

    name: str
    train_tokens: list[list[str]]
    train_tags: list[list[str]]
    test_tokens: list[list[str]]
    test_tags: list[list[str]]
    tag_names: list[str]  # every tag of both splits, "O" first: the model's label ids
    tag_scheme: str  # resolved scheme: BIO | IOB1 | IOBES
    train_texts: list[str]  # tokens joined by spaces
    test_texts: list[str]
    train_labels: np.ndarray  # int64 skew label (dominant entity type) per sentence, ids into label_names
    test_labels: np.ndarray
    label_names: list[str]  # "O" then the entity types, sorted
    fingerprint: str
    train_groups: list[str] | None = None
    test_groups: list[str] | None = None

    @classmethod
    def create(
        cls,
        name: str,
        train_tokens: Sequence[Sequence[str]],
        train_tags: Sequence[Sequence[str]],
        test_tokens: Sequence[Sequence[str]],
        test_tags: Sequence[Sequence[str]],
        tag_scheme: str = "auto",
        tag_names: Sequence[str] | None = None,
    ) -> "SequenceTaggingData":
        """Build the dataset from already-checked sentences; resolves the scheme, skew labels and fingerprint."""
        train_tokens = [[str(t) for t in s] for s in train_tokens]
        test_tokens = [[str(t) for t in s] for s in test_tokens]
        train_tags = [[str(t) for t in s] for s in train_tags]
        test_tags = [[str(t) for t in s] for s in test_tags]
        for toks, tags in ((train_tokens, train_tags), (test_tokens, test_tags)):
            if len(toks) != len(tags) or any(len(a) != len(b) for a, b in zip(toks, tags)):
                raise ValueError("tokens and tags differ in length")
        scheme = resolve_scheme(tag_scheme, train_tags + test_tags)
        if tag_names is None:
            tag_names = sorted_tag_names({t for s in train_tags + test_tags for t in s})
        tag_names = [str(t) for t in tag_names]
        types = sorted({t.split("-", 1)[1] for t in tag_names if t != NO_ENTITY})
        label_names = [NO_ENTITY] + types
        return cls._assemble(name, train_tokens, train_tags, test_tokens, test_tags, tag_names, scheme, label_names)

    @classmethod
    def _assemble(cls, name, train_tokens, train_tags, test_tokens, test_tags, tag_names, scheme, label_names):
        index = {n: i for i, n in enumerate(label_names)}

        def skew(tags):
            return np.array([index[dominant_type(s)] for s in tags], dtype=np.int64)

        return cls(
            name=name,
            train_tokens=train_tokens,
            train_tags=train_tags,
            test_tokens=test_tokens,
            test_tags=test_tags,
            tag_names=list(tag_names),
            tag_scheme=scheme,
            train_texts=[" ".join(s) for s in train_tokens],
            test_texts=[" ".join(s) for s in test_tokens],
            train_labels=skew(train_tags),
            test_labels=skew(test_tags),
            label_names=list(label_names),
            fingerprint=tagging_fingerprint(train_tokens, train_tags, test_tokens, test_tags, tag_names, scheme),
        )

    @property
    def num_tags(self) -> int:
        return len(self.tag_names)

    @property
    def num_labels(self) -> int:
        """Number of skew labels ("O" + entity types)."""
        return len(self.label_names)

    FEDNLP_TASK_TYPE = "sequence_tagging"

    def export_fields(self, split: str, ids: Sequence[int]) -> dict[str, list]:
        """Full-fidelity columns of some examples for partition export: the words and their tags."""
        tokens, tags = (self.train_tokens, self.train_tags) if split == "train" else (self.test_tokens, self.test_tags)
        return {"tokens": [list(tokens[int(i)]) for i in ids], "tags": [list(tags[int(i)]) for i in ids]}

    def subset(self, train_idx: np.ndarray, test_idx: np.ndarray) -> "SequenceTaggingData":
        """The sentences at the given ids (tag and label names kept, so model ids stay the same)."""
        tr, te = [int(i) for i in np.asarray(train_idx).reshape(-1)], [int(i) for i in np.asarray(test_idx).reshape(-1)]
        out = type(self)._assemble(
            self.name,
            [self.train_tokens[i] for i in tr],
            [self.train_tags[i] for i in tr],
            [self.test_tokens[i] for i in te],
            [self.test_tags[i] for i in te],
            self.tag_names,
            self.tag_scheme,
            self.label_names,
        )
        if self.train_groups is not None:
            out.train_groups = [self.train_groups[i] for i in tr]
        if self.test_groups is not None:
            out.test_groups = [self.test_groups[i] for i in te]
        return out

    def summary(self) -> str:
        n_tok = sum(len(s) for s in self.train_tokens) + sum(len(s) for s in self.test_tokens)
        return (
            f"{self.name}: {len(self.train_tokens)} train / {len(self.test_tokens)} test sentences, {n_tok} tokens, "
            f"{self.tag_scheme} tags, {len(self.label_names) - 1} entity types, fingerprint {self.fingerprint[:12]}"
        )


def tagging_fingerprint(train_tokens, train_tags, test_tokens, test_tags, tag_names, scheme) -> str:
    """SHA-256 hex of both splits' tokens and tags, the tag names and the scheme (length-prefixed items)."""
    h = hashlib.sha256()

    def put(data: bytes) -> None:
        h.update(struct.pack("<Q", len(data)))
        h.update(data)

    for toks, tags in ((train_tokens, train_tags), (test_tokens, test_tags)):
        put(struct.pack("<Q", len(toks)))
        for s_tok, s_tag in zip(toks, tags):
            put("\x00".join(s_tok).encode("utf-8") + b"\x01" + struct.pack("<Q", len(s_tok)))
            put("\x00".join(s_tag).encode("utf-8"))
    put("\x00".join(tag_names).encode("utf-8"))
    put(scheme.encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------- tag helpers


def sorted_tag_names(tags: set[str]) -> list[str]:
    """"O" first, then by entity type and prefix order B, I, E, S (unknown prefixes last)."""
    order = {"B": 0, "I": 1, "E": 2, "S": 3}
    rest = sorted((t for t in tags if t != NO_ENTITY), key=lambda t: (t.split("-", 1)[1], order.get(t[0], 9), t))
    return [NO_ENTITY] + rest


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, start, end inclusive) of each entity, conlleval-style chunking (seqeval's get_entities)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return get_entities(list(tags))


def dominant_type(tags: Sequence[str]) -> str:
    """The sentence's most frequent entity type (mentions; ties alphabetically), or "O" without entities."""
    counts = Counter(t for t, _, _ in entity_spans(tags))
    if not counts:
        return NO_ENTITY
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def normalize_scheme(tag_scheme: str | None) -> str:
    key = SCHEME_ALIASES.get(str(tag_scheme or "auto").strip().lower())
    if key is None:
        raise UserError(
            f"unknown tag scheme '{tag_scheme}'", f"pass one of: {', '.join(TAG_SCHEME_CHOICES)} (e.g. --tag-scheme BIO)"
        )
    return key


def detect_scheme(sentences: Sequence[Sequence[str]]) -> str:
    """IOBES if any E-/S- tag, IOB1 if entities start with I- and never with B-, else BIO."""
    i_starts = b_starts = False
    for tags in sentences:
        prev = NO_ENTITY
        for tag in tags:
            if tag[0] in "ES" and tag != NO_ENTITY:
                return "IOBES"
            if tag != NO_ENTITY:
                typ = tag.split("-", 1)[1]
                continues = prev != NO_ENTITY and prev.split("-", 1)[1] == typ
                if tag[0] == "I" and not continues:
                    i_starts = True
                elif tag[0] == "B" and not continues:
                    b_starts = True
            prev = tag
    return "IOB1" if i_starts and not b_starts else "BIO"


def resolve_scheme(tag_scheme: str, sentences: Sequence[Sequence[str]]) -> str:
    scheme = normalize_scheme(tag_scheme)
    return detect_scheme(sentences) if scheme == "auto" else scheme


def scheme_violation(tags: Sequence[str], scheme: str) -> tuple[int, str] | None:
    """(position, reason) of the first tag inconsistent with the scheme, or None."""
    allowed = SCHEME_PREFIXES[scheme]
    for i, tag in enumerate(tags):
        if tag != NO_ENTITY and tag[0] not in allowed:
            return i, f"tag '{tag}' is not allowed in the {scheme} scheme (prefixes {'/'.join(allowed)} and O)"
    if scheme != "IOBES":
        return None
    for i, tag in enumerate(tags):
        if tag == NO_ENTITY:
            continue
        p, typ = tag[0], tag.split("-", 1)[1]
        prev = tags[i - 1] if i > 0 else NO_ENTITY
        nxt = tags[i + 1] if i + 1 < len(tags) else NO_ENTITY
        if p in "IE" and not (prev != NO_ENTITY and prev[0] in "BI" and prev.split("-", 1)[1] == typ):
            return i, f"tag '{tag}' does not continue a B-{typ}/I-{typ} (IOBES)"
        if p in "BI" and not (nxt != NO_ENTITY and nxt[0] in "IE" and nxt.split("-", 1)[1] == typ):
            return i, f"tag '{tag}' is not followed by I-{typ}/E-{typ} (IOBES: end entities with E-, single tokens are S-)"
    return None


# ------------------------------------------------------------------------------------------- CoNLL files


@dataclass
class _Parsed:
    tokens: list[list[str]]
    tags: list[list[str]]
    lines: list[list[int]]  # 1-based line number of every token


def _field_index(value: Any, default: int, what: str) -> int:
    """CoNLL fields are positional: integer names pick a field, other names (e.g. 'tokens') mean the default."""
    if value is None:
        return default
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise UserError(f"a CoNLL file has one {what}, got {len(value)} columns", f"pass a single {what}")
        value = value[0]
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def read_conll(path: str, token_field: int = 0, tag_field: int = -1, option: str = "--train-file") -> _Parsed:
    """Parse one CoNLL-style file (token ... tag per line, blank line between sentences, -DOCSTART- skipped)."""
    text = read_text_file(path, option, "a CoNLL file")
    out = _Parsed([], [], [])
    toks: list[str] = []
    tags: list[str] = []
    lines: list[int] = []

    def flush() -> None:
        if toks:
            out.tokens.append(toks.copy())
            out.tags.append(tags.copy())
            out.lines.append(lines.copy())
            toks.clear(), tags.clear(), lines.clear()

    need = max(token_field + 1 if token_field >= 0 else -token_field, tag_field + 1 if tag_field >= 0 else -tag_field, 2)
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            flush()
            continue
        if fields[0] == DOCSTART:
            flush()
            continue
        if len(fields) < need:
            raise UserError(
                f"malformed CoNLL line in {path} line {lineno}: expected a token and a tag, "
                f"got {len(fields)} field{'s' if len(fields) != 1 else ''} ({line.strip()[:40]!r})",
                "write one 'token<TAB>tag' per line and a blank line between sentences",
            )
        tag = fields[tag_field]
        if not _TAG_RE.match(tag):
            raise UserError(
                f"malformed CoNLL line in {path} line {lineno}: tag '{tag[:40]}' is not O or X-TYPE",
                "use tags like O, B-PER, I-PER (the tag is the last field of the line)",
            )
        toks.append(fields[token_field])
        tags.append(tag)
        lines.append(lineno)
    flush()
    if not out.tokens:
        raise UserError(f"no sentences in {path} (the file is empty or has only blank/-DOCSTART- lines)",
                        f"pass a CoNLL file with 'token<TAB>tag' lines to {option}")
    return out


def _check_scheme(parsed: _Parsed, scheme: str, where: str) -> None:
    for tags, lines in zip(parsed.tags, parsed.lines):
        bad = scheme_violation(tags, scheme)
        if bad is not None:
            pos, reason = bad
            raise UserError(
                f"{where} line {lines[pos]}: {reason}",
                "fix the tags, or pass the file's scheme with --tag-scheme (BIO, IOB1, IOBES; auto detects it)",
            )


def load_sequence_tagging_local(
    train_path: str,
    test_path: str | None,
    columns: list[str] | None = None,
    target_column: str | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 42,
    name: str | None = None,
    tag_scheme: str = "auto",
    **options: Any,
) -> SequenceTaggingData:
    """Read CoNLL-style train (and test) files. Fields are positional: the token is the first field and the tag
    the last; integer `columns` / `target_column` pick other fields, names like 'tokens'/'ner_tags' are ignored.
    `name` defaults to the file's stem (its folder's name for generic stems like train).
    Without a test file, a seeded `test_fraction` of the train sentences becomes the test set."""
    _no_unknown(options)
    scheme = normalize_scheme(tag_scheme)
    tok_field, tag_field = _field_index(columns, 0, "token column"), _field_index(target_column, -1, "tag column")
    train = read_conll(train_path, tok_field, tag_field, "--train-file")
    test = read_conll(test_path, tok_field, tag_field, "--test-file") if test_path is not None else None
    if scheme == "auto":
        scheme = detect_scheme(train.tags + (test.tags if test else []))
    _check_scheme(train, scheme, str(train_path))
    if test is not None:
        _check_scheme(test, scheme, str(test_path))
        tr_tok, tr_tag, te_tok, te_tag = train.tokens, train.tags, test.tokens, test.tags
    else:
        (tr_tok, tr_tag), (te_tok, te_tag) = _random_split(train.tokens, train.tags, test_fraction, seed, train_path)
    return SequenceTaggingData.create(name or _default_name(train_path), tr_tok, tr_tag, te_tok, te_tag, scheme)


def _default_name(path: str) -> str:
    p = Path(path)
    return p.resolve().parent.name if p.stem.lower() in _GENERIC_STEMS and p.resolve().parent.name else p.stem


def _no_unknown(options: Mapping[str, Any]) -> None:
    if options:
        raise UserError(
            f"unknown option{'s' if len(options) > 1 else ''} for sequence tagging: {', '.join(sorted(options))}",
            "the tagging loaders accept tag_scheme only",
        )


def _random_split(tokens, tags, test_fraction: float, seed: int, where: str):
    train_idx, test_idx = seeded_split(len(tokens), test_fraction, seed, where, "sentence")
    return ([tokens[i] for i in train_idx], [tags[i] for i in train_idx]), ([tokens[i] for i in test_idx],
                                                                            [tags[i] for i in test_idx])


# --------------------------------------------------------------------------------- Hugging Face datasets


def _one_line(exc: BaseException, limit: int = 200) -> str:
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def _tag_class_names(feature: Any) -> list[str] | None:
    """The ClassLabel names of a Sequence/List(ClassLabel) feature, else None."""
    import datasets

    inner = getattr(feature, "feature", None)
    if isinstance(inner, datasets.ClassLabel):
        return list(inner.names)
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    return None


def _split_sentences(ds: Any, token_col: str, tag_col: str, names: list[str] | None, where: str):
    tokens, tags = [], []
    for i, (toks, raw) in enumerate(zip(ds[token_col], ds[tag_col])):
        toks, raw = list(toks or []), list(raw or [])
        if len(toks) != len(raw):
            raise UserError(f"{where} example {i}: {len(toks)} tokens but {len(raw)} tags",
                            "give every token exactly one tag")
        if not toks:
            continue
        out = []
        for t in raw:
            if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
                if names is None:
                    raise UserError(f"{where} example {i}: integer tags without ClassLabel names",
                                    "use a dataset whose tag column is a Sequence(ClassLabel), or string tags")
                if not 0 <= int(t) < len(names):
                    raise UserError(f"{where} example {i}: tag id {int(t)} outside 0..{len(names) - 1}",
                                    "check the tag column")
                t = names[int(t)]
            t = str(t)
            if not _TAG_RE.match(t):
                raise UserError(f"{where} example {i}: tag '{t[:40]}' is not O or X-TYPE",
                                "use tags like O, B-PER, I-PER")
            out.append(t)
        tokens.append([str(x) for x in toks])
        tags.append(out)
    return tokens, tags


def tagging_from_hf(
    dsd: Mapping[str, Any],
    columns: list[str] | None = None,
    target_column: str | None = None,
    *,
    train_split: str = "train",
    test_split: str | None = "test",
    name: str = "sequence_tagging",
    shown: str = "dataset",
    tag_scheme: str = "auto",
    test_fraction: float = 0.2,
    seed: int = 42,
) -> SequenceTaggingData:
    """Convert a DatasetDict (or mapping of split name -> Dataset) with token and tag list columns."""
    scheme = normalize_scheme(tag_scheme)
    token_col = (columns[0] if isinstance(columns, (list, tuple)) else columns) if columns else "tokens"
    tag_col = target_column or "ner_tags"
    available = list(dsd.keys())
    for split in [train_split] + ([test_split] if test_split is not None else []):
        if split not in available:
            raise UserError(f"Hugging Face dataset '{shown}' has no split '{split}' (it has: {', '.join(available) or 'none'})",
                            "pass an existing split name for the train/test split")
    train = dsd[train_split]
    have = list(train.column_names)
    missing = [c for c in (token_col, tag_col) if c not in have]
    if missing:
        raise UserError(f"column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} not in "
                        f"Hugging Face dataset '{shown}' (it has: {', '.join(have)})",
                        "pass the token column with --text-column and the tag column with --label-column")
    names = _tag_class_names(train.features.get(tag_col)) if getattr(train, "features", None) else None
    tr_tok, tr_tag = _split_sentences(train, token_col, tag_col, names, f"'{shown}' split '{train_split}'")
    if not tr_tok:
        raise UserError(f"no sentences in split '{train_split}' of '{shown}'", "pick a split with tokens")
    if test_split is not None:
        te_tok, te_tag = _split_sentences(dsd[test_split], token_col, tag_col, names, f"'{shown}' split '{test_split}'")
    else:
        (tr_tok, tr_tag), (te_tok, te_tag) = _random_split(tr_tok, tr_tag, test_fraction, seed, f"'{shown}'")
    if scheme == "auto":
        scheme = detect_scheme(tr_tag + te_tag)
    for split, tags in ((train_split, tr_tag), (test_split, te_tag)):
        for i, s in enumerate(tags):
            bad = scheme_violation(s, scheme)
            if bad is not None:
                raise UserError(f"'{shown}' split '{split}' sentence {i} token {bad[0]}: {bad[1]}",
                                "pass the data's scheme with --tag-scheme (BIO, IOB1, IOBES; auto detects it)")
    return SequenceTaggingData.create(name, tr_tok, tr_tag, te_tok, te_tag, scheme,
                                      tag_names=_names_with_all(names, tr_tag + te_tag))


def _names_with_all(names: list[str] | None, tags: list[list[str]]) -> list[str]:
    """ClassLabel names keep their ids when they start with O; otherwise the sorted set of used tags."""
    used = {t for s in tags for t in s}
    if names and names[0] == NO_ENTITY and used <= set(names) and all(_TAG_RE.match(n) for n in names):
        return list(names)
    return sorted_tag_names(used | {NO_ENTITY})


def load_sequence_tagging_hub(
    hub_name: str,
    config_name: str | None,
    columns: list[str] | None = None,
    target_column: str | None = None,
    *,
    train_split: str = "train",
    test_split: str | None = "test",
    name: str = "sequence_tagging",
    tag_scheme: str = "auto",
    test_fraction: float = 0.2,
    seed: int = 42,
    cache_dir: str | None = None,
    **options: Any,
) -> SequenceTaggingData:
    """Load a token-classification dataset with `datasets.load_dataset` (columns tokens / ner_tags by default)."""
    _no_unknown(options)
    normalize_scheme(tag_scheme)
    shown = hub_name if config_name is None else f"{hub_name}/{config_name}"
    try:
        import datasets

        dsd = datasets.load_dataset(hub_name, config_name, cache_dir=cache_dir)
    except Exception as e:  # no network, no cache, unknown name ...
        raise UserError(f"could not load Hugging Face dataset '{shown}' ({_one_line(e)})",
                        "connect to the network once to fill the cache, or use local CoNLL files with --train-file") from None
    return tagging_from_hf(dsd, columns, target_column, train_split=train_split, test_split=test_split, name=name,
                           shown=shown, tag_scheme=tag_scheme, test_fraction=test_fraction, seed=seed)


LOCAL_LOADER = load_sequence_tagging_local
HUB_LOADER = load_sequence_tagging_hub
