"""Staged output files: published only after their audit entry commits, else never seen; never
in place of anything lims did not write, never through a link, never under a guessable name."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from lims import audit
from lims.errors import BadInput, RuleViolation
from lims.models import WrittenFile
from lims.staging import StagedFiles
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from tests.support.devices import null_device
from tests.support.lab import ON_POSTGRES, Lab

KIND = "report"


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where files are written: apart from the station's database."""
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


@pytest.fixture
def session(lab: Lab) -> Iterator[Session]:
    """A transaction on the lab's database, which holds written_files."""
    with unit_of_work(lab.settings, authenticated=False) as uow:
        yield uow.session


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _written(
    session: Session, files: StagedFiles, path: Path, data: bytes, *, kind: str = KIND
) -> None:
    """Stage, record and publish one file, as a command does: with an entry stating it."""
    with files.discarded_on_error():
        files.write(path, data)
        files.record(session, kind=kind, by="tom")
        audit.record_about(
            session, ("report", path.name), "report.test", by="tom", new={"sha256": _sha256(data)}
        )
    session.flush()
    files.publish()


def _recorded(session: Session) -> list[tuple[str, str, str, str | None]]:
    rows = session.exec(select(WrittenFile).order_by(col(WrittenFile.id))).all()
    return [(row.path, row.sha256, row.kind, row.written_by) for row in rows]


def test_files_appear_only_when_published_and_are_recorded(session: Session, out: Path) -> None:
    files = StagedFiles()
    files.write(out / "a.pdf", b"A")
    files.write(out / "b.pdf", b"B")
    files.record(session, kind=KIND, by="tom")
    assert not (out / "a.pdf").exists()
    files.publish()
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf", "b.pdf"]
    assert (out / "b.pdf").read_bytes() == b"B"
    real = os.path.realpath(out)
    assert _recorded(session) == [
        (f"{real}/a.pdf", _sha256(b"A"), KIND, "tom"),
        (f"{real}/b.pdf", _sha256(b"B"), KIND, "tom"),
    ]
    assert files.sha256(out / "a.pdf") == _sha256(b"A")


def test_staged_files_wait_unguessable_in_a_private_directory(out: Path) -> None:
    files = StagedFiles()
    files.write(out / "a.pdf", b"A")
    [private] = list(out.iterdir())
    assert private.name.startswith(".lims.partial-")
    assert stat.S_IMODE(private.lstat().st_mode) == 0o700
    [staged] = list(private.iterdir())
    assert str(os.getpid()) not in staged.name
    assert "a.pdf" not in staged.name
    files.discard()
    assert list(out.iterdir()) == []


def test_a_failure_while_staging_or_recording_leaves_no_file(out: Path) -> None:
    files = StagedFiles()

    def stage_then_fail_to_record() -> None:
        with files.discarded_on_error():
            files.write(out / "a.pdf", b"A")
            raise RuntimeError("the audit entry could not be written")

    with pytest.raises(RuntimeError, match="audit entry"):
        stage_then_fail_to_record()
    assert list(out.iterdir()) == []


def test_a_write_that_fails_half_way_is_discarded(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    files = StagedFiles()
    with pytest.raises(OSError, match="No space"), files.discarded_on_error():
        files.write(out / "a.pdf", b"0123456789")
    assert list(out.iterdir()) == []


def test_the_old_predictable_staged_names_are_no_way_in(session: Session, out: Path) -> None:
    """Issue 12: another user pointed `.NAME.PID.part` at a root-only file and at lims.db in a
    shared directory, and a label print wrote through them."""
    victim = out / "root-only"
    victim.write_bytes(b"secret")
    for name in ("a.pdf", "b.pdf"):
        (out / f".{name}.{os.getpid()}.part").symlink_to(victim)
    _written(session, StagedFiles(), out / "a.pdf", b"A")
    assert victim.read_bytes() == b"secret"
    assert (out / "a.pdf").read_bytes() == b"A"
    assert not (out / "a.pdf").is_symlink()


def test_an_existing_file_is_refused_naming_it(session: Session, out: Path) -> None:
    target = out / "a.pdf"
    target.write_bytes(b"precious")
    with pytest.raises(RuleViolation) as refusal:
        StagedFiles().write(target, b"A")
    assert f"out: {os.path.realpath(target)} exists; lims replaces only a file it wrote" in str(
        refusal.value
    )
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf"]
    assert _recorded(session) == []


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink_to_a_file(path: Path) -> None:
    path.with_name("elsewhere").write_bytes(b"elsewhere")
    path.symlink_to(path.with_name("elsewhere"))


def _dangling_symlink(path: Path) -> None:
    path.symlink_to(path.with_name("nowhere"))


def _symlink_to_a_device(path: Path) -> None:
    path.symlink_to("/dev/null")


def _directory(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(
    ("make", "what"),
    [
        (_fifo, "is a named pipe, not a regular file"),
        (_symlink_to_a_file, "is a symbolic link"),
        (_dangling_symlink, "is a symbolic link"),
        (_symlink_to_a_device, "is a symbolic link"),
        (_directory, "is a directory"),
    ],
)
def test_nothing_but_a_regular_file_is_ever_replaced(
    out: Path, make: object, what: str, force: bool
) -> None:
    """Without root no device node can be made: a FIFO and a link to /dev/null stand in."""
    target = out / "a.pdf"
    assert callable(make)
    make(target)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(BadInput, match=what):
        StagedFiles(force=force).write(target, b"A")
    assert sorted(p.name for p in out.iterdir()) == before
    assert os.path.lexists(target)
    if (out / "elsewhere").exists():
        assert (out / "elsewhere").read_bytes() == b"elsewhere"


@pytest.mark.parametrize("force", [False, True])
def test_a_device_is_never_replaced(out: Path, force: bool) -> None:
    """Issue 12: run as root, `--out /dev/null` replaced the device node. A null device of
    the test's own stands in for /dev/null: a regression must not break the machine's."""
    device = null_device(out)
    with pytest.raises(BadInput, match=f"out: {device} is a device, not a regular file"):
        StagedFiles(force=force).write(device, b"A")
    assert stat.S_ISCHR(os.lstat(device).st_mode)
    assert sorted(p.name for p in out.iterdir()) == [device.name]  # nothing staged either


@pytest.mark.skipif(ON_POSTGRES, reason="the database is a file on SQLite only")
@pytest.mark.parametrize("force", [False, True])
def test_the_database_is_never_replaced(lab: Lab, out: Path, force: bool) -> None:
    """Issue 12: `lims report batch LOT --out lims.db` replaced the database with a PDF."""
    database = lab.settings.sqlite_path
    assert database is not None
    alias = out / "innocent.pdf"
    os.link(database, alias)
    before = database.read_bytes()
    for target in (database, alias):
        with pytest.raises(RuleViolation, match="is the lims database; never replaced"):
            StagedFiles(force=force, database=database).write(target, b"%PDF")
    assert database.read_bytes() == before


def test_force_replaces_only_a_file_lims_recorded_unchanged(session: Session, out: Path) -> None:
    target = out / "a.pdf"
    _written(session, StagedFiles(), target, b"first")
    _written(session, StagedFiles(force=True), target, b"second")
    assert target.read_bytes() == b"second"
    assert [row[1] for row in _recorded(session)] == [_sha256(b"first"), _sha256(b"second")]

    target.write_bytes(b"edited by hand")  # no longer what lims wrote
    files = StagedFiles(force=True)
    with pytest.raises(RuleViolation, match="is not a report lims wrote, or it has changed since"):
        _written(session, files, target, b"third")
    assert target.read_bytes() == b"edited by hand"

    stranger = out / "b.pdf"
    stranger.write_bytes(b"second")  # the same bytes, but lims never wrote this path
    with pytest.raises(RuleViolation, match="is not a report lims wrote"):
        _written(session, StagedFiles(force=True), stranger, b"third")
    assert stranger.read_bytes() == b"second"
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf", "b.pdf"]


def test_a_name_taken_before_publishing_is_not_replaced(session: Session, out: Path) -> None:
    victim = out / "root-only"
    victim.write_bytes(b"secret")
    files = StagedFiles()
    files.write(out / "a.pdf", b"A")
    files.write(out / "b.pdf", b"B")
    files.record(session, kind=KIND, by="tom")
    (out / "a.pdf").symlink_to(victim)  # planted between staging and publishing
    with pytest.raises(RuleViolation, match=r"a\.pdf appeared or changed while lims was writing"):
        files.publish()
    assert victim.read_bytes() == b"secret"
    assert (out / "a.pdf").is_symlink()
    assert (out / "b.pdf").read_bytes() == b"B"
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf", "b.pdf", "root-only"]


def test_a_forced_file_swapped_before_publishing_is_not_replaced(
    session: Session, out: Path
) -> None:
    target = out / "a.pdf"
    _written(session, StagedFiles(), target, b"first")
    files = StagedFiles(force=True)
    files.write(target, b"second")
    files.record(session, kind=KIND, by="tom")
    target.unlink()
    target.symlink_to("/dev/null")
    with pytest.raises(RuleViolation, match="appeared or changed"):
        files.publish()
    assert target.is_symlink()


def test_without_hard_links_a_rename_that_never_replaces_publishes(
    session: Session, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAT has no hard links: renameat2(RENAME_NOREPLACE) keeps the same promise."""

    def no_hard_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)
    _written(session, StagedFiles(), out / "a.pdf", b"A")
    assert (out / "a.pdf").read_bytes() == b"A"
    files = StagedFiles()
    files.write(out / "b.pdf", b"B")
    files.record(session, kind=KIND, by="tom")
    (out / "b.pdf").write_bytes(b"planted")
    with pytest.raises(RuleViolation, match="appeared or changed"):
        files.publish()
    assert (out / "b.pdf").read_bytes() == b"planted"
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf", "b.pdf"]


def test_force_replaces_a_file_only_with_one_of_its_kind(session: Session, out: Path) -> None:
    """A technician's report --force must not replace the admin's backup lims recorded."""
    backup = out / "nightly.db"
    _written(session, StagedFiles(), backup, b"SQLite format 3\x00", kind="backup")
    report = StagedFiles(force=True)
    with pytest.raises(RuleViolation, match="is not a report lims wrote"):
        _written(session, report, backup, b"%PDF")
    assert backup.read_bytes() == b"SQLite format 3\x00"


def test_a_path_that_is_not_utf8_is_bad_input_not_an_internal_error(out: Path) -> None:
    undecodable = Path(os.fsdecode(bytes(out) + b"/\xff.pdf"))
    with pytest.raises(BadInput, match="out: must be a path of UTF-8 text"):
        StagedFiles().write(undecodable, b"%PDF")
    assert list(out.iterdir()) == []


def test_force_needs_the_trail_to_state_the_file_not_a_row_alone(
    session: Session, out: Path
) -> None:
    """A written_files row added by hand for a file lims never wrote: --force refuses it,
    as no entry of the hash-chained trail states that file's hash."""
    sop = out / "sop.txt"
    sop.write_bytes(b"the SOP")
    session.add(
        WrittenFile(
            path=str(sop.resolve()),
            sha256=_sha256(b"the SOP"),
            kind=KIND,
            written_at=utcnow(),
            written_by="tom",
        )
    )
    session.flush()
    with pytest.raises(RuleViolation, match="is not a report lims wrote"):
        _written(session, StagedFiles(force=True), sop, b"%PDF")
    assert sop.read_bytes() == b"the SOP"
