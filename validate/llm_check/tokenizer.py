"""A word-level tokenizer over the synthetic task's symbols, and token texts for any tokenizer.

The vocabulary is closed: special tokens, the prompt words (``i0..``, ``x0..``, ``y0..``,
``=>``) and the answer symbols (``[``, ``]``, ``,``, the id digits).  It is a
``tokenizers`` WordLevel model split on whitespace, wrapped as a ``PreTrainedTokenizerFast``
so ``save_pretrained`` / ``from_pretrained`` round-trip it like any Hugging Face tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

SPECIALS = ("<pad>", "<eos>", "<unk>")


def task_vocab(k: int, levels: int) -> list[str]:
    """Every symbol of the task, specials first (ids 0, 1, 2 = pad, eos, unk)."""
    words = list(SPECIALS)
    words += [f"i{i}" for i in range(k)]
    words += [f"x{v}" for v in range(levels)] + [f"y{v}" for v in range(levels)] + ["=>"]
    words += ["[", "]", ","] + [str(i) for i in range(k)]
    return words


def build_tokenizer(k: int, levels: int) -> PreTrainedTokenizerFast:
    """The task's WordLevel tokenizer (whitespace pre-tokenizer, no added BOS/EOS)."""
    vocab = {w: i for i, w in enumerate(task_vocab(k, levels))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


@dataclass(frozen=True)
class TokenInfo:
    """What the loop needs to know about a tokenizer: ``texts[t]`` is token ``t``'s text in
    an answer (for the strict parser; the contract's masks come from :func:`cliff.calibrate`'s
    engine)."""

    texts: tuple[str, ...]
    eos_id: int
    pad_id: int

    def answer_text(self, ids: list[int]) -> str:
        """The answer text of generated ids (stopping before EOS)."""
        out = []
        for t in ids:
            if t == self.eos_id:
                break
            out.append(self.texts[t])
        return "".join(out)


def token_info(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> TokenInfo:
    """Token texts (``decode([t])``; special tokens get a text no parser accepts)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("tokenizer must define eos_token (the answer's terminator), got None")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    special = set(tokenizer.all_special_ids)
    n = max(vocab_size, len(tokenizer))
    texts = []
    for t in range(n):
        if t in special or t >= len(tokenizer):
            texts.append("\x00")  # never a contract character
        else:
            texts.append(str(tokenizer.decode([t])))
    return TokenInfo(tuple(texts), int(eos), int(pad))
