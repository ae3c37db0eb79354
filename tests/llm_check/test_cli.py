"""The command line (validate.llm_check.cli): every flag generated from a Config field, its
help that field's docstring, its type and default the field's; the checks name the flag."""

from __future__ import annotations

import argparse
import dataclasses
import doctest
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest

from validate.llm_check import cli, config
from validate.llm_check.cli import FLAGS, build_parser, flag_default, main, parse_args
from validate.llm_check.config import Config, field_docs

COMMAND_LINE = ("--out", "--resume", "--seed", "--warm-seeds", "--seeds", "--quick", "--gate-only",
                "--config", "--c", "--c-low", "--c-new", "--opd-steps", "--opd-lr",
                "--optimizer", "--workers",
                "--schedule", "--schedule-margin", "--student", "--teacher", "--data",
                "--device", "--ladder", "--ladder-lr", "--ladder-checkpoints")
"""The flags of ``python -m validate.llm_check``, in the order ``--help`` lists them."""


def _options(ap: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.option_strings[0]: a for a in ap._actions if a.option_strings[0] != "-h"}


@pytest.mark.parametrize("module", [cli, config])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0


def test_every_config_field_has_a_docstring() -> None:
    docs = field_docs(Config)
    assert list(docs) == [f.name for f in dataclasses.fields(Config)]
    assert all(doc and "  " not in doc and "\n" not in doc for doc in docs.values())

    @dataclass
    class Undocumented:
        documented: int = 0
        """a field with its docstring"""
        bare: int = 1

    with pytest.raises(ValueError, match=r"needs a docstring.*\['bare'\]"):
        field_docs(Undocumented)


def test_the_flags_are_the_command_lines() -> None:
    options = _options(build_parser())
    assert tuple(options) == COMMAND_LINE == tuple(FLAGS.values())
    assert {a.dest for a in options.values()} == set(FLAGS) <= set(field_docs(Config))


def test_each_flags_help_is_its_fields_docstring() -> None:
    # the help is the docstring, with the default appended (argparse escapes % as %%)
    docs = field_docs(Config)
    for flag, action in _options(build_parser()).items():
        name = action.dest
        assert action.help is not None
        text = action.help.replace("%%", "%")
        default = flag_default(name)
        if default is None or default is False:
            assert text == docs[name], flag
        else:
            assert text.startswith(docs[name] + " (default "), flag


def test_types_choices_and_defaults_come_from_the_fields() -> None:
    options = _options(build_parser())
    assert options["--seeds"].type is int and options["--c"].type is float
    assert options["--c-low"].type is float and options["--c-low"].default is None
    assert options["--warm-seeds"].nargs == "+" and options["--warm-seeds"].default == [0]
    assert options["--config"].choices == ["softening", "sharpening", "both", "paper", "reachable",
                                           "dirty_ids", "dirty_ids_1000"]
    assert isinstance(options["--quick"], argparse._StoreTrueAction)
    cfg = parse_args([])
    assert cfg == Config(device=flag_default("device"))
    assert cfg.warm_seeds == (0,) and isinstance(cfg.warm_seeds, tuple)


def test_values_reach_the_config() -> None:
    cfg = parse_args(["--seeds", "5", "--warm-seeds", "0", "2", "--c-low", "0", "--config",
                      "both", "--gate-only", "--student", "s", "--teacher", "t"])
    assert (cfg.n_seeds, cfg.warm_seeds, cfg.c_low, cfg.c_low_value) == (5, (0, 2), 0.0, 0.0)
    assert cfg.config == "both" and cfg.gate_only and (cfg.student, cfg.teacher) == ("s", "t")
    quick = parse_args(["--quick", "--seeds", "5"])
    assert quick == dataclasses.replace(Config(device=flag_default("device"), n_seeds=5),
                                        quick=True).quick_version()
    assert quick.n_seeds == 1 and quick.opd_steps == 4
    sgd = parse_args(["--optimizer", "sgd", "--opd-lr", "0.05"])
    assert (sgd.optimizer, sgd.opd_lr) == ("sgd", 0.05) and parse_args([]).optimizer == "adam"


@pytest.mark.parametrize("argv, match", [
    (["--c", "1"], "--c must be a finite ratio cap > 1, got 1.0"),
    (["--c-new", "5"], "--c-new must be a finite ratio cap > 1 other than --c, got 5.0"),
    (["--schedule-margin", "2"], r"--schedule-margin must be in \[0, 1\], got 2.0"),
    (["--c-low", "1"], r"--c-low must be in \[0, 1\), got 1.0"),
    (["--seeds", "0"], "--seeds, --opd-steps and --workers must be >= 1, got 0, 60, 2"),
    (["--opd-lr", "0"], "--opd-lr must be finite and > 0, got 0.0"),
])
def test_checks_name_the_flag(argv: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_args(argv)


def test_student_needs_teacher(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--student and --teacher must be given together"):
        main(["--student", str(tmp_path), "--out", str(tmp_path)])


def test_config_survives_pickling() -> None:
    # the spawned OPD workers unpickle it (validate.llm_check.jobs)
    cfg = parse_args(["--quick", "--warm-seeds", "3", "4"])
    back = pickle.loads(pickle.dumps(cfg))
    assert back == cfg and type(back) is Config and back.c_low_value == 1.0 / cfg.c
