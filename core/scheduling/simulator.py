"""CPU scheduling, simulated: FCFS, SJF, SRTF, round robin, priority and MLFQ on one CPU.

The lesson's four algorithms (first come first served, shortest job first, round robin
time slices, the multilevel feedback queue) plus SRTF, the preemptive SJF, and priority
scheduling, preemptive and not (Silberschatz §5.3.4: lower number, higher priority). Jobs are pure
CPU bursts: no job blocks on I/O, so a job leaves the CPU only when it ends or when the
algorithm takes the CPU away.

Every rule that decides a tie is written once, in `TIE_RULES`, which the app's help shows
as is. Times are simulated exactly: each figure is turned into a fraction from the decimal
a person typed (0.1 is exactly 1/10), so ties such as "arrives at the moment the quantum
expires" are real ties, never a rounding accident; results are handed out as floats.

A schedule's Gantt chart is a tuple of `Slice`s in time order, contiguous from time 0 to
the last completion: `job` is a job's name while it runs, None while the CPU is idle, and
`SWITCH` ("(switch)") while it switches context when a switch cost is set.

This module is the model: it never imports a UI library. Its text renderers are for the
CLI; the app draws its own chart from the same `Schedule`.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import textwrap
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

from proclab.core.columns import cells, centred, columns, cut
from proclab.core.errors import ProclabError, clipped
from proclab.core.typed import ascii_number

SWITCH = "(switch)"

# Key, short name, what it stands for: the order every list and comparison uses.
ALGORITHMS: dict[str, tuple[str, str]] = {
    "fcfs": ("FCFS", "first come, first served"),
    "sjf": ("SJF", "shortest job first (non-preemptive)"),
    "srtf": ("SRTF", "shortest remaining time first (preemptive SJF)"),
    "rr": ("RR", "round robin"),
    "priority-np": ("Priority-NP", "priority, non-preemptive (lower number = higher priority)"),
    "priority": ("Priority", "priority, preemptive (lower number = higher priority)"),
    "mlfq": ("MLFQ", "multilevel feedback queue"),
}
PRIORITY_KEYS = ("priority-np", "priority")
ALGORITHM_KEYS = tuple(ALGORITHMS)

TIE_RULES = """\
Time      Exact: 0.1 is 1/10, never rounded. A job is ready from the
          moment it arrives. Jobs only compute: one leaves the CPU
          when it ends or is preempted.
Ties      Equal keys go by arrival, then by the order the jobs are
          listed (table rows, CSV lines): jobs arriving together are
          queued in list order, as in the books' "P1, P2, P3 arrive
          at 0 in that order".
FCFS      The job that arrived first runs to completion.
SJF       When the CPU falls free, the shortest burst among the jobs
          that have arrived runs to completion (no preemption).
SRTF      A job arriving with a remaining time strictly shorter than
          the running job's preempts it; an equal one does not.
RR        One FIFO queue; a job runs at most one quantum at a time.
          A job arriving just as a quantum expires is queued ahead
          of the job whose quantum expired. With nobody else ready,
          that job gets a new quantum at once (a new slice, no
          switch). Arrivals never preempt.
Priority  From the priority column: a lower number is a higher
          priority (Silberschatz §5.3.4); a job with none comes after
          every job with one. Equal priorities go by arrival, then
          list order. Preemptive: a job arriving with a strictly
          higher priority than the running job's preempts it at
          once; the preempted job stays ahead of the jobs of its
          priority that arrived after it (as Linux keeps a preempted
          SCHED_FIFO thread at the head of its list). Priority-NP:
          the highest-priority ready job runs to completion.
MLFQ      New jobs enter level 0, the top. The highest non-empty
          level runs, round robin with its quantum. A job that has
          used its allotment at a level (over all its slices there;
          by default one quantum) drops a level; the bottom level
          keeps it. A job becoming ready at a higher level than the
          running job's preempts it at once; the preempted job goes
          back to the head of its level, its used allotment kept.
Boost     Every S (at S, 2S, 3S...) the jobs below level 0 go up to
          it, behind the jobs there, in level order (each level's
          queue order kept), their allotments reset; a running one
          stops there. A job at level 0 keeps its place, its quantum
          and its used allotment: a running one runs on (as OSTEP's
          mlfq.py; else a boost shorter than the quantum starves).
Switches  A context switch of cost C is paid whenever the CPU starts
          a job other than the one that ran last, idle time between
          or not; never before the first job, never when a job
          continues. The next job is chosen when the switch ends,
          among the jobs ready then. Switch time is not busy time.
Figures   turnaround = completion - arrival; waiting = turnaround -
          burst (ready but not running, switches included); response
          = first run - arrival. The makespan runs from time 0 (idle
          time before the first arrival counts) to the last
          completion; throughput = jobs / makespan; CPU utilisation
          = busy time / makespan.
"""

DEFAULT_QUANTUM = 4.0
DEFAULT_QUANTA = (4.0, 8.0, 16.0)  # doubling per level, as in Silberschatz's MLFQ
MAX_LEVELS = 8
MAX_JOBS = 500
# A schedule longer than this is a typo (a quantum of 0.001 on bursts of 100): refused
# before it is computed, so neither the CLI nor the app ever hangs on one.
MAX_SLICES = 20_000
MAX_NAME_CHARS = 24
MAX_CSV_CHARS = 1_000_000  # a jobs file: 500 jobs fit in a few kB; /dev/zero never ends
MAX_TIME = 1e9  # for arrivals and bursts: past this a figure is a typo
MAX_PRIORITY = 10**9  # a 4,000-digit priority made the table 4,000 columns wide
PRIORITY_RANGE = f"must be between {-MAX_PRIORITY:,} and {MAX_PRIORITY:,}"
# The shortest time but 0: a burst of 1e-309 made the throughput (jobs / makespan)
# overflow a float, and a chart's scale with it.
MIN_TIME = 1e-6
TIME_RANGE = "from 0.000001 to 1,000,000,000"
# Names the text Gantt chart gives to what is not a job (see slice_label).
CHART_WORDS = {"idle": "an idle CPU", "cs": "a context switch"}
HUGE_TIME = 1e15  # format_time writes a time this large with an exponent, not every digit

LIMITS = f"""\
Limits    at most {MAX_JOBS} jobs. A name: up to {MAX_NAME_CHARS} characters,
          printable (no control characters), not idle or cs (the
          chart's words for an idle CPU and a context switch).
          Times and settings: 0 where 0 means something, else
          {TIME_RANGE}, as typed, with up
          to 17 significant digits (a figure with more would be
          rounded, so it is refused). A priority: a whole number
          from {-MAX_PRIORITY:,} to {MAX_PRIORITY:,}. A schedule: at most
          {MAX_SLICES:,} slices, idle time and context switches included
          (a quantum or a boost that cuts the jobs finer is refused).
"""


# Results ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One CPU burst: its name, when it arrives, how much CPU it needs, and its priority
    from the CSV's optional fourth column (lower is higher; None: lowest), which only
    the priority algorithms read."""

    name: str
    arrival: float
    burst: float
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class Slice:
    """The CPU from `start` to `end`: running `job`, idle (None) or switching (SWITCH)."""

    job: str | None
    start: float
    end: float

    @property
    def is_run(self) -> bool:
        return self.job is not None and self.job != SWITCH


@dataclass(frozen=True, slots=True)
class JobResult:
    name: str
    arrival: float
    burst: float
    start: float  # first time on the CPU
    completion: float
    turnaround: float
    waiting: float
    response: float
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class Averages:
    turnaround: float
    waiting: float
    response: float

    def figures(self) -> tuple[float, float, float]:
        return (self.turnaround, self.waiting, self.response)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything an algorithm may need besides the jobs. Each algorithm reads only its
    own fields: `quantum` is RR's; `quanta` (one per level, top first, so its length is
    the number of levels), `allotment` (None: each level's quantum) and `boost` (None:
    never) are MLFQ's. `math.inf` is allowed as a quantum or allotment: a bottom level
    with an infinite quantum is FCFS, as in Silberschatz's example."""

    quantum: float = DEFAULT_QUANTUM
    quanta: tuple[float, ...] = DEFAULT_QUANTA
    allotment: float | None = None
    boost: float | None = None
    switch_cost: float = 0.0

    @property
    def levels(self) -> int:
        return len(self.quanta)


# Settings' fields that a person sets, as parse_setting and setting_texts name them.
SETTING_NAMES = ("quantum", "switch_cost", "quanta", "allotment", "boost")


@dataclass(frozen=True, slots=True)
class Schedule:
    algorithm: str  # a key of ALGORITHMS
    label: str  # e.g. "RR (quantum 4)"
    jobs: tuple[JobResult, ...]  # in the order the jobs were given
    gantt: tuple[Slice, ...]
    averages: Averages
    makespan: float  # time 0 to the last completion
    busy: float  # time the CPU ran jobs
    throughput: float  # jobs per time unit over the makespan
    utilisation: float  # busy / makespan, 0..1
    switches: int  # times the CPU went from one job to another
    settings: Settings = field(default_factory=Settings)

    @property
    def short(self) -> str:
        return ALGORITHMS[self.algorithm][0]


# Errors -------------------------------------------------------------------------------------


class ScheduleError(ProclabError):
    """A job list, a CSV line or a setting is wrong; nothing was computed.

    `line` is the CSV line (1-based) when the input came from a file; `field` names the
    setting or the job's field (name, arrival, burst, priority). For a setting, `detail`
    is the message without the setting's name, for a front end to name it its own way
    (the CLI by its option)."""

    def __init__(
        self, message: str, *, line: int | None = None, field: str = "", detail: str = ""
    ) -> None:
        super().__init__(message)
        self.line = line
        self.field = field
        self.detail = detail


@dataclass(frozen=True, slots=True)
class JobProblem:
    """What is wrong with one job (`index` in the list; -1: the list as a whole)."""

    index: int
    field: str  # name, arrival, burst, priority, or "" for the list
    message: str  # e.g. "must be more than 0, got -1"

    def describe(self) -> str:
        return f"{self.field} {self.message}" if self.field else self.message


@dataclass(frozen=True, slots=True)
class SettingProblem:
    field: str  # quantum, quanta, levels, allotment, boost, switch_cost
    message: str

    def describe(self) -> str:
        return f"{self.field.replace('_', ' ')} {self.message}"


# Checking input -----------------------------------------------------------------------------


def parse_number(text: str) -> float:
    """A finite decimal number, or ValueError with a message a person can act on."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("is empty")
    try:
        # float() reads "٣" as 3, which was shown as "3", and "1_0" as 10, which the
        # other commands' numbers refuse
        value = ascii_number(stripped, float)
    except ValueError:
        raise ValueError(f"is not a number: {clipped(stripped)!r}") from None
    if math.isnan(value) or (math.isinf(value) and "inf" in stripped.lower()):
        raise ValueError(f"must be a finite number, got {clipped(stripped)}")
    if abs(value) > MAX_TIME:
        # Said as its range (a 400-digit burst is finite, and read as inf; 17 digits were
        # "more than proclab keeps" where the number was past the limit anyway).
        said = f"must be at most {MAX_TIME:,.0f}" if value > 0 else "is below 0"
        raise ValueError(f"{said}, got {clipped(stripped)}")
    try:
        typed = Fraction(stripped)
    except ValueError:  # a spelling float() reads and Fraction() does not
        typed = None
    if typed is not None and typed != _exact(value):
        shortest = repr(value).removesuffix(".0")
        raise ValueError(
            f"{clipped(stripped)} has more significant digits than proclab keeps:"
            f" it would be rounded to {shortest}"
        )
    return value


def job_from_fields(
    index: int, name: str, arrival: str, burst: str, priority: str = ""
) -> tuple[Job | None, list[JobProblem]]:
    """One job from the text of its cells, and every problem with it, each naming its
    field, in field order. Problems that need the other jobs (a name used twice) are
    check_jobs's."""
    problems: list[JobProblem] = []
    values: dict[str, float] = {}
    for what, text in (("arrival", arrival), ("burst", burst)):
        try:
            values[what] = parse_number(text)
        except ValueError as exc:
            problems.append(JobProblem(index, what, str(exc)))
    prio: int | None = None
    typed = priority.strip()
    if typed:
        # Its digits judged before int() of thousands of them, which past Python's limit
        # says "not whole"; a word is not whole whatever its length.
        digits = typed.lstrip("+-").replace("_", "").lstrip("0")
        try:
            if not re.fullmatch(r"[+-]?[0-9][0-9_]*", typed):
                raise ValueError(typed)
            prio = int(typed) if len(digits) <= 10 else 2 * MAX_PRIORITY
        except ValueError:
            problems.append(
                JobProblem(index, "priority", f"is not a whole number: {clipped(typed)!r}")
            )
        else:
            if abs(prio) > MAX_PRIORITY:
                problems.append(
                    JobProblem(index, "priority", f"{PRIORITY_RANGE}, got {clipped(typed)}")
                )
                prio = None
    # A field that did not parse gets a harmless stand-in, so that the checks below
    # report only the other fields.
    job = Job(name.strip(), values.get("arrival", 0.0), values.get("burst", 1.0), prio)
    problems += [JobProblem(index, p.field, p.message) for p in check_jobs([job], whole_list=False)]
    problems.sort(key=lambda p: JOB_FIELDS.index(p.field))
    return (None if problems else job), problems


JOB_FIELDS = ("name", "arrival", "burst", "priority")


def check_jobs(jobs: Sequence[Job], *, whole_list: bool = True) -> list[JobProblem]:
    """Every problem with these jobs, in list order, each naming the job and field: an
    empty, overlong, unprintable or reserved name, a name used twice, a time outside
    LIMITS, and (`whole_list`) an empty or overlong list."""
    problems: list[JobProblem] = []
    first_use: dict[str, int] = {}
    for index, job in enumerate(jobs):
        name = job.name
        problem = _name_problem(name)
        if problem:
            problems.append(JobProblem(index, "name", problem))
        elif name in first_use:
            problems.append(
                JobProblem(index, "name", f"{name!r} is also job {first_use[name] + 1}'s name")
            )
        else:
            first_use[name] = index
        arrival = job.arrival
        if not (math.isfinite(arrival) and (arrival == 0 or MIN_TIME <= arrival <= MAX_TIME)):
            problems.append(
                JobProblem(
                    index,
                    "arrival",
                    f"must be 0 or {TIME_RANGE}, got {format_time(arrival)}",
                )
            )
        if not math.isfinite(job.burst) or job.burst <= 0:
            problems.append(
                JobProblem(index, "burst", f"must be more than 0, got {format_time(job.burst)}")
            )
        elif job.burst > MAX_TIME:
            problems.append(
                JobProblem(
                    index, "burst", f"must be at most {MAX_TIME:,.0f}, got {format_time(job.burst)}"
                )
            )
        elif job.burst < MIN_TIME:
            problems.append(
                JobProblem(index, "burst", f"must be {TIME_RANGE}, got {format_time(job.burst)}")
            )
        if job.priority is not None and abs(job.priority) > MAX_PRIORITY:
            problems.append(JobProblem(index, "priority", f"{PRIORITY_RANGE}, got {job.priority}"))
    if whole_list and not jobs:
        problems.append(JobProblem(-1, "", "no jobs: add at least one"))
    if whole_list and len(jobs) > MAX_JOBS:
        problems.append(JobProblem(-1, "", f"{len(jobs)} jobs: at most {MAX_JOBS}"))
    return problems


def _name_problem(name: str) -> str:
    """What is wrong with a job's name on its own ("" if nothing). A name is shown on the
    terminal and in charts: a control character in it would be an escape sequence there,
    so it is refused (and echoed escaped, by repr)."""
    if not name:
        return "is empty"
    if not name.isprintable():
        return f"{name!r} has control characters in it"
    if len(name) > MAX_NAME_CHARS:
        return f"is longer than {MAX_NAME_CHARS} characters"
    if name == SWITCH:
        return f"cannot be {SWITCH}"  # the JSON's and the app's word for a context switch
    meaning = CHART_WORDS.get(name.lower())
    if meaning:
        return f"{name!r} is what the Gantt chart calls {meaning}: give the job another name"
    return ""


def check_settings(settings: Settings, algorithm: str = "all") -> list[SettingProblem]:
    """Every problem with the settings `algorithm` reads ("all": every algorithm's)."""
    if algorithm != "all" and algorithm not in ALGORITHMS:
        return [
            SettingProblem(
                "algorithm", f"must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}"
            )
        ]
    wants = set(ALGORITHM_KEYS) if algorithm == "all" else {algorithm}
    problems: list[SettingProblem] = []
    if "rr" in wants:
        problems += _duration_problems("quantum", [settings.quantum])
    if "mlfq" in wants:
        if not 1 <= settings.levels <= MAX_LEVELS:
            problems.append(
                SettingProblem("levels", f"must be from 1 to {MAX_LEVELS}, got {settings.levels}")
            )
        problems += _duration_problems("quanta", settings.quanta, infinite=True)[:1]
        if settings.allotment is not None:
            problems += _duration_problems("allotment", [settings.allotment], infinite=True)
        if settings.boost is not None:
            problems += _duration_problems("boost", [settings.boost])
    cost = settings.switch_cost
    if not (math.isfinite(cost) and (cost == 0 or MIN_TIME <= cost <= MAX_TIME)):
        message = f"must be 0 or {TIME_RANGE}" if cost > 0 else "must be 0 or more"
        problems.append(SettingProblem("switch_cost", f"{message}, got {format_time(cost)}"))
    return problems


def _duration_problems(
    field: str, values: Sequence[float], *, infinite: bool = False
) -> list[SettingProblem]:
    """A quantum, allotment or boost period: more than 0, within LIMITS (inf where
    `infinite`: a bottom level run FCFS, an allotment never used up)."""
    problems = []
    for level, value in enumerate(values):
        where = f" for level {level}" if field == "quanta" else ""
        if infinite and value == math.inf:
            continue
        if math.isnan(value) or value <= 0:
            verb = "must all be" if field == "quanta" else "must be"
            problems.append(
                SettingProblem(field, f"{verb} more than 0, got {format_time(value)}{where}")
            )
        elif not MIN_TIME <= value <= MAX_TIME:
            problems.append(
                SettingProblem(field, f"must be {TIME_RANGE}, got {format_time(value)}{where}")
            )
    return problems


def parse_quanta(text: str) -> tuple[float, ...]:
    """'4,8,16' or '8,16,inf' -> the quanta, top level first; ValueError if malformed."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError("expected numbers separated by commas, e.g. 4,8,16")
    quanta = []
    for part in parts:
        if part.lower() in ("inf", "fcfs"):
            quanta.append(math.inf)
            continue
        try:
            quanta.append(parse_number(part))
        except ValueError as exc:
            raise ValueError(f"{part!r}: {exc}") from None
    return tuple(quanta)


def parse_setting(name: str, text: str) -> float | tuple[float, ...] | None:
    """One Settings field from text: `quanta` as parse_quanta reads it; a blank allotment
    or boost is None (one quantum; never), a blank switch cost 0, an allotment of inf
    unlimited. ValueError says what is wrong, without the field's name."""
    text = text.strip()
    if name == "quanta":
        return parse_quanta(text)
    if name in ("allotment", "boost") and not text:
        return None
    if name == "switch_cost" and not text:
        return 0.0
    if name == "allotment" and text.lower() == "inf":
        return math.inf
    return parse_number(text)


def setting_texts(settings: Settings) -> dict[str, str]:
    """The settings as text that parse_setting reads back (blank for None)."""
    return {
        "quantum": format_setting(settings.quantum),
        "switch_cost": format_setting(settings.switch_cost),
        "quanta": ",".join(format_setting(q) for q in settings.quanta),
        "allotment": "" if settings.allotment is None else format_setting(settings.allotment),
        "boost": "" if settings.boost is None else format_setting(settings.boost),
    }


def parse_jobs_csv(text: str) -> list[Job]:
    """Jobs from CSV text with the header `name,arrival,burst` or
    `name,arrival,burst,priority` (an empty priority is none). Blank lines and lines
    starting with # are skipped. Raises ScheduleError naming the first wrong line
    (1-based) and field."""
    text = text.removeprefix("\ufeff")  # Excel's "CSV UTF-8" starts with a byte order mark
    rows = [
        (number, line)
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not rows:
        raise ScheduleError("no jobs: expected the header name,arrival,burst[,priority]")
    header_line, header_text = rows[0]
    header = [h.strip().lower() for h in _csv_fields(header_line, header_text)]
    if header not in (list(JOB_FIELDS[:3]), list(JOB_FIELDS)):
        raise ScheduleError(
            f"line {header_line}: expected the header name,arrival,burst[,priority],"
            f" got {header_text.strip()!r}",
            line=header_line,
        )
    if len(rows) == 1:
        raise ScheduleError(f"line {header_line}: no jobs, only the header", line=header_line)
    jobs: list[Job] = []
    line_of: dict[str, int] = {}
    for number, line in rows[1:]:
        fields = [f.strip() for f in _csv_fields(number, line)]
        if len(fields) != len(header):
            raise ScheduleError(
                f"line {number}: expected {len(header)} fields ({','.join(header)}),"
                f" got {len(fields)}: {line.strip()!r}",
                line=number,
            )
        job, problems = job_from_fields(len(jobs), *fields)
        if job is None:
            problem = problems[0]
            who = f" ({fields[0]})" if fields[0] and problem.field != "name" else ""
            raise ScheduleError(
                f"line {number}{who}: {problem.describe()}", line=number, field=problem.field
            )
        if job.name in line_of:
            raise ScheduleError(
                f"line {number}: name {job.name!r} is already used on line {line_of[job.name]}",
                line=number,
                field="name",
            )
        line_of[job.name] = number
        jobs.append(job)
    _raise_first(check_jobs(jobs), jobs)
    return jobs


def _csv_fields(number: int, line: str) -> list[str]:
    try:
        # strict: a quote left open is an error, not a field carried past its line (a name
        # with a line break read as "expected 3 fields, got 1"); a quote inside an
        # unquoted field (A"B) is text, as CSV has it.
        return next(csv.reader([line], strict=True), [])
    except csv.Error as exc:  # e.g. a field past csv.field_size_limit(), 131,072 characters
        if "unexpected end of data" in str(exc):
            raise ScheduleError(
                f"line {number}: a quoted field is not closed on its line (a name cannot hold"
                f" a line break): {line.strip()!r}",
                line=number,
            ) from None
        raise ScheduleError(f"line {number}: not readable as CSV: {exc}", line=number) from None


def _raise_first(problems: Sequence[JobProblem | SettingProblem], jobs: Sequence[Job]) -> None:
    if not problems:
        return
    problem = problems[0]
    if isinstance(problem, SettingProblem):
        raise ScheduleError(problem.describe(), field=problem.field, detail=problem.message)
    if problem.index < 0:
        raise ScheduleError(problem.message)
    name = jobs[problem.index].name
    if not name or not name.isprintable():
        name = f"job {problem.index + 1}"
    raise ScheduleError(f"{name}: {problem.describe()}", field=problem.field)


# Numbers ------------------------------------------------------------------------------------


def format_time(value: float) -> str:
    """24.0 -> '24', 1.0004 -> '1.0004', 5.6666... -> '5.667', inf -> 'inf': a time of up
    to six decimals as it is (bursts of 1.0004 and 1.0006 read '1' and '1.001', and the
    first one's completion the same as the second one's start), a longer one (an
    average's thirds) to three, no trailing 0s; 1e300 -> '1e+300' (from HUGE_TIME up,
    where every digit would be printed)."""
    if math.isinf(value) or math.isnan(value):
        return str(value)
    if abs(value) >= HUGE_TIME:
        return f"{value:g}"
    if value and abs(value) < 0.0005:
        return f"{value:.3g}"  # rounding to 3 decimals would show 0
    # Six decimals where the float holds them (not from about 1e8 up, where its last bits
    # are worth more) and the value is within a few of its last bits of them: 0.1 + 0.2
    # is 0.3; an average's 666666.666666... is not.
    ulp = math.ulp(value)
    exact = ulp < 1e-7 and abs(round(value, 6) - value) <= 4 * ulp
    # Else three decimals, or three significant figures below 0.1: an average wait of
    # 0.000667 read '0.001', half again what it was, and a throughput of 0.00909 '0.009'.
    decimals = 6 if exact else max(3, 2 - math.floor(math.log10(abs(value)))) if value else 3
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_setting(value: float) -> str:
    """A setting as typed, never rounded (format_time's three decimals made a quantum of
    0.0015 read, and read back, as 0.002): 4.0 -> '4', 0.0015 -> '0.0015', inf -> 'inf'."""
    if math.isinf(value) or math.isnan(value):
        return str(value)
    text = repr(float(value))  # the shortest decimal that reads back as this float
    return text.removesuffix(".0")


def _exact(value: float) -> Fraction:
    # repr gives the shortest decimal that reads back as this float: what a person typed.
    return Fraction(repr(float(value)))


def _json_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


# The simulation ------------------------------------------------------------------------------


class _Policy(Protocol):
    """How one algorithm keeps its ready jobs. The engine calls these; jobs are indices
    into the job list."""

    def arrive(self, j: int) -> None: ...
    def peek(self) -> int | None: ...  # the job that would run now
    def take(self, j: int) -> None: ...  # j (what peek returned) starts running
    def limit(self, j: int) -> Fraction | None: ...  # longest this dispatch may run
    def preempts(self, j: int, remaining: Fraction) -> bool: ...  # after arrivals
    def requeue(self, j: int, ran: Fraction, cut: bool) -> None: ...
    def finish(self, j: int, ran: Fraction) -> None: ...
    def next_boost(self, now: Fraction) -> Fraction | None: ...  # first boost after now
    def boost(self, now: Fraction) -> None: ...  # apply the boosts due by now
    def boost_due(self, at: Fraction) -> bool: ...  # is a boost due by `at`?
    def boost_moves(self, j: int) -> bool: ...  # does a boost move j (running) up?


class _NoBoost:
    def finish(self, j: int, ran: Fraction) -> None:
        pass

    def next_boost(self, now: Fraction) -> Fraction | None:
        return None

    def boost(self, now: Fraction) -> None:
        pass

    def boost_due(self, at: Fraction) -> bool:
        return False

    def boost_moves(self, j: int) -> bool:
        return False

    def preempts(self, j: int, remaining: Fraction) -> bool:
        return False

    def limit(self, j: int) -> Fraction | None:
        return None


class _Fifo(_NoBoost):
    """FCFS, and RR when given a quantum."""

    def __init__(self, quantum: Fraction | None = None) -> None:
        self.queue: deque[int] = deque()
        self.quantum = quantum

    def arrive(self, j: int) -> None:
        self.queue.append(j)

    def peek(self) -> int | None:
        return self.queue[0] if self.queue else None

    def take(self, j: int) -> None:
        self.queue.popleft()

    def limit(self, j: int) -> Fraction | None:
        return self.quantum

    def requeue(self, j: int, ran: Fraction, cut: bool) -> None:
        self.queue.append(j)


class _Ranked(_NoBoost):
    """Runs the ready job with the lowest key; equal keys go by arrival, then list
    position. Preemptive: a ready job whose key is strictly lower than the running job's
    takes the CPU."""

    def __init__(self, arrival: list[Fraction], preemptive: bool) -> None:
        self.ready: list[int] = []
        self.arrival = arrival
        self.preemptive = preemptive

    def rank(self, j: int) -> Fraction | float:
        raise NotImplementedError

    def running_rank(self, j: int, remaining: Fraction) -> Fraction | float:
        return self.rank(j)

    def _key(self, j: int) -> tuple[Fraction | float, Fraction, int]:
        return (self.rank(j), self.arrival[j], j)

    def arrive(self, j: int) -> None:
        self.ready.append(j)

    def peek(self) -> int | None:
        return min(self.ready, key=self._key) if self.ready else None

    def take(self, j: int) -> None:
        self.ready.remove(j)

    def preempts(self, j: int, remaining: Fraction) -> bool:
        if not self.preemptive:
            return False
        running = self.running_rank(j, remaining)
        return any(self.rank(k) < running for k in self.ready)

    def requeue(self, j: int, ran: Fraction, cut: bool) -> None:
        # Its key keeps its arrival: back ahead of the equal jobs that arrived after it.
        self.ready.append(j)


class _Shortest(_Ranked):
    """SJF (never preempts) and SRTF (preempts on strictly shorter), by remaining time:
    SJF never preempts, so a ready job's remaining time is its whole burst."""

    def __init__(
        self, arrival: list[Fraction], remaining: list[Fraction], preemptive: bool
    ) -> None:
        super().__init__(arrival, preemptive)
        self.remaining = remaining  # the engine's own list: up to date between slices

    def rank(self, j: int) -> Fraction:
        return self.remaining[j]

    def running_rank(self, j: int, remaining: Fraction) -> Fraction:
        return remaining  # mid-slice, the engine has not counted the slice down yet


class _Priority(_Ranked):
    """Priority, preemptive or not: the lowest number first; no priority, last."""

    def __init__(
        self, arrival: list[Fraction], priority: list[int | None], preemptive: bool
    ) -> None:
        super().__init__(arrival, preemptive)
        self.priority = [math.inf if p is None else p for p in priority]

    def rank(self, j: int) -> float:
        return self.priority[j]


class _Mlfq:
    def __init__(
        self,
        quanta: Sequence[Fraction | None],
        allotment: Fraction | None,
        use_quantum_as_allotment: bool,
        boost: Fraction | None,
        n: int,
    ) -> None:
        self.quanta = list(quanta)  # None: infinite
        self.allot = [
            (q if use_quantum_as_allotment else allotment) for q in self.quanta
        ]  # None: infinite
        self.queues: list[deque[int]] = [deque() for _ in self.quanta]
        self.level = [0] * n
        self.used = [Fraction(0)] * n
        self.period = boost
        self.due = boost  # time of the next boost

    def arrive(self, j: int) -> None:
        self.queues[0].append(j)

    def peek(self) -> int | None:
        return next((q[0] for q in self.queues if q), None)

    def take(self, j: int) -> None:
        self.queues[self.level[j]].popleft()

    def limit(self, j: int) -> Fraction | None:
        level = self.level[j]
        bounds = [b for b in (self.quanta[level], self._allot_left(j)) if b is not None]
        return min(bounds) if bounds else None

    def _allot_left(self, j: int) -> Fraction | None:
        allot = self.allot[self.level[j]]
        return None if allot is None else allot - self.used[j]

    def preempts(self, j: int, remaining: Fraction) -> bool:
        return any(self.queues[level] for level in range(self.level[j]))

    def requeue(self, j: int, ran: Fraction, cut: bool) -> None:
        self.used[j] += ran
        left = self._allot_left(j)
        if left is not None and left <= 0:
            self.level[j] = min(self.level[j] + 1, len(self.queues) - 1)
            self.used[j] = Fraction(0)
            self.queues[self.level[j]].append(j)
        elif cut:
            self.queues[self.level[j]].appendleft(j)
        else:
            self.queues[self.level[j]].append(j)

    def finish(self, j: int, ran: Fraction) -> None:
        self.used[j] += ran

    def next_boost(self, now: Fraction) -> Fraction | None:
        if self.due is None:
            return None
        return self.due if self.due > now else self._after(now)

    def _after(self, now: Fraction) -> Fraction:
        assert self.period is not None
        return (math.floor(now / self.period) + 1) * self.period

    def boost(self, now: Fraction) -> None:
        if self.due is None or self.due > now:
            return
        # Boosting twice with no time between is boosting once: an idle stretch that
        # spans many periods costs one step, not one per period.
        self.due = self._after(now)
        # The jobs below the top queue join it, behind those already there, each with a
        # fresh allotment; a job at the top keeps its place and what it has used of its
        # allotment (OSTEP's mlfq.py): else a boost shorter than the top quantum would
        # restart its first job's quantum at every boost, and starve the rest.
        moved = [j for q in self.queues[1:] for j in q]
        for q in self.queues[1:]:
            q.clear()
        self.queues[0].extend(moved)
        for j in moved:
            self.level[j] = 0
            self.used[j] = Fraction(0)

    def boost_due(self, at: Fraction) -> bool:
        return self.due is not None and self.due <= at

    def boost_moves(self, j: int) -> bool:
        return self.level[j] > 0


@dataclass(slots=True)
class _Run:
    """What happened on the CPU: simulated (exact fractions) or measured (floats)."""

    slices: list[tuple[int | str | None, _Time, _Time]]
    first_run: list[_Time]
    completion: list[_Time]
    switches: int


_Time = Fraction | float


class _Arrivals:
    """The jobs in arrival order, those admitted to the policy so far, and what happens
    next: an arrival or one of the policy's boosts."""

    def __init__(self, arrival: list[Fraction], policy: _Policy) -> None:
        self.arrival = arrival
        self.policy = policy
        self.order = sorted(range(len(arrival)), key=lambda i: (arrival[i], i))
        self.admitted = 0

    def next_arrival(self) -> Fraction:
        return self.arrival[self.order[self.admitted]]

    def admit(self, upto: Fraction) -> None:
        while self.admitted < len(self.order) and self.next_arrival() <= upto:
            self.policy.arrive(self.order[self.admitted])
            self.admitted += 1

    def next_event(self, now: Fraction) -> Fraction | None:
        times = [self.next_arrival()] if self.admitted < len(self.order) else []
        boost = self.policy.next_boost(now)
        if boost is not None:
            times.append(boost)
        return min(times) if times else None

    def advance(self, now: Fraction, to: Fraction) -> None:
        """Arrivals and boosts in (now, to], in time order."""
        while (event := self.next_event(now)) is not None and event <= to:
            self.admit(event)
            self.policy.boost(event)
            now = event


def _slice_end(
    arrivals: _Arrivals, j: int, t: Fraction, remaining: list[Fraction]
) -> tuple[Fraction, bool]:
    """Where job `j`'s slice from `t` ends, and whether an arrival or a boost cut it.
    Those strictly inside the slice may end it early; one at its very end is handled
    after it ends, like any other. A boost cuts the slice of a job it moves up; one at
    the top runs on, the others joining its queue behind it at the boost's time."""
    policy = arrivals.policy
    limit = policy.limit(j)
    end = t + (remaining[j] if limit is None else min(limit, remaining[j]))
    now = t
    while (event := arrivals.next_event(now)) is not None and event < end:
        arrivals.admit(event)
        if policy.boost_due(event):
            if policy.boost_moves(j):
                return event, True
            policy.boost(event)
        if policy.preempts(j, remaining[j] - (event - t)):
            return event, True
        now = event
    return end, False


def _simulate(
    arrival: list[Fraction], remaining: list[Fraction], policy: _Policy, cost: Fraction
) -> _Run:
    """Run the jobs to completion under `policy`; `remaining` (each job's burst at the
    start) is counted down in place, so a policy may hold it to read remaining times."""
    n = len(arrival)
    arrivals = _Arrivals(arrival, policy)
    first_run: list[_Time | None] = [None] * n
    completion: list[_Time | None] = [None] * n
    slices: list[tuple[int | str | None, _Time, _Time]] = []
    done = switches = 0
    t = Fraction(0)
    last: int | None = None
    while done < n:
        if len(slices) > MAX_SLICES:
            raise ScheduleError(
                f"more than {MAX_SLICES:,} slices, idle time and context switches included:"
                " use a longer quantum, or fewer jobs"
            )
        arrivals.admit(t)
        policy.boost(t)
        j = policy.peek()
        if j is None:
            # Nobody is ready, so the next arrival exists (jobs never block).
            until = arrivals.next_arrival()
            slices.append((None, t, until))
            t = until
            continue
        if last is not None and j != last:
            switches += 1
            if cost:
                slices.append((SWITCH, t, t + cost))
                arrivals.advance(t, t + cost)
                t += cost
                j = policy.peek()
                assert j is not None and j != last
        policy.take(j)
        if first_run[j] is None:
            first_run[j] = t
        end, cut = _slice_end(arrivals, j, t, remaining)
        ran = end - t
        remaining[j] -= ran
        slices.append((j, t, end))
        t, last = end, j
        if remaining[j] == 0:
            completion[j] = t
            done += 1
            policy.finish(j, ran)
        else:
            arrivals.admit(t)  # arrivals at this very moment queue ahead of the job going back
            policy.requeue(j, ran, cut)
    firsts = [f for f in first_run if f is not None]
    ends = [c for c in completion if c is not None]
    assert len(firsts) == len(ends) == n
    return _Run(slices, firsts, ends, switches)


# Running the algorithms ----------------------------------------------------------------------


def _exact_or_none(value: float | None) -> Fraction | None:
    return None if value is None or math.isinf(value) else _exact(value)


def _label(algorithm: str, settings: Settings) -> str:
    short = ALGORITHMS[algorithm][0]
    parts: list[str] = []
    if algorithm == "rr":
        parts.append(f"quantum {format_setting(settings.quantum)}")
    if algorithm == "mlfq":
        parts.append("quanta " + ",".join(format_setting(q) for q in settings.quanta))
        parts.append(
            "allotment "
            + ("= quantum" if settings.allotment is None else format_setting(settings.allotment))
        )
        parts.append(
            "no boost"
            if settings.boost is None
            else f"boost every {format_setting(settings.boost)}"
        )
    if settings.switch_cost:
        parts.append(f"switch {format_setting(settings.switch_cost)}")
    return f"{short} ({', '.join(parts)})" if parts else short


def _estimate_slices(jobs: Sequence[Job], algorithm: str, settings: Settings) -> None:
    """Refuse, naming the setting, a schedule that would take more than MAX_SLICES."""
    if algorithm == "rr":
        smallest, what = settings.quantum, "quantum"
    elif algorithm == "mlfq":
        candidates = [(q, "quanta") for q in settings.quanta]
        if settings.allotment is not None:
            candidates.append((settings.allotment, "allotment"))
        smallest, what = min(candidates)
    else:
        return
    # inf: each job runs to its end at that level, but a boost still cuts it (below)
    slices = 0 if math.isinf(smallest) else sum(math.ceil(job.burst / smallest) for job in jobs)
    # With a switch cost, a context switch is a slice of the chart too, after each slice.
    cut = slices * 2 if settings.switch_cost > 0 else slices
    if cut > MAX_SLICES:
        switches = ", and as many context switches" if settings.switch_cost > 0 else ""
        detail = (
            f"{format_time(smallest)} would cut these jobs into about {slices:,} slices"
            f"{switches} (at most {MAX_SLICES:,} in all): use a longer one"
        )
        raise ScheduleError(f"{what} {detail}", field=what, detail=detail)
    if algorithm == "mlfq" and settings.boost is not None:
        horizon = max(j.arrival for j in jobs) + sum(j.burst for j in jobs)
        horizon += settings.switch_cost * (slices + len(jobs))
        if horizon / settings.boost > MAX_SLICES:
            # The run's length said, with what makes it: a switch cost of 1e9 was met with
            # "--boost every 30 would mean ... boosts", the boost no one had set.
            costs = settings.switch_cost > 0
            detail = (
                f"every {format_time(settings.boost)} over a run of about"
                f" {f'{horizon:,.0f}' if horizon >= 1000 else format_time(horizon)}"
                f"{' (with its context switches)' if costs else ''} would mean about"
                f" {int(horizon / settings.boost):,} boosts (at most {MAX_SLICES:,}): use a"
                f" longer period{' or a smaller switch cost' if costs else ''}"
            )
            raise ScheduleError(f"boost {detail}", field="boost", detail=detail)


def schedule(jobs: Sequence[Job], algorithm: str, settings: Settings | None = None) -> Schedule:
    """Run one algorithm on the jobs. Raises ScheduleError (naming the job or setting)
    if the jobs or the settings it reads are wrong."""
    settings = settings or Settings()
    _raise_first(check_jobs(jobs), jobs)
    _raise_first(check_settings(settings, algorithm), jobs)
    _estimate_slices(jobs, algorithm, settings)
    return _checked_schedule(jobs, algorithm, settings)


def _checked_schedule(jobs: Sequence[Job], algorithm: str, settings: Settings) -> Schedule:
    """schedule() once the jobs and the settings have passed its checks."""
    arrival = [_exact(j.arrival) for j in jobs]
    burst = [_exact(j.burst) for j in jobs]
    remaining = list(burst)
    policy: _Policy
    if algorithm == "fcfs":
        policy = _Fifo()
    elif algorithm == "rr":
        policy = _Fifo(_exact(settings.quantum))
    elif algorithm in ("sjf", "srtf"):
        policy = _Shortest(arrival, remaining, preemptive=algorithm == "srtf")
    elif algorithm in PRIORITY_KEYS:
        priority = [j.priority for j in jobs]
        policy = _Priority(arrival, priority, preemptive=algorithm == "priority")
    else:
        policy = _Mlfq(
            [_exact_or_none(q) for q in settings.quanta],
            _exact_or_none(settings.allotment),
            settings.allotment is None,
            _exact_or_none(settings.boost),
            len(jobs),
        )
    run = _simulate(arrival, remaining, policy, _exact(settings.switch_cost))
    return _result(jobs, algorithm, settings, arrival, burst, run)


def _result(
    jobs: Sequence[Job],
    algorithm: str,
    settings: Settings,
    arrival: Sequence[_Time],
    burst: Sequence[_Time],
    run: _Run,
    label: str | None = None,
) -> Schedule:
    n = len(jobs)
    turnaround = [run.completion[i] - arrival[i] for i in range(n)]
    waiting = [turnaround[i] - burst[i] for i in range(n)]
    response = [run.first_run[i] - arrival[i] for i in range(n)]
    makespan = max(run.completion)
    busy = sum(burst, Fraction(0))
    results = tuple(
        JobResult(
            name=job.name,
            arrival=float(arrival[i]),
            burst=float(burst[i]),
            start=float(run.first_run[i]),
            completion=float(run.completion[i]),
            turnaround=float(turnaround[i]),
            waiting=float(waiting[i]),
            response=float(response[i]),
            priority=job.priority,
        )
        for i, job in enumerate(jobs)
    )
    gantt = tuple(
        Slice(jobs[who].name if isinstance(who, int) else who, float(start), float(end))
        for who, start, end in run.slices
    )
    return Schedule(
        algorithm=algorithm,
        label=label or _label(algorithm, settings),
        jobs=results,
        gantt=gantt,
        averages=Averages(
            turnaround=float(sum(turnaround, Fraction(0)) / n),
            waiting=float(sum(waiting, Fraction(0)) / n),
            response=float(sum(response, Fraction(0)) / n),
        ),
        makespan=float(makespan),
        busy=float(busy),
        throughput=float(n / makespan),
        utilisation=float(busy / makespan),
        switches=run.switches,
        settings=settings,
    )


def schedule_from_gantt(
    jobs: Sequence[Job], gantt: Sequence[Slice], algorithm: str, label: str
) -> Schedule:
    """The figures of a chart that was measured, not simulated, by the same rules
    (TIE_RULES' Figures): a job's start is its first slice, its completion the end of its
    last, and its burst the time it ran, which a measurement may find a little off the
    burst asked for. `gantt` is in time order and holds every job; `algorithm` names the
    simulation it is compared with."""
    position = {job.name: i for i, job in enumerate(jobs)}
    first_run: list[_Time | None] = [None] * len(jobs)
    completion: list[_Time] = [0.0] * len(jobs)
    ran = [0.0] * len(jobs)
    slices: list[tuple[int | str | None, _Time, _Time]] = []
    switches = 0
    last: int | None = None
    for piece in gantt:
        if not piece.is_run:
            slices.append((piece.job, piece.start, piece.end))
            continue
        i = position[piece.job]  # type: ignore[index]
        if first_run[i] is None:
            first_run[i] = piece.start
        completion[i] = piece.end
        ran[i] += piece.end - piece.start
        switches += last is not None and last != i
        last = i
        slices.append((i, piece.start, piece.end))
    missing = [jobs[i].name for i, first in enumerate(first_run) if first is None]
    if missing:
        raise ScheduleError(f"{missing[0]} never ran in this chart")
    firsts = [first for first in first_run if first is not None]  # all of them: see above
    run = _Run(slices, firsts, completion, switches)
    arrival = [job.arrival for job in jobs]
    return _result(jobs, algorithm, Settings(), arrival, ran, run, label)


def fcfs(jobs: Sequence[Job], *, switch_cost: float = 0.0) -> Schedule:
    return schedule(jobs, "fcfs", Settings(switch_cost=switch_cost))


def sjf(jobs: Sequence[Job], *, switch_cost: float = 0.0) -> Schedule:
    return schedule(jobs, "sjf", Settings(switch_cost=switch_cost))


def srtf(jobs: Sequence[Job], *, switch_cost: float = 0.0) -> Schedule:
    return schedule(jobs, "srtf", Settings(switch_cost=switch_cost))


def round_robin(jobs: Sequence[Job], quantum: float, *, switch_cost: float = 0.0) -> Schedule:
    return schedule(jobs, "rr", Settings(quantum=quantum, switch_cost=switch_cost))


def mlfq(
    jobs: Sequence[Job],
    quanta: Sequence[float] = DEFAULT_QUANTA,
    *,
    allotment: float | None = None,
    boost: float | None = None,
    switch_cost: float = 0.0,
) -> Schedule:
    """MLFQ with len(quanta) levels, top first."""
    settings = Settings(
        quanta=tuple(quanta), allotment=allotment, boost=boost, switch_cost=switch_cost
    )
    return schedule(jobs, "mlfq", settings)


def compare(
    jobs: Sequence[Job],
    settings: Settings | None = None,
    algorithms: Iterable[str] = ALGORITHM_KEYS,
) -> tuple[Schedule, ...]:
    """Every algorithm on the same jobs, in ALGORITHMS order. Every setting is checked
    first, so nothing is computed unless all of them can be."""
    settings = settings or Settings()
    keys = tuple(algorithms)
    _raise_first(check_jobs(jobs), jobs)
    for key in keys:
        _raise_first(check_settings(settings, key), jobs)
        _estimate_slices(jobs, key, settings)
    return tuple(_checked_schedule(jobs, key, settings) for key in keys)


# Presets ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preset:
    title: str  # short, for a menu
    description: str  # where it comes from and what it shows
    jobs: tuple[Job, ...]
    algorithm: str  # the one the example is about, or "all"
    settings: Settings = field(default_factory=Settings)


def _jobs(*rows: tuple[str, float, float] | tuple[str, float, float, int]) -> tuple[Job, ...]:
    return tuple(Job(*row) for row in rows)


PRESETS: dict[str, Preset] = {
    "fcfs-convoy": Preset(
        "FCFS: the convoy effect",
        "Silberschatz, Operating System Concepts 10th ed. §5.3.1: P1 24, P2 3, P3 3 at time 0;"
        " FCFS waits 0, 24, 27 (average 17). Listed P2, P3, P1 the average would be 3.",
        _jobs(("P1", 0, 24), ("P2", 0, 3), ("P3", 0, 3)),
        "fcfs",
    ),
    "sjf": Preset(
        "SJF: four jobs at time 0",
        "Silberschatz 10th ed. §5.3.2: P1 6, P2 8, P3 7, P4 3 at time 0; SJF runs P4, P1,"
        " P3, P2 and waits 7 on average (FCFS: 10.25).",
        _jobs(("P1", 0, 6), ("P2", 0, 8), ("P3", 0, 7), ("P4", 0, 3)),
        "sjf",
    ),
    "srtf": Preset(
        "SRTF: arrivals preempt",
        "Silberschatz 10th ed. §5.3.2: P1 (0, 8), P2 (1, 4), P3 (2, 9), P4 (3, 5); SRTF"
        " waits 6.5 on average, non-preemptive SJF 7.75.",
        _jobs(("P1", 0, 8), ("P2", 1, 4), ("P3", 2, 9), ("P4", 3, 5)),
        "srtf",
    ),
    "rr": Preset(
        "RR: quantum 4",
        "Silberschatz 10th ed. §5.3.3: P1 24, P2 3, P3 3 at time 0, quantum 4; waits 6, 4"
        " and 7 (average 17/3 = 5.67).",
        _jobs(("P1", 0, 24), ("P2", 0, 3), ("P3", 0, 3)),
        "rr",
        Settings(quantum=4),
    ),
    "priority": Preset(
        "Priority: five jobs at time 0",
        "Silberschatz 10th ed. §5.3.4: P1 10, P2 1, P3 2, P4 1, P5 5 at time 0 with"
        " priorities 3, 1, 4, 5, 2 (lower is higher); P2, P5, P1, P3, P4 run in turn and"
        " wait 8.2 on average.",
        _jobs(("P1", 0, 10, 3), ("P2", 0, 1, 1), ("P3", 0, 2, 4), ("P4", 0, 1, 5), ("P5", 0, 5, 2)),
        "priority-np",
    ),
    "priority-preempt": Preset(
        "Priority: arrivals preempt",
        "§5.3.4's preemptive rule on jobs arriving over time: P1 (0, 10, priority 3) is"
        " preempted by P2 (2, 1, priority 1) and by P4 (8, 5, priority 2); P3 (4, 2,"
        " priority 4) waits for all. Average waiting 4.5; non-preemptive 5.75.",
        _jobs(("P1", 0, 10, 3), ("P2", 2, 1, 1), ("P3", 4, 2, 4), ("P4", 8, 5, 2)),
        "priority",
    ),
    "stcf": Preset(
        "OSTEP: late arrivals",
        "Arpaci-Dusseau, OSTEP ch. 7: A (0, 100), B and C (10, 10). FIFO and SJF make B"
        " and C wait behind A (average turnaround 103.33); STCF (SRTF) gives 50.",
        _jobs(("A", 0, 100), ("B", 10, 10), ("C", 10, 10)),
        "srtf",
    ),
    "mlfq-short-job": Preset(
        "OSTEP MLFQ: a short job",
        "Arpaci-Dusseau, OSTEP ch. 8 §8.2 example 2: long job A sinks to the bottom of"
        " three levels (10 ms slices); short job B arrives at 100, runs at the top, and"
        " is done by 120 before A runs again.",
        _jobs(("A", 0, 200), ("B", 100, 20)),
        "mlfq",
        Settings(quanta=(10, 10, 10)),
    ),
    "stallings": Preset(
        "Stallings: all compared",
        "Stallings, Operating Systems: Internals and Design Principles, Table 9.5: A-E"
        " arrive at 0, 2, 4, 6, 8 needing 3, 6, 4, 5, 2. Mean turnaround: FCFS 8.6,"
        " SJF 7.6, SRTF 7.2, RR q=1 10.8, feedback with quanta 1, 2, 4 10.6.",
        _jobs(("A", 0, 3), ("B", 2, 6), ("C", 4, 4), ("D", 6, 5), ("E", 8, 2)),
        "all",
        Settings(quantum=1, quanta=(1, 2, 4)),
    ),
    "mlfq-mixed": Preset(
        "MLFQ: long and short jobs",
        "Two long CPU-bound jobs and three short ones arriving later: with quanta 2, 4, 8"
        " the short ones finish near the top while the long ones sink; a boost every"
        " 30 lifts the long ones back.",
        _jobs(("L1", 0, 20), ("L2", 1, 16), ("S1", 4, 3), ("S2", 9, 2), ("S3", 15, 4)),
        "mlfq",
        Settings(quantum=2, quanta=(2, 4, 8), boost=30),
    ),
}


# JSON and text --------------------------------------------------------------------------------


def to_json_dict(schedule: Schedule) -> dict[str, Any]:
    """The schedule as plain JSON data: `gantt[i].job` is null while idle and "(switch)"
    while switching; whole numbers are ints. In `settings`, null is an infinite quantum
    or allotment, or no boost; an allotment of "quantum" is each level's quantum (both
    were null: an infinite allotment read as the default)."""
    s = schedule.settings
    settings: dict[str, Any] = {"switch_cost": _json_number(s.switch_cost)}
    if schedule.algorithm == "rr":
        settings["quantum"] = _json_number(s.quantum)
    if schedule.algorithm == "mlfq":
        settings["quanta"] = [None if math.isinf(q) else _json_number(q) for q in s.quanta]
        settings["allotment"] = (
            "quantum"
            if s.allotment is None
            else None
            if math.isinf(s.allotment)
            else _json_number(s.allotment)
        )
        settings["boost"] = None if s.boost is None else _json_number(s.boost)
    return {
        "algorithm": schedule.algorithm,
        "label": schedule.label,
        "settings": settings,
        "jobs": [
            {
                "name": r.name,
                "arrival": _json_number(r.arrival),
                "burst": _json_number(r.burst),
                "priority": r.priority,
                "start": _json_number(r.start),
                "completion": _json_number(r.completion),
                "turnaround": _json_number(r.turnaround),
                "waiting": _json_number(r.waiting),
                "response": _json_number(r.response),
            }
            for r in schedule.jobs
        ],
        "averages": {
            "turnaround": _json_number(schedule.averages.turnaround),
            "waiting": _json_number(schedule.averages.waiting),
            "response": _json_number(schedule.averages.response),
        },
        "makespan": _json_number(schedule.makespan),
        "busy": _json_number(schedule.busy),
        "throughput": schedule.throughput,
        "utilisation": schedule.utilisation,
        "switches": schedule.switches,
        "gantt": [
            {"job": s.job, "start": _json_number(s.start), "end": _json_number(s.end)}
            for s in schedule.gantt
        ],
    }


def nice_number(at_least: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least `at_least` (> 0)."""
    power = math.floor(math.log10(at_least))
    for factor in (1, 2, 5):
        value = float(f"{factor}e{power}")
        if value >= at_least:
            return value
    return float(f"1e{power + 1}")


def nice_step(span: float, columns: int, label: int) -> float:
    """A tick step for a time axis whose labels (`label` wide) do not collide."""
    if span <= 0 or columns <= 0:
        return 1.0
    return nice_number(span / columns * (label + 2))


def chart_columns(pieces: Sequence[Slice], scale: float, columns: int) -> list[Slice | None]:
    """The slice drawn in each column of a chart `scale` columns a time unit wide. A
    slice covers the columns between its rounded ends, so neighbours never overlap or
    leave a gap; one too short for a column may not show (the table has its figures)."""
    cells: list[Slice | None] = [None] * columns
    for piece in pieces:
        for column in range(round(piece.start * scale), min(round(piece.end * scale), columns)):
            cells[column] = piece
    return cells


def run_columns(pieces: Sequence[Slice], scale: float, columns: int) -> dict[str, set[int]]:
    """For each job, the columns of a chart `scale` columns a time unit wide in whose span
    it ran at all. A job's own row shows it there, however short its slices: drawn from
    the one slice per column of chart_columns, a 1-unit burst in 3,001 units showed
    nowhere, and jobs taking turns every 0.02 units showed waiting between their turns in
    every column. One pass over the slices (20,000 of them for 500 jobs)."""
    ran: dict[str, set[int]] = {}
    for piece in pieces:
        if piece.job is not None and piece.is_run:
            first = math.floor(piece.start * scale + 1e-9)  # not the column a bound ends
            end = min(math.ceil(piece.end * scale - 1e-9), columns)
            ran.setdefault(piece.job, set()).update(range(first, end))
    return ran


def render_lanes_text(charts: Sequence[tuple[str, Schedule]], width: int = 80) -> str:
    """Schedules of the same jobs on one time axis: under each title a lane per job, #
    while it runs, . while it has arrived and waits, as the app draws them in colour.
    For charts of any number of slices (the box chart needs a few)."""
    names = [r.name for r in charts[0][1].jobs]
    pad = max(len(name) for name in names) + 3
    span = max(s.makespan for _, s in charts)
    end = format_time(span)
    columns = max(10, width - pad - len(end))
    scale = columns / span
    lines: list[str] = []
    for title, chart in charts:
        lines.append(title)
        ran = run_columns(chart.gantt, scale, columns)
        for r in chart.jobs:
            present = range(round(r.arrival * scale), round(r.completion * scale))
            mine = ran.get(r.name, set())
            lane = "".join(
                "#" if c in mine else "." if c in present else " " for c in range(columns)
            )
            lines.append(f"  {r.name.ljust(pad - 2)}{lane}".rstrip())
    step = nice_step(span, columns, len(end) + 2)
    ticks = [" "] * (columns + len(end) + 1)
    free = 0
    for k in range(int(span / step) + 1):
        label = format_time(k * step)
        at = round(k * step * scale)
        if at >= free and at + len(label) < columns - len(end):
            ticks[at : at + len(label)] = label
            free = at + len(label) + 1
    ticks[columns : columns + len(end)] = end
    lines.append(" " * pad + "".join(ticks).rstrip())
    return "\n".join(lines)


def slice_label(piece: Slice) -> str:
    if piece.job is None:
        return "idle"
    if piece.job == SWITCH:
        return "cs"
    return piece.job


def render_gantt_text(schedule: Schedule, width: int = 80) -> str:
    """The textbook Gantt chart: one box per slice (idle and switches too), as long as
    its time where the width allows but never narrower than its label, the time under
    every boundary. Slices that do not fit in `width` go on to further rows; a name too
    long for a row is cut. A line under the chart says when its boxes are not to scale."""
    pieces = schedule.gantt
    starts = [format_time(p.start) for p in pieces]
    ends = [format_time(p.end) for p in pieces]
    room = max(width - max(len(e) for e in ends), 10)
    # A 24-character name at --width 20 drew a box of 26 columns.
    labels = [cut(slice_label(p), room - 2) for p in pieces]
    # In a terminal's columns: a CJK name takes two a character (len() counted one, and
    # the chart's boxes and its times drifted apart).
    least = [
        max(cells(label) + 2, len(start) + 1) for label, start in zip(labels, starts, strict=True)
    ]

    def boxes(scale: float) -> list[int]:
        return [
            max(m, round((p.end - p.start) * scale)) for m, p in zip(least, pieces, strict=True)
        ]

    scale = room / schedule.makespan
    if sum(boxes(0)) <= room:
        # The largest scale whose boxes fit in one row, by bisection (widths grow with it).
        low, high = 0.0, scale
        for _ in range(40):
            middle = (low + high) / 2
            low, high = (middle, high) if sum(boxes(middle)) <= room else (low, middle)
        scale = low
    width_of = boxes(scale)
    rows: list[list[int]] = [[]]
    used = 0
    for index, cell in enumerate(width_of):
        if rows[-1] and used + cell > room:
            rows.append([])
            used = 0
        rows[-1].append(index)
        used += cell
    lines: list[str] = []
    for row in rows:
        lines.append("".join("|" + centred(labels[i], width_of[i] - 1) for i in row) + "|")
        lines.append("".join(starts[i].ljust(width_of[i]) for i in row) + ends[row[-1]])
    # Past a column more than its time's share (rounding's half a column, and a column
    # for the boundary's bar), a box was widened for its name or its start time: a slice
    # of 1 drawn wider than one of 30 read as the longer (a tester's chart).
    if any(w > (p.end - p.start) * scale + 1.5 for w, p in zip(width_of, pieces, strict=True)):
        note = "not to scale: a box is never narrower than its name and its start time"
        lines.extend(textwrap.wrap(note, max(width, 20)))
    again = next(
        (
            a.job
            for a, b in itertools.pairwise(pieces)
            if a.job == b.job and a.job not in (None, SWITCH)
        ),
        None,
    )
    if again is not None:
        # Each slice is a box: "A | A" read as a switch the summary's count left out.
        why = "a new quantum" if schedule.settings.boost is None else "a new quantum or a boost"
        name = cut(again, 12)
        note = f"{name} | {name}: one job's slices back to back ({why}): no context switch"
        lines.extend(textwrap.wrap(note, max(width, 20)))
    if any(p.job == SWITCH for p in pieces):
        lines.append(f"cs: context switch ({format_time(schedule.settings.switch_cost)} each)")
    return "\n".join(lines)


RESULT_COLUMNS = (
    "job",
    "arrival",
    "burst",
    "start",
    "completion",
    "turnaround",
    "waiting",
    "response",
)


def job_figures(r: JobResult) -> tuple[float, ...]:
    """A job's figures in RESULT_COLUMNS order, after its name."""
    return (r.arrival, r.burst, r.start, r.completion, r.turnaround, r.waiting, r.response)


def throughput_text(schedule: Schedule) -> str:
    """ "0.154 jobs per time unit"; "1 job per time unit", not "1 jobs"."""
    shown = throughput_figure(schedule)
    return f"{shown} job{'' if shown.lstrip('≈') == '1' else 's'} per time unit"


def throughput_figure(schedule: Schedule) -> str:
    """The throughput as format_time shows it, unless that rounds it to a whole number it
    is not: 2 jobs in 2.001 did 0.9995 a time unit, which three decimals made "1", the
    rate of 2 jobs in 2 ("≈1" where six figures still read 1)."""
    rate = schedule.throughput
    shown = format_time(rate)
    if shown.lstrip("-").isdigit() and float(shown) != rate:
        shown = f"{rate:.6g}"
        if shown.lstrip("-").isdigit():
            shown = f"≈{shown}"
    return shown


def utilisation_text(schedule: Schedule) -> str:
    """'87.5%'; a CPU that idled at all is never '100.0%' (busy 10001 of 10001.5 read so),
    nor one that ran at all '0.0%' (busy 1 of 1000000001 read so): '<0.1%'."""
    if schedule.busy < schedule.makespan and schedule.utilisation >= 0.9995:
        return "99.9%"
    if schedule.busy > 0 and schedule.utilisation < 0.0005:
        return "<0.1%"
    return f"{schedule.utilisation:.1%}"


def summary_lines(schedule: Schedule) -> tuple[str, str]:
    """Throughput, then utilisation and switches, in words."""
    n = len(schedule.jobs)
    switches = schedule.switches
    return (
        f"throughput {throughput_text(schedule)}"
        f" ({n} job{'s' if n != 1 else ''} in {format_time(schedule.makespan)})",
        f"CPU utilisation {utilisation_text(schedule)}"
        f" (busy {format_time(schedule.busy)} of {format_time(schedule.makespan)}),"
        f" {switches} context switch{'es' if switches != 1 else ''}",
    )


def render_table_text(schedule: Schedule) -> str:
    """One line per job (with its priority under a priority algorithm), the averages,
    then throughput and utilisation."""
    prioritised = schedule.algorithm in PRIORITY_KEYS
    rows = [list(RESULT_COLUMNS)]
    for r in schedule.jobs:
        rows.append([r.name, *map(format_time, job_figures(r))])
    rows.append(["average", "", "", "", "", *map(format_time, schedule.averages.figures())])
    if prioritised:
        rows[0].insert(3, "priority")
        for row, r in zip(rows[1:], schedule.jobs, strict=False):
            row.insert(3, priority_text(r.priority))
        rows[-1].insert(3, "")
    return "\n".join([*columns(rows, left=1), *summary_lines(schedule)])


def signed_time(value: float) -> str:
    """A measured difference, to the thousandth of a unit (what the kernel's clocks
    give, read against the sampler's ticks): +0.021, -3, 0. Not format_time's three
    significant figures, which put +0.0765 beside +0.071 in one column."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    if text in ("0", "-0"):
        return "0"
    return f"+{text}" if value > 0 else text


def priority_text(priority: int | None) -> str:
    return "-" if priority is None else str(priority)


COMPARISON_COLUMNS = (  # the three averages over the jobs, then the CPU's figures
    "algorithm",
    "turnaround",
    "waiting",
    "response",
    "throughput",
    "utilisation",
    "switches",
)


def compact_label(schedule: Schedule) -> str:
    """'RR q=4', 'MLFQ q=2,4,8 A=6 S=30': the label, short enough for a table's column."""
    s = schedule.settings
    if schedule.algorithm == "rr":
        return f"RR q={format_time(s.quantum)}"
    if schedule.algorithm != "mlfq":
        return schedule.short
    text = "MLFQ q=" + ",".join(format_time(q) for q in s.quanta)
    if s.allotment is not None:
        text += f" A={format_time(s.allotment)}"
    if s.boost is not None:
        text += f" S={format_time(s.boost)}"
    return text


def comparison_rows(schedules: Sequence[Schedule]) -> list[list[str]]:
    """COMPARISON_COLUMNS' cells, one row per schedule."""
    return [
        [
            compact_label(s),
            *map(format_time, s.averages.figures()),
            throughput_figure(s),
            utilisation_text(s),
            str(s.switches),
        ]
        for s in schedules
    ]


def render_comparison_text(schedules: Sequence[Schedule]) -> str:
    """One line per algorithm: its averages, throughput, utilisation and switches."""
    return "\n".join(columns([list(COMPARISON_COLUMNS), *comparison_rows(schedules)], left=1))


def lowest_averages(schedules: Sequence[Schedule]) -> list[set[str]]:
    """For turnaround, waiting and response: the algorithms with the lowest average (all of
    them on a tie)."""
    figures = [s.averages.figures() for s in schedules]
    return [
        {s.algorithm for s, f in zip(schedules, figures, strict=True) if f[k] == low}
        for k, low in enumerate(map(min, zip(*figures, strict=True)))
    ]
