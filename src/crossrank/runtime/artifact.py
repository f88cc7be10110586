"""The artifact manifest ``crossrank.json`` as a typed :class:`Manifest`: load, save, verify.

Format 2 adds the ``outputs`` a graph has beyond ``scores`` (the answer head); format 1 files
still load (their only output is ``scores``). No torch import.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from crossrank.io import write_text_atomic

MANIFEST = "crossrank.json"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


class ArtifactError(ValueError):
    """A missing, corrupt or incompatible artifact file; the message names the file."""


@dataclass
class Manifest:
    """What an artifact directory holds and how it was made.

    ``files`` maps every file beside the manifest to its sha256; ``fusion`` and ``calibration``
    are added after export by ``crossrank fuse`` and ``crossrank calibrate``.
    """

    model: dict[str, Any]
    tokenizer: dict[str, Any]
    max_length: int
    files: dict[str, str] = field(default_factory=dict)
    pooling: str | None = None
    opset: int | None = None
    inputs: list[str] = field(default_factory=lambda: list(INPUT_NAMES))
    outputs: list[str] = field(default_factory=lambda: ["scores"])
    source: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    int8: dict[str, Any] | None = None
    fusion: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    @property
    def has_answer_head(self) -> bool:
        return "answer_logit" in self.outputs

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def save(self, directory: str | Path) -> None:
        """Write ``crossrank.json`` atomically (the graph files and their hashes are untouched)."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        write_text_atomic(Path(directory) / MANIFEST, text)

    @classmethod
    def load(cls, directory: str | Path) -> Manifest:
        path = Path(directory) / MANIFEST
        if not path.is_file():
            raise ArtifactError(f"{path}: expected a crossrank artifact manifest, found none")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{path}: expected JSON, got unreadable content ({exc})") from None
        if not isinstance(raw, dict):
            raise ArtifactError(f"{path}: expected a JSON object, got {type(raw).__name__}")
        version = raw.get("format_version")
        if version not in READABLE_VERSIONS:
            raise ArtifactError(
                f"{path}: expected format_version in {list(READABLE_VERSIONS)}, got {version!r}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ArtifactError(
                f"{path}: unexpected keys {unknown}; expected some of {sorted(known)}"
            )
        missing = [k for k in ("model", "tokenizer", "max_length") if k not in raw]
        if missing:
            raise ArtifactError(f"{path}: expected keys {missing}, found none")
        return cls(**raw)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_files(directory: str | Path) -> dict[str, str]:
    """sha256 of every file in ``directory`` but the manifest, for :attr:`Manifest.files`."""
    return {p.name: sha256_file(p) for p in sorted(Path(directory).iterdir()) if p.name != MANIFEST}


def verify_file(directory: str | Path, manifest: Manifest, name: str) -> Path:
    """The path of ``name`` after checking it exists and matches its recorded sha256."""
    path = Path(directory) / name
    expected = manifest.files.get(name)
    if expected is None:
        raise ArtifactError(f"{path}: not listed in {MANIFEST}; listed: {sorted(manifest.files)}")
    return check_sha256(path, expected, "missing from the artifact", "corrupt or changed")


def check_sha256(path: Path, expected: str, missing: str, changed: str) -> Path:
    """``path`` if it exists with the ``expected`` sha256; else an error naming it."""
    if not path.is_file():
        raise ArtifactError(f"{path}: {missing}")
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(f"{path}: {changed} (sha256 {actual[:12]}…, expected {expected[:12]}…)")
    return path


def artifact_sha256(directory: str | Path) -> str:
    """One hash for the whole artifact: the sha256 of its manifest file."""
    return sha256_file(Path(directory) / MANIFEST)
