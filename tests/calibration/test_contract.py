"""The contract engine's inputs and outputs: token bytes of real tokenizer kinds, position
labels, and refusals that name what is refused."""

from __future__ import annotations

import pytest

from cliff import Contract
from cliff.internal import JsonCursor, token_bytes
from validate.llm_check.checkpoints import train_bpe
from validate.llm_check.tokenizer import build_tokenizer

TEXTS = ['{"ranking": [3, 1, 0]}', '{"a b": "x\\"y", "n": -1.5e3, "t": [true, null]}',
         "naïve café 東京 🙂\n\t  "]


def _metaspace_tokenizer() -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace()])
    alphabet = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "</s>"],
                                  show_progress=False)
    tok.train_from_iterator(TEXTS * 20, trainer=trainer)
    tok.add_tokens(alphabet)  # byte-fallback pieces: ordinary tokens, as in Llama's vocab
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>")


def test_token_bytes_spell_the_text_for_byte_level_bpe() -> None:
    tok = train_bpe(TEXTS * 20, 300)
    table = token_bytes(tok, len(tok) + 7)
    for text in TEXTS:
        assert b"".join(table[t] for t in tok.encode(text)) == text.encode()
    assert table[tok.eos_token_id] == b"\xff<|endoftext|>" and table[-1] == b""


def test_token_bytes_for_metaspace_and_word_level() -> None:
    tok = _metaspace_tokenizer()
    table = token_bytes(tok, len(tok))
    text = "a b"
    assert b"".join(table[t] for t in tok.encode(text, add_special_tokens=False)) in (
        text.encode(), b" " + text.encode())  # Metaspace may prefix the first word
    assert table[tok.convert_tokens_to_ids("<0x0A>")] == b"\n"
    words = build_tokenizer(8, 3)
    assert token_bytes(words, len(words))[words.convert_tokens_to_ids("]")] == b"]"


def test_json_cursor_paths() -> None:
    cur = JsonCursor()
    steps = [(b'{', "first_key", "$"), (b'"a b"', "colon", '$["a b"]'),
             (b': [', "first_value", '$["a b"][0]'), (b'1, ', "value", '$["a b"][1]'),
             (b'{"x": "s\\"', "string", '$["a b"][1].x'), (b'"}]', "after", "$"),
             (b"}", "end", "$")]
    for data, mode, path in steps:
        cur.feed(data)
        where = cur.container_path() if mode in ("first_key", "after") else cur.value_path()
        assert (cur.mode, where) == (mode, path), data
    cur.feed(b"x")
    assert cur.broken


def test_labels_of_a_schema_and_of_a_regex() -> None:
    tok = train_bpe(TEXTS * 20 + ["123-45"] * 20, 300)
    schema = {"type": "object", "properties": {"n": {"type": "array", "items":
              {"type": "integer", "minimum": 0, "maximum": 5}, "minItems": 2, "maxItems": 2}},
              "required": ["n"], "additionalProperties": False}
    ids = tok.encode('{"n": [1, 2]}') + [tok.eos_token_id]
    walk = Contract.json_schema(schema).compile(tok, len(tok), [tok.eos_token_id]).walk([ids])
    assert walk.status == ["complete"]
    assert walk.labels[0] == "$ value" and walk.labels[-1] == "$ end"
    assert {"$.n[0] value", "$.n[1] value", "$.n comma", "$.n close"} <= set(walk.labels)

    digits = tok.encode("123-45") + [tok.eos_token_id]
    walk = Contract.regex(r"\d{3}-\d{2}").compile(tok, len(tok), [tok.eos_token_id]).walk(
        [digits])
    assert walk.status == ["complete"]
    assert walk.labels[0] == "next [0-9]" and walk.labels[-1] == "next <stop>"
    assert walk.unpack(len(tok))[-1].sum() == 1


def test_refusals_name_what_is_refused() -> None:
    with pytest.raises(ValueError, match="schema: .*keyword.*uniqueItems"):
        Contract.json_schema({"type": "array", "uniqueItems": True})
    with pytest.raises(ValueError, match="schema must be a JSON object"):
        Contract.json_schema("[1]")
    with pytest.raises(ValueError, match="grammar: the contract engine refuses it"):
        Contract.lark("start: undefined_rule")
    with pytest.raises(ValueError, match="regex: the contract engine refuses it"):
        Contract.regex("(")
    kept = Contract.lark('%llguidance {"no_forcing": false}\nstart: "a"')
    assert kept.grammar.splitlines()[0] == '%llguidance {"no_forcing": true}'
