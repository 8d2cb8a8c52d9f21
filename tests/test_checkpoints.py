"""Checkpoints: round trip, atomic files recorded in the results, refusal of tampered files."""

from __future__ import annotations

import hashlib
import pickle

import pytest
import torch
from checkpoint_helpers import meta, write_payload_pickle
from torch import nn

from benchmark_core.results import checkpoints
from benchmark_core.results.checkpoints import CheckpointError

GRID = ["run", "--objectives", "ml", "--tasks", "gaussian", "--metrics", "nll_test"]
GRID += ["--budget", "smoke"]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def _saved(tmp_path, states: dict[int, dict]) -> dict:
    return checkpoints.write(tmp_path, "cell0", checkpoints.pack(states, "cell0"))


def test_round_trip_keeps_every_tensor_and_step_bit_for_bit(tmp_path):
    model = _model()
    first = checkpoints.capture(model)
    with torch.no_grad():
        model[0].weight.mul_(3.7)
    model[1].num_batches_tracked += 5  # an int64 buffer travels too
    record = _saved(tmp_path, {0: first, 7: checkpoints.capture(model)})

    path = tmp_path / record["file"]
    assert record["file"] == "checkpoints/cell0.safetensors" and path.is_file()
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["steps"] == [0, 7]
    assert [p.name for p in path.parent.iterdir()] == ["cell0.safetensors"]  # no temporaries

    stored = checkpoints.read(tmp_path, record, "cell0")
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    checkpoints.load_into(fresh, stored.final, str(stored.path))
    for name, tensor in model.state_dict().items():
        loaded = fresh.state_dict()[name]
        assert loaded.dtype == tensor.dtype and torch.equal(loaded, tensor), name
    assert torch.equal(stored.states[0]["0.weight"], first["0.weight"])


def test_a_pickle_with_a_payload_is_refused_by_name_and_never_run(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "checkpoints" / "cell0.safetensors"
    path.parent.mkdir()
    write_payload_pickle(path, marker)
    with pytest.raises(CheckpointError, match="pickle") as err:
        checkpoints.read(tmp_path, {"file": "checkpoints/cell0.safetensors"}, "cell0")
    assert str(path) in str(err.value)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the payload is live: unpickling it does run it
    assert marker.exists()


def test_a_torch_save_archive_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "checkpoints" / "cell0.safetensors"
    path.parent.mkdir()
    torch.save(_model().state_dict(), path)
    with pytest.raises(CheckpointError, match="never unpickles") as err:
        checkpoints.read(tmp_path, {"file": "checkpoints/cell0.safetensors"}, "cell0")
    assert str(path) in str(err.value)


@pytest.mark.parametrize("keep", [5, 0.5], ids=["header", "half"])
def test_a_truncated_checkpoint_is_refused_by_name(tmp_path, keep):
    record = _saved(tmp_path, {3: checkpoints.capture(_model())})
    path = tmp_path / record["file"]
    data = path.read_bytes()
    path.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        checkpoints.read(tmp_path, {"file": record["file"]}, "cell0")
    assert str(path) in str(err.value)


def test_a_changed_byte_is_caught_by_the_recorded_hash(tmp_path):
    record = _saved(tmp_path, {3: checkpoints.capture(_model())})
    path = tmp_path / record["file"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # inside a tensor: still a readable safetensors file
    path.write_bytes(bytes(data))
    checkpoints.read(tmp_path, {"file": record["file"]}, "cell0")  # parses without the hash
    with pytest.raises(CheckpointError, match="corrupt or replaced") as err:
        checkpoints.read(tmp_path, record, "cell0")
    assert str(path) in str(err.value)


def test_wrong_shapes_are_refused_naming_the_file_and_the_tensor(tmp_path):
    wider = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5))
    record = _saved(tmp_path, {3: checkpoints.capture(wider)})
    stored = checkpoints.read(tmp_path, record, "cell0")
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"0\.weight is \(5, 3\), the model's \(4, 3\)") as e:
        checkpoints.load_into(model, stored.final, str(stored.path))
    assert str(stored.path) in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint missing") as err:
        checkpoints.read(tmp_path, {"file": "checkpoints/gone.safetensors"}, "gone")
    assert str(tmp_path / "checkpoints" / "gone.safetensors") in str(err.value)
    with pytest.raises(CheckpointError, match="kept no checkpoint"):
        checkpoints.read(tmp_path, None, "gone")


@pytest.mark.parametrize(
    ("mode", "steps"), [("none", None), ("final", [300]), ("all", [0, 150, 300])]
)
def test_run_keeps_checkpoints_only_when_asked(gbench, tmp_path, mode, steps):
    out = tmp_path / "res"
    args = [*GRID, "--models", "isotropic_gaussian", "--out", str(out)]
    args += [] if mode == "none" else ["--checkpoints", mode]
    assert gbench(*args).code == 0
    (result,) = out.glob("*.parquet")
    record = meta(result).get("checkpoint")
    if steps is None:
        assert record is None and not (out / "checkpoints").exists()
        return
    assert record["steps"] == steps
    stored = checkpoints.read(out, record, result.stem)
    assert sorted(stored.states) == steps
    assert set(stored.final) == {"mu", "log_s"}  # the model's own state_dict names


def test_each_replica_keeps_its_own_model_state(gbench, tmp_path):
    out = tmp_path / "res"
    args = [*GRID, "--models", "gaussian", "--seeds", "3", "--checkpoints", "final"]
    assert gbench(*args, "--out", str(out)).code == 0
    files = sorted(out.glob("*.parquet"))
    assert len(files) == 3 and all(len(meta(f)["replicas"]) == 3 for f in files)
    finals = [checkpoints.read(out, meta(f)["checkpoint"], f.stem).final for f in files]
    names = set(finals[0])
    assert names and all(set(f) == names for f in finals)
    for a in range(3):
        for b in range(a + 1, 3):
            assert any(not torch.equal(finals[a][n], finals[b][n]) for n in names)
