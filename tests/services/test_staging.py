"""Staged output files: published only after their audit entry commits, else never seen."""

from __future__ import annotations

from pathlib import Path

import pytest

from lims.staging import StagedFiles


def test_files_appear_only_when_published(tmp_path: Path) -> None:
    files = StagedFiles()
    files.write(tmp_path / "a.pdf", b"A")
    files.write(tmp_path / "b.pdf", b"B")
    assert not (tmp_path / "a.pdf").exists()
    files.publish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "b.pdf"]
    assert (tmp_path / "b.pdf").read_bytes() == b"B"


def test_a_failure_while_staging_or_recording_leaves_no_file(tmp_path: Path) -> None:
    files = StagedFiles()

    def stage_then_fail_to_record() -> None:
        with files.discarded_on_error():
            files.write(tmp_path / "a.pdf", b"A")
            raise RuntimeError("the audit entry could not be written")

    with pytest.raises(RuntimeError, match="audit entry"):
        stage_then_fail_to_record()
    assert list(tmp_path.iterdir()) == []


def test_a_write_that_fails_half_way_is_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(path: Path, data: bytes) -> int:
        with path.open("wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    files = StagedFiles()
    with pytest.raises(OSError, match="No space"), files.discarded_on_error():
        files.write(tmp_path / "a.pdf", b"0123456789")
    assert list(tmp_path.iterdir()) == []
