"""Datasets for the local lm-eval tasks, made from a WikiText-2 text file on disk (no Hub).

lm-eval calls these as `custom_dataset` with the run's model_args and --metadata merged into
keyword arguments (lm_eval/config/evaluate_config.py: metadata = model_args | metadata), so the
`tokenizer` folder given to the model is the one that cuts the chunks here.

`wikitext_chunks` follows the perplexity scheme of jobs/methods/evaluate_common.py (llama.cpp's
tools/perplexity/perplexity.cpp): non-overlapping windows of `context` token ids, BOS replacing a
window's first id when the tokenizer adds BOS, and only the ids after the first context/2 scored.
Each window becomes one loglikelihood request: context = the window's first context/2 + 1 ids as
text, continuation = the rest as text, so lm-eval scores exactly the ids the evaluator scores.
"""

from pathlib import Path

import datasets
from transformers import AutoTokenizer


def wikitext_chunks(*, text: str, tokenizer: str, context: int = 256, chunks: int = 4,
                    **_unused) -> datasets.DatasetDict:
    tok = AutoTokenizer.from_pretrained(tokenizer)
    ids = tok(Path(text).read_text(encoding="utf-8"), add_special_tokens=False).input_ids
    adds_bos = len(tok("a").input_ids) > len(tok("a", add_special_tokens=False).input_ids)
    if adds_bos:
        ids = [tok.bos_token_id, *ids]
    first = context // 2
    docs = []
    for i in range(int(chunks)):
        window = ids[i * context:(i + 1) * context]
        if len(window) < context:
            raise ValueError(f"{text} gives {len(ids)} tokens, fewer than {chunks} x {context}")
        if adds_bos:
            window[0] = tok.bos_token_id
        docs.append({"context": tok.decode(window[:first + 1]),
                     "continuation": tok.decode(window[first + 1:]),
                     "scored_tokens": context - 1 - first})
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def chunk_results(doc: dict, results: list) -> dict:
    """Per-token perplexity over all chunks (weighted_perplexity: exp(-sum ll / sum tokens)); a
    per-document perplexity would be exp(-ll) of a whole chunk, which overflows."""
    [(loglikelihood, _is_greedy)] = results
    return {"token_perplexity": (loglikelihood, doc["scored_tokens"])}


def wikitext_next_word(*, text: str, prompts: int = 5, words: int = 16,
                       **_unused) -> datasets.DatasetDict:
    """The first `prompts` paragraphs of the text cut after `words` words; the target is the word
    that follows (next-word prediction, like LAMBADA)."""
    docs = []
    for line in Path(text).read_text(encoding="utf-8").splitlines():
        split = line.split()
        if len(split) > words and not line.lstrip().startswith("="):  # a paragraph, not a heading
            docs.append({"context": " ".join(split[:words]), "target": split[words]})
        if len(docs) == int(prompts):
            break
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
