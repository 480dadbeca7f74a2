"""Output files that appear only once the audit entry recording them commits.

Each file is written beside its destination under a hidden name and renamed into
place after the transaction commits: a command that fails or rolls back leaves no
file the audit trail does not mention.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from lims.uow import UnitOfWork


@dataclass
class StagedFiles:
    paths: list[Path] = field(default_factory=list, init=False)  # where each file is published
    _partials: list[Path] = field(default_factory=list, init=False, repr=False)

    def write(self, path: Path, data: bytes) -> None:
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        # Known before it exists, so a write that fails half-way is discarded too.
        self.paths.append(path)
        self._partials.append(partial)
        partial.write_bytes(data)

    def publish(self) -> None:
        for partial, path in zip(self._partials, self.paths, strict=True):
            os.replace(partial, path)

    def discard(self) -> None:
        for partial in self._partials:
            partial.unlink(missing_ok=True)

    @contextmanager
    def discarded_on_error(self) -> Iterator[None]:
        """Whatever fails while files are staged and recorded leaves none of them behind."""
        try:
            yield
        except BaseException:
            self.discard()
            raise


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
