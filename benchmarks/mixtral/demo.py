"""Demo tier: a tiny random-weight Mixtral and a synthetic pickle of the three parts, built offline.

The model is the real ``MixtralForCausalLM`` architecture (2 layers, 64 wide, 4 experts with top-2
routing, grouped-query attention, Mixtral's 32,000-token vocabulary) saved with
``save_pretrained``. The tokenizer has the layout of Mixtral's: ``<unk>`` 0, ``<s>`` 1 (prepended
to every prompt), ``</s>`` 2, the 256 byte-fallback tokens at 3..258 (a newline is ``<0x0A>``, 13),
BPE pieces trained here on the synthetic prompts, and "``" at 13940 and "`" at 28832, so that
"\\n```\\n" is the reference's MBXP stop sequence 13, 13940, 28832, 13. The pickle has the real
columns; its 24 rows are 8 OpenOrca, 8 GSM8K and 8 MBXP prompts in Mixtral's instruction format,
the MBXP ones with real test code in cpp, python, php, javascript, ruby, typescript (and one java
problem, which the reference does not score). Ground truth (``ground_truth``) is what the
reference execution answers: the decoded answer for OpenOrca, the number it gives for GSM8K; the
MBXP tests are fixed, and which of them the reference's answers pass is the reference's score.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from benchmarks.mixtral.dataset import DATASET_FILE, MODEL_DIR

VOCAB = 32000
FENCE = {"``": 13940, "`": 28832}
SPECIAL = ("<unk>", "<s>", "</s>")
WORDS = ("explain the passage summarize the article answer with yes or no translate into french the premise "
         "entails the hypothesis write a short title for the review how many apples does tom have left if he "
         "gives away three each day for a week").split()
NON_ASCII = ("Zürich", "café", "naïve", "東京", "€", "—")
QUESTIONS = (
    ("Tom has 12 apples and gives away 5. How many are left?", "7"),
    ("A book costs $15 and a pen $3. What do 2 books and 4 pens cost?", "42"),
    ("A train travels 60 miles per hour for 2.5 hours. How far does it go?", "150"),
    ("Sara saves $1,250 a month. How much does she save in a year?", "15000"),
    ("The temperature was 4 degrees and fell by 9. What is it now?", "-5"),
    ("There are 8 rows of 7 chairs. How many chairs are there?", "56"),
    ("A pizza has 8 slices; 3 friends eat 2 each. How many slices are left?", "2"),
    ("Half of 90 students walk to school. How many walk?", "45"),
)
# (id, test code): each test defines the function and checks it, so an answer that is only a code
# fence passes and one that is not code fails, compiled and run as the reference runs them
MBXP = (
    ("cpp_add_two", "#include <cassert>\nint add_two(int a, int b) { return a + b; }\n"
                    "int main() { assert(add_two(2, 3) == 5); return 0; }\n"),
    ("python_double_it", "def double_it(x):\n    return 2 * x\n\n\ndef check(candidate):\n"
                         "    assert candidate(4) == 8\n"),
    ("php_triple", "<?php\nfunction triple($x) { return 3 * $x; }\nif (triple(3) !== 9) { exit(1); }\n"),
    ("javascript_negate", "function negate(x) { return -x; }\nconst assert = require('assert');\n"
                          "assert.strictEqual(negate(4), -4);\n"),
    ("ruby_square", "def square(x)\n  x * x\nend\nraise 'wrong' unless square(5) == 25\n"),
    ("typescript_half", "function half(x: number): number { return x / 2; }\nconst assert = require('assert');\n"
                        "assert.strictEqual(half(8), 4);\n"),
    ("python_is_even", "def is_even(n):\n    return n % 2 == 0\n\n\ndef check(candidate):\n"
                       "    assert candidate(6) and not candidate(7)\n"),
    ("java_identity", "public class Main { public static void main(String[] a) {} }\n"),
)
DEMO_USER_CONF = """\
# LoadGen settings for the demo tier: short runs of a tiny model. Not valid for a submission.
# Offline is VALID while target_qps stays above the throughput (about 55 samples/s on 2 cores): the
# one query holds target_qps x min_duration x 1.1 samples and must outlast min_duration. Server
# needs about 460 queries before TTFT/TPOT early stopping can be met at p99.
mixtral-8x7b.Offline.min_duration = 1000
mixtral-8x7b.Offline.min_query_count = 1
mixtral-8x7b.Offline.target_qps = 150
mixtral-8x7b.Server.min_duration = 5000
mixtral-8x7b.Server.min_query_count = 480
mixtral-8x7b.Server.target_qps = 15
"""


def instruction(text: str) -> str:
    """Mixtral Instruct's format, as the reference's ``input`` (BOS added by the tokenizer)."""
    return f"[INST] {text} [/INST]"


def synthetic_rows(seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(8):
        words = [rng.choice(WORDS) for _ in range(rng.randint(400, 450) if i == 7 else rng.randint(6, 50))]
        if i % 3 == 0:
            words.insert(rng.randrange(len(words)), rng.choice(NON_ASCII))
        rows.append({"dataset": "OpenOrca", "id": f"orca.{i}", "question": " ".join(words).capitalize() + "?",
                     "gt_output": ""})
    for i, (question, answer) in enumerate(QUESTIONS):
        rows.append({"dataset": "GSM8K", "id": f"gsm8k.{i}",
                     "question": f"Q: {question}\nA: Let's think step by step.", "gt_output": answer})
    for problem_id, test in MBXP:
        language, _, name = problem_id.partition("_")
        rows.append({"dataset": "MBXP", "id": problem_id, "gt_output": test,
                     "question": f"Complete the following {language} code:\n```{language}\n{name}\n```"})
    for row in rows:
        row["input"] = instruction(row.pop("question"))
    return rows


def _tokenizer(texts: list[str]):
    """Mixtral's token layout (see the module docstring) with BPE pieces trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=[*SPECIAL, *byte_tokens], initial_alphabet=[])
    learner = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    learner.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    learner.train_from_iterator(texts + ["```"] * 4, trainer=trainer)
    learned = json.loads(learner.to_str())["model"]
    # newlines only through byte fallback, as in Mixtral's vocabulary, and no "```" piece: the
    # fence is "``" + "`"
    dropped = {t for t in learned["vocab"] if "\n" in t or t == "```"}
    pieces = [t for t, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1])
              if t not in dropped and t not in SPECIAL and t not in byte_tokens and t not in FENCE]
    vocab = {t: i for i, t in enumerate([*SPECIAL, *byte_tokens])}
    free = (i for i in range(len(vocab), VOCAB) if i not in FENCE.values())
    vocab |= {t: next(free) for t in pieces} | FENCE
    used = set(vocab.values())
    vocab |= {f"<unused{i}>": i for i in range(VOCAB) if i not in used}
    merges = [tuple(m) for m in learned["merges"] if "".join(m) in vocab and not dropped & {*m, "".join(m)}]
    core = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    core.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                      decoders.Strip(" ", 1, 0)])
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   model_max_length=2048)


def build(out: Path, seed: int = 0) -> None:
    """Write the pickle, ``model/`` and a demo ``user.conf`` into ``out`` (which exists)."""
    import pandas as pd
    import torch
    from transformers import MixtralConfig, MixtralForCausalLM

    rows = synthetic_rows(seed)
    tokenizer = _tokenizer([r["input"] for r in rows] + [r["gt_output"] for r in rows])
    for row in rows:
        row["tok_input"] = tokenizer(row["input"])["input_ids"]
    pd.DataFrame(rows).to_pickle(out / DATASET_FILE)
    config = MixtralConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                           max_position_embeddings=2048, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                           tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = MixtralForCausalLM(config).eval()
    unused = [i for t, i in tokenizer.get_vocab().items() if t.startswith("<unused")]
    with torch.no_grad():  # decisive greedy choices among the real pieces; answers that end at many
        model.lm_head.weight.mul_(30)  # lengths (3 to about 550 tokens); some code fences
        model.lm_head.weight[unused] = 0
        model.lm_head.weight[2].mul_(2.5)
        for token in (13, *FENCE.values()):
            model.lm_head.weight[token].mul_(1.8)
    model.save_pretrained(out / MODEL_DIR)
    tokenizer.save_pretrained(out / MODEL_DIR)
    (out / "user.conf").write_text(DEMO_USER_CONF)


def ground_truth(out: Path, outputs: dict[int, np.ndarray]) -> None:
    """OpenOrca's reference answer is the reference execution's, decoded as the scorer decodes;
    GSM8K's the number it gives (an answer without one gets -1, which it then misses)."""
    from benchmarks.mixtral.accuracy import gsm8k_number
    from benchmarks.mixtral.dataset import load_tokenizer
    from harness.unpickle import load_dataframe

    path = out / DATASET_FILE
    frame = load_dataframe(path, ("dataset", "gt_output"))
    tokenizer = load_tokenizer(out)
    truth = []
    for i, (part, given) in enumerate(zip(frame["dataset"], frame["gt_output"])):
        text = tokenizer.decode(outputs[i].tolist(), skip_special_tokens=True)
        if part == "OpenOrca":
            given = text
        elif part == "GSM8K":
            given = gsm8k_number(text.split("\nQ:")[0]).replace(",", "") or "-1"
        truth.append(given)
    frame["gt_output"] = truth
    frame.to_pickle(path)
