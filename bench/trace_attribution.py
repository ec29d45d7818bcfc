"""Main-thread time of one script origin in a Chromium trace: the tasks that ran that origin's JavaScript.

A renderer's main thread runs top-level tasks (category "toplevel"); inside them EvaluateScript, FunctionCall
and v8.compile events name the script URL they run. The time an origin costs the page is the total length of
the top-level tasks that contain any of its script events (layout or style work the script caused within the
same task included), each task counted once: wall time (dur: the main thread was not free) and thread time
(tdur: it was running). The difference is waiting, mostly on synchronous IPC to the browser process; the
replies received inside those tasks name the interfaces waited on.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SCRIPT_EVENTS = frozenset({"EvaluateScript", "FunctionCall", "v8.compile", "v8.run", "TimerFire"})
MAIN_THREAD = "CrRendererMain"

TraceEvent = dict[str, Any]


def _events(trace: bytes) -> list[TraceEvent]:
    data = json.loads(trace)
    events = data.get("traceEvents", []) if isinstance(data, dict) else data
    return [e for e in events if isinstance(e, dict)]


def _url(event: TraceEvent) -> str:
    args = event.get("args") or {}
    data = args.get("data") or {}
    return str(data.get("url") or data.get("scriptName") or args.get("fileName") or "")


def _duration_us(event: TraceEvent, kind: str) -> float:
    """dur: wall time; tdur: thread time (the wall time when the trace has none)."""
    value = event.get(kind, event["dur"])
    return float(value) if isinstance(value, int | float) else 0.0


def _main_threads(events: list[TraceEvent]) -> set[tuple[int, int]]:
    return {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M"
        and e.get("name") == "thread_name"
        and (e.get("args") or {}).get("name") == MAIN_THREAD
    }


@dataclass
class OriginTime:
    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    # Synchronous IPC replies received inside those tasks, by interface (e.g. blink.mojom.StorageArea).
    sync_replies: Counter[str] = field(default_factory=Counter)


def origin_time(trace: bytes, origin: str) -> OriginTime:
    """Main-thread tasks that ran scripts loaded from `origin`."""
    events = _events(trace)
    mains = _main_threads(events)
    complete = [
        e for e in events if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in mains and "dur" in e
    ]
    tasks = sorted(
        (e for e in complete if "toplevel" in str(e.get("cat", ""))),
        key=lambda e: e["ts"],
    )
    counted: dict[tuple[int, int, float], TraceEvent] = {}
    for event in complete:
        if event.get("name") not in SCRIPT_EVENTS or not _url(event).startswith(origin):
            continue
        start, end = event["ts"], event["ts"] + event["dur"]
        where = (event["pid"], event["tid"])
        enclosing = [
            t
            for t in tasks
            if (t["pid"], t["tid"]) == where and t["ts"] <= start and end <= t["ts"] + t["dur"]
        ]
        # The outermost enclosing task, else the script event itself.
        outer = min(enclosing, key=lambda t: t["ts"]) if enclosing else event
        counted[(outer["pid"], outer["tid"], outer["ts"])] = outer
    result = OriginTime(
        wall_ms=sum(_duration_us(t, "dur") for t in counted.values()) / 1000,
        cpu_ms=sum(_duration_us(t, "tdur") for t in counted.values()) / 1000,
    )
    for task in counted.values():
        start, end = task["ts"], task["ts"] + task["dur"]
        for event in complete:
            if event.get("name") == "Receive mojo reply" and start <= event["ts"] <= end:
                info = (event.get("args") or {}).get("chrome_mojo_event_info") or {}
                result.sync_replies[str(info.get("mojo_interface_tag", "?"))] += 1
    return result
