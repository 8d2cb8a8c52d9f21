"""Checkpoints: a cell's model state, kept in its results folder, loaded without running code.

A cell's checkpoint is one safetensors file, ``<out>/checkpoints/<cell_id>.safetensors``,
holding the model's state at one or more evaluation steps under the keys
``step/<N>/<tensor name>``. It is written like a result file (a hidden temporary in the same
folder, flushed, then renamed), and the cell's result file records it in its metadata
(``checkpoint``: the file relative to the results folder, its SHA-256 and its steps), so a
reader knows where it is and whether the bytes on disk are the ones the run wrote.

safetensors is a JSON header and raw tensor bytes: loading one never unpickles or imports
anything. A pickle, a ``torch.save`` archive, a truncated file, a file whose hash differs from
the one recorded, or tensors whose names or shapes do not fit the model are refused with a
`CheckpointError` that names the file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark_core.contract.errors import ResultsError

FOLDER = "checkpoints"
FORMAT = "gbench-checkpoint"
#: Checkpoint modes, each keeping more than the one before it.
MODES = ("none", "final", "all")


class CheckpointError(ResultsError):
    """A checkpoint that is missing, corrupt, not a checkpoint, or does not fit the model."""


@dataclass(frozen=True)
class Stored:
    """A checkpoint read from disk: the model state at each step, and where it came from."""

    path: Path
    states: dict[int, dict[str, torch.Tensor]]

    @property
    def final(self) -> dict[str, torch.Tensor]:
        """The state at the last step held."""
        return self.states[max(self.states)]


def capture(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's state on the CPU (copies: shared storage would not serialise)."""
    return {
        name: t.detach().to("cpu", copy=True).contiguous()
        for name, t in model.state_dict().items()
    }


def pack(states: dict[int, dict[str, torch.Tensor]], cell_id: str) -> bytes:
    """Serialise the states by step into the bytes of one safetensors file."""
    from safetensors.torch import save

    flat = {f"step/{step}/{name}": t for step, state in states.items() for name, t in state.items()}
    steps = ",".join(str(s) for s in sorted(states))
    return save(flat, metadata={"format": FORMAT, "cell_id": cell_id, "steps": steps})


def unpack(data: bytes, name: str) -> dict[int, dict[str, torch.Tensor]]:
    """Parse checkpoint bytes (``name`` says where they came from, for errors)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    if data[:2] == b"PK" or data[:1] == b"\x80":
        raise CheckpointError(
            f"{name}: a pickle or torch.save archive, not a safetensors checkpoint; gbench never "
            f"unpickles a checkpoint (it could run code). Rerun the cell to make a new one."
        )
    try:
        flat = load(data)
    except (SafetensorError, ValueError, OSError, RuntimeError) as exc:
        raise CheckpointError(
            f"{name}: not a readable safetensors checkpoint (truncated or corrupt: {exc})"
        ) from None
    states: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        parts = key.split("/", 2)
        if len(parts) != 3 or parts[0] != "step" or not parts[1].isdigit():
            raise CheckpointError(f"{name}: tensor {key!r} is not named step/<N>/<name>")
        states.setdefault(int(parts[1]), {})[parts[2]] = tensor
    if not states:
        raise CheckpointError(f"{name}: holds no model state")
    return states


def write(out_dir: Path, cell_id: str, data: bytes) -> dict[str, Any]:
    """Write a cell's checkpoint atomically; return what its result file records about it."""
    folder = out_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{cell_id}.safetensors"
    fd, tmp = tempfile.mkstemp(prefix=f".{cell_id}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    steps = sorted(unpack(data, str(final)))
    return {
        "file": f"{FOLDER}/{cell_id}.safetensors",
        "sha256": hashlib.sha256(data).hexdigest(),
        "steps": steps,
    }


def read(out_dir: Path, record: dict[str, Any] | None, cell_id: str) -> Stored:
    """Read the checkpoint a result file's metadata ``record`` names, checking its hash."""
    path, data = read_bytes(out_dir, record, cell_id)
    return Stored(path, unpack(data, str(path)))


def read_bytes(out_dir: Path, record: dict[str, Any] | None, cell_id: str) -> tuple[Path, bytes]:
    """The bytes of the checkpoint ``record`` names, checked against its recorded SHA-256."""
    if not record or "file" not in record:
        raise CheckpointError(
            f"cell {cell_id} kept no checkpoint ({out_dir / FOLDER / (cell_id + '.safetensors')} "
            f"was never written): run it with --checkpoints final, or as a warm-start source"
        )
    path = out_dir / record["file"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint missing (its result file records it)") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    if record.get("sha256") and digest != record["sha256"]:
        raise CheckpointError(
            f"{path}: checkpoint corrupt or replaced (its SHA-256 is not the one its result "
            f"file recorded)"
        )
    return path, data


def load_into(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Load ``state`` into ``model`` in place; a name or shape that does not fit names ``name``."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = [
        f"{k} is {tuple(state[k].shape)}, the model's {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or extra or wrong:
        details = (
            ([f"missing {', '.join(missing[:5])}"] if missing else [])
            + ([f"unexpected {', '.join(extra[:5])}"] if extra else [])
            + wrong[:5]
        )
        raise CheckpointError(
            f"{name}: checkpoint does not fit the model ({'; '.join(details)}); a warm start "
            f"or evaluation needs the model and parameters the checkpoint was trained with"
        )
    with torch.no_grad():
        for key, target in own.items():
            target.copy_(state[key].to(dtype=target.dtype))
