"""Mixtral scoring as the v4.1 ``evaluate-accuracy.py``: ROUGE on OpenOrca, GSM8K exact answers,
MBXP pass@1, gen_len, gen_num, gen_tok_len and tokens_per_sample.

Token ids are decoded with special tokens skipped.

* OpenOrca: ROUGE-1/2/L/Lsum as for Llama-2 (strip, Punkt sentences, stemming, mean x 100 to 4
  places); ``gen_len`` is the characters of these post-processed predictions only.
* GSM8K: the answer is the text before the first ``"\\nQ:"``; its number is the first one after the
  last ``"The answer is"`` if that phrase is there and has one, else the last number of the text
  (numbers: ``-?[\\d,]*\\.?\\d+``); commas dropped; correct when it equals ``gt_output`` as floats. A
  prediction without a number is wrong; the score is 100 x correct / GSM8K samples.
* MBXP: ``id`` is ``<language>_<entry point>``; only cpp, python, php, javascript, ruby and
  typescript are scored (other languages are skipped, not counted). The program is the answer cut
  at its first code fence, ``\\_`` turned into ``_`` (and, for Python, leading blanks stripped),
  then the test code: for Python joined by newlines and followed by ``check(<entry point>)``, for
  the others appended as is. Each program runs in the evaluator image's sandbox
  (``harness.sandbox``), never on this machine, within 20 s; pass@1 = 100 x passed / scored.
* ``gen_num`` counts the scored responses, ``gen_tok_len`` their tokens, ``tokens_per_sample`` =
  gen_tok_len / gen_num to 1 place.

A metric that cannot be computed is ``None``, with the reason in ``unscored``: MBXP without a
Docker engine or the evaluator image, or a part with no samples in a subset (the reference would
divide by zero). The other metrics are still reported. ``mbxp_skipped`` counts the MBXP answers in
languages the reference does not score.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.mixtral.dataset import load_tokenizer, read_frame
from harness.errors import HarnessError
from harness.metrics.rouge import ROUGE_KEYS, postprocess, rouge

KEYS = (*ROUGE_KEYS, "gsm8k", "mbxp", "gen_len", "gen_num", "gen_tok_len", "tokens_per_sample")
LANGUAGES = ("cpp", "python", "php", "javascript", "ruby", "typescript")
TIMEOUT_S = 20.0
NUMBER = re.compile(r"-?[\d,]*\.?\d+", re.MULTILINE | re.DOTALL | re.IGNORECASE)


# -- GSM8K ---------------------------------------------------------------------------------------

def gsm8k_number(text: str, delimiter: str = "The answer is") -> str:
    """The number an answer gives, as the reference picks it (commas kept)."""
    if delimiter in text:
        after = NUMBER.findall(text.split(delimiter)[-1])
        if after:
            return after[0]
    numbers = NUMBER.findall(text)
    return numbers[-1] if numbers else ""


def as_float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError, OverflowError):
        return None


def gsm8k_correct(prediction: str, reference: str) -> bool:
    given = as_float(gsm8k_number(prediction.split("\nQ:")[0]).replace(",", ""))
    return given is not None and given == as_float(reference)


# -- MBXP ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    language: str
    entry_point: str
    program: str


def mbxp_problem(problem_id: str, answer: str, test: str) -> Problem | None:
    """The program to run for one MBXP answer; None for a language the reference does not score."""
    language, _, entry_point = problem_id.partition("_")
    if language not in LANGUAGES:
        return None
    solution = answer.split("```", 1)[0].replace("\\_", "_")
    if language == "python":
        program = f"{solution.lstrip()}\n{test}\ncheck({entry_point})"
    else:
        program = solution + test
    return Problem(language, entry_point, program)


def mbxp_pass_rate(problems: list[Problem], workers: int | None = None) -> tuple[float | None, str]:
    """pass@1 over ``problems``, each run in the evaluator sandbox; (None, why) when none can run."""
    if not problems:
        return None, "no MBXP answer in a scored language among these samples"
    from harness import sandbox

    try:
        sandbox.check_available(sandbox.IMAGE)
    except HarnessError as exc:  # e.g. in a benchmark container, which never gets the engine
        return None, (f"MBXP not scored: {exc}. A run made without one is scored afterwards where the "
                      f"engine is: `harness evaluate RUN_DIR`")
    box = sandbox.Sandbox(sandbox.IMAGE, sandbox.Limits())
    try:
        outcomes = box.run_many([(p.language, p.program, TIMEOUT_S) for p in problems],
                                workers or os.cpu_count() or 1)
    except HarnessError as exc:  # the engine stopped starting containers: no verdict is complete
        return None, f"MBXP not scored: {exc}"
    return 100.0 * sum(o.passed for o in outcomes) / len(problems), ""


# -- the whole set -------------------------------------------------------------------------------

def score(outputs: dict[int, np.ndarray], data_dir: Path) -> dict:
    """``outputs`` maps dataset index -> generated token ids, in accuracy-log order."""
    frame = read_frame(data_dir)
    parts, ids, answers = list(frame["dataset"]), list(frame["id"]), list(frame["gt_output"])
    tokenizer = load_tokenizer(data_dir)
    order = list(outputs)
    texts = dict(zip(order, tokenizer.batch_decode([outputs[i].tolist() for i in order], skip_special_tokens=True)))
    by_part = {part: [i for i in order if parts[i] == part] for part in ("OpenOrca", "GSM8K", "MBXP")}
    metrics: dict = {}
    unscored: dict[str, str] = {}

    orca = by_part["OpenOrca"]
    predictions = [postprocess(texts[i]) for i in orca]
    if orca:
        metrics |= rouge(predictions, [postprocess(str(answers[i])) for i in orca])
    else:
        metrics |= dict.fromkeys(ROUGE_KEYS)
        unscored["ROUGE"] = "no OpenOrca samples among these"

    gsm8k = by_part["GSM8K"]
    metrics["gsm8k"] = 100.0 * sum(gsm8k_correct(texts[i], str(answers[i])) for i in gsm8k) / len(gsm8k) \
        if gsm8k else None
    if not gsm8k:
        unscored["gsm8k"] = "no GSM8K samples among these"

    problems = [p for i in by_part["MBXP"] if (p := mbxp_problem(str(ids[i]), texts[i], str(answers[i])))]
    metrics["mbxp"], why = mbxp_pass_rate(problems)
    if metrics["mbxp"] is None:
        unscored["mbxp"] = why
    metrics["mbxp_skipped"] = len(by_part["MBXP"]) - len(problems)  # languages the reference does not score

    tokens = sum(len(outputs[i]) for i in order)
    metrics |= {"gen_len": sum(len(p) for p in predictions), "gen_num": len(order), "gen_tok_len": tokens,
                "tokens_per_sample": round(tokens / len(order), 1) if order else 0.0}
    if unscored:
        metrics["unscored"] = "; ".join(f"{k}: {why}" for k, why in unscored.items())
    return metrics


def accuracy_text(metrics: dict) -> str:
    """The line the v4.1 checker's patterns read, as the reference prints it (an unscored metric
    prints as None, which no pattern accepts)."""
    return "\nResults\n\n" + repr({k: metrics.get(k) for k in KEYS}) + "\n"
