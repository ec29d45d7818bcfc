"""`make bench`: every benchmark in bench/ in one run, a table per part, the goals, into bench/RESULTS.md.

Parts, in order: POST /v1/events under load (events_load.py), tag size (tag_size.py), the tag's main-thread
time in Chromium (tag_main_thread.py), Redis memory per visitor (visitor_memory.py). A part that cannot be
measured is reported as such and the others still run. Everything listens on 127.0.0.1 only and every
process started is stopped on exit, Ctrl-C and SIGTERM included.

    .venv/bin/python bench/suite.py [--quick] [--parts events,tag-size,tag-main-thread,memory] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import events_load
import tag_main_thread
import tag_size
import visitor_memory
from local_servers import sigterm_unwinds
from report import Section, goals_table, machine_line, utc_now

RESULTS_FILE = Path(__file__).resolve().parent / "RESULTS.md"
PARTS: dict[str, tuple[str, Callable[[argparse.Namespace], Section]]] = {
    "events": ("POST /v1/events under load", events_load.run),
    "tag-size": ("Tag size", lambda args: tag_size.run()),
    "tag-main-thread": ("Tag main-thread time", tag_main_thread.run),
    "memory": ("Redis memory per active visitor", visitor_memory.run),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs everywhere (about 2 minutes)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--no-write", action="store_true", help=f"do not overwrite {RESULTS_FILE.name}")
    for module in (events_load, tag_main_thread, visitor_memory):
        module.add_arguments(parser)
    args = parser.parse_args()
    for module in (events_load, tag_main_thread, visitor_memory):
        module.apply_defaults(args)
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; known: {', '.join(PARTS)}")
    return args


def run_part(name: str, args: argparse.Namespace) -> Section:
    title, run = PARTS[name]
    print(f"\n### {title}", flush=True)
    started = time.monotonic()
    try:
        section = run(args)
    except Exception as exc:  # a part that breaks is reported; the others still run
        traceback.print_exc()
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        section = Section(title, command="", notes=[f"NOT MEASURED: {first_line}"], failed=True)
    section.notes.append(f"This part took {time.monotonic() - started:.0f} s.")
    print(section.markdown(), flush=True)
    return section


def results(sections: list[Section], args: argparse.Namespace, seconds: float) -> str:
    command = " ".join([".venv/bin/python bench/suite.py", *sys.argv[1:]])
    head = f"""# Storetag benchmarks

- Date: {utc_now()}
- Machine: {machine_line()}
- Command: `make bench` = `{command}`{" (quick)" if args.quick else ""}; {seconds:.0f} s in all.
  Each part runs alone too: its command is under its table.
- The machine is shared with other engineers' test runs: the load figures carry the CPU the rest of the
  machine took during each run, and runs it disturbed are marked DISTURBED.

## Goals

{goals_table(sections)}
"""
    return "\n".join([head, *(section.markdown() for section in sections)])


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    with sigterm_unwinds():
        sections = [run_part(name, args) for name in args.parts.split(",")]
    text = results(sections, args, time.monotonic() - started)
    print("\n## Goals\n\n" + goals_table(sections))
    if not args.no_write:
        RESULTS_FILE.write_text(text)
        print(f"\nwritten to {RESULTS_FILE}")
    return 1 if any(section.failed for section in sections) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted: every process it started is stopped")
