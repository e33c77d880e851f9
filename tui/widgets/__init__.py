"""The panes and widgets the screens are made of."""
