"""Benchmark: the dataset validator, sequential and parallel, against Hugging Face ``datasets.load_dataset("json")``.

Realistic multi-turn chat JSONL (lines of 3-8 KB, 6-14 messages of English prose with paragraphs, lists,
em dashes and curly quotes) is generated under ``var/bench/`` (50 MB and 500 MB by default; reused when
present). Each measurement runs in a fresh subprocess so that its peak RSS (``ru_maxrss``) is its own:

- ``sequential``: ``validate_stream`` on the open file, one core, full checks and statistics, after
  ``django.setup()`` (the RSS before validation is reported too, to separate Django's own footprint);
- ``parallel``: ``validate_ranges`` on the same file by byte ranges (``open_file_range``) with ``--workers``
  ranges (default 2): the measuring process validates the first range and forks one pool process per other
  range. Its CPU time is its own plus its children's (``RUSAGE_CHILDREN``, counted once the pool has joined
  them). Peak RSS is given per process and in total: the parent's ``ru_maxrss`` plus the children's, where
  ``RUSAGE_CHILDREN.ru_maxrss`` is the largest child's peak, so the total is parent + (workers - 1) × largest
  child: exact for 2 workers (one child), an upper bound beyond. Each process's RSS counts the pages it shares
  copy-on-write with the other (Django and the code, about 115 MB, are in both), so the total overstates the
  memory actually used;
- Hugging Face: ``load_dataset("json", data_files=…, split="train", cache_dir=<temporary>)`` in the separate
  benchmark venv (never in the project's requirements; the app is itself named ``datasets``), started from a
  temporary directory so that this checkout's ``datasets`` package does not shadow it.

Setup once, then run::

    python3 -m venv var/bench-venv && var/bench-venv/bin/pip install datasets
    .venv/bin/python bench/dataset_validation.py            # --sizes 50,500 --repeat 1 --workers 2

Times are wall-clock seconds of the validation (or load) call alone, imports excluded, and the CPU seconds
(user + system, all threads and child processes) it used; MB is 10^6 bytes. The files are freshly written, so
they are read from the page cache. The machine may be shared: before each measurement the script waits (up to
``--wait`` seconds) for the 1-minute load average to fall below ``--max-load`` and records the load average it
started at.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "var" / "bench"
HF_PYTHON = ROOT / "var" / "bench-venv" / "bin" / "python"

SENTENCES = """
I hear how heavy this has felt, and it makes sense that you have been putting it off.
Let's start with one number you already know, so the rest has something solid to stand on.
You are not behind; you are starting, and that is the part most people never get to.
Your emergency fund is the cushion that keeps a surprise bill from turning into new debt.
A common target is three to six months of essential expenses, but even one month changes how a crisis feels.
The interest on that card is about 24%, which means every dollar you pay down earns a guaranteed return.
If we list your debts from the highest rate to the lowest, the order of attack becomes obvious.
Automating a small transfer on payday takes willpower out of the equation.
It's okay to feel anxious about the market — that feeling is information, not an instruction.
Index funds spread your money across hundreds of companies, so no single bad year decides your future.
Before we talk about investing, can I ask what a good outcome would look like for you in five years?
Your employer match is part of your pay; leaving it on the table is like declining a raise.
Let's separate the decisions you need to make this week from the ones that can wait until spring.
When you say you feel stupid about money, I want to gently push back on that word.
Most of the people I work with were never taught any of this, and they still figured it out.
A budget isn't a punishment; it's a plan for spending money on what you actually care about.
We could try the 50/30/20 split as a starting point and adjust it once we see a real month of spending.
The mortgage question depends on your rate, your other goals and how much the peace of mind is worth to you.
Paying it off early feels wonderful, but it also ties up cash you can't easily get back.
I'd suggest we look at your last three statements together rather than guessing.
That was a big step — naming the number out loud is often the hardest part.
You mentioned your partner sees this differently, so let's find a plan you can both say yes to.
Retirement accounts have rules about withdrawals, so keep them separate from money you may need soon.
If the numbers change, the plan changes; nothing we decide today is carved in stone.
What would it mean for you to have the first $1,000 set aside by the end of the quarter?
The fact that you're asking these questions tells me you're more ready than you think.
""".strip().splitlines()
QUESTIONS = """
I don't even know where to begin with all of this.
Is it bad that I have almost nothing saved at 38?
Should I pay off my credit card or start investing first?
My brother says I should put everything into crypto — is that crazy?
What happens if I lose my job before the emergency fund is ready?
How do I talk to my wife about money without it turning into a fight?
Honestly, I feel ashamed every time I open my banking app.
Can you explain what an index fund actually is?
We just had a baby and I'm worried we're not prepared.
Is paying off the mortgage early a good idea or a mistake?
""".strip().splitlines()
SYSTEM = (
    "You are an emotionally intelligent financial coach. Acknowledge feelings before facts, never shame, "
    "explain one step at a time, use concrete numbers and ask before giving advice."
)


def _prose(rng: random.Random, target: int) -> str:
    """English paragraphs (and now and then a short list) of about ``target`` characters."""
    paragraphs: list[str] = []
    size = 0
    while size < target:
        if rng.random() < 0.15:
            items = rng.sample(SENTENCES, rng.randint(2, 4))
            block = "Here is what I'd suggest:\n" + "\n".join(f"- {item}" for item in items)
        else:
            block = " ".join(rng.sample(SENTENCES, rng.randint(2, 5)))
        paragraphs.append(block)
        size += len(block) + 2
    return "\n\n".join(paragraphs)


def _line(rng: random.Random, number: int) -> bytes:
    count = rng.randint(6, 14)
    target = rng.randint(3000, 8000)
    messages = [{"role": "system", "content": SYSTEM}] if count % 2 else []
    exchanges = count // 2
    # Questions average ~150 characters and _prose overshoots by about half a paragraph.
    budget = max(target - 300 - exchanges * 250, 300)
    for _ in range(exchanges):
        question = rng.choice(QUESTIONS)
        if rng.random() < 0.5:
            question += " " + " ".join(rng.sample(SENTENCES, rng.randint(1, 2)))
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": _prose(rng, budget // exchanges - 150)})
    metadata = {"conversation_id": f"bench-{number:08d}", "persona": "anxious_planner", "quality_tier": "production"}
    return (json.dumps({"messages": messages, "metadata": metadata}, ensure_ascii=False) + "\n").encode()


def generate(path: Path, megabytes: int, seed: int = 7) -> None:
    """Write ``megabytes`` MB of chat JSONL to ``path`` (streamed), unless it is already there."""
    if path.exists() and path.stat().st_size >= megabytes * 10**6:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    written = number = 0
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        while written < megabytes * 10**6:
            line = _line(rng, number)
            while not 3000 <= len(line) <= 8000:  # keep every line in the 3-8 KB the target is stated for
                line = _line(rng, number)
            handle.write(line)
            written += len(line)
            number += 1
    partial.rename(path)


def child_validate(path: str, mode: str, workers: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brightrun.settings_test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from functools import partial

    from datasets.validation import open_file_range, validate_ranges, validate_stream

    load = os.getloadavg()[0]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before, cpu_before = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    if mode == "sequential":
        with open(path, "rb") as stream:
            report = validate_stream(stream)
    else:
        report = validate_ranges(partial(open_file_range, path), os.path.getsize(path), workers=workers)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's processes, joined by now
    child_rss = children.ru_maxrss / 1024 if mode == "parallel" else 0.0
    stats = report.statistics
    print(
        json.dumps(
            {
                "tool": f"validator {mode}" + (f" ({workers})" if mode == "parallel" else ""),
                "seconds": elapsed,
                "bytes": report.bytes,
                "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_before + children.ru_utime + children.ru_stime,
                "rss_mb": usage.ru_maxrss / 1024,
                "child_rss_mb": child_rss,
                "rss_total_mb": usage.ru_maxrss / 1024 + child_rss * (workers - 1 if mode == "parallel" else 0),
                "rss_before_mb": before,
                "load": load,
                "examples": stats["examples"],
                "status": report.status,
                "counts": report.counts,
            }
        )
    )


HF_CHILD = """
import json, os, resource, sys, time
from datasets import load_dataset
path, cache = sys.argv[1], sys.argv[2]
load = os.getloadavg()[0]
usage = resource.getrusage(resource.RUSAGE_SELF)
before, cpu_before = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
started = time.perf_counter()
ds = load_dataset("json", data_files=path, split="train", cache_dir=cache)
rows = len(ds)
elapsed = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
rss = usage.ru_maxrss / 1024
print(json.dumps({"tool": "hf-datasets", "seconds": elapsed, "examples": rows, "rss_before_mb": before,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_before, "rss_mb": rss, "child_rss_mb": 0.0,
                  "rss_total_mb": rss, "load": load}))
"""


def _run(command: list[str], cwd: Path) -> dict:
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wait_for_quiet(max_load: float, wait: float) -> None:
    """Wait (at most ``wait`` seconds) until the 1-minute load average is below ``max_load``."""
    deadline = time.monotonic() + wait
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        time.sleep(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50,500", help="file sizes in MB")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="ranges (processes) of the parallel validator")
    parser.add_argument("--tools", default="sequential,parallel,hf", help="which to measure")
    parser.add_argument("--max-load", type=float, default=1.5, help="wait for a lower 1-minute load average")
    parser.add_argument("--wait", type=float, default=300, help="longest wait for it, in seconds")
    parser.add_argument("--hf-python", default=str(HF_PYTHON), help="python of the venv with `datasets`")
    parser.add_argument("--child", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="sequential", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_validate(args.child, args.mode, args.workers)
        return
    tools = args.tools.split(",")
    rows = []
    for megabytes in (int(size) for size in args.sizes.split(",")):
        path = BENCH_DIR / f"chat-{megabytes}mb.jsonl"
        started = time.perf_counter()
        generate(path, megabytes)
        size = path.stat().st_size
        print(f"{path.name}: {size / 1e6:.1f} MB ready ({time.perf_counter() - started:.1f} s)", flush=True)
        commands: list[tuple[list[str], Path]] = []
        for mode in ("sequential", "parallel"):
            if mode in tools:
                child = [sys.executable, __file__, "--child", str(path), "--mode", mode, "--workers", str(args.workers)]
                commands.append((child, ROOT))
        if "hf" in tools and not Path(args.hf_python).exists():
            print(f"  (no {args.hf_python}: Hugging Face comparison skipped)", flush=True)
        elif "hf" in tools:
            commands.append(([args.hf_python, "-c", HF_CHILD, str(path)], Path()))
        for _ in range(args.repeat):  # interleaved, so that a change of load hits every tool alike
            for command, cwd in commands:
                _wait_for_quiet(args.max_load, args.wait)
                if command[0] == args.hf_python:
                    with tempfile.TemporaryDirectory(prefix="hf-bench-") as folder:
                        row = _run([*command, folder], Path(folder))
                else:
                    row = _run(command, cwd)
                row.update(megabytes=megabytes, file_bytes=size, mb_per_s=size / 1e6 / row["seconds"])
                row["mb_per_cpu_s"] = size / 1e6 / row["cpu_seconds"]
                rows.append(row)
                rss = f"peak RSS {row['rss_mb']:4.0f} MB"
                if row["child_rss_mb"]:
                    rss += f" + child {row['child_rss_mb']:4.0f} MB = {row['rss_total_mb']:4.0f} MB"
                print(
                    f"  {row['tool']:<22} load {row['load']:4.2f} {row['seconds']:6.2f} s {row['mb_per_s']:6.1f} MB/s  "
                    f"CPU {row['cpu_seconds']:6.2f} s ({row['mb_per_cpu_s']:5.1f} MB/s per core)  {rss} "
                    f"(before: {row['rss_before_mb']:.0f} MB)  examples {row['examples']:,}",
                    flush=True,
                )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
