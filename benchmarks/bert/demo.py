"""Demo tier: a tiny random-weight BERT for question answering and a synthetic SQuAD v1.1 file.

The model is transformers' ``BertForQuestionAnswering`` (2 layers, 64 wide) saved the way the
reference's checkpoint is: ``bert_config.json`` + ``model.pytorch`` (a state dict) + an uncased
``vocab.txt`` (WordPiece, trained here on the synthetic text, ``[PAD]`` = 0). The dev file has
the real structure (data / paragraphs / context / qas with id, question, answers with
answer_start). Some contexts are long enough to be split into several windows; some words carry
punctuation or accents, which the tokenizer strips. Each question's answer is the span the
reference execution predicts (``ground_truth``; see ``harness.demo``): a span of its context, at
positions that vary from question to question.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from benchmarks.bert.backend import CHECKPOINT, CONFIG
from benchmarks.bert.dataset import DATASET_FILE, MODEL_DIR, VOCAB, load_tokenizer, make_features, read_examples

WORDS = (
    "the river city council museum opened new bridge in spring after years of work engineers said "
    "traffic would fall while visitors came from north and south to see old paintings music festival "
    "students teachers library school park station harbour ships trade market bank report"
).split()
NAMES = ("Smith's", "Müller", "Zoë", "O'Neil", "São", "Kraków", "Dvořák", "1,200", "(2019)", "U.S.")
DEMO_USER_CONF = """\
# LoadGen settings for the demo tier: short runs of a tiny model. Not valid for a submission.
# Offline is VALID only while target_qps stays above the throughput (about 1,200 features/s on 2
# CPU cores): the one query holds target_qps x min_duration x 1.1 samples and must outlast
# min_duration. Server judges the 99th percentile: early stopping needs several hundred queries.
bert.Offline.min_duration = 2000
bert.Offline.min_query_count = 1
bert.Offline.target_qps = 3000
bert.Server.min_duration = 3000
bert.Server.min_query_count = 480
bert.Server.target_qps = 40
bert.SingleStream.min_duration = 2000
bert.SingleStream.min_query_count = 64
bert.SingleStream.target_latency = 2
"""


def _context(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(WORDS) if rng.random() > 0.12 else rng.choice(NAMES) for _ in range(n_words)]
    sentences, start = [], 0
    while start < len(words):
        end = start + rng.randint(6, 14)
        sentences.append(" ".join(words[start:end]).capitalize() + ".")
        start = end
    return " ".join(sentences)


def synthetic_squad(n_paragraphs: int, seed: int) -> dict:
    rng = random.Random(seed)
    articles = []
    for a in range(max(1, n_paragraphs // 4)):
        paragraphs = []
        for p in range(4):
            number = a * 4 + p
            context = _context(rng, rng.randint(380, 520) if number % 6 == 5 else rng.randint(30, 120))
            spans = [(m, len(w)) for m, w in _word_offsets(context)]
            qas = []
            for q in range(rng.randint(1, 3)):
                first = rng.randrange(len(spans) - 3)
                last = first + rng.randint(0, 2)
                start, stop = spans[first][0], spans[last][0] + spans[last][1]
                answer = context[start:stop]
                question = f"What {rng.choice(WORDS)} {rng.choice(WORDS)} {' '.join(context[:start].split()[-3:])}?"
                qas.append({"id": f"demo-{number:04d}-{q}", "question": question,
                            "answers": [{"answer_start": start, "text": answer}]})
            paragraphs.append({"context": context, "qas": qas})
        articles.append({"title": f"Demo_{a}", "paragraphs": paragraphs})
    return {"version": "1.1", "data": articles}


def _word_offsets(text: str):
    position = 0
    for word in text.split(" "):
        yield position, word
        position += len(word) + 1


def build(out: Path, seed: int = 0, n_paragraphs: int = 24) -> None:
    """Write ``dev-v1.1.json``, ``model/`` and a demo ``user.conf`` into ``out`` (which exists)."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForQuestionAnswering

    squad = synthetic_squad(n_paragraphs, seed)
    (out / DATASET_FILE).write_text(json.dumps(squad, ensure_ascii=False, indent=1), encoding="utf-8")
    texts = [p["context"] for a in squad["data"] for p in a["paragraphs"]]
    texts += [qa["question"] for a in squad["data"] for p in a["paragraphs"] for qa in p["qas"]]
    wordpiece = BertWordPieceTokenizer(lowercase=True, strip_accents=True)
    wordpiece.train_from_iterator(texts, vocab_size=600, min_frequency=1)
    model_dir = out / MODEL_DIR
    model_dir.mkdir()
    wordpiece.save_model(str(model_dir))  # vocab.txt, [PAD] first
    vocab_size = len((model_dir / VOCAB).read_text(encoding="utf-8").splitlines())
    config = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
              "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128,
              "max_position_embeddings": 512, "num_attention_heads": 4, "num_hidden_layers": 2,
              "type_vocab_size": 2, "vocab_size": vocab_size}
    (model_dir / CONFIG).write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed)
    model = BertForQuestionAnswering(BertConfig(**config)).eval()
    answers_in_the_context(model, make_features(read_examples(out), load_tokenizer(out)))
    torch.save(model.state_dict(), model_dir / CHECKPOINT)
    (out / "user.conf").write_text(DEMO_USER_CONF)


def answers_in_the_context(model, features: list) -> None:
    """Tilt the random answer head towards context tokens, as a trained one is.

    With random weights, the question, the separators and the padding score as high as the
    context: the best 20 start and end positions are then often outside the window, few or no
    spans are valid, and the answer hangs on positions a real model never ranks (a padding
    position's logits, which a run at each feature's own width does not compute). Here both
    logits get a term along the mean difference of the context's and the other positions' final
    hidden states, of 3 standard deviations of the logits: positions within the context still
    compete at random, but ahead of the rest.
    """
    import torch

    ids = torch.from_numpy(np.stack([f.input_ids for f in features]))
    context = torch.zeros(ids.shape[0], ids.shape[2], dtype=torch.bool)
    for row, feature in enumerate(features):
        context[row, list(feature.token_to_orig_map)] = True
    with torch.no_grad():
        hidden = model.bert(input_ids=ids[:, 0], attention_mask=ids[:, 1], token_type_ids=ids[:, 2]).last_hidden_state
        logits = model.qa_outputs(hidden)
        direction = hidden[context].mean(dim=0) - hidden[~context].mean(dim=0)
        projected = hidden @ direction
        gap = projected[context].mean() - projected[~context].mean()
        model.qa_outputs.weight.add_(direction * (3 * logits.std() / gap))


def ground_truth(out: Path, outputs: dict[int, np.ndarray]) -> None:
    """Make each question's answer the span the reference execution's logits give (the scorer's
    prediction), starting where that text first occurs in the context."""
    from benchmarks.bert.accuracy import predict_text
    from benchmarks.bert.dataset import load

    dataset = load(out)
    features: dict[int, list[int]] = {}
    for index in range(len(dataset)):
        features.setdefault(dataset.features[index].example_index, []).append(index)
    answers = {}
    for example_index, indices in features.items():
        example = dataset.examples[example_index]
        answers[example.qas_id] = predict_text(example, [dataset.features[i] for i in indices],
                                               [outputs[i] for i in indices])
    path = out / DATASET_FILE
    squad = json.loads(path.read_text(encoding="utf-8"))
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                text = answers[qa["id"]]
                qa["answers"] = [{"answer_start": max(paragraph["context"].find(text), 0), "text": text}]
    path.write_text(json.dumps(squad, ensure_ascii=False, indent=1), encoding="utf-8")
