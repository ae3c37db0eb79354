r"""The output contract: a JSON schema, Lark grammar or regex, walked token by token.

The contract engine is ``llguidance`` (imported here, so only by code that calibrates).  A
:class:`Contract` is the grammar text; :meth:`Contract.compile` binds it to a tokenizer and
an output vocabulary and returns a :class:`Walker`, which takes rollouts (token ids) and
returns, at every *viable* position (the answer so far can still be completed into a
document of the contract), the packed mask of the contract-valid next tokens and the
position's label (:mod:`cliff._calibration.labels`).

Every grammar is built with ``no_forcing``: otherwise llguidance lets forced text through
only in its canonical tokenisation and the mask is a strict subset of the valid set
(``"],`` could be written ``"`` ``]`` ``,`` by a model, and is valid either way).  Token
texts are the tokens' raw bytes (:func:`token_bytes`), so byte-level BPE, Metaspace and
word-level vocabularies are all read the same way; special tokens are never text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cliff._calibration.labels import JsonCursor, Probe, label

__all__ = ["Contract", "Walk", "Walker", "token_bytes"]

Kind = Literal["json_schema", "lark", "regex"]


@dataclass(frozen=True)
class Contract:
    """An output contract as grammar text for the engine.

    Build one with :meth:`json_schema`, :meth:`lark` or :meth:`regex`; each checks the
    grammar with the engine and raises ``ValueError`` naming what it refuses.

    Attributes
    ----------
    kind : {'json_schema', 'lark', 'regex'}
    source : str
        The schema (as JSON text), grammar or pattern as given.
    grammar : str
        The engine's grammar (a Lark grammar with ``no_forcing`` set).
    json_labels : bool
        Whether the answers are JSON texts, labelled by JSONPath (the labels are listed in
        the Notes of :func:`cliff.calibrate`); otherwise a position is labelled by the bytes
        the contract allows next.
    """

    kind: Kind
    source: str
    grammar: str
    json_labels: bool = True

    @classmethod
    def json_schema(cls, schema: dict[str, Any] | str) -> Contract:
        """Documents that validate against a JSON schema (``dict`` or JSON text).

        Examples
        --------
        >>> Contract.json_schema({"type": "array", "items": {"type": "integer"}}).kind
        'json_schema'
        """
        text = schema if isinstance(schema, str) else json.dumps(schema)
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"schema must be JSON text, got {text[:80]!r} ({err})") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"schema must be a JSON object, got {type(parsed).__name__}")
        return cls._checked("json_schema", text, f"start: %json {json.dumps(parsed)}")

    @classmethod
    def lark(cls, grammar: str, *, json_labels: bool = False) -> Contract:
        """Texts of a Lark grammar (llguidance's dialect; ``start`` is the start rule).

        ``json_labels``: the grammar's texts are JSON, label positions by JSONPath.  The
        grammar's own ``%llguidance {...}`` options are kept, with ``no_forcing`` set.
        """
        body, options = _options(grammar)
        return cls._checked("lark", grammar, body, options, json_labels)

    @classmethod
    def regex(cls, pattern: str, *, json_labels: bool = False) -> Contract:
        """Texts that match a regular expression in full (Rust ``regex`` syntax)."""
        import llguidance

        return cls._checked("regex", pattern, f"start: /{llguidance.regex_to_lark(pattern, 'd')}/",
                            None, json_labels)

    @classmethod
    def _checked(cls, kind: Kind, source: str, body: str,
                 options: dict[str, Any] | None = None, json_labels: bool = True) -> Contract:
        import llguidance

        header = f"%llguidance {json.dumps({**(options or {}), 'no_forcing': True})}\n"
        grammar = llguidance.LLMatcher.grammar_from_lark(header + body)
        error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
        if error:
            raise ValueError(_refusal(kind, messages[0] if messages else "unknown error"))
        return cls(kind, source, grammar, json_labels)

    def compile(self, tokenizer: Any, vocab_size: int, stop_ids: Sequence[int]) -> Walker:
        """A walker of this contract for ``tokenizer``'s tokens: its ``walk(rollouts)``
        returns, at every viable position of each rollout (token ids), the packed mask of the
        contract-valid next tokens and the position's label.

        Parameters
        ----------
        tokenizer : transformers tokenizer
        vocab_size : int
            The model's output vocabulary: its lm_head rows (151,936 for Qwen3), which may
            exceed ``len(tokenizer)``; rows without a token are never valid.
        stop_ids : sequence of int
            Every token that ends an answer; valid exactly where the document is complete.
        """
        return Walker(self, tokenizer, vocab_size, stop_ids)


_ARG = {"json_schema": "schema", "lark": "grammar", "regex": "regex"}


def _options(grammar: str) -> tuple[str, dict[str, Any]]:
    """The grammar without its ``%llguidance {...}`` line, and that line's options (kept;
    ``no_forcing`` is set on top of them)."""
    body, options = [], {}
    for line in grammar.splitlines():
        if line.lstrip().startswith("%llguidance"):
            try:
                options.update(json.loads(line.split("%llguidance", 1)[1]))
            except json.JSONDecodeError as err:
                raise ValueError(f"grammar: its %llguidance line must hold a JSON object, got "
                                 f"{line!r} ({err})") from None
        else:
            body.append(line)
    return "\n".join(body), options


def _refusal(kind: Kind, message: str) -> str:
    """The engine's refusal, first line, with the keyword it names when it names one."""
    first = message.strip().splitlines()[0] if message.strip() else message
    first = re.sub(r"^at \d+\(\d+\): ", "", first)
    keys = re.search(r"Unimplemented keys: \[(.*?)\]", first)
    if keys:
        return (f"{_ARG[kind]}: the contract engine does not implement the keyword(s) "
                f"{keys.group(1)}: {first}")
    return f"{_ARG[kind]}: the contract engine refuses it: {first}"


# ---------------------------------------------------------------------------------------------
# token texts


def token_bytes(tokenizer: Any, vocab_size: int) -> list[bytes]:
    """The raw bytes each token id stands for in an answer, for ids ``0 .. vocab_size-1``.

    Byte-level BPE tokens (GPT-2 alphabet) are mapped back to their bytes; Metaspace tokens
    have ``▁`` as a space and ``<0xNN>`` as byte ``NN``; other tokens are their UTF-8 text.
    Special tokens are ``b"\\xff" + name`` (the engine's marker: never text), and ids past
    the tokenizer (padding rows of the output layer) are empty (never valid).
    """
    special = set(tokenizer.all_special_ids) | _added_special(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(min(len(tokenizer), vocab_size))))
    decode = _decoder(tokenizer)
    out = []
    for t, piece in enumerate(pieces):
        if piece is None:
            out.append(b"")
        elif t in special:
            out.append(b"\xff" + piece.encode())
        else:
            out.append(decode(piece))
    return out + [b""] * (vocab_size - len(out))


def _added_special(tokenizer: Any) -> set[int]:
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return {int(t) for t, tok in added.items() if getattr(tok, "special", False)}


def _decoder(tokenizer: Any) -> Any:
    """piece -> bytes for the tokenizer's model (read from its serialised decoder)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = json.loads(backend.to_str()) if backend is not None else {}
    kinds = json.dumps(spec.get("decoder")) + json.dumps(spec.get("pre_tokenizer"))
    if '"ByteLevel"' in kinds:
        table = {ch: b for b, ch in _bytes_to_unicode().items()}
        return lambda piece: bytes(table[ch] for ch in piece if ch in table)
    if '"Metaspace"' in kinds or '"ByteFallback"' in kinds:
        return _metaspace
    return lambda piece: piece.encode()


def _metaspace(piece: str) -> bytes:
    m = re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", piece)
    if m:
        return bytes([int(m.group(1), 16)])
    return piece.replace("\u2581", " ").encode()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (the byte-level BPE alphabet)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return {b: chr(b) if b in keep else chr(next(extra)) for b in range(256)}


# ---------------------------------------------------------------------------------------------
# walking rollouts


@dataclass
class Walk:
    """The viable positions of a batch of rollouts.

    Attributes
    ----------
    rows, steps : ndarray of int64, shape ``(N,)``
        Rollout and answer index of each viable position, rollout by rollout.
    masks : ndarray of int32, shape ``(N, W)``
        Packed contract-valid masks, ``W = ceil(V / 32)``; bit ``t % 32`` of word
        ``t // 32`` is token ``t`` (:meth:`unpack`).
    labels : list of str, length ``N``
    status : list of str, one per rollout
        ``'complete'`` (a stop token ended a complete document), ``'left'`` (a token the
        contract does not allow), ``'open'`` (still viable when the tokens ran out).
    entered : ndarray of bool, one per rollout
        Whether the rollout's first token was contract-valid.
    """

    rows: NDArray[np.int64]
    steps: NDArray[np.int64]
    masks: NDArray[np.int32]
    labels: list[str]
    status: list[str]
    entered: NDArray[np.bool_]

    def unpack(self, vocab_size: int, select: Any = slice(None)) -> NDArray[np.bool_]:
        """Boolean masks ``(n, vocab_size)`` of the positions ``select``."""
        packed = np.ascontiguousarray(self.masks[select]).view(np.uint8)
        return np.unpackbits(packed, axis=-1, bitorder="little")[:, :vocab_size].astype(bool)


class Walker:
    """A contract compiled for one tokenizer: walks rollouts, one matcher per batch row.

    Matchers are kept and ``reset()`` between batches (a new matcher costs several times a
    mask); a batch's masks are filled in parallel by the engine's thread pool.
    """

    def __init__(self, contract: Contract, tokenizer: Any, vocab_size: int,
                 stop_ids: Sequence[int]) -> None:
        import llguidance

        if not stop_ids:
            raise ValueError("stop_ids must name at least one stop token, got none")
        self.contract = contract
        self.vocab_size = int(vocab_size)
        self.stop_ids = [int(t) for t in stop_ids]
        self.texts = token_bytes(tokenizer, self.vocab_size)
        wrapper = llguidance.TokenizerWrapper(_Tokens(tokenizer, self.texts, self.stop_ids))
        self._tokenizer = llguidance.LLTokenizer(wrapper, n_vocab=self.vocab_size,
                                                 eos_token=self.stop_ids)
        self._limits = llguidance.LLParserLimits(verbose_errors=False)
        self._executor = llguidance.LLExecutor()
        self._matchers: list[Any] = []
        single = {t[0]: i for i, t in enumerate(self.texts) if len(t) == 1}
        self.probe = Probe(single, self.stop_ids)
        self.words = (self.vocab_size + 31) // 32
        self._stops = np.zeros(self.vocab_size, dtype=bool)
        self._stops[[t for t in self.stop_ids if t < self.vocab_size]] = True
        self._matcher_pool(1)  # compile now, so a grammar error surfaces before any rollout

    def _matcher_pool(self, n: int) -> list[Any]:
        import llguidance

        while len(self._matchers) < n:
            m = llguidance.LLMatcher(self._tokenizer, self.contract.grammar, log_level=0,
                                     limits=self._limits)
            if m.is_error():
                raise ValueError(_refusal(self.contract.kind, m.get_error()))
            self._matchers.append(m)
        for m in self._matchers[:n]:
            m.reset()
        return self._matchers[:n]

    def walk(self, rollouts: Sequence[Sequence[int]]) -> Walk:
        """Walk each rollout through the contract (each cut at its first stop token).

        At each step every rollout that is still viable gets its mask; its token is then
        consumed if the mask allows it, and the rollout ends if it is a stop token or not
        allowed.
        """
        from llguidance.numpy import fill_next_token_bitmask_par

        n = len(rollouts)
        matchers = self._matcher_pool(n)
        cursors = [JsonCursor() if self.contract.json_labels else None for _ in range(n)]
        status = ["open"] * n
        entered = np.zeros(n, dtype=bool)
        alive = [i for i in range(n) if len(rollouts[i])]
        rows, steps, masks, labels = [], [], [], []
        buf = np.zeros((n, self.words), dtype=np.int32)
        step = 0
        while alive:
            fill_next_token_bitmask_par(self._executor, [(matchers[i], i) for i in alive], buf)
            go = []
            for i in alive:
                tok = int(rollouts[i][step])
                row = buf[i].copy()
                rows.append(i)
                steps.append(step)
                masks.append(row)
                labels.append(label(cursors[i], row, self.probe, step))
                ok = bool(int(row[tok >> 5]) >> (tok & 31) & 1)
                if step == 0:
                    entered[i] = ok
                if not ok:
                    status[i] = "left"
                elif self._stops[tok]:
                    status[i] = "complete"
                else:
                    go.append(i)
            for i in go:
                matchers[i].consume_token(int(rollouts[i][step]))  # allowed: cannot fail
                cursor = cursors[i]
                if cursor is not None:
                    cursor.feed(self.texts[int(rollouts[i][step])])
            step += 1
            alive = [i for i in go if step < len(rollouts[i])]
        order = np.lexsort((np.array(steps), np.array(rows)))  # rollout by rollout
        return Walk(np.array(rows, dtype=np.int64)[order], np.array(steps, dtype=np.int64)[order],
                    np.array(masks, dtype=np.int32).reshape(-1, self.words)[order],
                    [labels[i] for i in order], status, entered)


class _Tokens:
    """What ``llguidance.TokenizerWrapper`` reads: token bytes, stop and special ids, and an
    encoder (the engine tokenises only to compute forced text, which ``no_forcing`` skips)."""

    def __init__(self, tokenizer: Any, texts: list[bytes], stop_ids: list[int]) -> None:
        self.eos_token_id = stop_ids[0]
        self.bos_token_id = None
        self.tokens = texts
        self.special_token_ids = [t for t, b in enumerate(texts) if b[:1] == b"\xff"]
        self._tokenizer = tokenizer

    def __call__(self, text: bytes | str) -> list[int]:
        s = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        return list(self._tokenizer.encode(s, add_special_tokens=False))
