"""Watching a program proclab did not write: the hook inside its Python processes, and
proclab's end of the hook's socket."""
