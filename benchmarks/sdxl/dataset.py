"""The 5,000 COCO-2014 captions, tokenized for both SDXL tokenizers as the reference's ``coco.py``.

Data folder layout: ``captions/captions_source.tsv`` (tab-separated, with at least the columns
``id`` and ``caption``; LoadGen sample i is row i), ``latents/latents.pt`` (the one initial latent
of every prompt; see ``backend.py``) and ``model/`` (the pipeline, whose ``tokenizer`` and
``tokenizer_2`` folders tokenize the captions). Each caption is tokenized by both tokenizers,
padded to their 77 tokens and truncated there, as the reference does once at start-up; a sample is
the int64 array [2, 77] of the two rows. The SUT never sees text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import DataError

CAPTIONS = Path("captions") / "captions_source.tsv"
MODEL_DIR = "model"
TOKENIZERS = ("tokenizer", "tokenizer_2")


def read_captions(data_dir: Path) -> list[tuple[int, str]]:
    """(id, caption) per row in LoadGen order; a missing, duplicate or non-integer id, or an empty
    caption, is named with its row."""
    import pandas as pd

    path = data_dir / CAPTIONS
    if not path.is_file():
        raise DataError(f"{path} is missing: put the MLPerf COCO-2014 captions (captions_source.tsv) there, see "
                        f"benchmarks/sdxl/README.md, or run without --data to use the demo tier")
    try:
        frame = pd.read_csv(path, sep="\t", dtype={"caption": str}, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{path} is not a tab-separated captions file ({exc}): use the MLPerf captions_source.tsv") \
            from exc
    missing = [column for column in ("id", "caption") if column not in frame.columns]
    if missing:
        raise DataError(f"{path} has no {' or '.join(missing)} column (it has {', '.join(map(str, frame.columns))}): "
                        f"use the MLPerf captions_source.tsv, whose columns include id and caption")
    if not len(frame):
        raise DataError(f"{path} lists no captions")
    rows = []
    seen: set[int] = set()
    for row, (ident, caption) in enumerate(zip(frame["id"].tolist(), frame["caption"].tolist()), 2):
        text = str(ident).strip()
        if not text.lstrip("-").isdigit():
            raise DataError(f"{path}:{row}: the id is {'missing' if not text else repr(text)}; every caption needs "
                            f"its COCO annotation id (an integer)")
        if int(text) in seen:
            raise DataError(f"{path}:{row}: id {text} appears twice; each caption has its own id")
        if not caption.strip():
            raise DataError(f"{path}:{row}: the caption of id {text} is empty; restore it from the MLPerf file")
        seen.add(int(text))
        rows.append((int(text), caption))
    return rows


def load_tokenizers(data_dir: Path) -> list:
    """The pipeline's two CLIP tokenizers (``model/tokenizer`` and ``model/tokenizer_2``)."""
    from transformers import CLIPTokenizer

    found = []
    for name in TOKENIZERS:
        folder = data_dir / MODEL_DIR / name
        if not folder.is_dir():
            raise DataError(f"{folder} is missing: the SDXL pipeline folder needs its {name} part; copy the whole "
                            f"pipeline snapshot (see benchmarks/sdxl/README.md)")
        try:
            found.append(CLIPTokenizer.from_pretrained(str(folder), local_files_only=True))
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"{folder} is not a CLIP tokenizer folder ({exc}): copy it again from the pipeline "
                            f"snapshot") from exc
    return found


def tokenize(tokenizers: list, captions: list[str]) -> np.ndarray:
    """int64 [N, 2, 77]: each caption padded to (and cut at) each tokenizer's 77 tokens."""
    rows = [np.asarray(tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True)
                       ["input_ids"], dtype=np.int64) for tok in tokenizers]
    return np.stack(rows, axis=1)


class Dataset:
    """QSL samples: the token ids of every caption, made once (the reference's start-up step)."""

    def __init__(self, data_dir: Path) -> None:
        self.captions = read_captions(data_dir)
        self.tokens = tokenize(load_tokenizers(data_dir), [caption for _, caption in self.captions])

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.tokens[index]

    def load_samples(self, indices: list[int]) -> None:
        pass  # every sample is in memory from the start: 5,000 x 2 x 77 token ids

    def unload_samples(self, indices: list[int]) -> None:
        pass


def load(data_dir: Path) -> Dataset:
    return Dataset(data_dir)
