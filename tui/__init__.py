"""proclab.tui: the command line and the Textual app. Only the app imports textual."""
