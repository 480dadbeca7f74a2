"""Junk in follow-up's command: `lims event record` (issue 13).

On the QA floor (tests.support.floor): junk in any option of `event record` is refused in
one line naming it and writes nothing; no vial of the floor was administered, so every
--vial is refused too.
"""

from __future__ import annotations

from tests.support.floor import junk_in_one_option_test

test_junk_in_any_option_of_event_record_is_refused_and_writes_nothing = junk_in_one_option_test(
    "follow-up"
)
