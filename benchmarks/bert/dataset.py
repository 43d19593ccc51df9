"""SQuAD v1.1 dev set turned into BERT features exactly as the reference does it.

Data folder layout: ``dev-v1.1.json`` and ``model/`` (``vocab.txt``, ``bert_config.json`` and the
checkpoint; see ``backend.py``). Each question becomes one or more features (LoadGen samples):
the reference's ``read_squad_examples`` + ``convert_examples_to_features`` with the uncased
vocabulary, max_seq_length 384, doc_stride 128, max_query_length 64:

* the context is split on whitespace (space, tab, CR, LF, U+202F) into words, each word is
  WordPiece-tokenized, and the question is tokenized and cut to 64 tokens;
* the context tokens are covered by windows of at most 384 - len(question) - 3 tokens, each
  window starting ``min(window length, 128)`` after the previous one;
* a feature is ``[CLS] question [SEP] window [SEP]``, zero-padded to 384, with segment ids 0
  then 1 and an input mask; it remembers which word each window token came from, and whether
  the token has its maximal context in this window (the scorer uses both).

Features are computed when the dataset is loaded (untimed) and cached under the harness cache
folder, keyed by the sha256 of the dev file and the vocabulary, as the reference caches
``eval_features.pickle`` (here as plain arrays, which run no code when read): on the real set
each LoadGen process and the scorer would otherwise tokenize 10,570 questions again.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.datadir import cache_root
from harness.errors import DataError
from harness.util import sha256_file, store_cache

DATASET_FILE = "dev-v1.1.json"
MODEL_DIR = "model"
VOCAB = "vocab.txt"
MAX_SEQ_LENGTH = 384
DOC_STRIDE = 128
MAX_QUERY_LENGTH = 64


@dataclass(frozen=True)
class Example:
    qas_id: str
    question: str
    doc_tokens: list[str]
    answers: list[str]


@dataclass(frozen=True)
class Feature:
    example_index: int
    tokens: list[str]
    token_to_orig_map: dict[int, int]
    token_is_max_context: dict[int, bool]
    input_ids: np.ndarray  # int64 [3, 384]: input ids, input mask, segment ids
    length: int            # tokens before padding


def _is_whitespace(c: str) -> bool:
    return c in " \t\r\n" or ord(c) == 0x202F


def split_words(text: str) -> list[str]:
    """The reference's whitespace split of a context into words."""
    words: list[str] = []
    previous_space = True
    for c in text:
        if _is_whitespace(c):
            previous_space = True
        elif previous_space:
            words.append(c)
            previous_space = False
        else:
            words[-1] += c
    return words


def read_examples(data_dir: Path) -> list[Example]:
    path = data_dir / DATASET_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing: put the SQuAD v1.1 dev set there (see benchmarks/bert/README.md), "
                        f"or run without --data to use the demo tier")
    try:
        articles = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a SQuAD JSON file with a 'data' list ({exc!r})") from exc
    examples = []
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            context = paragraph.get("context")
            if not isinstance(context, str) or not context.strip():
                raise DataError(f"{path}: data[{a}].paragraphs[{p}] has questions but no context; the file is "
                                f"damaged or not SQuAD v1.1: use the original dev-v1.1.json")
            words = split_words(context)
            for q, qa in enumerate(paragraph.get("qas", [])):
                if not isinstance(qa.get("question"), str) or "id" not in qa:
                    raise DataError(f"{path}: data[{a}].paragraphs[{p}].qas[{q}] lacks an id or a question")
                answers = [answer["text"] for answer in qa.get("answers", [])]
                examples.append(Example(qa["id"], qa["question"], words, answers))
    if not examples:
        raise DataError(f"{path} holds no questions")
    return examples


def vocab_path(data_dir: Path) -> Path:
    vocab = data_dir / MODEL_DIR / VOCAB
    if not vocab.is_file():
        raise DataError(f"{vocab} is missing: copy the uncased BERT-Large vocab.txt into the model folder")
    return vocab


def load_tokenizer(data_dir: Path):
    """The pure-Python WordPiece tokenizer the reference uses (transformers 4's ``BertTokenizer``)."""
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    return BertTokenizerLegacy(str(vocab_path(data_dir)), do_lower_case=True)


def _max_context(spans: list[tuple[int, int]], span_index: int, position: int) -> bool:
    """Whether window ``span_index`` gives token ``position`` its best context (the reference's score)."""
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if start <= position <= end:
            score = min(position - start, end - position) + 0.01 * length
            if best_score is None or score > best_score:
                best_score, best_index = score, index
    return best_index == span_index


def windows(n_tokens: int, max_tokens: int, stride: int = DOC_STRIDE) -> list[tuple[int, int]]:
    """(start, length) of the context windows over ``n_tokens`` tokens."""
    spans, start = [], 0
    while start < n_tokens:
        length = min(n_tokens - start, max_tokens)
        spans.append((start, length))
        if start + length == n_tokens:
            break
        start += min(length, stride)
    return spans


def make_features(examples: list[Example], tokenizer) -> list[Feature]:
    cls, sep = tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"])
    features = []
    for example_index, example in enumerate(examples):
        query = tokenizer.tokenize(example.question)[:MAX_QUERY_LENGTH]
        doc_tokens, token_word = [], []
        for word_index, word in enumerate(example.doc_tokens):
            for piece in tokenizer.tokenize(word):
                doc_tokens.append(piece)
                token_word.append(word_index)
        spans = windows(len(doc_tokens), MAX_SEQ_LENGTH - len(query) - 3)
        for span_index, (start, length) in enumerate(spans):
            head = ["[CLS]", *query, "[SEP]"]
            tokens = head + doc_tokens[start:start + length] + ["[SEP]"]
            to_orig = {len(head) + i: token_word[start + i] for i in range(length)}
            max_context = {len(head) + i: _max_context(spans, span_index, start + i) for i in range(length)}
            ids = np.zeros((3, MAX_SEQ_LENGTH), dtype=np.int64)
            ids[0, :len(tokens)] = tokenizer.convert_tokens_to_ids(tokens)
            ids[1, :len(tokens)] = 1
            ids[2, len(head):len(tokens)] = 1
            assert ids[0, 0] == cls and ids[0, len(tokens) - 1] == sep
            features.append(Feature(example_index, tokens, to_orig, max_context, ids, len(tokens)))
    return features


def _pack(features: list[Feature]) -> bytes:
    """Features as an .npz of plain arrays (no pickle): the ids, and the rest as JSON bytes."""
    meta = [{"example": f.example_index, "tokens": f.tokens, "orig": sorted(f.token_to_orig_map.items()),
             "max_context": sorted(f.token_is_max_context.items())} for f in features]
    buffer = io.BytesIO()
    np.savez(buffer, ids=np.stack([f.input_ids for f in features]).astype(np.int32),
             meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    return buffer.getvalue()


def _unpack(data: bytes) -> list[Feature]:
    with np.load(io.BytesIO(data), allow_pickle=False) as found:
        ids, meta = found["ids"].astype(np.int64), json.loads(found["meta"].tobytes())
    return [Feature(m["example"], m["tokens"], dict(map(tuple, m["orig"])), dict(map(tuple, m["max_context"])),
                    ids[n], len(m["tokens"])) for n, m in enumerate(meta)]


def cached_features(data_dir: Path, examples: list[Example]) -> list[Feature]:
    """``make_features``, cached by content (plain arrays, nothing that runs code when read); an
    unreadable or unwritable cache only costs time."""
    key = hashlib.sha256(f"{MAX_SEQ_LENGTH}/{DOC_STRIDE}/{MAX_QUERY_LENGTH}".encode())
    for path in (data_dir / DATASET_FILE, vocab_path(data_dir)):
        key.update(sha256_file(path).encode())
    cache = cache_root() / "bert" / f"features-{key.hexdigest()[:24]}.npz"
    try:
        return _unpack(cache.read_bytes())
    except (OSError, ValueError, KeyError, TypeError):  # absent, truncated or stale: rebuild it
        pass
    features = make_features(examples, load_tokenizer(data_dir))
    store_cache(cache, _pack(features))
    return features


class Dataset:
    """QSL samples: one int64 [3, 384] array (input ids, input mask, segment ids) per feature."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.examples = read_examples(data_dir)
        self.features = cached_features(data_dir, self.examples)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.features[index].input_ids

    def sample_length(self, index: int) -> int:
        """Tokens before padding: Offline queries are run longest first, so batches share widths."""
        return self.features[index].length


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)
