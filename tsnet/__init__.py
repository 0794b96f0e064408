"""The ``tsnet`` command line: one entry point, subcommands contributed by each package."""
