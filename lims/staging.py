"""Output files that appear only once the audit entry recording them commits, and never in
place of anything lims did not write.

Each file is staged in a private directory (mode 0700, an unpredictable name) that lims
makes inside the file's destination directory, so the two share a file system: created
there O_EXCL|O_NOFOLLOW under an unpredictable name and written through its descriptor.
Both directories are held open and every step names files relative to them, so a path
renamed or replaced meanwhile redirects nothing, and no other account can plant a link
at, or swap, a staged name.

A destination that exists is refused when the file is staged: the database, a directory,
a symbolic link, a device, and any regular file unless `force` is given. With `force`,
a regular file is replaced only if its current SHA-256 is one lims recorded for that path
(`written_files`, filled by `record` in the transaction of the file's audit entry).

Publishing follows the commit. A new file is put in place with link(2), which fails if
the name was taken meanwhile, by whatever, and never follows a symbolic link; the staged
name is then removed. On a file system without hard links (FAT) renameat2 with
RENAME_NOREPLACE gives the same guarantee. A forced replacement is a rename(2) over the
very file that was checked, which replaces a directory entry and never writes through a
link. A command that fails or rolls back leaves no file the audit trail does not mention.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from lims.errors import BadInput, RuleViolation, Unavailable

if TYPE_CHECKING:
    from sqlmodel import Session

    from lims.uow import UnitOfWork

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# A hard link refused because the file system has none (FAT, exFAT), not because of the name.
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP})
_RENAME_NOREPLACE = 1  # linux/fs.h
_DATABASE_COMPANIONS = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class _Found:
    """The regular file at a destination when a replacement was staged: replaced only if it
    is still this file, unchanged."""

    device: int
    inode: int
    size: int
    modified_ns: int
    sha256: str

    def same(self, info: os.stat_result) -> bool:
        return stat.S_ISREG(info.st_mode) and (
            info.st_dev,
            info.st_ino,
            info.st_size,
            info.st_mtime_ns,
        ) == (self.device, self.inode, self.size, self.modified_ns)


@dataclass
class _Directory:
    """A destination directory held open, and the private directory files wait in inside it,
    made when the first file is staged."""

    given: Path
    real: str  # absolute and resolved: how written_files names its files
    descriptor: int
    private_name: str = ""
    private: int | None = None  # descriptor of the private directory

    @classmethod
    def open(cls, given: Path) -> _Directory:
        return cls(given, os.path.realpath(given), os.open(given, _DIRECTORY))

    def where(self, name: str) -> str:
        return os.path.join(self.real, name)

    def staging(self) -> int:
        """The private directory's descriptor: mode 0700, this account's, made on first use."""
        if self.private is None:
            name = f".lims.partial-{secrets.token_hex(8)}"
            os.mkdir(name, 0o700, dir_fd=self.descriptor)
            self.private_name = name
            private = os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=self.descriptor)
            info = os.fstat(private)
            if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
                os.close(private)  # renamed away and replaced between mkdir and open
                raise Unavailable(
                    f"cannot stage files in {self.given}: another account replaced lims's "
                    f"private directory {name} there"
                )
            self.private = private
        return self.private

    def close(self) -> None:
        """Empty and remove the private directory (if it is still ours), and let go of both."""
        if self.private is not None:
            with suppress(OSError):
                for name in os.listdir(self.private):
                    os.unlink(name, dir_fd=self.private)
            with suppress(OSError):
                ours = os.fstat(self.private)
                there = os.stat(self.private_name, dir_fd=self.descriptor, follow_symlinks=False)
                if (ours.st_dev, ours.st_ino) == (there.st_dev, there.st_ino):
                    os.rmdir(self.private_name, dir_fd=self.descriptor)
            os.close(self.private)
        os.close(self.descriptor)


@dataclass
class _Staged:
    path: Path  # where it is published, as the caller named it
    directory: _Directory
    name: str  # in the private directory
    replaces: _Found | None
    sha256: str | None = None  # of the staged bytes, once recorded

    @property
    def where(self) -> str:
        return self.directory.where(self.path.name)


def _stated_in_trail(session: Session, sha256: str) -> bool:
    """Whether an entry of the hash-chained trail states the hash (label.print, report.*,
    db.backup do): a written_files row added by hand, with no such entry, proves nothing."""
    from sqlmodel import col, select

    from lims.models import AuditEntry

    found = session.exec(
        select(AuditEntry.seq).where(col(AuditEntry.new_value).contains(f'"{sha256}"')).limit(1)
    ).first()
    return found is not None


@dataclass
class StagedFiles:
    """Files staged for publishing; `force` lets one replace a file lims recorded writing.

    database is the SQLite file (never replaced, whatever is recorded); option names the
    command's option or argument in refusals.
    """

    force: bool = False
    database: Path | None = None
    option: str = "out"
    paths: list[Path] = field(default_factory=list, init=False)  # where each file is published
    _staged: list[_Staged] = field(default_factory=list, init=False, repr=False)
    _directories: dict[Path, _Directory] = field(default_factory=dict, init=False, repr=False)
    _recorded: bool = field(default=False, init=False, repr=False)

    def write(self, path: Path, data: bytes) -> None:
        """Stage data for path, readable as the account's umask allows."""
        with os.fdopen(self._create(path, 0o666), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def for_writer(self, path: Path, *, mode: int = 0o600) -> Path:
        """Stage an empty file for path and return where a writer that needs a path
        (SQLite) fills it: inside the private directory, which no other account can change."""
        os.close(self._create(path, mode))
        staged = self._staged[-1]
        return Path(staged.directory.real, staged.directory.private_name, staged.name)

    def _create(self, path: Path, mode: int) -> int:
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            # The trail and written_files keep the path as text: bytes that are not UTF-8
            # could be neither recorded nor shown.
            raise BadInput(self.option, "must be a path of UTF-8 text") from None
        directory = self._directories.get(path.parent)
        if directory is None:
            directory = self._directories[path.parent] = _Directory.open(path.parent)
        staged = _Staged(path, directory, secrets.token_hex(8), self._found(directory, path))
        private = directory.staging()
        # Known before it exists, so a write that fails half-way is discarded too.
        self.paths.append(path)
        self._staged.append(staged)
        return os.open(staged.name, _CREATE, mode, dir_fd=private)

    def _found(self, directory: _Directory, path: Path) -> _Found | None:
        """What is at path now: nothing, or a file force may replace; anything else refused."""
        where = directory.where(path.name)
        try:
            info = os.stat(path.name, dir_fd=directory.descriptor, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if self.database is not None and _is_database(info, self.database):
            raise RuleViolation(f"{self.option}: {where} is the lims database; never replaced")
        if stat.S_ISDIR(info.st_mode):
            raise BadInput(self.option, f"{where} is a directory; name a file")
        if stat.S_ISLNK(info.st_mode):
            raise BadInput(
                self.option, f"{where} is a symbolic link; lims never writes over or through one"
            )
        if not stat.S_ISREG(info.st_mode):
            raise BadInput(
                self.option, f"{where} is a {_file_type(info)}, not a regular file; never replaced"
            )
        if not self.force:
            raise RuleViolation(
                f"{self.option}: {where} exists; "
                "lims replaces only a file it wrote itself (--force)"
            )
        return _Found(
            info.st_dev,
            info.st_ino,
            info.st_size,
            info.st_mtime_ns,
            _sha256(directory.descriptor, path.name, info),
        )

    def record(self, session: Session, *, kind: str, by: str | None, in_table: bool = True) -> None:
        """Record each staged file and its SHA-256 in written_files, in the caller's
        transaction; a forced replacement is refused unless lims recorded the file it replaces.

        Without in_table (a database whose schema has no written_files yet: a backup before
        `lims db upgrade`) only the hashes are computed, and nothing can be replaced.
        """
        from sqlmodel import col, select

        from lims.models import WrittenFile
        from lims.timeutil import utcnow

        for staged in self._staged:
            if staged.replaces is not None and not in_table:
                raise RuleViolation(
                    f"{self.option}: {staged.where} exists; this database cannot tell what lims "
                    "wrote before `lims db upgrade`: name a new file"
                )
            if staged.replaces is not None:
                recorded = session.exec(
                    select(WrittenFile.id).where(
                        col(WrittenFile.path) == staged.where,
                        col(WrittenFile.sha256) == staged.replaces.sha256,
                        # A report replaces only a report, a backup only a backup.
                        col(WrittenFile.kind) == kind,
                    )
                ).first()
                if recorded is None or not _stated_in_trail(session, staged.replaces.sha256):
                    raise RuleViolation(
                        f"{self.option}: {staged.where} is not a {kind} lims wrote, or it has "
                        "changed since; not replaced"
                    )
            staged.sha256 = _sha256(staged.directory.staging(), staged.name)
            if not in_table:
                continue
            session.add(
                WrittenFile(
                    path=staged.where,
                    sha256=staged.sha256,
                    kind=kind,
                    written_at=utcnow(),
                    written_by=by,
                )
            )
        self._recorded = True

    def sha256(self, path: Path) -> str:
        """The recorded SHA-256 of the file staged for path."""
        [digest] = [s.sha256 for s in self._staged if s.path == path]
        assert digest is not None, "record() computes it"
        return digest

    def publish(self) -> None:
        """Put every staged file in place; a name taken meanwhile is refused, not replaced."""
        assert self._recorded, "a file is recorded in written_files before it is published"
        taken: list[str] = []
        try:
            for staged in self._staged:
                if not _publish(staged):
                    taken.append(staged.where)
            for directory in self._directories.values():
                with suppress(OSError):  # not every file system can sync a directory
                    os.fsync(directory.descriptor)
        finally:
            self._close()
        if taken:
            raise RuleViolation(
                f"{self.option}: {', '.join(taken)} appeared or changed while lims was writing; "
                "not replaced, though the audit trail records the file written"
            )

    def discard(self) -> None:
        self._close()

    def _close(self) -> None:
        while self._directories:
            _, directory = self._directories.popitem()
            directory.close()

    @contextmanager
    def discarded_on_error(self) -> Iterator[None]:
        """Whatever fails while files are staged and recorded leaves none of them behind."""
        try:
            yield
        except BaseException:
            self.discard()
            raise


def _publish(staged: _Staged) -> bool:
    directory, name = staged.directory, staged.path.name
    if staged.replaces is not None:
        try:
            there = os.stat(name, dir_fd=directory.descriptor, follow_symlinks=False)
        except FileNotFoundError:
            return _link(staged)  # removed meanwhile: a new file, like any other
        if not staged.replaces.same(there):
            return False
        os.rename(
            staged.name, name, src_dir_fd=directory.staging(), dst_dir_fd=directory.descriptor
        )
        return True
    return _link(staged)


def _link(staged: _Staged) -> bool:
    """Put the staged file at its name unless the name is taken; False if it is."""
    directory, name = staged.directory, staged.path.name
    try:
        os.link(
            staged.name,
            name,
            src_dir_fd=directory.staging(),
            dst_dir_fd=directory.descriptor,
            follow_symlinks=False,
        )
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        return _rename_no_replace(staged)
    os.unlink(staged.name, dir_fd=directory.staging())
    return True


def _rename_no_replace(staged: _Staged) -> bool:
    """renameat2(RENAME_NOREPLACE), for file systems without hard links (Linux 3.15+)."""
    import ctypes

    directory = staged.directory
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        raise Unavailable(
            f"cannot put files in {directory.given}: its file system has no hard links and "
            "this system cannot rename without replacing; choose another directory"
        )
    if (
        renameat2(
            directory.staging(),
            os.fsencode(staged.name),
            directory.descriptor,
            os.fsencode(staged.path.name),
            _RENAME_NOREPLACE,
        )
        == 0
    ):
        return True
    code = ctypes.get_errno()
    if code == errno.EEXIST:
        return False
    raise OSError(code, os.strerror(code), staged.where)


def _sha256(directory: int, name: str, expected: os.stat_result | None = None) -> str:
    """SHA-256 of a regular file in directory, read without following a link or blocking."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    with os.fdopen(os.open(name, flags, dir_fd=directory), "rb") as handle:
        info = os.fstat(handle.fileno())
        if expected is not None and (info.st_dev, info.st_ino) != (
            expected.st_dev,
            expected.st_ino,
        ):
            raise RuleViolation(f"{name} changed while lims read it; not replaced")
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _is_database(info: os.stat_result, database: Path) -> bool:
    for suffix in _DATABASE_COMPANIONS:
        with suppress(OSError):
            known = os.stat(f"{database}{suffix}")
            if (known.st_dev, known.st_ino) == (info.st_dev, info.st_ino):
                return True
    return False


def _file_type(info: os.stat_result) -> str:
    mode = info.st_mode
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


class _Staging(Protocol):
    @property
    def files(self) -> StagedFiles: ...


Staging = TypeVar("Staging", bound=_Staging)


def published_on_commit(stage: Callable[[UnitOfWork], Staging]) -> Staging:
    """Stage output in one unit of work; publish its files once that commits, else discard them."""
    from lims.uow import unit_of_work

    staging = None
    try:
        with unit_of_work() as uow:
            staging = stage(uow)
    except BaseException:
        if staging is not None:  # staged, but its audit entry did not commit
            staging.files.discard()
        raise
    staging.files.publish()
    return staging
