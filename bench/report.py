"""What every benchmark part hands back, and how bench/RESULTS.md and the console show it.

A part measures; it returns a Section (its tables, its goal lines, how it measured). The suite puts the
sections together with the date and the machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Goal:
    """A goal of the issue and what this run measured against it; met is None when it was not measured."""

    goal: str
    measured: str
    met: bool | None
    caveat: str = ""

    @property
    def verdict(self) -> str:
        verdict = {True: "met", False: "**MISSED**", None: "not measured"}[self.met]
        return f"{verdict} ({self.caveat})" if self.caveat else verdict


@dataclass
class Section:
    title: str
    command: str
    tables: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how it was measured: one markdown bullet each
    failed: bool = False  # something could not be measured or answered errors

    def markdown(self) -> str:
        parts = [f"## {self.title}", *self.tables]
        if self.goals:
            parts.append("\n".join(f"- Goal: {g.goal}: {g.measured}: {g.verdict}" for g in self.goals))
        notes = [f"- Command: `{self.command}`", *(f"- {note}" for note in self.notes)]
        parts.append("\n".join(notes))
        return "\n\n".join(parts) + "\n"


def markdown_table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    """A markdown table; `align` has one letter per column, l or r (default: first left, others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def goals_table(sections: list[Section]) -> str:
    rows = [[s.title, g.goal, g.measured, g.verdict] for s in sections for g in s.goals]
    return markdown_table(["part", "goal", "measured", "verdict"], rows, "llll")


# --- the machine ----------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def version_of(cmd: list[str], pattern: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    match = re.search(pattern, out)
    return match[1] if match else "unknown"


def redis_version() -> str:
    return version_of(["redis-server", "--version"], r"v=(\S+)")


def machine_line() -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{cpu_model()}, {os.cpu_count()} CPUs (load average at the end {load}); "
        f"Python {platform.python_version()}; Redis {redis_version()}"
    )


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
