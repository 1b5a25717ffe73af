"""Stage-1 training on tiny synthetic images: checkpoints, resuming, determinism, prediction."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mpmmu.models import Branch
from mpmmu.train.stage1 import Stage1Config, predict_branch, train_branch
from stage1_fixtures import CountingLoader, Row, TinyPreprocessConfig, make_rows

SIZE = 64
CONFIG = Stage1Config(
    epochs=2,
    batch_size=8,
    lr=1e-3,
    image_size=SIZE,
    seed=5,
    patience=5,
    pretrained=False,
    device="cpu",
    num_threads=1,
    progress=False,
    eval_batch_size=8,
)
PREPROCESS = TinyPreprocessConfig(size=SIZE)


class Interrupted(Exception):
    """Raised by a callback to simulate a run killed after its first epoch."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("stage1")
    train = make_rows(folder, 16, "mammography", seed=0, prefix="train")
    val = make_rows(folder, 8, "mammography", seed=1, prefix="val")
    return {"train": train, "val": val, "cache": folder / "cache"}


def _train(data: dict, checkpoint_dir: Path | None, **kwargs) -> tuple[Branch, list[dict]]:
    return train_branch(
        data["train"],
        data["val"],
        "mammography",
        kwargs.pop("config", CONFIG),
        checkpoint_dir,
        preprocess_config=PREPROCESS,
        cache_dir=data["cache"],
        loader=CountingLoader(),
        **kwargs,
    )


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


@pytest.fixture(scope="module")
def reference_run(data: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    checkpoint_dir = tmp_path_factory.mktemp("reference")
    branch, history = _train(data, checkpoint_dir)
    return {"branch": branch, "history": history, "dir": checkpoint_dir}


def test_train_branch_history_per_epoch(reference_run: dict) -> None:
    history = reference_run["history"]
    assert [record["epoch"] for record in history] == [1, 2]
    for record in history:
        assert set(record) == {"epoch", "train_loss", "val_loss", "val_auc", "lr", "seconds"}
        assert np.isfinite(record["train_loss"])
        assert np.isfinite(record["val_loss"])
        assert 0.0 <= record["val_auc"] <= 1.0


def test_train_branch_writes_checkpoint_and_best(reference_run: dict) -> None:
    folder = reference_run["dir"]
    assert (folder / "last.pt").is_file()
    summary = json.loads((folder / "branch.json").read_text())
    assert summary["branch"]["modality"] == "mammography"
    assert summary["branch"]["attention"] == "cbam"
    assert summary["best_epoch"] in (1, 2)
    assert summary["best_val_auc"] == max(record["val_auc"] for record in reference_run["history"])
    rebuilt = Branch.from_config(summary["branch"])
    rebuilt.load_state_dict(load_file(str(folder / "best.safetensors")))
    batch = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(batch), reference_run["branch"](batch))


def test_train_branch_deterministic_with_seed(data: dict, reference_run: dict) -> None:
    branch, history = _train(data, None)
    assert _without_seconds(history) == _without_seconds(reference_run["history"])
    for name, tensor in branch.state_dict().items():
        torch.testing.assert_close(tensor, reference_run["branch"].state_dict()[name], rtol=0, atol=0, msg=name)


def test_train_branch_resume_matches_uninterrupted(data: dict, reference_run: dict, tmp_path: Path) -> None:
    def stop_after_first_epoch(record: dict) -> None:
        if record["epoch"] == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        _train(data, tmp_path, on_epoch_end=stop_after_first_epoch)
    resumed_epochs: list[int] = []
    branch, history = _train(data, tmp_path, on_epoch_end=lambda record: resumed_epochs.append(record["epoch"]))

    assert resumed_epochs == [2]
    assert _without_seconds(history) == _without_seconds(reference_run["history"])
    for name, tensor in branch.state_dict().items():
        torch.testing.assert_close(tensor, reference_run["branch"].state_dict()[name], rtol=0, atol=0, msg=name)


def test_train_branch_finished_checkpoint_returns_best(data: dict, reference_run: dict) -> None:
    calls: list[dict] = []
    branch, history = _train(data, reference_run["dir"], on_epoch_end=calls.append)
    assert calls == []
    assert _without_seconds(history) == _without_seconds(reference_run["history"])


def test_train_branch_raises_changed_settings(data: dict, reference_run: dict) -> None:
    with pytest.raises(ValueError, match=r"different \['stage1'\]; pass resume=False"):
        _train(data, reference_run["dir"], config=replace(CONFIG, lr=5e-4))


def test_train_branch_raises_single_class_validation(data: dict) -> None:
    benign_only = [row for row in data["val"] if row.label == "benign"]
    with pytest.raises(ValueError, match=r"validation rows of mammography hold only the classes \[0\]"):
        train_branch(
            data["train"], benign_only, "mammography", CONFIG, None,
            preprocess_config=PREPROCESS, cache_dir=data["cache"], loader=CountingLoader(),
        )


def test_train_branch_raises_size_mismatch(data: dict) -> None:
    with pytest.raises(ValueError, match="preprocess_config.size is 32 but Stage1Config.image_size is 64"):
        train_branch(
            data["train"], data["val"], "mammography", CONFIG, None,
            preprocess_config=TinyPreprocessConfig(size=32), cache_dir=data["cache"], loader=CountingLoader(),
        )


def test_train_branch_skips_rows_without_modality(data: dict, tmp_path: Path) -> None:
    ultrasound_only = Row("extra", "pextra", None, tmp_path / "absent.npy", "benign")
    config = replace(CONFIG, epochs=1)
    _, history = train_branch(
        [*data["train"], ultrasound_only, data["train"][0]], data["val"], "mammography", config, None,
        preprocess_config=PREPROCESS, cache_dir=data["cache"], loader=CountingLoader(),
    )
    assert len(history) == 1


def test_predict_branch_outputs_per_row(data: dict, reference_run: dict) -> None:
    rows = data["val"]
    prediction = predict_branch(
        reference_run["branch"], rows, PREPROCESS, batch_size=3, device="cpu", cache_dir=data["cache"], loader=CountingLoader()
    )
    probabilities, features, attention = prediction
    assert probabilities.shape == (len(rows),)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert features.shape == (len(rows), 1280)
    assert attention["spatial_attention"].shape == (len(rows), SIZE // 32, SIZE // 32)
    assert attention["channel_weights"].shape == (len(rows), 1280)


def test_predict_branch_matches_forward(data: dict, reference_run: dict) -> None:
    rows = data["val"][:2]
    branch = reference_run["branch"]
    prediction = predict_branch(branch, rows, PREPROCESS, device="cpu", cache_dir=data["cache"], loader=CountingLoader())
    from mpmmu.train.dataset import CachedImageDataset

    dataset = CachedImageDataset(rows, "mammography", PREPROCESS, data["cache"], loader=CountingLoader(), labelled=False)
    with torch.no_grad():
        expected = torch.sigmoid(branch(torch.stack([dataset[i][0] for i in range(2)]))).numpy()
    np.testing.assert_allclose(prediction.probabilities, expected, rtol=1e-5, atol=1e-6)


def test_predict_branch_empty_rows(reference_run: dict) -> None:
    prediction = predict_branch(reference_run["branch"], [], PREPROCESS)
    assert prediction.probabilities.shape == (0,)
    assert prediction.features.shape == (0, 1280)


def test_stage1_config_round_trip() -> None:
    config = replace(CONFIG, attention_stages=(5, "head"))
    assert Stage1Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_stage1_config_raises_bad_epochs() -> None:
    with pytest.raises(ValueError, match="Stage1Config.epochs must be >= 1, got 0"):
        Stage1Config(epochs=0)


def test_train_branch_on_synthetic_manifest(tmp_path: Path) -> None:
    from mpmmu.data import read_manifest
    from mpmmu.data.synthetic import write_synthetic_dataset
    from mpmmu.preprocess import PreprocessConfig

    rows = read_manifest(write_synthetic_dataset(tmp_path / "synthetic", n_per_class=5, seed=2, size=128))
    config = replace(CONFIG, epochs=1, seed=0)
    branch, history = train_branch(
        rows[:6], rows[6:], "ultrasound", config, tmp_path / "run",
        preprocess_config=PreprocessConfig(size=SIZE), cache_dir=tmp_path / "cache",
    )
    assert len(history) == 1
    assert branch.attention_name == "eca"
    probabilities, features, attention = predict_branch(
        branch, rows, PreprocessConfig(size=SIZE), device="cpu", cache_dir=tmp_path / "cache"
    )
    assert probabilities.shape == (10,)
    assert features.shape == (10, 1280)
    assert set(attention) == {"channel_weights"}
