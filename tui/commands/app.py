"""`proclab [TARGET ...]`: check the request, start the controller, run the app, and end
every child whatever way the app ends."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from proclab.core.controller import Controller, past_the_limit
from proclab.core.defaults import SERVER_HOST
from proclab.core.errors import InputError, ProclabError
from proclab.core.model import ProcessSpec
from proclab.core.recording import record_into
from proclab.tui.commands.options import spec_from_arguments
from proclab.tui.terminal import NO_TERMINAL, has_keyboard, private_terminal

if TYPE_CHECKING:
    from proclab.core.server.tcp import ServerConfig
    from proclab.tui.app import ProclabApp


def run_app(ns: argparse.Namespace) -> int:
    try:
        startup = startup_spawn(ns)
        serve = startup_server(ns)
    except ProclabError as exc:
        print(f"proclab: {exc}", file=sys.stderr)
        return 2
    if not has_keyboard():
        print(
            f"proclab: {NO_TERMINAL} (over ssh: ssh -t); proclab run TARGET needs none",
            file=sys.stderr,
        )
        return 2

    from proclab.tui.app import ProclabApp  # textual is imported only for the app

    return run_in_terminal(
        ns,
        lambda controller: ProclabApp(
            controller, refresh=ns.refresh, method=ns.method, startup=startup, serve=serve
        ),
    )


def run_in_terminal(ns: argparse.Namespace, make_app: Callable[[Controller], ProclabApp]) -> int:
    """A controller from the app options in `ns` (--max-procs, --refresh, --grace,
    --record), the app on the terminal, and every child ended however it ends."""
    controller = Controller(
        max_procs=ns.max_procs,
        sample_interval=ns.refresh,
        grace=ns.grace,
        default_method=ns.method,
    )
    try:
        stop_recording = record_into(controller, ns.record)
    except ProclabError as exc:
        print(f"proclab: {exc}", file=sys.stderr)
        return 2
    try:
        with private_terminal():
            app = make_app(controller)
            status = run_session(controller, app)
    finally:
        cut_short = stop_recording()
    if cut_short is not None:
        app.shutdown_log.append(cut_short)
        status = status or 1  # as `run` does: a script would go on to use half a file
    for line in app.shutdown_log:  # on the restored terminal, for the scrollback
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            print(f"proclab: {line}", file=sys.stderr)
    return status


def run_session(controller: Controller, app: ProclabApp, **run_options: Any) -> int:
    """Run the app on the controller; whatever ends the app (quit, a signal, an exception
    inside it), every child is ended before this returns."""
    try:
        controller.start()
        app.run(**run_options)
    finally:
        controller.close()
    return app.return_code or 0


def startup_spawn(ns: argparse.Namespace) -> tuple[ProcessSpec, int] | None:
    """The children to start at launch, checked; raises ProclabError. A count past
    --max-procs is refused here, before the app (or each of `web`'s tabs) opens only to
    say so."""
    if not ns.target:
        # Without a target they were dropped without a word, bad values too
        # (`proclab --affinity 99` opened the app).
        given = [
            option
            for option, value in (
                ("--args", ns.args),
                ("--kwargs", ns.kwargs),
                ("--name", ns.name is not None),
                ("--count", ns.count != 1),
                ("--daemon", ns.daemon),
                ("--affinity", ns.affinity),
            )
            if value
        ]
        if given:
            raise ProclabError(
                f"{', '.join(given)} {'are' if len(given) > 1 else 'is'} for the children a"
                f" target starts at launch: name one (e.g. proclab proclab.core.tasks:sleep"
                f" {given[0]} ...), or use the spawn form's fields (n)"
            )
        return None
    spec = spec_from_arguments(ns)
    if ns.count > ns.max_procs:
        raise InputError("count", past_the_limit(0, ns.count, ns.max_procs))
    return spec, ns.count


def startup_server(ns: argparse.Namespace) -> ServerConfig | None:
    if ns.serve is None:
        return None
    from proclab.core.server.tcp import ServerConfig, ServerError

    host, _, port = ns.serve.rpartition(":")
    if host.startswith("[") and host.endswith("]"):  # [::1]:8001, as the server says it
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        raise ServerError(f"--serve: {ns.serve!r} is not PORT or HOST:PORT") from None
    return ServerConfig(host=host or SERVER_HOST, port=number, method=ns.method).check()
