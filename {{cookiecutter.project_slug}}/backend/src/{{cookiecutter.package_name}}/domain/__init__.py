"""Pure business logic: no I/O, no web framework, no database driver."""
