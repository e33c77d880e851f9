"""The smallest Textual app with a footer: the reference for proclab's time to first frame."""

from textual.app import App, ComposeResult
from textual.widgets import Footer, Static


class Hello(App[None]):
    BINDINGS = [("q", "quit", "Quit")]  # noqa: RUF012

    def compose(self) -> ComposeResult:
        yield Static("hello")
        yield Footer()


if __name__ == "__main__":
    Hello().run()
