"""Plain rules with no store and no I/O: identifiers, quantities, growth maths."""
