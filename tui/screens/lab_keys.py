"""The lab screen's keys, and what each needs the source to allow."""

from __future__ import annotations

from collections.abc import Callable

from textual.binding import Binding, BindingType

from proclab.core.source import Capabilities

LAB_BINDINGS: list[BindingType] = [
    Binding("n", "spawn", "Spawn", tooltip="Start processes (the spawn form)"),
    Binding(
        "j",
        "join",
        "Join",
        tooltip="Join the selected process: wait for it to end; the interface keeps running",
    ),
    Binding("J", "join_timeout", "Join…", show=False, tooltip="Join with a timeout"),
    Binding(
        "a",
        "join_all",
        "Join all",
        show=False,
        tooltip="Join all: the selected process's batch (started together) if it runs,"
        " else every live child; then their total time and speed-up",
    ),
    Binding(
        "escape",
        "cancel_join",
        "Cancel join",
        show=False,
        tooltip="Stop waiting for a pending join (the children run on)",
    ),
    Binding(
        "t",
        "terminate",
        "Term",
        tooltip="Terminate the selected process (SIGTERM to its group, asks first)",
    ),
    Binding("k,f9", "kill", "Kill", tooltip="Kill the selected process (SIGKILL, asks first)"),
    Binding(
        "p",
        "pause",
        "Pause",
        tooltip="Pause (SIGSTOP) or resume (SIGCONT) the selected process",
    ),
    Binding(
        "i",
        "details",
        "Details",
        show=False,
        tooltip="Details of the selected process (also Enter)",
    ),
    Binding(
        "r",
        "rename",
        "Rename",
        show=False,
        tooltip="Rename the selected process (its Process.name)",
    ),
    Binding(
        "R", "restart", "Restart", show=False, tooltip="Start the selected process's spec again"
    ),
    Binding("c", "clear", "Clear", show=False, tooltip="Clear every ended process from the table"),
    Binding("slash", "filter", "Filter", show=False, tooltip="Filter the table by text"),
    Binding(
        "1", "pane('procs')", "Processes", show=False, tooltip="Show / focus the process table"
    ),
    Binding("2", "pane('log')", "Output", show=False, tooltip="Show / focus the output log"),
    Binding("3", "pane('cpu')", "CPU", show=False, tooltip="Show / focus the CPU pane"),
    Binding(
        "4", "pane('server')", "Server", show=False, tooltip="Show / focus the TCP server pane"
    ),
    Binding(
        "ctrl+t",
        "server",
        "Server on/off",
        show=False,
        tooltip="Start or stop the TCP echo server (settings in its pane)",
    ),
    Binding(
        "g",
        "schedule",
        "CPU scheduling",
        show=False,
        tooltip="CPU scheduling simulator: FCFS, SJF, SRTF, RR, MLFQ; Gantt chart, compared",
    ),
    Binding(
        "l",
        "timeline",
        "Timeline",
        show=False,
        tooltip="Timeline: each child's state and core in every tick (parallel vs concurrent)",
    ),
    Binding(
        "e",
        "experiments",
        "Experiments",
        show=False,
        tooltip="Experiments: parallel vs serial, start-method latency, CPU- vs I/O-bound",
    ),
    Binding("f6", "sort_menu", "Sort by", show=False, tooltip="Sort by a column (a list)"),
    Binding("question_mark,f1", "help", "Help", tooltip="This help"),
    Binding(
        "q,f10",
        "app.quit",
        "Quit",
        tooltip="Quit: ends every child first (asks if some still run; again: yes)",
    ),
]

# The quit key's words where quitting ends no process (a recording, an attached program).
QUIT_LEAVING = "Quit: ends no process (a recording runs none; an attached program runs on)"

# The actions a source may not allow: each one's capability. A key whose action the source
# does not allow is not in the footer, and says so when pressed.
NEEDS: dict[str, Callable[[Capabilities], bool]] = {
    "spawn": lambda can: can.spawn,
    "join": lambda can: can.join,
    "join_timeout": lambda can: can.join,
    "join_all": lambda can: can.join,
    "cancel_join": lambda can: can.join,
    "terminate": lambda can: can.signal,
    "kill": lambda can: can.signal,
    "pause": lambda can: can.signal,
    "rename": lambda can: can.rename,
    "restart": lambda can: can.restart,
    "clear": lambda can: can.clear,
    "server": lambda can: can.server,
}
