r"""The structural positions of a batch of completions, in the layout the scheduler takes.

A trainer holds completions ``(B, T)`` and a mask of the tokens that count;
:class:`cliff.LambdaScheduler` takes log-probs ``[S, P, V]`` at structural positions, grouped
in ``P`` slots.  :class:`ContractPositions` walks every completion through the output contract
(the walker of :meth:`cliff.Contract.compile`), keeps the viable positions that carry a choice
(some tokens valid, not all), groups them by label (or by a function of the label) and pads
every group to the batch's largest count, marking the padding absent; :class:`PositionBatch`
holds the result and each completion's status.

Layout of a :class:`PositionBatch` with ``P`` groups and ``S`` slots per group::

    rows[i, j], steps[i, j]   completion and token index of group j's i-th position
    present[i, j]             False past group j's count: the slot is padding
    take(logprobs)[i, j]      logprobs[rows[i, j], steps[i, j]]          (S, P, V)
    valid()[i, j]             the contract-valid tokens there; all False where absent

``steps`` index the completion tokens: the log-probs at step ``t`` are the model's
distribution of the token ``completion_ids[:, t]``, given the prompt and the tokens before it
(what a trainer's ``logits[:, -T - 1:-1]`` holds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cliff._calibration.contract import Contract, Walk
from cliff._calibration.reduce import is_tensor

__all__ = ["ContractPositions", "PositionBatch"]

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

STATUSES = ("complete", "left", "truncated")
"""A completion's status: it ``complete``\\ d a document (a stop token where the contract
allows one), ``left`` the contract (at the token :attr:`PositionBatch.left_at`), or was
``truncated``: still viable when its tokens ran out (cut by the length limit)."""

_POPCOUNT = np.array([bin(b).count("1") for b in range(256)], dtype=np.int64)


@dataclass(frozen=True)
class PositionBatch:
    """The structural positions of one batch of completions, grouped in ``P`` slots.

    Attributes
    ----------
    groups : tuple of str
        The ``P`` group names, one per slot (scheduler position) ``j``.
    rows, steps : ndarray of int64, shape ``(S, P)``
        Completion and token index of each slot; padding slots repeat a real position.
    present : ndarray of bool, shape ``(S, P)``
        Whether the slot holds a position (``False``: padding, absent for the scheduler).
    labels : ndarray of str, shape ``(S, P)``
        The label of each slot's position (``""`` where absent).
    masks : ndarray of int32, shape ``(S, P, W)``
        Packed contract-valid masks, ``W = ceil(V / 32)`` (bit ``t % 32`` of word ``t // 32``
        is token ``t``); zero where absent.
    vocab_size : int
        ``V``, the model's output rows.
    status : tuple of str
        Per completion: ``'complete'``, ``'left'`` or ``'truncated'``.
    left_at : ndarray of int64, shape ``(B,)``
        Index of the token at which the completion left the contract; -1 where it did not.
    """

    groups: tuple[str, ...]
    rows: IntArray
    steps: IntArray
    present: BoolArray
    labels: NDArray[np.str_]
    masks: NDArray[np.int32]
    vocab_size: int
    status: tuple[str, ...]
    left_at: IntArray

    @property
    def n_slots(self) -> int:
        """``S``, the largest count of any group in the batch."""
        return int(self.rows.shape[0])

    @property
    def counts(self) -> IntArray:
        """Positions per group, ``(P,)``."""
        return np.asarray(self.present.sum(axis=0), dtype=np.int64)

    @property
    def parse_valid_frac(self) -> float:
        """Share of the completions that completed a document of the contract."""
        return self._share("complete")

    @property
    def truncated_frac(self) -> float:
        """Share of the completions cut by the length limit while still viable."""
        return self._share("truncated")

    @property
    def left_frac(self) -> float:
        """Share of the completions that left the contract."""
        return self._share("left")

    def _share(self, status: str) -> float:
        return self.status.count(status) / len(self.status) if self.status else float("nan")

    def valid(self, device: Any = None) -> Any:
        """The contract-valid masks ``(S, P, V)``: numpy bool, or with ``device`` a torch bool
        tensor unpacked there from the packed words (``V / 8`` bytes a slot cross, not
        ``V``).  Absent slots are all False."""
        n_slots, n_groups, words = self.masks.shape
        flat = np.ascontiguousarray(self.masks.reshape(-1, words))
        if device is None:
            bits = np.unpackbits(flat.view(np.uint8), axis=-1, bitorder="little")
            return bits[:, : self.vocab_size].astype(bool).reshape(n_slots, n_groups,
                                                                   self.vocab_size)
        import torch

        packed = torch.from_numpy(flat.view(np.uint8)).to(device)  # (n, 4W) little-endian
        shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
        on = (packed.unsqueeze(-1) >> shifts) & 1  # (n, 4W, 8)
        return on.reshape(len(flat), -1)[:, : self.vocab_size].bool().reshape(
            n_slots, n_groups, self.vocab_size)

    def take(self, logprobs: Any) -> Any:
        """The rows of ``logprobs`` ``(B, T, V)`` (numpy or torch, on any device) at the slots:
        ``(S, P, V)``, absent slots holding a real position's row."""
        if is_tensor(logprobs):
            import torch

            rows = torch.as_tensor(self.rows, device=logprobs.device)
            steps = torch.as_tensor(self.steps, device=logprobs.device)
            return logprobs[rows, steps]
        return np.asarray(logprobs)[self.rows, self.steps]

    def update(self, scheduler: Any, teacher_logprobs: Any, reference_logprobs: Any) -> Any:
        """Fold this batch into a :class:`cliff.LambdaScheduler`; return the lambda to use.

        ``teacher_logprobs`` and ``reference_logprobs`` are the teacher's and the frozen
        reference's log-probs ``(B, T, V)`` over the completions' tokens (numpy or torch;
        torch is reduced on its device).  The scheduler first grows to this batch's groups
        (:meth:`cliff.LambdaScheduler.grow`).  A batch with no position leaves the scheduler
        as it was and returns its last lambda (``min(target, 1)`` before any update).
        """
        scheduler.grow(len(self.groups))
        if self.n_slots == 0:
            last = scheduler.lambda_
            if last is None:
                first = min(scheduler.target_lambda, 1.0)
                return first if scheduler.mode == "global" else np.full(len(self.groups), first)
            return last
        device = teacher_logprobs.device if is_tensor(teacher_logprobs) else None
        return scheduler.update(self.take(teacher_logprobs), self.take(reference_logprobs),
                                self.valid(device))


class ContractPositions:
    r"""Finds the structural positions of completions under an output contract.

    Parameters
    ----------
    contract : Contract or dict
        The output contract; a ``dict`` is a JSON schema.
    tokenizer : transformers tokenizer
        The tokenizer of the completions.
    vocab_size : int
        The model's output vocabulary (lm_head rows; may exceed ``len(tokenizer)``).
    stop_ids : sequence of int
        Every token that ends a completion.
    group : callable, optional
        ``label -> str or None``: the group of a position from its label (``'$.ranking[3]
        value'``, ``'$ end'``, ...; :meth:`cliff.Contract.compile`); ``None`` leaves the
        position out.  Default: every label its own group.
    groups : sequence of str, optional
        Fixed groups, in slot order; positions of any other group are left out.  Default:
        groups are added in the order they first occur, and ``groups`` grows.

    Attributes
    ----------
    groups : list of str
        The slots so far (scheduler position ``j`` is ``groups[j]``).
    walker : Walker
        The compiled contract.

    Notes
    -----
    A position is kept when the completion before it can still be completed into a document
    (viable) and the contract allows some tokens there but not every one: the positions
    :func:`cliff.calibrate` measures.  A completion is walked up to its first stop token or
    the first token the contract refuses; its tokens are ``completion_ids[i, :n_i]`` with
    ``n_i`` the row's count in ``completion_mask``, which must mark a prefix of the row.

    Examples
    --------
    A word-level tokenizer over JSON pieces, and three completions of a ranking: one
    complete, one that closes the list too early, one cut by the length limit.

    >>> from tokenizers import Tokenizer, models
    >>> from transformers import PreTrainedTokenizerFast
    >>> pieces = ["<eos>", "<unk>", "{", "}", '"ranking"', ":", "[", "]", ",", "0", "1", "2"]
    >>> tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(
    ...     {p: i for i, p in enumerate(pieces)}, unk_token="<unk>")), eos_token="<eos>",
    ...     unk_token="<unk>")
    >>> ids = {"type": "integer", "minimum": 0, "maximum": 2}
    >>> schema = {"type": "object", "required": ["ranking"], "additionalProperties": False,
    ...           "properties": {"ranking": {"type": "array", "items": ids,
    ...                                      "minItems": 3, "maxItems": 3}}}
    >>> finder = ContractPositions(schema, tok, len(tok), [tok.eos_token_id])
    >>> text = ['{ "ranking" : [ 2 , 0 , 1 ] } <eos>', '{ "ranking" : [ 2 ] } <eos>',
    ...         '{ "ranking" : [ 2 ,']
    >>> rows = [tok.convert_tokens_to_ids(t.split()) for t in text]
    >>> completion_ids = np.zeros((3, 12), dtype=np.int64)
    >>> completion_mask = np.zeros((3, 12), dtype=np.int64)
    >>> for i, row in enumerate(rows):
    ...     completion_ids[i, : len(row)], completion_mask[i, : len(row)] = row, 1
    >>> batch = finder.find(completion_ids, completion_mask)
    >>> batch.status, batch.left_at.tolist(), batch.parse_valid_frac
    (('complete', 'left', 'truncated'), [-1, 5, -1], 0.3333333333333333)
    >>> batch.groups[4:6], batch.counts[4:6].tolist(), batch.n_slots   # 4 commas in all
    (('$.ranking[0] value', '$.ranking comma'), [3, 4], 4)
    >>> batch.valid().shape                                             # (S, P, V)
    (4, 11, 12)
    """

    def __init__(self, contract: Contract | dict[str, Any], tokenizer: Any, vocab_size: int,
                 stop_ids: Sequence[int], *, group: Callable[[str], str | None] | None = None,
                 groups: Sequence[str] | None = None) -> None:
        contract = contract if isinstance(contract, Contract) else Contract.json_schema(contract)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int | np.integer) \
                or vocab_size < 2:
            raise ValueError(f"vocab_size must be an integer >= 2 (the model's output rows), "
                             f"got {vocab_size!r}")
        if groups is not None and (isinstance(groups, str) or len(set(groups)) != len(groups)):
            raise ValueError(f"groups must be a sequence of distinct group names, got {groups!r}")
        self.walker = contract.compile(tokenizer, int(vocab_size), list(stop_ids))
        self.vocab_size = int(vocab_size)
        self.group = group
        self.fixed = groups is not None
        self.groups: list[str] = list(groups) if groups is not None else []

    def find(self, completion_ids: Any, completion_mask: Any = None) -> PositionBatch:
        """The structural positions of a batch of completions.

        Parameters
        ----------
        completion_ids : array_like or torch.Tensor of int, shape ``(B, T)``
            The completions' tokens (right-padded).
        completion_mask : array_like or torch.Tensor, shape ``(B, T)``, optional
            1 where a token counts (a prefix of each row); default every token.

        Returns
        -------
        PositionBatch
        """
        ids = _host(completion_ids)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"completion_ids must be integer token ids of shape (B, T), got "
                             f"{ids.dtype} of shape {ids.shape}")
        lengths = _lengths(ids, completion_mask)
        walk = self.walker.walk([row[:n].tolist() for row, n in zip(ids, lengths, strict=True)])
        return self._batch(walk, len(ids))

    def _batch(self, walk: Walk, n_completions: int) -> PositionBatch:
        count = _POPCOUNT[np.ascontiguousarray(walk.masks).view(np.uint8)].sum(axis=-1)
        keep = np.flatnonzero((count > 0) & (count < self.vocab_size))
        named = [(int(i), self._group_of(walk.labels[i])) for i in keep]
        picks: dict[str, list[int]] = {}
        for i, name in named:
            if name is None or (self.fixed and name not in self.groups):
                continue
            if name not in self.groups:
                self.groups.append(name)
            picks.setdefault(name, []).append(i)
        n_groups = len(self.groups)
        n_slots = max((len(v) for v in picks.values()), default=0)
        filler = next(iter(picks.values()))[0] if picks else 0
        pick = np.full((n_slots, n_groups), filler, dtype=np.int64)
        present = np.zeros((n_slots, n_groups), dtype=bool)
        for j, name in enumerate(self.groups):
            where = picks.get(name, [])
            pick[: len(where), j] = where
            present[: len(where), j] = True
        if len(walk.rows):
            rows, steps = walk.rows[pick], walk.steps[pick]
            masks = np.where(present[..., None], walk.masks[pick], 0).astype(np.int32)
            labels = np.where(present, np.array(walk.labels, dtype=str)[pick], "")
        else:
            rows = steps = np.zeros((0, n_groups), dtype=np.int64)
            masks = np.zeros((0, n_groups, self.walker.words), dtype=np.int32)
            labels = np.zeros((0, n_groups), dtype=str)
        left_at = np.full(n_completions, -1, dtype=np.int64)
        for r, s in zip(walk.rows.tolist(), walk.steps.tolist(), strict=True):
            if walk.status[r] == "left":
                left_at[r] = max(left_at[r], s)  # the last position walked is the one it left at
        status = tuple("truncated" if s == "open" else s for s in walk.status)
        return PositionBatch(tuple(self.groups), rows, steps, present, labels, masks,
                             self.vocab_size, status, left_at)

    def _group_of(self, label: str) -> str | None:
        if self.group is None:
            return label
        name = self.group(label)
        if name is not None and not isinstance(name, str):
            raise ValueError(f"group must map a label to a str or None, got {name!r} for "
                             f"label {label!r}")
        return name

    def state_dict(self) -> dict[str, Any]:
        """The groups found so far (the scheduler's slot order), JSON-able."""
        return {"groups": list(self.groups)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output: the slots, in order."""
        groups = state.get("groups")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError(f"state['groups'] must be a list of group names, got {groups!r}")
        if self.fixed and groups != self.groups:
            raise ValueError(f"state['groups'] {groups} differ from the fixed groups "
                             f"{self.groups}")
        self.groups = list(groups)


def _host(value: Any) -> NDArray[Any]:
    if is_tensor(value):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _lengths(ids: NDArray[Any], completion_mask: Any) -> IntArray:
    """Tokens that count per row, checking that the mask marks a prefix of each row."""
    n_rows, width = ids.shape
    if completion_mask is None:
        return np.full(n_rows, width, dtype=np.int64)
    mask = _host(completion_mask)
    if mask.shape != ids.shape:
        raise ValueError(f"completion_mask must have the shape of completion_ids {ids.shape}, "
                         f"got {mask.shape}")
    on = mask.astype(bool)
    lengths = on.sum(axis=1).astype(np.int64)
    prefix = np.arange(width) < lengths[:, None]
    if (on != prefix).any():
        row = int(np.flatnonzero((on != prefix).any(axis=1))[0])
        raise ValueError(f"completion_mask must mark a prefix of each row (right padding), "
                         f"but row {row} is {mask[row].tolist()}")
    return lengths
