"""The proclab subcommands: one module each, with add_arguments(parser) and run(ns).

Importing one imports no textual: the app is imported by the commands that show it, when
they run."""
