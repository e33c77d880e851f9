"""The app's screens: the main one, and every dialog or full-screen view over it."""
