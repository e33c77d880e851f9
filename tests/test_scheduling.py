"""The CPU scheduling simulator: textbook worked examples with every figure checked,
properties that hold for any workload (Hypothesis), bad input, and `proclab schedule`."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pty_session import PROCLAB
from support import wait_until

from proclab.core.columns import cells
from proclab.core.errors import ProclabError
from proclab.core.scheduling.simulator import (
    ALGORITHM_KEYS,
    PRESETS,
    SWITCH,
    TIE_RULES,
    Job,
    Schedule,
    ScheduleError,
    Settings,
    check_jobs,
    check_settings,
    compare,
    comparison_rows,
    fcfs,
    format_time,
    job_from_fields,
    mlfq,
    parse_jobs_csv,
    parse_quanta,
    parse_setting,
    render_gantt_text,
    render_lanes_text,
    render_table_text,
    round_robin,
    schedule,
    setting_texts,
    sjf,
    srtf,
    summary_lines,
    throughput_text,
    to_json_dict,
)
from proclab.tui.commands import schedule as schedule_cmd

JOB_KEYS = (
    "name",
    "arrival",
    "burst",
    "priority",
    "start",
    "completion",
    "turnaround",
    "waiting",
    "response",
)


def jobs(*rows: tuple[str, float, float]) -> list[Job]:
    return [Job(name, arrival, burst) for name, arrival, burst in rows]


def gantt(s: Schedule) -> list[tuple[str | None, float, float]]:
    return [(p.job, p.start, p.end) for p in s.gantt]


def column(s: Schedule, what: str) -> dict[str, float]:
    return {r.name: getattr(r, what) for r in s.jobs}


# Silberschatz, Galvin & Gagne, Operating System Concepts, 10th ed. -------------------------


def test_silberschatz_fcfs():
    # §5.3.1: P1 24, P2 3, P3 3 arrive at 0 in that order. Waiting 0, 24, 27: average 17.
    s = fcfs(jobs(("P1", 0, 24), ("P2", 0, 3), ("P3", 0, 3)))
    assert gantt(s) == [("P1", 0, 24), ("P2", 24, 27), ("P3", 27, 30)]
    assert column(s, "waiting") == {"P1": 0, "P2": 24, "P3": 27}
    assert column(s, "completion") == {"P1": 24, "P2": 27, "P3": 30}
    assert column(s, "turnaround") == {"P1": 24, "P2": 27, "P3": 30}
    assert column(s, "response") == {"P1": 0, "P2": 24, "P3": 27}
    assert s.averages.waiting == 17
    assert s.averages.turnaround == 27
    assert s.makespan == 30 and s.busy == 30 and s.utilisation == 1
    assert s.throughput == 0.1
    assert s.switches == 2


def test_silberschatz_fcfs_in_the_other_order():
    # §5.3.1: "If the processes arrive in the order P2, P3, P1": waiting 6, 0, 3, average 3.
    s = fcfs(jobs(("P2", 0, 3), ("P3", 0, 3), ("P1", 0, 24)))
    assert gantt(s) == [("P2", 0, 3), ("P3", 3, 6), ("P1", 6, 30)]
    assert column(s, "waiting") == {"P1": 6, "P2": 0, "P3": 3}
    assert s.averages.waiting == 3


def test_silberschatz_sjf():
    # §5.3.2: P1 6, P2 8, P3 7, P4 3 at 0. SJF runs P4, P1, P3, P2; waiting 3, 16, 9, 0,
    # average 7 (FCFS would give 10.25).
    workload = jobs(("P1", 0, 6), ("P2", 0, 8), ("P3", 0, 7), ("P4", 0, 3))
    s = sjf(workload)
    assert gantt(s) == [("P4", 0, 3), ("P1", 3, 9), ("P3", 9, 16), ("P2", 16, 24)]
    assert column(s, "waiting") == {"P1": 3, "P2": 16, "P3": 9, "P4": 0}
    assert s.averages.waiting == 7
    assert fcfs(workload).averages.waiting == 10.25


def test_silberschatz_srtf():
    # §5.3.2, preemptive SJF: P1 (arrival 0, burst 8), P2 (1, 4), P3 (2, 9), P4 (3, 5).
    # Gantt P1 0-1, P2 1-5, P4 5-10, P1 10-17, P3 17-26; average waiting 26/4 = 6.5;
    # non-preemptive SJF: 7.75.
    workload = jobs(("P1", 0, 8), ("P2", 1, 4), ("P3", 2, 9), ("P4", 3, 5))
    s = srtf(workload)
    assert gantt(s) == [("P1", 0, 1), ("P2", 1, 5), ("P4", 5, 10), ("P1", 10, 17), ("P3", 17, 26)]
    assert column(s, "waiting") == {"P1": 9, "P2": 0, "P3": 15, "P4": 2}
    assert column(s, "completion") == {"P1": 17, "P2": 5, "P3": 26, "P4": 10}
    assert column(s, "response") == {"P1": 0, "P2": 0, "P3": 15, "P4": 2}
    assert s.averages.waiting == 6.5
    assert s.switches == 4
    non_preemptive = sjf(workload)
    assert gantt(non_preemptive) == [("P1", 0, 8), ("P2", 8, 12), ("P4", 12, 17), ("P3", 17, 26)]
    assert non_preemptive.averages.waiting == 7.75


def test_silberschatz_round_robin():
    # §5.3.3: P1 24, P2 3, P3 3 at 0, quantum 4. P1 0-4, P2 4-7, P3 7-10, then P1 alone in
    # quanta of 4 to 30. P1 waits 6 (10 - 4), P2 4, P3 7: average 17/3 = 5.66.
    s = round_robin(jobs(("P1", 0, 24), ("P2", 0, 3), ("P3", 0, 3)), 4)
    assert gantt(s) == [
        ("P1", 0, 4),
        ("P2", 4, 7),
        ("P3", 7, 10),
        ("P1", 10, 14),
        ("P1", 14, 18),
        ("P1", 18, 22),
        ("P1", 22, 26),
        ("P1", 26, 30),
    ]
    assert column(s, "waiting") == {"P1": 6, "P2": 4, "P3": 7}
    assert s.averages.waiting == 17 / 3
    assert s.averages.response == (0 + 4 + 7) / 3
    assert s.switches == 3  # P1 keeps the CPU after 10: no switch between its quanta


def test_silberschatz_mlfq_queues():
    # §5.3.6's example scheduler: queue 0 quantum 8, queue 1 quantum 16, queue 2 FCFS; a
    # job that does not finish its quantum drops to the next queue. On A (0, 30) and
    # B (5, 10), worked by hand: A 0-8 (drops), B 8-16 (drops, 2 left), A 16-32 in queue 1
    # (drops, 6 left), B 32-34, A 34-40 in queue 2.
    s = mlfq(jobs(("A", 0, 30), ("B", 5, 10)), (8, 16, math.inf))
    assert gantt(s) == [("A", 0, 8), ("B", 8, 16), ("A", 16, 32), ("B", 32, 34), ("A", 34, 40)]
    assert column(s, "completion") == {"A": 40, "B": 34}
    assert column(s, "waiting") == {"A": 10, "B": 19}


def test_silberschatz_priority():
    # §5.3.4: P1 (burst 10, priority 3), P2 (1, 1), P3 (2, 4), P4 (1, 5), P5 (5, 2), all
    # at time 0; a lower number is a higher priority. Gantt P2 0-1, P5 1-6, P1 6-16,
    # P3 16-18, P4 18-19; average waiting (6 + 0 + 16 + 18 + 1) / 5 = 8.2. All arrive at
    # 0, so the preemptive and the non-preemptive versions agree.
    workload = [
        Job("P1", 0, 10, 3),
        Job("P2", 0, 1, 1),
        Job("P3", 0, 2, 4),
        Job("P4", 0, 1, 5),
        Job("P5", 0, 5, 2),
    ]
    for algorithm in ("priority", "priority-np"):
        s = schedule(workload, algorithm)
        assert gantt(s) == [
            ("P2", 0, 1),
            ("P5", 1, 6),
            ("P1", 6, 16),
            ("P3", 16, 18),
            ("P4", 18, 19),
        ]
        assert column(s, "waiting") == {"P1": 6, "P2": 0, "P3": 16, "P4": 18, "P5": 1}
        assert column(s, "completion") == {"P1": 16, "P2": 1, "P3": 18, "P4": 19, "P5": 6}
        assert column(s, "turnaround") == {"P1": 16, "P2": 1, "P3": 18, "P4": 19, "P5": 6}
        assert s.averages.waiting == 8.2
        assert s.averages.turnaround == 12
        assert s.switches == 4


def test_priority_preemption_at_arrival_worked_by_hand():
    # §5.3.4's rule ("a preemptive priority scheduling algorithm will preempt the CPU if
    # the priority of the newly arrived process is higher than the priority of the
    # currently running process") on four jobs arriving over time, worked by hand:
    # P1 (arrival 0, burst 10, priority 3) runs; P2 (2, 1, 1) preempts it at 2 and ends
    # at 3; P1 runs on; P3 (4, 2, 4) is lower and waits; P4 (8, 5, 2) preempts P1 at 8
    # (3 left) and ends at 13; P1 ends at 16, P3 at 18. Waiting 6, 0, 12, 0: 4.5.
    workload = [Job("P1", 0, 10, 3), Job("P2", 2, 1, 1), Job("P3", 4, 2, 4), Job("P4", 8, 5, 2)]
    s = schedule(workload, "priority")
    assert gantt(s) == [
        ("P1", 0, 2),
        ("P2", 2, 3),
        ("P1", 3, 8),
        ("P4", 8, 13),
        ("P1", 13, 16),
        ("P3", 16, 18),
    ]
    assert column(s, "waiting") == {"P1": 6, "P2": 0, "P3": 12, "P4": 0}
    assert column(s, "response") == {"P1": 0, "P2": 0, "P3": 12, "P4": 0}
    assert s.averages.waiting == 4.5
    # Non-preemptive: P1 runs to 10; then P2 (1), P4 (2), P3 (4). Waiting 0, 8, 12, 3.
    np = schedule(workload, "priority-np")
    assert gantt(np) == [("P1", 0, 10), ("P2", 10, 11), ("P4", 11, 16), ("P3", 16, 18)]
    assert column(np, "waiting") == {"P1": 0, "P2": 8, "P3": 12, "P4": 3}
    assert np.averages.waiting == 5.75


# Arpaci-Dusseau, Operating Systems: Three Easy Pieces ------------------------------------------


def test_ostep_fifo():
    # Ch. 7 §7.3: A, B, C of 10 each at ~0: average turnaround (10 + 20 + 30) / 3 = 20.
    assert fcfs(jobs(("A", 0, 10), ("B", 0, 10), ("C", 0, 10))).averages.turnaround == 20


def test_ostep_convoy_fifo_then_sjf():
    # Ch. 7 §7.3-7.4: A 100, B 10, C 10 at 0. FIFO: (100 + 110 + 120) / 3 = 110;
    # SJF: (10 + 20 + 120) / 3 = 50.
    workload = jobs(("A", 0, 100), ("B", 0, 10), ("C", 0, 10))
    assert fcfs(workload).averages.turnaround == 110
    s = sjf(workload)
    assert column(s, "turnaround") == {"A": 120, "B": 10, "C": 20}
    assert s.averages.turnaround == 50


def test_ostep_late_arrivals_sjf_then_stcf():
    # Ch. 7 §7.4-7.5: A (0, 100), B and C arrive at 10 with 10 each. SJF: A runs first,
    # average turnaround (100 + (110 - 10) + (120 - 10)) / 3 = 103.33; STCF (= SRTF)
    # preempts A: ((120 - 0) + (20 - 10) + (30 - 10)) / 3 = 50.
    workload = jobs(("A", 0, 100), ("B", 10, 10), ("C", 10, 10))
    assert sjf(workload).averages.turnaround == 310 / 3
    s = srtf(workload)
    assert gantt(s) == [("A", 0, 10), ("B", 10, 20), ("C", 20, 30), ("A", 30, 120)]
    assert s.averages.turnaround == 50


def test_ostep_round_robin_response_and_turnaround():
    # Ch. 7 §7.7: A, B, C of 5 each at 0, time slice 1. RR's average response
    # (0 + 1 + 2) / 3 = 1, SJF's (0 + 5 + 10) / 3 = 5; under RR A, B, C finish at 13, 14
    # and 15, an average turnaround of 14.
    workload = jobs(("A", 0, 5), ("B", 0, 5), ("C", 0, 5))
    rr = round_robin(workload, 1)
    assert column(rr, "response") == {"A": 0, "B": 1, "C": 2}
    assert rr.averages.response == 1
    assert column(rr, "completion") == {"A": 13, "B": 14, "C": 15}
    assert rr.averages.turnaround == 14
    assert sjf(workload).averages.response == 5


def test_ostep_mlfq_along_came_a_short_job():
    # Ch. 8 §8.2, Example 2 ("Along Came A Short Job"): three queues, 10 ms slices. Long
    # job A has sunk to the bottom queue when short job B (20 ms) arrives at T=100; B is
    # put in the top queue, runs two slices (top, then middle) and is done at 120,
    # before A runs again. (A's length, 200, is ours: the figure only shows its start.)
    s = mlfq(jobs(("A", 0, 200), ("B", 100, 20)), (10, 10, 10))
    slices = gantt(s)
    assert slices[:10] == [("A", t, t + 10) for t in range(0, 100, 10)]
    assert slices[10:12] == [("B", 100, 110), ("B", 110, 120)]
    assert slices[12][:2] == ("A", 120)
    assert column(s, "completion") == {"A": 220, "B": 120}
    assert column(s, "response")["B"] == 0
    assert column(s, "turnaround")["B"] == 20


# Tanenbaum & Bos, Modern Operating Systems, 4th ed. ---------------------------------------------


def test_tanenbaum_shortest_job_first():
    # §2.4.2, Fig. 2-41: A 8, B 4, C 4, D 4 minutes. In order: turnarounds 8, 12, 16, 20,
    # mean 14; shortest first (B, C, D, A): 4, 8, 12, 20, mean 11.
    workload = jobs(("A", 0, 8), ("B", 0, 4), ("C", 0, 4), ("D", 0, 4))
    assert column(fcfs(workload), "turnaround") == {"A": 8, "B": 12, "C": 16, "D": 20}
    assert fcfs(workload).averages.turnaround == 14
    s = sjf(workload)
    assert column(s, "turnaround") == {"A": 20, "B": 4, "C": 8, "D": 12}
    assert s.averages.turnaround == 11


# Stallings, Operating Systems: Internals and Design Principles (Table 9.5, Figure 9.5) ---------


STALLINGS = jobs(("A", 0, 3), ("B", 2, 6), ("C", 4, 4), ("D", 6, 5), ("E", 8, 2))


@pytest.mark.parametrize(
    ("policy", "finish", "mean_turnaround"),
    [
        # Stallings' "A comparison of scheduling policies": finish times of A-E and the
        # mean turnaround of each policy. SPN is our SJF, SRT our SRTF, FB with
        # q = 2^i our MLFQ with quanta 1, 2, 4 (each level's quantum its allotment).
        (lambda w: fcfs(w), (3, 9, 13, 18, 20), 8.6),
        (lambda w: round_robin(w, 1), (4, 18, 17, 20, 15), 10.8),
        (lambda w: round_robin(w, 4), (3, 17, 11, 20, 19), 10),
        (lambda w: sjf(w), (3, 9, 15, 20, 11), 7.6),
        (lambda w: srtf(w), (3, 15, 8, 20, 10), 7.2),
        (lambda w: mlfq(w, (1, 2, 4)), (4, 17, 18, 20, 14), 10.6),
    ],
    ids=["FCFS", "RR q=1", "RR q=4", "SPN", "SRT", "FB q=2^i"],
)
def test_stallings_comparison_of_policies(policy, finish, mean_turnaround):
    s = policy(STALLINGS)
    assert tuple(column(s, "completion").values()) == finish
    turnaround = tuple(f - j.arrival for f, j in zip(finish, STALLINGS, strict=True))
    assert tuple(column(s, "turnaround").values()) == turnaround
    assert math.isclose(s.averages.turnaround, mean_turnaround)
    assert s.makespan == 20 and s.utilisation == 1 and s.throughput == 0.25


def test_stallings_round_robin_q1_gantt():
    # Figure 9.5, RR q = 1: B, arriving at 2 as A's quantum ends, runs before A.
    s = round_robin(STALLINGS, 1)
    assert "".join(p.job or "-" for p in s.gantt) == "AABABCBDCBEDCBEDCBDD"


# The tie rules, one test each --------------------------------------------------------------------


def test_rr_arrival_at_quantum_expiry_goes_first():
    s = round_robin(jobs(("A", 0, 6), ("B", 2, 2)), 2)
    assert gantt(s) == [("A", 0, 2), ("B", 2, 4), ("A", 4, 6), ("A", 6, 8)]


def test_srtf_preempts_only_on_strictly_shorter():
    assert gantt(srtf(jobs(("A", 0, 5), ("B", 1, 4)))) == [("A", 0, 5), ("B", 5, 9)]
    assert gantt(srtf(jobs(("A", 0, 5), ("B", 1, 3.5)))) == [
        ("A", 0, 1),
        ("B", 1, 4.5),
        ("A", 4.5, 8.5),
    ]


def test_equal_keys_go_by_arrival_then_list_order():
    s = sjf(jobs(("Z", 1, 4), ("Y", 0, 10), ("X", 2, 4), ("W", 2, 4)))
    # Y runs first (alone at 0); then three bursts of 4: Z arrived first, then X before W
    # because it is listed first.
    assert [p.job for p in s.gantt] == ["Y", "Z", "X", "W"]


def test_exact_decimal_times():
    # 0.1 + 0.2 == 0.3 here: C arrives exactly when B's quantum ends, so it goes first.
    s = round_robin(jobs(("A", 0, 0.1), ("B", 0.1, 0.4), ("C", 0.3, 0.1)), 0.2)
    assert gantt(s) == [("A", 0, 0.1), ("B", 0.1, 0.3), ("C", 0.3, 0.4), ("B", 0.4, 0.6)]


def test_mlfq_allotment_counts_across_slices():
    # Quantum 2 at the top, but 4 units allowed there: A drops only after its second slice.
    s = mlfq(jobs(("A", 0, 12), ("B", 2, 1), ("C", 4, 1)), (2, 4), allotment=4)
    assert gantt(s) == [
        ("A", 0, 2),
        ("B", 2, 3),
        ("A", 3, 5),
        ("C", 5, 6),
        ("A", 6, 10),
        ("A", 10, 14),
    ]


def test_mlfq_higher_level_arrival_preempts_and_preempted_job_resumes_first():
    # A has dropped to level 1 (quantum 4) when B arrives at 3 at the top: A stops at once
    # and goes back to the head of level 1, keeping the 1 unit of allotment it used. C
    # (arriving at 3.5) runs its top-level quantum, then drops behind A; A has 3 units of
    # allotment left, uses them, and drops (the bottom level keeps it).
    s = mlfq(jobs(("A", 0, 8), ("B", 3, 1), ("C", 3.5, 3)), (2, 4))
    assert gantt(s) == [
        ("A", 0, 2),
        ("A", 2, 3),
        ("B", 3, 4),
        ("C", 4, 6),
        ("A", 6, 9),
        ("C", 9, 10),
        ("A", 10, 12),
    ]


def test_mlfq_boost_moves_everyone_up_and_cuts_the_slice():
    # Quanta 1 and 10, boost every 6. A finishes at 5 in level 1; B, in level 1 at 6, is
    # cut by the boost, goes to the top, runs its quantum of 1, then the rest at level 1.
    s = mlfq(jobs(("A", 0, 4), ("B", 1, 4)), (1, 10), boost=6)
    assert gantt(s) == [
        ("A", 0, 1),
        ("B", 1, 2),
        ("A", 2, 5),
        ("B", 5, 6),
        ("B", 6, 7),
        ("B", 7, 8),
    ]
    assert s.switches == 3


def test_mlfq_a_boost_leaves_the_top_queue_as_it_is():
    """As OSTEP's mlfq.py does: a boost moves up the jobs below the top queue; one at the
    top keeps its place and its quantum. A boost every 2 with a top quantum of 4 restarted
    A's quantum at every boost: B and C waited for A to finish (FCFS, from a rule meant
    against starvation)."""
    three = jobs(("A", 0, 10), ("B", 0, 10), ("C", 0, 10))
    s = mlfq(three, (4, 8, 16), boost=2)
    assert gantt(s) == gantt(round_robin(three, 4))  # all stay at the top: RR, quantum 4
    assert column(s, "turnaround") == {"A": 26, "B": 28, "C": 30}
    # A boost inside a top-level slice does not lengthen it: B runs its 4, not 6.
    s = mlfq(three, (4, 8, 16), boost=6)
    assert max(end - start for _, start, end in gantt(s)) == 4
    # Below the top, a job is moved up at the boost, behind those already there.
    s = mlfq(jobs(("A", 0, 10), ("B", 0, 10)), (4, 8), boost=3)
    assert gantt(s)[:4] == [("A", 0, 4), ("B", 4, 8), ("A", 8, 12), ("B", 12, 16)]


def test_switch_cost():
    # FCFS with a switch of 1: P2 starts at 25, P3 at 29; no switch before the first job.
    s = fcfs(jobs(("P1", 0, 24), ("P2", 0, 3), ("P3", 0, 3)), switch_cost=1)
    assert gantt(s) == [
        ("P1", 0, 24),
        (SWITCH, 24, 25),
        ("P2", 25, 28),
        (SWITCH, 28, 29),
        ("P3", 29, 32),
    ]
    assert column(s, "waiting") == {"P1": 0, "P2": 25, "P3": 29}
    assert s.busy == 30 and s.makespan == 32 and s.utilisation == 30 / 32
    assert s.throughput == 3 / 32
    # RR: no switch when P1 keeps the CPU after its quantum.
    rr = round_robin(jobs(("P1", 0, 24), ("P2", 0, 3), ("P3", 0, 3)), 4, switch_cost=0.5)
    assert [p.job for p in rr.gantt].count(SWITCH) == 3
    assert column(rr, "completion") == {"P1": 31.5, "P2": 7.5, "P3": 11}


def test_switch_cost_after_idle_and_choice_at_the_end_of_the_switch():
    # A switch is paid even after idle time (the CPU starts another job than the last).
    s = fcfs(jobs(("A", 2, 3), ("B", 10, 1)), switch_cost=1)
    assert gantt(s) == [(None, 0, 2), ("A", 2, 5), (None, 5, 10), (SWITCH, 10, 11), ("B", 11, 12)]
    assert s.utilisation == 4 / 12
    # SJF chooses when the switch ends: C, arriving during it, is shorter than B.
    s = sjf(jobs(("A", 0, 2), ("B", 0, 10), ("C", 2.5, 1)), switch_cost=1)
    assert [p.job for p in s.gantt] == ["A", SWITCH, "C", SWITCH, "B"]


def test_idle_cpu_and_utilisation_from_zero():
    s = fcfs(jobs(("A", 3, 2), ("B", 8, 2)))
    assert gantt(s) == [(None, 0, 3), ("A", 3, 5), (None, 5, 8), ("B", 8, 10)]
    assert s.utilisation == 0.4 and s.throughput == 0.2 and s.makespan == 10


def test_priority_ties_equal_priority_never_preempts():
    s = schedule([Job("A", 0, 4, 2), Job("B", 1, 1, 2)], "priority")
    assert gantt(s) == [("A", 0, 4), ("B", 4, 5)]


def test_priority_preempted_job_goes_back_ahead_of_later_equals():
    # As SCHED_FIFO keeps a preempted thread at the head of its priority's list: A,
    # preempted by H at 1, runs again before B, of A's priority, that arrived at 0.5.
    s = schedule([Job("A", 0, 3, 2), Job("B", 0.5, 1, 2), Job("H", 1, 1, 1)], "priority")
    assert gantt(s) == [("A", 0, 1), ("H", 1, 2), ("A", 2, 4), ("B", 4, 5)]


def test_priority_jobs_without_one_come_last_in_arrival_order():
    s = schedule([Job("N", 0, 2), Job("M", 0, 1), Job("L", 0, 1, 9)], "priority-np")
    assert [p.job for p in s.gantt] == ["L", "N", "M"]
    # With no priorities at all, both are FCFS.
    plain = jobs(("A", 0, 3), ("B", 1, 1), ("C", 1, 2))
    for algorithm in ("priority", "priority-np"):
        assert schedule(plain, algorithm).gantt == fcfs(plain).gantt


def test_tie_rules_are_documented_for_every_algorithm():
    for word in ("FCFS", "SJF", "SRTF", "RR", "MLFQ", "Priority", "Boost", "Switches", "strictly"):
        assert word in TIE_RULES


# Properties --------------------------------------------------------------------------------------

times = st.one_of(st.integers(0, 30), st.integers(0, 60).map(lambda h: h / 2))
bursts = st.one_of(st.integers(1, 12), st.integers(1, 30).map(lambda h: h / 2))


@st.composite
def workloads(draw: st.DrawFn, at_zero: bool = False) -> list[Job]:
    count = draw(st.integers(1, 7))
    priorities = st.one_of(st.none(), st.integers(-2, 3))
    return [
        Job(f"J{i}", 0 if at_zero else draw(times), draw(bursts), draw(priorities))
        for i in range(count)
    ]


settings_strategy = st.builds(
    Settings,
    quantum=st.sampled_from([0.5, 1, 2, 3, 5]),
    quanta=st.lists(st.sampled_from([1, 2, 3, 4, 8, math.inf]), min_size=1, max_size=4).map(tuple),
    allotment=st.sampled_from([None, 1, 3, 6, math.inf]),
    boost=st.sampled_from([None, 5, 12, 40]),
    switch_cost=st.sampled_from([0, 0, 0.5, 1]),
)


def check_invariants(workload: Sequence[Job], s: Schedule) -> None:
    by_name = {j.name: j for j in workload}
    assert [r.name for r in s.jobs] == [j.name for j in workload]
    pieces = s.gantt
    assert pieces[0].start == 0
    assert pieces[-1].end == s.makespan
    for before, after in itertools.pairwise(pieces):
        assert before.end == after.start  # contiguous, in time order, never overlapping
    assert all(p.start < p.end for p in pieces)
    for result in s.jobs:
        job = by_name[result.name]
        runs = [p for p in pieces if p.job == result.name]
        assert runs, "every job runs"
        assert runs[0].start == result.start >= job.arrival
        assert runs[-1].end == result.completion
        assert math.isclose(sum(p.end - p.start for p in runs), job.burst, abs_tol=1e-9)
        assert math.isclose(result.turnaround, result.completion - job.arrival, abs_tol=1e-9)
        assert math.isclose(result.waiting, result.turnaround - job.burst, abs_tol=1e-9)
        assert math.isclose(result.response, result.start - job.arrival, abs_tol=1e-9)
        assert result.waiting >= -1e-9 and result.response >= 0
    busy = sum(p.end - p.start for p in pieces if p.is_run)
    assert math.isclose(busy, sum(j.burst for j in workload), abs_tol=1e-9)
    assert math.isclose(s.busy, busy, abs_tol=1e-9)
    if not s.settings.switch_cost:
        assert not any(p.job == SWITCH for p in pieces)
    runs = [p.job for p in pieces if p.is_run]
    assert s.switches == sum(1 for a, b in itertools.pairwise(runs) if a != b)
    assert 0 < s.utilisation <= 1
    assert math.isclose(s.throughput, len(workload) / s.makespan)


@pytest.mark.parametrize("algorithm", ALGORITHM_KEYS)
@settings(max_examples=150, deadline=None)
@given(workload=workloads(), config=settings_strategy)
def test_every_algorithm_keeps_the_invariants(algorithm, workload, config):
    check_invariants(workload, schedule(workload, algorithm, config))


@settings(max_examples=150, deadline=None)
@given(workload=workloads(), cost=st.sampled_from([0, 0.5]))
def test_rr_with_a_quantum_longer_than_every_burst_is_fcfs(workload, cost):
    quantum = max(j.burst for j in workload) + 1
    rr = round_robin(workload, quantum, switch_cost=cost)
    first = fcfs(workload, switch_cost=cost)
    assert rr.gantt == first.gantt and rr.jobs == first.jobs


@settings(max_examples=150, deadline=None)
@given(workload=workloads(), quantum=st.sampled_from([0.5, 1, 2, 3]))
def test_mlfq_with_one_level_is_rr(workload, quantum):
    assert mlfq(workload, (quantum,)).gantt == round_robin(workload, quantum).gantt


@settings(max_examples=150, deadline=None)
@given(workload=workloads(), cost=st.sampled_from([0, 0.5]), level=st.sampled_from([None, 3]))
def test_priority_with_one_level_is_fcfs(workload, cost, level):
    same = [Job(j.name, j.arrival, j.burst, level) for j in workload]
    first = fcfs(same, switch_cost=cost)
    for algorithm in ("priority", "priority-np"):
        s = schedule(same, algorithm, Settings(switch_cost=cost))
        assert s.gantt == first.gantt and s.jobs == first.jobs


@settings(max_examples=150, deadline=None)
@given(workload=workloads())
def test_preemptive_priority_always_runs_a_highest_priority_ready_job(workload):
    s = schedule(workload, "priority")
    rank = {j.name: math.inf if j.priority is None else j.priority for j in workload}
    for piece in s.gantt:
        if not piece.is_run:
            continue
        ready = [
            r.name
            for r in s.jobs
            if r.arrival <= piece.start and r.completion > piece.start and r.name != piece.job
        ]
        assert all(rank[name] >= rank[piece.job] for name in ready)


@settings(max_examples=150, deadline=None)
@given(workload=workloads(at_zero=True))
def test_sjf_waits_no_longer_than_fcfs_when_all_arrive_at_zero(workload):
    assert sjf(workload).averages.waiting <= fcfs(workload).averages.waiting


@settings(max_examples=150, deadline=None)
@given(workload=workloads(), config=settings_strategy)
def test_srtf_has_the_lowest_average_turnaround(workload, config):
    # Shortest remaining time first is optimal for mean turnaround (with free switches).
    free = Settings(config.quantum, config.quanta, config.allotment, config.boost, 0)
    results = compare(workload, free)
    best = min(s.averages.turnaround for s in results)
    assert math.isclose(next(s for s in results if s.algorithm == "srtf").averages.turnaround, best)


# Bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no jobs: expected the header name,arrival,burst[,priority]"),
        ("name,arrival,burst\n", "line 1: no jobs, only the header"),
        ("P1,0,3\n", "line 1: expected the header name,arrival,burst[,priority], got 'P1,0,3'"),
        ("name,arrival,burst\nP1,0\n", "line 2: expected 3 fields (name,arrival,burst), got 2"),
        ("name,arrival,burst\nP1,0,3,1\n", "line 2: expected 3 fields"),
        ("name,arrival,burst\nP1,0,3\nP2,zero,3\n", "line 3 (P2): arrival is not a number: 'zero'"),
        ("name,arrival,burst\nP1,0,-1\n", "line 2 (P1): burst must be more than 0, got -1"),
        ("name,arrival,burst\nP1,0,0\n", "line 2 (P1): burst must be more than 0, got 0"),
        (
            "name,arrival,burst\nP1,-2,3\n",
            "line 2 (P1): arrival must be 0 or from 0.000001 to 1,000,000,000, got -2",
        ),
        ("name,arrival,burst\nP1,0,nan\n", "line 2 (P1): burst must be a finite number"),
        (
            "name,arrival,burst\n\nP1,0,3\n# a comment\nP1,1,3\n",
            "line 5: name 'P1' is already used on line 3",
        ),
        ("name,arrival,burst\n,0,3\n", "line 2: name is empty"),
        (
            "name,arrival,burst,priority\nP1,0,3,high\n",
            "line 2 (P1): priority is not a whole number: 'high'",
        ),
    ],
)
def test_bad_csv_names_the_line(text, message):
    with pytest.raises(ScheduleError) as caught:
        parse_jobs_csv(text)
    assert str(caught.value).startswith(message)
    if message.startswith("line "):  # the CLI names it so
        assert caught.value.line == int(message.split()[1].rstrip(":"))
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ProclabError)


def test_good_csv():
    text = (
        '# Silberschatz\nName, Arrival, Burst, Priority\nP1, 0, 24, 3\n\nP2,0,3,\n"P 3",0.5,3,1\n'
    )
    assert parse_jobs_csv(text) == [
        Job("P1", 0, 24, 3),
        Job("P2", 0, 3, None),
        Job("P 3", 0.5, 3, 1),
    ]


def test_check_jobs_names_job_and_field():
    problems = check_jobs([Job("A", 0, 1), Job("A", -1, 0), Job("", 0, 2)])
    assert [(p.index, p.field) for p in problems] == [
        (1, "name"),
        (1, "arrival"),
        (1, "burst"),
        (2, "name"),
    ]
    assert problems[0].message == "'A' is also job 1's name"
    assert [p.message for p in check_jobs([])] == ["no jobs: add at least one"]


def test_job_from_fields_reports_each_cell():
    job, problems = job_from_fields(3, "P4", "x", "-2", "1.5")
    assert job is None
    assert [(p.index, p.field, p.describe()) for p in problems] == [
        (3, "arrival", "arrival is not a number: 'x'"),
        (3, "burst", "burst must be more than 0, got -2"),
        (3, "priority", "priority is not a whole number: '1.5'"),
    ]
    assert job_from_fields(0, " P1 ", "0", "3") == (Job("P1", 0, 3), [])


@pytest.mark.parametrize(
    ("config", "algorithm", "field", "message"),
    [
        (Settings(quantum=0), "rr", "quantum", "quantum must be more than 0, got 0"),
        (Settings(quantum=-1), "all", "quantum", "quantum must be more than 0, got -1"),
        (Settings(quanta=()), "mlfq", "levels", "levels must be from 1 to 8, got 0"),
        (
            Settings(quanta=(2, 0)),
            "mlfq",
            "quanta",
            "quanta must all be more than 0, got 0 for level 1",
        ),
        (Settings(allotment=0), "mlfq", "allotment", "allotment must be more than 0, got 0"),
        (Settings(boost=-5), "mlfq", "boost", "boost must be more than 0, got -5"),
        (Settings(switch_cost=-1), "fcfs", "switch_cost", "switch cost must be 0 or more, got -1"),
    ],
)
def test_bad_settings(config, algorithm, field, message):
    problems = check_settings(config, algorithm)
    assert problems[0].field == field
    assert problems[0].describe() == message
    workload = jobs(("A", 0, 1))
    with pytest.raises(ScheduleError) as caught:
        if algorithm == "all":
            compare(workload, config)
        else:
            schedule(workload, algorithm, config)
    assert caught.value.field == field
    assert str(caught.value) == message


def test_quantum_is_not_checked_where_it_is_not_used():
    assert check_settings(Settings(quantum=0), "fcfs") == []


def test_a_quantum_too_small_is_refused_not_computed():
    with pytest.raises(
        ScheduleError, match=r"quantum 0\.001 would cut these jobs into about 24,000 slices"
    ):
        round_robin(jobs(("A", 0, 24)), 0.001)


def test_a_boost_too_frequent_is_refused_when_every_quantum_is_inf():
    """Every level run to the end, a boost every microsecond: the check of the boosts was
    skipped, and the simulation ran on at full CPU for good."""
    settings = Settings(quanta=(math.inf,), boost=0.000001)
    with pytest.raises(
        ScheduleError,
        match=r"^boost every 1e-06 over a run of about 24 would mean about 24,000,000",
    ):
        schedule(jobs(("A", 0, 24)), "mlfq", settings)


def test_a_quantum_is_refused_for_its_slices_and_their_context_switches():
    """500 jobs of 40 at quantum 1: 20,000 slices, within the limit; with a switch cost, as
    many switches too, which the simulation's last check refused without naming anything."""
    many = jobs(*((f"J{i}", 0, 40) for i in range(500)))
    assert len(schedule(many, "rr", Settings(quantum=1)).gantt) == 20_000
    with pytest.raises(
        ScheduleError,
        match=r"^quantum 1 would cut these jobs into about 20,000 slices, and as many context",
    ):
        schedule(many, "rr", Settings(quantum=1, switch_cost=0.5))


def test_a_time_of_a_few_decimals_is_shown_as_it_is_and_a_long_one_rounded():
    """Bursts of 1.0004 and 1.0006 read '1' and '1.001', A's completion the same as B's
    start; 0.0004 and 0.0006 read '0.0004' and '0.001'."""
    s = fcfs(jobs(("A", 0, 1.0004), ("B", 0, 1.0006)))
    table = render_table_text(s)
    assert "1.0004" in table and "1.0006" in table and "2.001" in table
    assert [format_time(v) for v in (0.0004, 0.0006, 0.1 + 0.2, 5 + 2 / 3)] == [
        "0.0004", "0.0006", "0.3", "5.667",
    ]  # fmt: skip
    # A large average's thirds are no short decimal, however close its float comes.
    assert [format_time(v) for v in (2e6 / 3, 1e9 / 3, 1e12 / 3)] == [
        "666666.667", "333333333.333", "333333333333.333",
    ]  # fmt: skip


def test_a_small_average_keeps_three_significant_figures():
    """Waits of 0, 0.001 and 0.001 averaged 0.000667 and read '0.001', half again what it
    was; a throughput of 2 jobs in 220 read '0.009' for 0.00909."""
    s = fcfs(jobs(("P1", 0, 0.001), ("P2", 0, 0.001), ("P3", 0.001, 1)))
    average = next(line for line in render_table_text(s).splitlines() if line.startswith("average"))
    assert "0.000667" in average.split(), average
    convoy = fcfs(jobs(("A", 0, 200), ("B", 0, 20)))
    assert summary_lines(convoy)[0].startswith(
        "throughput 0.00909 jobs per time unit (2 jobs in 220)"
    )
    assert [format_time(v) for v in (0.0123456, 0.1234567, 2 / 3 * 0.01)] == [
        "0.0123", "0.123", "0.00667",
    ]  # fmt: skip


def test_a_job_s_row_shows_it_wherever_it_ran_however_short():
    """A 1-unit burst in 3,001 units showed in no column; jobs taking turns every 0.01
    units showed waiting in columns where each of them ran."""
    late = render_lanes_text([("FCFS", fcfs(jobs(("A", 0, 1), ("B", 3000, 1))))], width=80)
    assert all("#" in lane for lane in late.splitlines()[1:3]), late
    turns = round_robin(jobs(("A", 0, 3), ("B", 0, 3), ("C", 0, 3)), 0.01)
    lanes = render_lanes_text([("RR", turns)], width=60).splitlines()[1:4]
    assert all(set(lane.split()[1]) == {"#"} for lane in lanes), lanes


def test_a_cpu_that_idled_is_never_fully_used():
    s = fcfs(jobs(("A", 0, 10_000), ("B", 10_000.5, 1)))
    assert summary_lines(s)[1].startswith("CPU utilisation 99.9% (busy 10001 of 10001.5)")
    assert summary_lines(fcfs(jobs(("A", 0, 3))))[1].startswith("CPU utilisation 100.0%")
    # nor is one that ran at all unused: a 1-unit burst in a billion read "0.0%"
    late = fcfs(jobs(("A", 1_000_000_000, 1)))
    assert summary_lines(late)[1].startswith("CPU utilisation <0.1% (busy 1 of 1000000001)")


@pytest.mark.parametrize(
    ("burst", "priority", "said"),
    [
        ("1" * 400, "", "burst must be at most 1,000,000,000, got " + "1" * 39 + "…"),
        ("x" * 1000, "", "burst is not a number: '" + "x" * 39 + "…'"),
        # Python reads other scripts' digits; shown, they read as ASCII ones ("٣" as "3")
        ("٣", "", "burst is not a number: '٣'"),
        ("1", "٣", "priority is not a whole number: '٣'"),
        ("12345678901234567", "", "burst must be at most 1,000,000,000, got 12345678901234567"),
        ("1", "9" * 5000, "priority must be between -1,000,000,000 and 1,000,000,000, got "),
        ("1", "9" * 4000, "priority must be between -1,000,000,000 and 1,000,000,000, got "),
        ("1", "-5000000000", "priority must be between"),
        ("1", "highhighhighhighhighhigh", "priority is not a whole number: 'highhigh"),
        ("-1e300", "", "burst is below 0, got -1e300"),
    ],
    ids=[
        "400-digit-burst",
        "long-word",
        "arabic-indic-burst",
        "arabic-indic-priority",
        "17-digit-burst",
        "5000-digit",
        "4000-digit",
        "big",
        "long-word-priority",
        "huge-negative",
    ],
)
def test_a_field_past_its_range_is_said_so_in_a_short_line(burst: str, priority: str, said: str):
    """A 400-digit burst was 'not a finite number', a 100,000-character one a 100 KB line,
    a 5,000-digit priority 'not a whole number', and a 4,000-digit one was taken (a table
    4,000 columns wide)."""
    job, problems = job_from_fields(0, "A", "0", burst, priority)
    assert job is None and len(problems) == 1
    assert problems[0].describe().startswith(said) and len(problems[0].describe()) < 120


def test_bad_jobs_given_directly():
    with pytest.raises(ScheduleError, match=r"^B: burst must be more than 0, got 0$"):
        fcfs([Job("A", 0, 1), Job("B", 0, 0)])
    # A huge figure is written with an exponent, not as its 300 digits.
    with pytest.raises(
        ScheduleError, match=r"^B: burst must be at most 1,000,000,000, got 1e\+300$"
    ):
        fcfs([Job("A", 0, 1), Job("B", 0, 1e300)])
    assert format_time(1e15) == "1e+15" and format_time(-2.5e20) == "-2.5e+20"
    assert format_time(999_999_999.5) == "999999999.5" and format_time(24.0) == "24"
    with pytest.raises(ScheduleError, match="no jobs"):
        compare([])


# Presets, JSON and text ----------------------------------------------------------------------------


def test_presets_run_and_match_their_descriptions():
    for name, preset in PRESETS.items():
        results = compare(list(preset.jobs), preset.settings)
        assert len(results) == len(ALGORITHM_KEYS), name
        assert preset.algorithm in (*ALGORITHM_KEYS, "all") and preset.description
    assert schedule(list(PRESETS["fcfs-convoy"].jobs), "fcfs").averages.waiting == 17
    assert schedule(list(PRESETS["sjf"].jobs), "sjf").averages.waiting == 7
    assert schedule(list(PRESETS["srtf"].jobs), "srtf").averages.waiting == 6.5
    assert (
        schedule(list(PRESETS["rr"].jobs), "rr", PRESETS["rr"].settings).averages.waiting == 17 / 3
    )
    assert schedule(list(PRESETS["priority"].jobs), "priority-np").averages.waiting == 8.2
    preempt = list(PRESETS["priority-preempt"].jobs)
    assert schedule(preempt, "priority").averages.waiting == 4.5
    assert schedule(preempt, "priority-np").averages.waiting == 5.75
    stcf = PRESETS["stcf"]
    assert schedule(list(stcf.jobs), "srtf").averages.turnaround == 50
    assert schedule(list(stcf.jobs), "sjf").averages.turnaround == 310 / 3


def test_json_shape():
    s = round_robin(jobs(("P1", 0, 24), ("P2", 0, 3), ("P3", 0, 3)), 4)
    data = json.loads(json.dumps(to_json_dict(s)))
    assert data["algorithm"] == "rr"
    assert data["jobs"][0] == {
        "name": "P1",
        "arrival": 0,
        "burst": 24,
        "priority": None,
        "start": 0,
        "completion": 30,
        "turnaround": 30,
        "waiting": 6,
        "response": 0,
    }
    assert data["averages"] == {
        "turnaround": 47 / 3,
        "waiting": 17 / 3,
        "response": 11 / 3,
    }
    assert data["gantt"][:2] == [
        {"job": "P1", "start": 0, "end": 4},
        {"job": "P2", "start": 4, "end": 7},
    ]
    idle = to_json_dict(fcfs(jobs(("A", 2, 1))))
    assert idle["gantt"][0] == {"job": None, "start": 0, "end": 2}


def test_text_gantt_and_table():
    s = fcfs(jobs(("P1", 0, 24), ("P2", 0, 3), ("P3", 0, 3)))
    chart = render_gantt_text(s, 60).splitlines()
    assert chart[0].startswith("|") and chart[0].endswith("|")
    assert [cell.strip() for cell in chart[0].strip("|").split("|")] == ["P1", "P2", "P3"]
    assert chart[1].split() == ["0", "24", "27", "30"]
    assert all(len(line) <= 60 for line in chart)
    # Bars are as long as their slices: P1's is eight times P2's, give or take rounding.
    widths = [len(cell) + 1 for cell in chart[0].strip("|").split("|")]
    assert 6 <= widths[0] / widths[1] <= 10
    table = render_table_text(s).splitlines()
    assert table[0].split() == ["job", *JOB_KEYS[1:3], *JOB_KEYS[4:]]
    assert table[1].split() == ["P1", "0", "24", "0", "24", "24", "0", "0"]
    assert table[4].split() == ["average", "27", "17", "17"]
    assert table[5] == "throughput 0.1 jobs per time unit (3 jobs in 30)"
    assert table[6] == "CPU utilisation 100.0% (busy 30 of 30), 2 context switches"
    # one job a unit: "1 job per time unit", not "1 jobs"
    one = fcfs([Job("A", 0, 1)])
    assert render_table_text(one).splitlines()[3] == "throughput 1 job per time unit (1 job in 1)"
    # Not rounded to a whole number it is not: 2 jobs in 2.001 is not the rate of 2 in 2.
    near = fcfs([Job("A", 0, 1), Job("B", 0, 1.001)])
    assert render_table_text(near).splitlines()[4] == (
        "throughput 0.9995 jobs per time unit (2 jobs in 2.001)"
    )
    assert comparison_rows([near])[0][-3] == "0.9995"
    nearer = fcfs([Job("A", 0, 1), Job("B", 0, 1.0000001)])
    assert throughput_text(nearer) == "≈1 job per time unit"


def test_text_gantt_wraps_and_shows_idle_and_switches():
    s = round_robin(jobs(("A", 1, 20), ("B", 1, 20)), 1, switch_cost=0.5)
    chart = render_gantt_text(s, 40)
    lines = chart.splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert len(lines) > 3 and "idle" in lines[0] and "cs" in lines[0]
    assert lines[-1] == "cs: context switch (0.5 each)"
    times = [line for line in lines if line[:1].isdigit()]
    assert times[-1].split()[-1] == str(s.makespan).removesuffix(".0")
    # boxes of 1 and of 0.5 drawn as wide as their names: said under the chart
    assert "not to scale" in chart


def test_text_gantt_fits_a_long_name_in_its_width_and_says_when_it_is_not_to_scale():
    """A 24-character name at --width 20 drew 27 columns, and a slice of 1 drew wider
    than one of 30 with nothing said."""
    s = fcfs(jobs(("abcdefghijklmnopqrstuvwx", 0, 1), ("B", 1, 30)))
    lines = render_gantt_text(s, 20).splitlines()
    assert all(cells(line) <= 20 for line in lines), lines
    assert lines[0] == "| abcdefghijklmno…|"
    assert "not to scale: a box is never narrower than its name and its start" in " ".join(lines)
    to_scale = render_gantt_text(fcfs(jobs(("A", 0, 10), ("B", 10, 10))), 40)
    assert to_scale.splitlines()[0] == "|        A         |        B         |"
    assert "not to scale" not in to_scale


def test_text_gantt_says_two_boxes_of_one_job_are_no_context_switch():
    """Each slice is a box: "A | A" (a lone job's next quantum, an MLFQ boost) read as a
    switch the summary's count left out, with nothing said."""
    again = render_gantt_text(round_robin(jobs(("A", 0, 10), ("B", 0, 2)), 4), 60)
    assert again.splitlines()[0].count("A") == 3 and again.splitlines()[0].endswith("|    A    |")
    said = " ".join(again.splitlines()[2:])  # wrapped at the chart's width
    assert said == "A | A: one job's slices back to back (a new quantum): no context switch"
    assert "back to back" not in render_gantt_text(fcfs(jobs(("A", 0, 8), ("B", 0, 2))), 60)


# The `proclab schedule` command ---------------------------------------------------------------


def run_cmd(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="proclab schedule")
    schedule_cmd.add_arguments(parser)
    ns = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO(stdin)
    try:
        code = schedule_cmd.run(ns)
    finally:
        sys.stdout, sys.stderr, sys.stdin = old
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def silberschatz_csv(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.csv"
    path.write_text("name,arrival,burst\nP1,0,24\nP2,0,3\nP3,0,3\n")
    return path


def test_cmd_one_algorithm(silberschatz_csv):
    code, out, err = run_cmd(
        str(silberschatz_csv), "--algo", "rr", "--quantum", "4", "--width", "70"
    )
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "RR (quantum 4): round robin"
    assert lines[1].startswith("|") and lines[2].split()[:4] == ["0", "4", "7", "10"]
    average = next(line for line in lines if line.startswith("average"))
    assert average.split() == ["average", "15.667", "5.667", "3.667"]
    assert "Compared" not in out
    # a setting is shown as typed: three decimals made 0.0015 read "0.002"
    code, out, _ = run_cmd(str(silberschatz_csv), "--algo", "rr", "--quantum", "0.0015")
    assert code == 0 and out.splitlines()[0] == "RR (quantum 0.0015): round robin"
    settings = Settings(quantum=0.0015, quanta=(0.0015, math.inf), boost=2.5)
    assert setting_texts(settings)["quantum"] == "0.0015"
    assert parse_setting("quanta", setting_texts(settings)["quanta"]) == (0.0015, math.inf)


def test_cmd_all_compares(silberschatz_csv):
    code, out, _ = run_cmd(str(silberschatz_csv))
    assert code == 0
    compared = out.split("Compared (averages over the jobs)\n")[1].splitlines()
    assert compared[0].split()[0] == "algorithm"
    assert [line.split()[0] for line in compared[1:]] == [
        "FCFS",
        "SJF",
        "SRTF",
        "RR",
        "Priority-NP",
        "Priority",
        "MLFQ",
    ]
    assert compared[1].split()[1:4] == ["27", "17", "17"]


def test_cmd_json(silberschatz_csv):
    code, out, _ = run_cmd(str(silberschatz_csv), "--algo", "fcfs", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["algorithm"] == "fcfs"
    assert {"algorithm", "jobs", "averages", "gantt"} <= set(data)
    assert all(set(j) == set(JOB_KEYS) for j in data["jobs"])
    assert all(set(piece) == {"job", "start", "end"} for piece in data["gantt"])
    assert data["averages"] == {"turnaround": 27, "waiting": 17, "response": 17}
    assert data["gantt"] == [
        {"job": "P1", "start": 0, "end": 24},
        {"job": "P2", "start": 24, "end": 27},
        {"job": "P3", "start": 27, "end": 30},
    ]
    code, out, _ = run_cmd(str(silberschatz_csv), "--algo", "all", "--json")
    everything = json.loads(out)
    assert [d["algorithm"] for d in everything] == list(ALGORITHM_KEYS)


def test_cmd_preset_stdin_and_mlfq_options():
    code, out, _ = run_cmd("--preset", "srtf", "--algo", "srtf", "--json")
    assert code == 0 and json.loads(out)["averages"]["waiting"] == 6.5
    code, out, _ = run_cmd("-", "--algo", "fcfs", "--json", stdin="name,arrival,burst\nA,0,2\n")
    assert code == 0 and json.loads(out)["jobs"][0]["completion"] == 2
    code, out, _ = run_cmd(
        "--preset", "mlfq-short-job", "--algo", "mlfq", "--levels", "2", "--quanta", "10",
        "--allotment", "20", "--boost", "50", "--switch-cost", "1", "--json",
    )  # fmt: skip
    data = json.loads(out)
    assert code == 0
    assert data["settings"] == {"switch_cost": 1, "quanta": [10, 10], "allotment": 20, "boost": 50}
    # an infinite allotment is not the default's (each level's quantum): both were null
    for allotment, said in ((("--allotment", "inf"), None), ((), "quantum")):
        code, out, _ = run_cmd("--preset", "mlfq-mixed", "--algo", "mlfq", *allotment, "--json")
        assert code == 0 and json.loads(out)["settings"]["allotment"] == said
    assert {"job": SWITCH, "start": 100, "end": 101} in data["gantt"]


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (
            ("{csv}", "--algo", "lottery"),
            "",
            "--algo must be one of fcfs, sjf, srtf, rr, priority-np, priority, mlfq, all,"
            " got 'lottery'",
        ),
        (("{csv}", "--quantum", "0", "--algo", "rr"), "", "--quantum must be more than 0, got 0"),
        (("{csv}", "--quantum", "four"), "", "--quantum is not a number: 'four'"),
        (("{csv}", "--quanta", "2,,8"), "", "--quanta expected numbers separated by commas"),
        (("{csv}", "--quanta", "2,-1"), "", "--quanta must all be more than 0, got -1 for level 1"),
        (
            ("{csv}", "--levels", "2", "--quanta", "1,2,3"),
            "",
            "--quanta gives 3 quanta but --levels is 2",
        ),
        (("{csv}", "--levels", "0"), "", "--levels must be from 1 to 8, got 0"),
        (("{csv}", "--boost", "0"), "", "--boost must be more than 0, got 0"),
        (("{csv}", "--allotment", "-3"), "", "--allotment must be more than 0, got -3"),
        (("{csv}", "--switch-cost", "-1"), "", "--switch-cost must be 0 or more, got -1"),
        (
            ("{csv}", "--quantum", "0.0001", "--algo", "rr"),
            "",
            "--quantum 0.0001 would cut these jobs",
        ),
        (("--preset", "nope"), "", "no preset 'nope' (presets: fcfs-convoy,"),
        (("{csv}", "--preset", "rr"), "", "give a JOBS.csv file or --preset, not both"),
        ((), "", "give a JOBS.csv file (name,arrival,burst[,priority]) or --preset NAME"),
        (("/no/such/jobs.csv",), "", "cannot read /no/such/jobs.csv: No such file or directory"),
        (
            ("-",),
            "name,arrival,burst\nP1,0,3\nP2,0,-3\n",
            "stdin line 3 (P2): burst must be more than 0, got -3",
        ),
        (
            ("-",),
            "name,arrival,burst\nP1,0,3\nP1,0,3\n",
            "stdin line 3: name 'P1' is already used on line 2",
        ),
        (
            ("-",),
            "name,arrival\nP1,0\n",
            "stdin line 1: expected the header name,arrival,burst[,priority]",
        ),
        (("-",), "name,arrival,burst\n", "stdin line 1: no jobs, only the header"),
    ],
)
def test_cmd_bad_input_is_one_line_and_status_2(silberschatz_csv, argv, stdin, message):
    argv = tuple(a.replace("{csv}", str(silberschatz_csv)) for a in argv)
    code, out, err = run_cmd(*argv, stdin=stdin)
    assert code == 2
    assert out == ""
    assert err.startswith(f"proclab schedule: {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cmd_in_a_fresh_interpreter_without_textual(tmp_path, silberschatz_csv):
    # The headless command must not import textual (it starts fast, like `proclab run`).
    script = (
        "import argparse, sys\n"
        "from proclab.tui.commands import schedule as schedule_cmd\n"
        "p = argparse.ArgumentParser(prog='proclab schedule')\n"
        "schedule_cmd.add_arguments(p)\n"
        "code = schedule_cmd.run(p.parse_args(sys.argv[1:]))\n"
        "assert 'textual' not in sys.modules and 'rich' not in sys.modules\n"
        "sys.exit(code)\n"
    )
    good = subprocess.run(
        [sys.executable, "-c", script, str(silberschatz_csv), "--algo", "sjf"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("SJF: shortest job first")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,arrival,burst\nP1,0,3\nP2,1,0\n")
    failed = subprocess.run(
        [sys.executable, "-c", script, str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert failed.returncode == 2
    assert (
        failed.stderr == f"proclab schedule: {bad} line 3 (P2): burst must be more than 0, got 0\n"
    )


def test_ctrl_c_while_reading_a_fifo_is_no_traceback(tmp_path):
    """`proclab schedule FIFO` waits for a writer (as `schedule <(...)` must); Ctrl+C there
    printed a KeyboardInterrupt traceback."""
    fifo = tmp_path / "jobs.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [PROCLAB, "schedule", str(fifo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # It waits in open() for a writer (the kernel's fifo_open: wait_for_partner).
        wchan = Path(f"/proc/{proc.pid}/wchan")
        assert wait_until(lambda: "partner" in wchan.read_text(), 30)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130 and "Traceback" not in err and out == "", err


def test_proclab_schedule_through_the_console_script(tmp_path, silberschatz_csv):
    def proclab(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PROCLAB, "schedule", *argv], capture_output=True, text=True, check=False, timeout=60
        )

    text = proclab(str(silberschatz_csv), "--algo", "rr", "--quantum", "4", "--width", "60")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[:3] == [
        "RR (quantum 4): round robin",
        "|  P1  |  P2 |  P3 |  P1  |  P1  |  P1  |  P1  |  P1  |",
        "0      4     7     10     14     18     22     26     30",
    ]
    assert lines[-3:] == [
        "average                                         15.667    5.667     3.667",
        "throughput 0.1 jobs per time unit (3 jobs in 30)",
        "CPU utilisation 100.0% (busy 30 of 30), 3 context switches",
    ]
    every = proclab(str(silberschatz_csv), "--algo", "all", "--json")
    assert every.returncode == 0
    data = json.loads(every.stdout)
    assert isinstance(data, list) and [d["algorithm"] for d in data] == list(ALGORITHM_KEYS)
    assert data[0]["averages"] == {"turnaround": 27, "waiting": 17, "response": 17}
    bad = tmp_path / "bad.csv"
    bad.write_text("name,arrival,burst\nP1,0,3\nP2,0,3\nP1,1,2\n")
    failed = proclab(str(bad), "--json")
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr == (
        f"proclab schedule: {bad} line 4: name 'P1' is already used on line 2\n"
    )
    helped = proclab("--help")
    assert helped.returncode == 0 and TIE_RULES.splitlines()[-1].strip() in helped.stdout
    assert "is queued ahead" in helped.stdout  # RR's tie rule, as written
    quantum = proclab(str(silberschatz_csv), "--algo", "rr", "--quantum", "-1")
    assert quantum.returncode == 2
    assert quantum.stderr == "proclab schedule: --quantum must be more than 0, got -1\n"


def test_quanta_are_read_as_typed():
    """Every level as typed, top first; inf or fcfs, in any case, is an unlimited quantum."""
    assert parse_quanta("4, 8,16") == (4, 8, 16)
    assert parse_quanta("8,FCFS") == parse_quanta("8,inf") == (8, math.inf)
    assert parse_quanta("inf,4") == (math.inf, 4)


# Input at the edges: each is accepted and right, or one line naming the line, exit 2 ----------


def test_a_quote_inside_a_name_is_part_of_it() -> None:
    """A"B, a quote inside an unquoted field, is text in CSV (counting quotes refused it)."""
    assert [j.name for j in parse_jobs_csv('name,arrival,burst\nA"B,0,1\n')] == ['A"B']


@pytest.mark.parametrize(
    ("text", "argv", "message"),
    [
        # Tiny figures were an OverflowError traceback (throughput, the chart's scale).
        ("A,0,1e-309\n", ("--algo", "fcfs"), "line 2 (A): burst must be from 0.000001 to"),
        ("A,0,1e-307\n", ("--algo", "fcfs"), "line 2 (A): burst must be from 0.000001 to"),
        ("A,0,1e-308\n", (), "line 2 (A): burst must be from 0.000001 to"),
        ("A,1e-300,1\n", (), "line 2 (A): arrival must be 0 or from 0.000001 to"),
        # More digits than a float keeps: it would have been silently rounded to 1.
        (
            "A,0,1.00000000000000000001\n",
            (),
            "line 2 (A): burst 1.00000000000000000001 has more significant digits than"
            " proclab keeps: it would be rounded to 1",
        ),
        ("A,0,1\nB,0.30000000000000001,2\n", (), "line 3 (B): arrival 0.30000000000000001"),
        # A field past the csv module's limit was a _csv.Error traceback.
        ("A,0," + "1" * 131_073 + "\n", (), "line 2: not readable as CSV: field larger than"),
        # Names the chart uses for something else: an idle CPU, a context switch.
        ("idle,1,1\nB,3,1\n", (), "line 2: name 'idle' is what the Gantt chart calls an idle CPU"),
        ("A,0,1\nCS,3,1\n", (), "line 3: name 'CS' is what the Gantt chart calls a context switch"),
        # Control characters would reach the terminal as escape sequences.
        (
            "ok,0,1\n\x1b]0;TITLE\x07\x1b[2J,1,1\n",
            (),
            "line 3: name '\\x1b]0;TITLE\\x07\\x1b[2J' has control characters in it",
        ),
        ("A\u202eB,0,1\n", (), "line 2: name 'A\\u202eB' has control characters in it"),
        # A quoted name with a line break: it was "expected 3 fields, got 1".
        (
            '"A\nB",0,1\n',
            (),
            "line 2: a quoted field is not closed on its line (a name cannot hold a line break)",
        ),
    ],
    ids=[
        "1e-309",
        "1e-307",
        "1e-308-all",
        "arrival-1e-300",
        "18-digits",
        "17-digits-inexact",
        "huge-field",
        "idle",
        "cs",
        "escape",
        "bidi",
        "quoted-newline",
    ],
)
def test_input_at_the_edges_is_one_line_naming_the_line(tmp_path, text, argv, message):
    path = tmp_path / "jobs.csv"
    path.write_text("name,arrival,burst\n" + text, encoding="utf-8")
    code, out, err = run_cmd(str(path), *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"proclab schedule: {path} {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err


def test_a_settings_value_is_never_rounded_silently():
    code, _, err = run_cmd("--preset", "rr", "--algo", "rr", "--quantum", "4.0000000000000000001")
    assert code == 2
    assert err == (
        "proclab schedule: --quantum 4.0000000000000000001 has more significant digits than"
        " proclab keeps: it would be rounded to 4\n"
    )
    code, _, err = run_cmd("--preset", "rr", "--algo", "rr", "--switch-cost", "1e-309")
    assert code == 2 and err.startswith(
        "proclab schedule: --switch-cost must be 0 or from 0.000001"
    )


def test_a_utf8_bom_is_read_as_excel_writes_it(tmp_path):
    # Excel's "CSV UTF-8" starts the file with a byte order mark.
    path = tmp_path / "excel.csv"
    path.write_bytes("name,arrival,burst\r\nP1,0,24\r\nP2,0,3\r\n".encode("utf-8-sig"))
    code, out, err = run_cmd(str(path), "--algo", "fcfs", "--json")
    assert (code, err) == (0, "")
    assert [j["completion"] for j in json.loads(out)["jobs"]] == [24, 27]
    assert parse_jobs_csv("\ufeffname,arrival,burst\nA,0,1\n") == [Job("A", 0, 1)]


def test_a_csv_that_is_not_utf8_is_refused_by_its_line(tmp_path):
    """It said "'utf-8' codec can't decode byte 0xff in position 26": a byte, not a line."""
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"name,arrival,burst\nA,0,3\nB\xe9,1,2\n")
    code, out, err = run_cmd(str(path))
    assert (code, out) == (2, "")
    assert err == f"proclab schedule: {path} line 3 is not UTF-8 (it holds the byte \\xe9)\n"


def test_a_byte_that_is_not_utf8_at_the_very_end_is_refused_too(tmp_path):
    """Decoded as if more could follow, a last byte cut short was dropped: the job ran."""
    path = tmp_path / "cut.csv"
    path.write_bytes(b"name,arrival,burst\nA,0,3\nB,1,2\xe9")
    code, _, err = run_cmd(str(path))
    assert code == 2 and err.endswith("line 3 is not UTF-8 (it holds the byte \\xe9)\n"), err


def test_a_large_quantum_is_no_mlfq_level_s_when_mlfq_does_not_run(tmp_path):
    """--algo rr --quantum 6e8 was refused as MLFQ's doubled levels (2.4e9)."""
    path = tmp_path / "jobs.csv"
    path.write_text("name,arrival,burst\nA,0,3\n")
    code, out, err = run_cmd(str(path), "--algo", "rr", "--quantum", "6e8")
    assert (code, err) == (0, "") and out.startswith("RR (quantum 600000000)"), (code, out, err)


def test_a_number_with_underscores_is_refused_in_a_csv_as_in_an_option(tmp_path):
    """A burst of "1_0" ran as 10 (float() reads it), where --quantum 1_0 was refused."""
    path = tmp_path / "jobs.csv"
    path.write_text("name,arrival,burst\nA,0,1_0\n")
    code, _, err = run_cmd(str(path))
    assert code == 2 and "line 2 (A): burst is not a number: '1_0'" in err, err


def test_names_from_the_api_are_checked_too_and_never_echoed_raw():
    with pytest.raises(ScheduleError) as caught:
        fcfs([Job("\x1b[2J", 0, 1)])
    assert str(caught.value) == "job 1: name '\\x1b[2J' has control characters in it"
    assert check_jobs([Job("idle", 0, 1)])[0].describe().startswith("name 'idle' is what")


def test_the_limits_are_in_the_help():
    parser = argparse.ArgumentParser(prog="proclab schedule")
    schedule_cmd.add_arguments(parser)
    text = " ".join(parser.format_help().split())
    for limit in (
        "at most 500 jobs",
        "24 characters",
        "from 0.000001 to 1,000,000,000",
        "20,000 slices",
        "17 significant digits",
    ):
        assert limit in text, limit


def test_escape_sequences_in_a_name_never_reach_the_terminal(tmp_path):
    # Through the console script, as bytes: nothing a CSV holds is written raw.
    path = tmp_path / "hostile.csv"
    path.write_bytes(b"name,arrival,burst\nA,0,1\n\x1b]0;TITLE\x07\x1b[5;5H,0,1\n")
    done = subprocess.run(
        [PROCLAB, "schedule", str(path)], capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 2 and done.stdout == b""
    assert b"\x1b" not in done.stderr and b"\x07" not in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_an_endless_file_is_refused_not_read_whole():
    code, out, err = run_cmd("/dev/zero")
    assert (code, out) == (2, "")
    assert err == (
        "proclab schedule: /dev/zero is longer than 1,000,000 characters: 500 jobs fit in far less\n"
    )


def test_cmd_priority_reads_the_priority_column(tmp_path):
    path = tmp_path / "prio.csv"
    path.write_text("name,arrival,burst,priority\nP1,0,10,3\nP2,2,1,1\nP3,4,2,4\nP4,8,5,2\n")
    code, out, err = run_cmd(str(path), "--algo", "priority", "--width", "70")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "Priority: priority, preemptive (lower number = higher priority)"
    assert [cell.strip() for cell in lines[1].strip("|").split("|")] == [
        "P1", "P2", "P1", "P4", "P1", "P3",
    ]  # fmt: skip
    header = next(line for line in lines if line.startswith("job"))
    assert header.split()[:4] == ["job", "arrival", "burst", "priority"]
    p4 = next(line for line in lines if line.startswith("P4"))
    assert p4.split() == ["P4", "8", "5", "2", "8", "13", "5", "0", "0"]
    code, out, _ = run_cmd(str(path), "--algo", "priority-np", "--json")
    data = json.loads(out)
    assert data["algorithm"] == "priority-np" and data["averages"]["waiting"] == 5.75
    assert [j["priority"] for j in data["jobs"]] == [3, 1, 4, 2]
    assert set(data["jobs"][0]) == set(JOB_KEYS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("--real", "--policy", "lottery"),
            "--policy must be one of fifo, rr, priority, other, all",
        ),
        (("--real", "--unit", "ten"), "--unit is not a number of milliseconds: 'ten'"),
        (("--real", "--unit", "0"), "--unit must be from 1 to 1000 ms, got 0"),
        (("--real", "--core", "x"), "--core is not a CPU number: 'x'"),
        (("--real", "--core", "99"), "--core CPU 99 is not one this process may use"),
        (("--real", "--unit", "1000", "--policy", "other"), "--unit these jobs need 220 s of CPU"),
        (("--real", "--quantum", "4"), "--quantum is for the simulation; with --real the kernel"),
        (("--real", "--algo", "rr"), "--algo is for the simulation; with --real the kernel"),
    ],
)
def test_cmd_real_refuses_before_anything_starts(argv, message):
    # mlfq-short-job: 220 units of CPU; nothing here runs a job.
    code, out, err = run_cmd("--preset", "mlfq-short-job", *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"proclab schedule: {message}"), err
    assert err.count("\n") == 1


@pytest.mark.parametrize("name", ["中文名字", "😀😀", "e\u0301e\u0301e\u0301e\u0301"])
def test_a_wide_or_combining_job_name_keeps_the_chart_and_table_in_line(name: str) -> None:
    """A CJK or emoji name takes two columns a character and a combining accent none:
    counted by len(), the bar row ran 4 columns past its axis, each box's edge off its
    time, and the table's rows past its header."""
    from proclab.core.columns import cells

    result = fcfs([Job(name, 0, 1), Job("B", 0, 2)])
    bars, axis = render_gantt_text(result, 60).splitlines()[:2]
    assert cells(bars) == cells(axis)
    edge = cells(bars[: bars.index("|", 1)])  # the columns before the second box's edge
    assert axis[edge] == "1"  # the time under it
    table = render_table_text(result).splitlines()
    assert len({cells(line.rstrip()) for line in table[:3]}) == 1, table


def test_a_limit_passed_names_what_the_user_gave():
    """--switch-cost 1e9 was met with "--boost every 30 would mean ... boosts", and
    --quantum 1e9 with "--quanta must be from ...": options nobody had set."""
    code, _, err = run_cmd("--preset", "mlfq-mixed", "--switch-cost", "1e9")
    assert code == 2 and "(with its context switches)" in err and "smaller switch cost" in err
    code, _, err = run_cmd("--preset", "mlfq-mixed", "--quantum", "1e9")
    assert code == 2 and err.startswith(
        "proclab schedule: --quantum 1e9, doubled at each of 3 MLFQ levels, makes 4,000,000,000"
    ), err
