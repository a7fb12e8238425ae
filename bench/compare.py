#!/usr/bin/env python3
"""Compare netscript with bpftrace on the same scripts, in one run.

Usage:   sudo bench/compare.py [--runs N] [--quick] [--packets N]
                               [--netscript PATH] [--bpftrace PATH]

Prerequisites (checked at start, the script exits non-zero if one is missing):
  * root (BPF programs are loaded and kernel.bpf_stats_enabled is toggled);
  * bpftrace and bpftool on PATH (Debian/Ubuntu: `apt-get install -y bpftrace linux-tools-common`);
  * a release build of netscript (`cargo build --release`, default
    target/release/netscript next to this file's parent directory).
Only the Python 3 standard library is used.

Measures, for every benchmark script (A, B, C below), both tools under the same conditions:

 1. start-up: wall time from spawning the tool until its first event is seen. Each tool runs a
    variant of the script whose probe also does `printf("ready\\n"); exit();`, while a background
    process sends ~1 kHz of UDP datagrams to 127.0.0.1. The clock stops when "ready" is read from
    the tool's stdout. Runs alternate between the tools; one untimed warm-up run each; median of N.
 2. memory: peak RSS (ru_maxrss from os.wait4, KiB) of the tool process, which runs the script for
    ~2 s under the same background traffic and is then stopped with SIGINT (so map printing counts).
    Kernel-side memory (maps, programs) is not included. Median of up to 3 runs.
 3. per-event: with kernel.bpf_stats_enabled=1, both tools run the same script AT THE SAME TIME on
    the same traffic (--packets UDP datagrams over loopback). run_time_ns / run_cnt of each tool's
    BPF programs (from `bpftool prog show -j`, matched to the tool by pid, or by the prog_id entries
    in /proc/PID/fdinfo when bpftool has no pid information) are read before and after the traffic,
    and the deltas give ns per program run. Two rounds with swapped start order (attach order decides
    which program runs first on each event, and so which one pays for cold cache lines); the sums
    over both rounds are reported. The sysctl is restored to its previous value at the end.

Output: a markdown table (measure | script | netscript | bpftrace | ratio | target | met?), the
program sizes (xlated instructions = bytes_xlated / 8) and the environment (kernel, CPU, versions).
"""

import argparse
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPTS = {
    "A": ("tracepoint:net:netif_receive_skb", "@rx[args->len] = count();"),
    "B": (
        "tracepoint:net:netif_receive_skb",
        "@h = hist(args->len); @s[str(args->name)] = stats(args->len);",
    ),
    "C": (
        "tracepoint:net:net_dev_queue",
        "@bytes[comm] = sum(args->len); @l = lhist(args->len, 0, 1500, 100);",
    ),
}

# Highest acceptable ratio netscript/bpftrace for each measure.
TARGETS = {"start-up": 0.10, "memory": 0.20, "per-event": 1.00}

STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"
TOOL_TIMEOUT_S = 60.0

# Sends `count` UDP datagrams (count < 0: forever) of varied sizes to a local socket and drains it.
TRAFFIC_CODE = r"""
import socket, sys, time
count, interval = int(sys.argv[1]), float(sys.argv[2])
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("127.0.0.1", 0))
rx.setblocking(False)
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sizes = [32, 64, 100, 200, 512, 1000, 1400]
sent = 0
while count < 0 or sent < count:
    tx.sendto(b"x" * sizes[sent % len(sizes)], rx.getsockname())
    sent += 1
    try:
        while True:
            rx.recv(2048)
    except BlockingIOError:
        pass
    if interval > 0:
        time.sleep(interval)
"""


class ToolError(Exception):
    """A tool failed to run a script; the message carries its stderr."""


def fail(message):
    print(f"compare.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def check_prerequisites(args):
    if os.geteuid() != 0:
        fail("must run as root (BPF loading, bpf_stats_enabled): sudo bench/compare.py")
    for name, path in (("bpftrace", args.bpftrace), ("bpftool", "bpftool")):
        if shutil.which(path) is None:
            fail(f"{name} not found ({path}); install it, e.g. apt-get install -y {name}")
    if not (os.path.isfile(args.netscript) and os.access(args.netscript, os.X_OK)):
        fail(f"netscript binary not found at {args.netscript}; run `cargo build --release`")
    if not os.path.exists(STATS_SYSCTL):
        fail(f"{STATS_SYSCTL} missing: this kernel cannot report BPF run-time statistics")


def start_traffic(count, interval):
    return subprocess.Popen(
        [sys.executable, "-c", TRAFFIC_CODE, str(count), str(interval)],
        stdout=subprocess.DEVNULL,
    )


def stop_process(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def restore_sigint():
    # A parent that ignores SIGINT (e.g. a background shell job) would pass that on to the tools.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Tool:
    """One running tracer process with its stdout read line by line."""

    def __init__(self, argv):
        self.stderr = tempfile.TemporaryFile()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            preexec_fn=restore_sigint,
        )
        self.buffer = b""

    def wait_for_line(self, text, timeout=TOOL_TIMEOUT_S):
        """Return the perf_counter() time at which a stdout line starting with `text` was read."""
        deadline = time.perf_counter() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if line.decode(errors="replace").startswith(text):
                    return time.perf_counter()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                self.kill()
                raise ToolError(f"timed out waiting for {text!r}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.finish()
                    raise ToolError(f"exited before printing {text!r}: {self.error_text()}")
                self.buffer += chunk

    def interrupt_and_reap(self, timeout=TOOL_TIMEOUT_S):
        """SIGINT the tool, drain its output, reap it; return ru_maxrss in KiB."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def finish(self, timeout=TOOL_TIMEOUT_S):
        """Drain stdout until EOF and reap with os.wait4; return ru_maxrss in KiB."""
        if self.proc.returncode is not None:
            return 0
        deadline = time.perf_counter() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                self.kill()
                raise ToolError("did not exit after SIGINT")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready and not os.read(fd, 65536):
                break
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.proc.stdout.close()
        return usage.ru_maxrss

    def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait()

    def error_text(self):
        self.stderr.seek(0)
        lines = [
            line
            for line in self.stderr.read().decode(errors="replace").splitlines()
            if "RLIMIT_MEMLOCK" not in line
        ]
        return " | ".join(lines[-3:]) or f"exit status {self.proc.returncode}"

    def prog_ids(self):
        """IDs of the BPF programs this process holds file descriptors for."""
        ids = set()
        fdinfo = f"/proc/{self.proc.pid}/fdinfo"
        for name in os.listdir(fdinfo):
            try:
                with open(os.path.join(fdinfo, name)) as f:
                    for line in f:
                        if line.startswith("prog_id:"):
                            ids.add(int(line.split()[1]))
            except OSError:
                continue
        return ids


def program_text(script, ready):
    probe, body = SCRIPTS[script]
    if ready:
        body += ' printf("ready\\n"); exit();'
    return f"{probe} {{ {body} }}"


def commands(args, text):
    return {"netscript": [args.netscript, "-e", text], "bpftrace": [args.bpftrace, "-e", text]}


def measure_startup(args, script, runs):
    argvs = commands(args, program_text(script, ready=True))
    samples = {tool: [] for tool in argvs}
    for run in range(runs + 1):
        for tool, argv in argvs.items():
            t = Tool(argv)
            try:
                seen = t.wait_for_line("ready")
            finally:
                t.finish()  # the script's exit() ends the tool
            if run > 0:  # run 0 warms caches and is not counted
                samples[tool].append(seen - t.started)
    return samples


def measure_memory(args, script, runs, seconds=2.0):
    argvs = commands(args, program_text(script, ready=False))
    samples = {tool: [] for tool in argvs}
    for _ in range(runs):
        for tool, argv in argvs.items():
            t = Tool(argv)
            try:
                t.wait_for_line("Attaching")
                time.sleep(seconds)
            finally:
                samples[tool].append(t.interrupt_and_reap())
            if t.proc.returncode != 0:
                raise ToolError(f"{tool} failed: {t.error_text()}")
    return samples


def bpftool_programs():
    out = subprocess.run(
        ["bpftool", "prog", "show", "-j"], check=True, capture_output=True, text=True
    ).stdout
    return {p["id"]: p for p in json.loads(out)}


def tool_programs(tool, programs):
    """The bpftool records of the programs owned by `tool` (pid list if present, else fdinfo)."""
    by_pid = [
        p for p in programs.values() if any(o.get("pid") == tool.proc.pid for o in p.get("pids", []))
    ]
    if by_pid:
        return by_pid
    return [programs[i] for i in tool.prog_ids() if i in programs]


def stats_totals(records):
    return (
        sum(r.get("run_time_ns", 0) for r in records),
        sum(r.get("run_cnt", 0) for r in records),
    )


def measure_per_event(args, script):
    argvs = commands(args, program_text(script, ready=False))
    totals = {tool: [0, 0] for tool in argvs}
    sizes = {}
    for order in (["netscript", "bpftrace"], ["bpftrace", "netscript"]):
        running = {}
        try:
            for tool in order:
                running[tool] = Tool(argvs[tool])
                running[tool].wait_for_line("Attaching")
            time.sleep(1.0)  # bpftrace prints "Attaching" before it has attached
            programs = bpftool_programs()
            before = {}
            for tool, t in running.items():
                owned = tool_programs(t, programs)
                if not owned:
                    raise ToolError(f"{tool}: no BPF program found for pid {t.proc.pid}")
                before[tool] = stats_totals(owned)
                sizes[tool] = [
                    (p.get("name", "?"), p.get("bytes_xlated", 0) // 8, p.get("bytes_jited", 0))
                    for p in owned
                ]
            traffic = start_traffic(args.packets, 0.0002)
            traffic.wait()
            time.sleep(0.2)
            programs = bpftool_programs()
            for tool, t in running.items():
                ns, cnt = stats_totals(tool_programs(t, programs))
                totals[tool][0] += ns - before[tool][0]
                totals[tool][1] += cnt - before[tool][1]
        finally:
            for t in running.values():
                t.interrupt_and_reap()
    result = {}
    for tool, (ns, cnt) in totals.items():
        if cnt <= 0:
            raise ToolError(f"{tool}: its programs never ran")
        result[tool] = ns / cnt
    return result, sizes, {tool: cnt for tool, (ns, cnt) in totals.items()}


def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def environment(args):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = version(["git", "-C", REPO, "describe", "--always", "--dirty"])
    return [
        f"kernel: {platform.release()}",
        f"CPU: {cpu} ({os.cpu_count()} logical CPUs)",
        f"netscript: {version([args.netscript, '--version'])} (git {commit}, {args.netscript})",
        f"bpftrace: {version([args.bpftrace, '--version'])}",
        f"bpftool: {version(['bpftool', 'version'])}",
    ]


def row(measure, script, values, fmt, unit):
    ns, bt = values.get("netscript"), values.get("bpftrace")
    target = TARGETS[measure]
    if ns is None or bt is None or bt == 0:
        return f"| {measure} | {script} | {fmt(ns, unit)} | {fmt(bt, unit)} | n/a | <= {target:.2f} | n/a |"
    ratio = ns / bt
    met = "yes" if ratio <= target else "**no**"
    return (
        f"| {measure} | {script} | {fmt(ns, unit)} | {fmt(bt, unit)} | {ratio:.3f} "
        f"| <= {target:.2f} | {met} |"
    )


def fmt_value(value, unit):
    if value is None:
        return "error"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="start-up runs per tool (median)")
    parser.add_argument("--quick", action="store_true", help="3 start-up runs, 1 memory run")
    parser.add_argument("--packets", type=int, default=5000, help="datagrams for per-event cost")
    parser.add_argument(
        "--netscript", default=os.path.join(REPO, "target", "release", "netscript")
    )
    parser.add_argument("--bpftrace", default="bpftrace")
    parser.add_argument("--scripts", default=",".join(SCRIPTS), help="e.g. A,C")
    args = parser.parse_args()
    check_prerequisites(args)

    startup_runs = 3 if args.quick else max(1, args.runs)
    memory_runs = 1 if args.quick else min(3, max(1, args.runs))
    scripts = [s for s in args.scripts.split(",") if s]
    for s in scripts:
        if s not in SCRIPTS:
            fail(f"unknown script {s!r}; known: {', '.join(SCRIPTS)}")

    rows, notes, sizes_lines = [], [], []
    failures = 0

    background = start_traffic(-1, 0.001)
    try:
        for s in scripts:
            print(f"[{s}] start-up ({startup_runs} runs) ...", file=sys.stderr, flush=True)
            try:
                samples = measure_startup(args, s, startup_runs)
                median = {t: statistics.median(v) * 1000 for t, v in samples.items()}
                spread = ", ".join(
                    f"{t} {min(v) * 1000:.1f}-{max(v) * 1000:.1f} ms" for t, v in samples.items()
                )
                notes.append(f"start-up {s}: range {spread}")
            except ToolError as e:
                median, failures = {}, failures + 1
                notes.append(f"start-up {s}: {e}")
            rows.append(row("start-up", s, median, fmt_value, "ms"))
        for s in scripts:
            print(f"[{s}] memory ({memory_runs} runs) ...", file=sys.stderr, flush=True)
            try:
                samples = measure_memory(args, s, memory_runs)
                median = {t: statistics.median(v) / 1024 for t, v in samples.items()}
            except ToolError as e:
                median, failures = {}, failures + 1
                notes.append(f"memory {s}: {e}")
            rows.append(row("memory", s, median, fmt_value, "MiB"))
    finally:
        stop_process(background)

    with open(STATS_SYSCTL) as f:
        previous_stats = f.read().strip()
    try:
        with open(STATS_SYSCTL, "w") as f:
            f.write("1")
        for s in scripts:
            print(f"[{s}] per-event ({args.packets} packets x 2 rounds) ...", file=sys.stderr, flush=True)
            try:
                cost, sizes, counts = measure_per_event(args, s)
                for tool, progs in sizes.items():
                    for name, insns, jited in progs:
                        sizes_lines.append(f"| {s} | {tool} | {name} | {insns} | {jited} |")
                notes.append(
                    f"per-event {s}: program runs counted: "
                    + ", ".join(f"{t} {c}" for t, c in counts.items())
                )
            except (ToolError, subprocess.CalledProcessError) as e:
                cost, failures = {}, failures + 1
                notes.append(f"per-event {s}: {e}")
            rows.append(row("per-event", s, cost, fmt_value, "ns"))
    finally:
        with open(STATS_SYSCTL, "w") as f:
            f.write(previous_stats)

    print("| measure | script | netscript | bpftrace | ratio (netscript/bpftrace) | target | met? |")
    print("|---|---|---|---|---|---|---|")
    order = {"start-up": 0, "memory": 1, "per-event": 2}
    for line in sorted(rows, key=lambda r: order[r.split("|")[1].strip()]):
        print(line)
    print()
    print("Scripts:")
    for s in scripts:
        print(f"- {s}: `{program_text(s, ready=False)}`")
    print()
    if sizes_lines:
        print("| script | tool | program | xlated insns | jited bytes |")
        print("|---|---|---|---|---|")
        print("\n".join(sizes_lines))
        print()
    print(
        f"Conditions: start-up median of {startup_runs} runs (after 1 warm-up), memory median of "
        f"{memory_runs} run(s) of ~2 s, per-event over 2 x {args.packets} loopback datagrams."
    )
    for note in notes:
        print(f"- {note}")
    print()
    for line in environment(args):
        print(f"- {line}")
    if failures:
        print(f"compare.py: {failures} measurement(s) failed, see notes above", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
