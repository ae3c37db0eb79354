"""Inputs of ``python -m cliff calibrate``: local checkpoints, their tokenizers, prompts and
the contract, each checked where it enters with an error that names the argument.

Checkpoints are loaded with ``local_files_only=True`` (and ``HF_HUB_OFFLINE=1``): a folder
written by ``save_pretrained``, never a hub name.  ``device_map="auto"`` lets accelerate
shard a model over every device it finds (a teacher too large for one GPU).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cliff._calibration.contract import Contract

__all__ = ["load_model", "load_tokenizer", "read_contract", "read_jsonl", "read_prompts",
           "same_tokenizer"]


def _folder(path: str | os.PathLike[str], argument: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{argument}: no such checkpoint folder: {str(folder)!r}")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{argument}: {str(folder)!r} has no config.json (expected a "
                                "save_pretrained folder)")
    os.environ["HF_HUB_OFFLINE"] = "1"
    return folder


def load_model(path: str | os.PathLike[str], argument: str, *, device: str = "cpu",
               device_map: str | None = None) -> Any:
    """A causal LM from a local folder, in eval mode: on ``device``, or placed by
    ``device_map`` (``"auto"``: sharded by accelerate over the devices it finds)."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = _folder(path, argument)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    if device_map is None:
        model = torch.nn.Module.to(model, torch.device(device))
    return model.eval()


def load_tokenizer(path: str | os.PathLike[str], argument: str) -> Any:
    """The tokenizer saved with a checkpoint."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(_folder(path, argument)), local_files_only=True)


def same_tokenizer(a: Any, b: Any, names: tuple[str, str] = ("--teacher", "--reference")
                   ) -> None:
    """Raise ``ValueError`` naming the first difference when two tokenizers differ in their
    vocabulary or special tokens."""
    va, vb = a.get_vocab(), b.get_vocab()
    if va != vb:
        diff = next((t for t in sorted(set(va) | set(vb)) if va.get(t) != vb.get(t)), None)
        raise ValueError(f"{names[0]} and {names[1]} must share one tokenizer, but their "
                         f"vocabularies differ ({len(va)} and {len(vb)} tokens; token {diff!r} "
                         f"has id {va.get(diff)} and {vb.get(diff)})")
    sa, sb = a.special_tokens_map, b.special_tokens_map
    if sa != sb:
        raise ValueError(f"{names[0]} and {names[1]} must share one tokenizer, but their "
                         f"special tokens differ: {sa} and {sb}")


def read_text(path: Path, argument: str) -> str:
    """The UTF-8 text of ``path``; an error naming ``argument`` where it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise ValueError(f"{argument}: {str(path)!r} is not UTF-8 text (byte {err.start}, line "
                         f"{line}: {err.object[err.start:err.start + 4]!r}); save it as UTF-8"
                         ) from None


def read_jsonl(path: str | os.PathLike[str], argument: str, shape: str
               ) -> list[tuple[int, Any]]:
    """``(line number, parsed object)`` of every non-empty line of a JSONL file; ``shape``
    describes one line (``{"prompt": str}``) in the error a line that is not JSON gets."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{argument}: no such file: {str(file)!r}")
    rows = []
    for n, line in enumerate(read_text(file, argument).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as err:
            raise ValueError(f"{argument}: line {n} is not JSON ({err.msg}); expected JSONL, "
                             f"one {shape} object per line, got {line[:60]!r}") from None
    return rows


def read_prompts(path: str | os.PathLike[str], argument: str = "--prompts") -> list[str]:
    """Prompts from JSONL: one ``{"prompt": str}`` object per non-empty line."""
    prompts = []
    for n, obj in read_jsonl(path, argument, '{"prompt": str}'):
        if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
            raise ValueError(f"{argument}: line {n} must be an object with a 'prompt' string, "
                             f"got {json.dumps(obj)[:60]!r}")
        prompts.append(obj["prompt"])
    if not prompts:
        raise ValueError(f"{argument}: {str(path)!r} holds no prompts")
    return prompts


def read_contract(*, schema: str | None = None, grammar: str | None = None,
                  regex: str | None = None, json_labels: bool = False) -> Contract:
    """The contract from exactly one of a JSON-schema file, a Lark-grammar file, a regex
    (``json_labels``: the grammar's or regex's texts are JSON, label them by JSONPath)."""
    given = [k for k, v in (("schema", schema), ("grammar", grammar), ("regex", regex))
             if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of --schema, --grammar, --regex, got {given}")
    if regex is not None:
        return Contract.regex(regex, json_labels=json_labels)
    path = Path(schema if schema is not None else str(grammar))
    argument = "--schema" if schema is not None else "--grammar"
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: no such file: {str(path)!r}")
    text = read_text(path, argument)
    if schema is not None:
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"--schema: {str(path)!r} is not JSON ({err})") from None
    try:
        if schema is not None:
            return Contract.json_schema(text)
        return Contract.lark(text, json_labels=json_labels)
    except ValueError as err:
        raise ValueError(f"{argument} {str(path)!r}: {err}") from None
