"""What tests share, and nothing else: test modules import from here, never from each other.

The labs are lims.scenario's (the builder the demo and the benchmarks use too);
these modules add what only tests need: the template, the tests' clock and values.

    lab         a database with an admin (a template copied per test), users, logging in
    cli         `lims ARGS` in this process; ok() and refused() judge what it printed
    bench       Bench: a technician's lab and shortcuts to the scenario's bench steps; day()
    quality     Quality: a Bench with QA users and a formulated lot; PASSING results
    vials       vial ids, the QR payload on a vial's label, another lot, an expired lot
    trail       an audit trail to tamper with, and its verification
    storage     storage locations: a box in a rack in a tank
    junk        hypothesis junk for any option, and snapshot(): every row of every table
    oracles     what a number or a time option accepts, restated, and junk just outside it
    floor       the QA floor of the bad-input tests: two lots, a table of writing commands
    stations    bench stations as processes, for the concurrency test and the benchmark

Each module imports only what it needs, so that `python -m tests.support.stations`
(one station of the concurrency test) loads no more than a bench PC would.
"""
