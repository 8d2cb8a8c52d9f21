"""The ``gbench`` command line: click commands that parse, then delegate."""
