"""The ladder's SFT models: trained and saved once, then loaded with the same bytes; a folder
trained with another recipe is refused; folders are named by what they hold; the models not
saved yet train together."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch

from validate.llm_check.config import Config
from validate.llm_check.ladder import warm
from validate.llm_check.ladder.configurations import configuration
from validate.llm_check.ladder.warm import model_name, sft_model
from validate.llm_check.tokenizer import build_tokenizer, token_info
from validate.llm_check.warmstart import Recipe

STEPS = 3
RECIPE = Recipe(0.0, 0.02)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    cfg = dataclasses.replace(Config(), sft_batch=4)
    tok = build_tokenizer(8, 3)
    info = token_info(tok, len(tok))
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.set_grad_enabled(True)
    model, record = sft_model(cfg, "teacher", RECIPE, STEPS, 7, tok, info, folder)
    return cfg, tok, info, folder, model, record


def test_the_folder_name_says_role_recipe_steps_and_seed() -> None:
    assert model_name("student", Recipe(1.0, 0.5), 2000, 11) == \
        "student_rank1_fmt0.5_steps2000_seed11"
    assert model_name("teacher", Recipe(0.0, 0.02), 1200, 210) == \
        "teacher_rank0_fmt0.02_steps1200_seed210"


def test_a_trained_model_is_saved_whole_with_its_recipe(saved: tuple) -> None:
    _, _, _, folder, _, record = saved
    path = folder / "teacher_rank0_fmt0.02_steps3_seed7"
    assert sorted(p.name for p in folder.iterdir()) == [path.name]  # no partial folder
    assert {"config.json", "model.safetensors", "recipe.json"} <= {p.name for p in path.iterdir()}
    recipe = json.loads((path / "recipe.json").read_text())
    assert (recipe["role"], recipe["steps"], recipe["seed"], recipe["sft_batch"]) == (
        "teacher", STEPS, 7, 4)
    assert record["name"] == path.name and record["format_noise"] == 0.02


def test_the_record_holds_the_sha256_of_the_weights(saved: tuple) -> None:
    _, _, _, folder, _, record = saved
    data = (folder / record["name"] / "model.safetensors").read_bytes()
    assert record["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_saved_model_is_loaded_without_training(saved: tuple,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, tok, info, folder, model, record = saved

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a saved model was trained again")

    monkeypatch.setattr(warm, "train_models", no_training)
    again, rec = sft_model(cfg, "teacher", RECIPE, STEPS, 7, tok, info, folder)
    assert rec == record
    first, second = model.state_dict(), again.state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_folder_trained_with_another_recipe_is_refused(saved: tuple) -> None:
    cfg, tok, info, folder, _, _ = saved
    other = dataclasses.replace(cfg, sft_lr=cfg.sft_lr * 2)
    with pytest.raises(ValueError, match=r"checkpoint .*teacher_rank0_fmt0.02_steps3_seed7"
                                         r".* was trained with"):
        sft_model(other, "teacher", RECIPE, STEPS, 7, tok, info, folder)


def test_an_edited_recipe_file_is_refused(saved: tuple, tmp_path: Path) -> None:
    cfg, tok, info, folder, _, record = saved
    copy = tmp_path / record["name"]
    copy.mkdir()
    for f in (folder / record["name"]).iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    recipe = json.loads((copy / "recipe.json").read_text())
    (copy / "recipe.json").write_text(json.dumps({**recipe, "steps": 99}))
    with pytest.raises(ValueError, match=r"was trained with .*'steps': 99"):
        sft_model(cfg, "teacher", RECIPE, STEPS, 7, tok, info, tmp_path)


@pytest.mark.parametrize(("name", "teacher_seed", "student_seed"), [
    ("paper", 210, 211), ("reachable", 220, 211), ("dirty_ids", 210, 211),
    ("softening", 200, 201)])
def test_the_warm_start_seeds_are_100w_plus_10j(name: str, teacher_seed: int,
                                                student_seed: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    asked, trained = [], []

    def record(cfg: Config, role: str, recipe: Recipe, steps: int, seed: int,
               *rest: object) -> tuple:
        asked.append((role, seed))
        return None, {"role": role}

    def train(cfg: Config, tok: object, info: object, specs: list[tuple]) -> list[None]:
        trained.extend(seed for _, _, seed, _ in specs)
        return [None] * len(specs)

    monkeypatch.setattr(warm, "sft_model", record)
    monkeypatch.setattr(warm, "train_models", train)
    warm.ladder_warm_start(Config(), configuration(name), 2, None, None, Path("unused"))
    assert asked == [("teacher", teacher_seed), ("student", student_seed)]
    assert trained == [teacher_seed, student_seed]  # neither is saved: both train, together


def test_only_the_models_not_saved_yet_are_trained(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    conf = configuration("paper")
    saved_teacher = tmp_path / model_name("teacher", conf.teacher, conf.teacher_steps, 210)
    saved_teacher.mkdir()
    (saved_teacher / "model.safetensors").write_bytes(b"")
    trained, handed = [], {}

    def train(cfg: Config, tok: object, info: object, specs: list[tuple]) -> list[str]:
        trained.extend(seed for _, _, seed, _ in specs)
        return [f"model {seed}" for _, _, seed, _ in specs]

    def record(cfg: Config, role: str, recipe: Recipe, steps: int, seed: int, tok: object,
               info: object, folder: Path, model: object = None) -> tuple:
        handed[role] = model
        return model, {"role": role}

    monkeypatch.setattr(warm, "train_models", train)
    monkeypatch.setattr(warm, "sft_model", record)
    warm.ladder_warm_start(Config(), conf, 2, None, None, tmp_path)
    assert trained == [211]
    assert handed == {"teacher": None, "student": "model 211"}  # the saved one is loaded
