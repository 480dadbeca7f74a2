"""Rules that read and write the store: each takes values and a session, audits in it."""
