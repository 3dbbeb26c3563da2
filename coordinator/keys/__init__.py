"""A key per agent on the coordinator's side: issuing key files, the key directory and the
revocation list it serves with, and their reload on SIGHUP (docs/SECURITY.md)."""
