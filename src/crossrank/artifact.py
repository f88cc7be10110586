"""The artifact manifest ``crossrank.json``: read, write and verify (no torch import)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from crossrank.atomic import write_text_atomic

MANIFEST = "crossrank.json"
FORMAT_VERSION = 1


class ArtifactError(ValueError):
    """A missing, corrupt or incompatible artifact file; the message names the file."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(directory: str | Path, manifest: dict) -> None:
    write_text_atomic(Path(directory) / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))


def read_manifest(directory: str | Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{path}: expected a crossrank artifact manifest, found none")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: expected JSON, got unreadable content ({exc})") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{path}: expected format_version {FORMAT_VERSION}, got {version!r}")
    return manifest


def verify_file(directory: str | Path, manifest: dict, name: str) -> Path:
    """The path of ``name`` after checking it exists and matches its recorded sha256."""
    path = Path(directory) / name
    expected = manifest.get("files", {}).get(name)
    if expected is None:
        raise ArtifactError(
            f"{path}: not listed in {MANIFEST}; listed: {sorted(manifest.get('files', {}))}"
        )
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
