//! Running a compiled script: load, attach, run BEGIN, read events until
//! exit (`exit()`, Ctrl-C, `--duration`, or the end of `-c CMD`), run END,
//! print every map, report lost events, detach.

use std::cell::RefCell;
use std::process::{Child, Command};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::decode::{self, Symbolizer};
use super::paths::PathReports;
use super::{LoadError, LoadedObject, SharedMap};
use crate::bpf::AttachPoint;
use crate::diag::{Diagnostic, Result, Source};
use crate::ir::layout::{event, path_layout, PathLayout, PATH_EVENT_BASE};
use crate::output::text::MapShape;
use crate::output::{self, Printer};
use crate::pipeline::Compiled;
use crate::providers::Kind;
use crate::sema::tast::{Agg, MapDecl, MapValue, Program};
use crate::types::Ty;

/// How to run a script.
#[derive(Debug, Clone)]
pub struct RunOptions<'s> {
    /// The script's text, for placing the warnings about probes that
    /// cannot be attached.
    pub source: &'s Source,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Run this command and stop when it exits.
    pub command: Option<String>,
    /// Go on without probes that cannot be attached (with a warning).
    pub skip_missing_probes: bool,
    /// Serve the maps to Prometheus scrapes on this address.
    pub prometheus: Option<std::net::SocketAddr>,
    /// Say on stderr what each probe attached as, and at exit how many
    /// times each program ran (`--verbose`).
    pub verbose: bool,
    /// Write the packets paths report to this pcapng file (`--pcap`).
    pub pcap: Option<std::path::PathBuf>,
}

/// Loads a compiled script into the kernel, turning a verifier rejection
/// into a diagnostic that points at the probe's source.
pub fn load_checked(compiled: &Compiled) -> Result<LoadedObject> {
    load_checked_reusing(compiled, &[])
}

/// [`load_checked`] with existing maps reused (see [`super::load_reusing`]).
pub fn load_checked_reusing(compiled: &Compiled, reuse: &[&SharedMap]) -> Result<LoadedObject> {
    super::load_reusing(&compiled.object, reuse).map_err(|e| load_diagnostic(compiled, e))
}

fn load_diagnostic(compiled: &Compiled, e: LoadError) -> Diagnostic {
    let index = e.program.as_ref().and_then(|name| {
        compiled
            .script
            .programs
            .iter()
            .position(|p| &p.name == name)
    });
    let mut d = match index {
        Some(i) => {
            let p = &compiled.script.programs[i];
            let out_of_budget = super::verifier::out_of_budget(&e.verifier_log);
            match p.first_while().filter(|_| out_of_budget) {
                Some(span) => Diagnostic::at(
                    span,
                    format!(
                        "the kernel verifier gave up on the program for {}: it checks every pass of \
                         this while loop, and together they exceed its budget (1M instructions, \
                         8192 branches pending)",
                        p.probe.display()
                    ),
                )
                .with_note("loop fewer times, or move work (stdlib packet helpers) out of the loop"),
                None => {
                    let span = super::failing_insn(&e.verifier_log)
                        .and_then(|insn| compiled.code[i].span_of(insn))
                        .unwrap_or(p.span);
                    let what = "the kernel verifier rejected the program for";
                    Diagnostic::at(span, format!("{what} {}", p.probe.display()))
                }
            }
        }
        None => Diagnostic::plain(format!("loading the BPF object failed: {}", e.message)),
    };
    if !e.verifier_log.is_empty() {
        d = d
            .with_note("verifier log (last lines):")
            .with_note(super::verifier_summary(&e.verifier_log, 12));
    }
    d
}

/// Attaches the programs of a loaded script in order (BEGIN and END are
/// run, not attached), until `stop()` says to go no further; returns those
/// attached. A program that cannot be attached is an error pointing at its
/// probe, unless it is `optional` or `skip_missing` holds: then it is left
/// out and a warning, placed in `source`, says which metrics go with it.
pub fn attach<'a>(
    compiled: &'a Compiled,
    object: &mut LoadedObject,
    skip_missing: bool,
    source: &Source,
    stop: impl Fn() -> bool,
) -> Result<Vec<&'a Program>> {
    let mut attached = Vec::new();
    let mut failed = Vec::new();
    for p in &compiled.script.programs {
        let point = p.probe.attach_point();
        if point == AttachPoint::Manual || stop() {
            continue;
        }
        match object.attach(&p.name, &point) {
            Ok(()) => attached.push(p),
            Err(e) if skip_missing || p.optional => {
                let why = if kprobe_without_kprobes(p) {
                    "this kernel has no kprobes".to_string()
                } else {
                    e.message
                };
                failed.push((p, format!("{}: {}", p.probe.display(), why)));
            }
            Err(e) => return Err(attach_diagnostic(p, e)),
        }
    }
    for warning in unattached_metrics(compiled, &failed) {
        eprint!("{}", warning.render(Some(source)));
    }
    Ok(attached)
}

/// An attach failure pointing at the probe, with what to do about it.
fn attach_diagnostic(p: &crate::sema::tast::Program, e: Diagnostic) -> Diagnostic {
    let mut d = Diagnostic::at(p.span, e.message);
    d.notes = e.notes;
    if kprobe_without_kprobes(p) {
        d = d.with_note(
            "this kernel was built without kprobes (CONFIG_KPROBES): use a tracepoint, or --dry-run to check the program",
        );
    }
    d
}

/// True for a kprobe on a kernel built without kprobes (CONFIG_KPROBES).
fn kprobe_without_kprobes(p: &crate::sema::tast::Program) -> bool {
    matches!(p.probe.kind, Kind::Kprobe | Kind::Kretprobe)
        && !crate::kernel::symbols::kernel_features().kprobes
}

/// Kernel symbols (kallsyms, loaded on first use) and recorded stacks for decoding.
struct KernelSymbols<'a> {
    object: &'a LoadedObject,
    stacks: Option<String>,
}

impl<'a> KernelSymbols<'a> {
    /// The symbols of a loaded script.
    fn new(compiled: &Compiled, object: &'a LoadedObject) -> Self {
        KernelSymbols {
            object,
            stacks: compiled
                .maps
                .stacks
                .map(|i| compiled.maps.specs[i as usize].name.clone()),
        }
    }
}

/// The parsed printf formats of a script, by printf id.
fn printf_formats(compiled: &Compiled) -> Result<Vec<Vec<crate::format::printf::Piece>>> {
    compiled
        .script
        .printfs
        .iter()
        .map(|p| crate::format::printf::parse_format(&p.format).map_err(Diagnostic::plain))
        .collect()
}

/// Handles the records waiting in the ring buffer of a script that was
/// loaded and attached outside [`run`] (by the REPL): printf, print,
/// clear, zero and path events. Returns true when one was `exit()`.
pub fn drain_events(
    compiled: &Compiled,
    object: &LoadedObject,
    printer: &mut Printer,
) -> Result<bool> {
    let symbols = KernelSymbols::new(compiled, object);
    let (ring, records) = event_ring(compiled, object)?;
    ring.consume()?;
    let mut events = Events::new(compiled, object, &symbols, None)?;
    for r in records.borrow_mut().drain(..) {
        events.handle(&r, printer)?;
    }
    Ok(events.exit)
}

/// Ring-buffer records read and not yet handled.
type ReadRecords = Rc<RefCell<Vec<Vec<u8>>>>;

/// The reader of the program's event ring buffer, and the records it has
/// read (copied out, to be handled after each poll).
fn event_ring<'a>(
    compiled: &Compiled,
    object: &'a LoadedObject,
) -> Result<(super::RingReader<'a>, ReadRecords)> {
    let records: ReadRecords = Rc::default();
    let sink = Rc::clone(&records);
    let ring = object.ring_buffer(
        &compiled.maps.specs[compiled.maps.events as usize].name,
        move |r| sink.borrow_mut().push(r.to_vec()),
    )?;
    Ok((ring, records))
}

impl Symbolizer for KernelSymbols<'_> {
    fn symbol(&self, addr: u64, with_offset: bool) -> String {
        decode::KallsymsOnly.symbol(addr, with_offset)
    }

    fn stack(&self, id: u64) -> Vec<u64> {
        let Some(map) = &self.stacks else {
            return Vec::new();
        };
        match self.object.map_lookup(map, &(id as u32).to_le_bytes()) {
            Ok(Some(v)) => v
                .first()
                .map(|raw| decode::stack_frames(raw))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// The warnings saying what is lost with the programs that could not
/// attach (each with why): one per metric that no attached program writes,
/// at the first such program's probe, and one per program whose loss takes
/// no metric down, at its probe.
fn unattached_metrics(compiled: &Compiled, failed: &[(&Program, String)]) -> Vec<Diagnostic> {
    let name = |m: &crate::bpf::MapId| compiled.script.maps[m.0 as usize].name.clone();
    let live = |map: &str| {
        compiled.script.programs.iter().any(|p| {
            !failed.iter().any(|(f, _)| f.name == p.name) && p.writes.iter().any(|m| name(m) == map)
        })
    };
    let off: Vec<(String, &str)> = failed
        .iter()
        .flat_map(|(p, why)| p.writes.iter().map(move |m| (name(m), why.as_str())))
        .collect();
    // A program that takes a metric down is said with the metric's line;
    // one that only keeps internal state (`@_` maps) goes silently with
    // the metrics it feeds; any other is named itself.
    let mut lines: Vec<Diagnostic> = failed
        .iter()
        .filter(|(p, _)| {
            let internal = |m: &crate::bpf::MapId| name(m).starts_with("@_");
            let takes_down = p.writes.iter().any(|m| !internal(m) && !live(&name(m)));
            !takes_down && (p.writes.is_empty() || !p.writes.iter().all(internal))
        })
        .map(|(p, why)| Diagnostic::warning(Some(p.span), format!("{}, probe skipped", why)))
        .collect();
    let first_writer = |map: &str| {
        failed
            .iter()
            .find(|(p, _)| p.writes.iter().any(|m| name(m) == map))
            .map(|(p, _)| p.span)
    };
    let off = off.iter().map(|(map, why)| (map.as_str(), *why));
    lines.extend(
        crate::sema::off_metrics(off, live)
            .into_iter()
            .map(|(map, line)| Diagnostic::warning(first_writer(map), line)),
    );
    lines
}

/// Runs a script until it ends; returns the process exit code.
pub fn run(compiled: &Compiled, printer: &mut Printer, options: &RunOptions) -> Result<i32> {
    // From the start: a signal while loading or attaching ends the run as
    // one while running does, with the maps printed.
    let (stop, print_now) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let handled = STOP_SIGNALS.iter().map(|&sig| (sig, &stop));
    for (sig, flag) in handled.chain([(signal_hook::consts::SIGUSR1, &print_now)]) {
        signal_hook::flag::register(sig, Arc::clone(flag))
            .map_err(|e| Diagnostic::plain(format!("cannot handle signals: {}", e)))?;
    }
    let pcap = (options.pcap.as_deref())
        .map(|file| super::pcap::Pcap::create(file, &compiled.script.paths))
        .transpose()?;
    let mut object = load_checked(compiled)?;
    let programs = &compiled.script.programs;
    // The run counters are on from before the first program attaches.
    let run_stats = match options.verbose.then(super::enable_run_stats) {
        Some(Err(why)) => {
            eprintln!("netscript: cannot count program runs: {}", why);
            None
        }
        Some(Ok(fd)) => Some(fd),
        None => None,
    };
    let attached = attach(
        compiled,
        &mut object,
        options.skip_missing_probes,
        options.source,
        || stop.load(Ordering::Relaxed),
    )?;
    if options.verbose {
        for line in super::verbose::attached(compiled, &attached) {
            eprintln!("netscript: {}", line);
        }
    }
    let begin = programs
        .iter()
        .filter(|p| p.probe.kind == Kind::Begin)
        .count();
    printer
        .attached((attached.len() + begin) as u64)
        .map_err(io)?;
    let symbols = KernelSymbols::new(compiled, &object);
    let (ring, records) = event_ring(compiled, &object)?;
    let mut events = Events::new(compiled, &object, &symbols, pcap)?;

    for p in programs.iter().filter(|p| p.probe.kind == Kind::Begin) {
        object.run_once(&p.name)?;
    }
    let mut child: Option<Child> = match &options.command {
        Some(cmd) => Some(
            Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("exec {}", cmd))
                .spawn()
                .map_err(|e| {
                    Diagnostic::plain(format!("cannot run -c command '{}': {}", cmd, e))
                })?,
        ),
        None => None,
    };
    let metrics = options
        .prometheus
        .map(super::prometheus::MetricsServer::bind)
        .transpose()?;
    let deadline = options.duration.map(|d| Instant::now() + d);
    let paths = PathReports::new(&compiled.script.paths, &compiled.maps);
    let report_every = paths.interval_ns().map(Duration::from_nanos);
    let mut next_report = report_every.map(|d| Instant::now() + d);
    let mut watch = super::watch::Watch::new(compiled, &attached);
    let mut nothing_left = false;
    loop {
        ring.poll(Duration::from_millis(100))?;
        for r in records.borrow_mut().drain(..) {
            events.handle(&r, printer)?;
        }
        events.flush_pcap()?;
        if let Some(server) = &metrics {
            server.answer_pending(|| {
                let maps = &compiled.script.maps;
                maps.iter()
                    .enumerate()
                    .map(|(i, decl)| events.dump(i, decl))
                    .collect()
            })?;
        }
        if print_now.swap(false, Ordering::Relaxed) {
            printer.exit_maps(all_maps(&events)?).map_err(io)?;
        }
        if let (Some(at), Some(every)) = (next_report, report_every) {
            if Instant::now() >= at {
                paths.report(&object, printer, super::monotonic_ns(), false)?;
                next_report = Some(at + every);
            }
        }
        if watch.tick(&object, printer)? {
            eprintln!("netscript: nothing attached can run any more; ending the run");
            nothing_left = true;
        }
        let child_done = match child.as_mut() {
            Some(c) => c.try_wait().map(|s| s.is_some()).unwrap_or(true),
            None => false,
        };
        if events.exit
            || nothing_left
            || stop.load(Ordering::Relaxed)
            || child_done
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
    }
    if let Some(mut c) = child {
        if c.try_wait().ok().flatten().is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    for p in programs.iter().filter(|p| p.probe.kind == Kind::End) {
        object.run_once(&p.name)?;
    }
    ring.consume()?;
    for r in records.borrow_mut().drain(..) {
        events.handle(&r, printer)?;
    }
    events.flush_pcap()?;
    if compiled.script.print_maps_on_exit {
        printer.exit_maps(all_maps(&events)?).map_err(io)?;
    }
    paths.report(&object, printer, super::monotonic_ns(), true)?;
    super::packets::report_too_short(compiled, &object, printer)?;
    watch.show_lost(&object, printer)?;
    printer.flush().map_err(io)?;
    if run_stats.is_some() {
        for line in super::verbose::runs(compiled, &object, &attached) {
            eprintln!("netscript: {}", line);
        }
    }
    for stats in object.program_stats() {
        let probe = programs.iter().find(|p| p.name == stats.name);
        if let (Some(p), 1..) = (probe, stats.recursion_misses) {
            eprintln!(
                "netscript: warning: {}: {} hits missed: the kernel skipped the program while another BPF program ran on that CPU",
                p.probe.display(),
                stats.recursion_misses
            );
        }
    }
    // Output that failed went to stderr (said when it failed): not a success.
    // So did a run whose probes all went away under it.
    Ok(if printer.failure().is_some() || nothing_left {
        1
    } else {
        0
    })
}

/// The signals that end a run with its maps printed, as Ctrl-C does: a
/// closed terminal (HUP), Ctrl-\ (QUIT), `timeout`'s TERM, an alarm.
/// SIGUSR1 prints the maps and goes on, as in bpftrace.
const STOP_SIGNALS: [i32; 5] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGQUIT,
    signal_hook::consts::SIGALRM,
];

/// Every map of the script, read now, with its layout.
fn all_maps(events: &Events) -> Result<Vec<(output::model::MapDump, MapShape)>> {
    let maps = &events.compiled.script.maps;
    maps.iter()
        .enumerate()
        .map(|(i, decl)| Ok((events.dump(i, decl)?, shape(decl))))
        .collect()
}

/// How bpftrace lays out a map, from its declaration (empty maps included).
pub fn shape(decl: &MapDecl) -> MapShape {
    match &decl.value {
        MapValue::Agg(Agg::Hist { .. } | Agg::Lhist { .. }) => MapShape::Histogram,
        MapValue::Agg(Agg::Avg | Agg::Stats) => MapShape::Stats,
        MapValue::Plain(Ty::KStack | Ty::KSym | Ty::Inet) => MapShape::Unseparated,
        _ => MapShape::Plain,
    }
}

/// An output error as a diagnostic.
fn io(e: std::io::Error) -> Diagnostic {
    Diagnostic::plain(format!("cannot write output: {}", e))
}

/// Handles ring-buffer records.
struct Events<'a> {
    compiled: &'a Compiled,
    object: &'a LoadedObject,
    symbols: &'a KernelSymbols<'a>,
    /// Parsed printf formats, by printf id.
    formats: Vec<Vec<crate::format::printf::Piece>>,
    exit: bool,
    /// Each path's event layout, by path id, computed once.
    layouts: Vec<PathLayout>,
    /// Where reported packets go as well (`--pcap`).
    pcap: Option<super::pcap::Pcap>,
}

impl<'a> Events<'a> {
    /// The handler of the records of `compiled`, loaded as `object`.
    fn new(
        compiled: &'a Compiled,
        object: &'a LoadedObject,
        symbols: &'a KernelSymbols<'a>,
        pcap: Option<super::pcap::Pcap>,
    ) -> Result<Self> {
        Ok(Events {
            compiled,
            object,
            symbols,
            formats: printf_formats(compiled)?,
            exit: false,
            layouts: compiled.script.paths.iter().map(path_layout).collect(),
            pcap,
        })
    }

    /// Writes out the packets of the records handled so far (`--pcap`).
    fn flush_pcap(&mut self) -> Result<()> {
        self.pcap.as_mut().map_or(Ok(()), |p| p.flush())
    }

    fn dump(&self, index: usize, decl: &MapDecl) -> Result<output::model::MapDump> {
        let entries = self
            .object
            .map_entries(decode::bpf_map_name(&self.compiled.maps, index))?;
        Ok(decode::map_dump(decl, &entries, self.symbols))
    }

    fn handle(&mut self, record: &[u8], printer: &mut Printer) -> Result<()> {
        let word = |off: usize| {
            record
                .get(off..off + 8)
                .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        };
        // Like bpftrace, nothing after exit() is handled.
        let Some(kind) = word(0).filter(|_| !self.exit) else {
            return Ok(());
        };
        let index = kind.checked_sub(PATH_EVENT_BASE).map(|i| i as usize);
        let paths = &self.compiled.script.paths;
        if let Some((i, path, layout)) =
            index.and_then(|i| Some((i, paths.get(i)?, self.layouts.get(i)?)))
        {
            if let Some(pcap) = &mut self.pcap {
                pcap.packet(i, path, layout, record)?;
            }
            return super::path_report::print_event(path, layout, record, self.symbols, printer)
                .map_err(io);
        }
        let maps = &self.compiled.script.maps;
        match kind {
            event::EXIT => self.exit = true,
            event::PRINT_TABLE => {
                let count = word(8).unwrap_or(0) as usize;
                let mut dumps = Vec::new();
                let mut keyed = false;
                for i in 0..count {
                    let index = word(16 + 8 * i).unwrap_or(u64::MAX) as usize;
                    if let Some(decl) = maps.get(index) {
                        keyed |= !decl.keys.is_empty();
                        dumps.push((self.dump(index, decl)?, shape(decl)));
                    }
                }
                printer.table(&dumps, keyed).map_err(io)?;
            }
            event::PRINT | event::CLEAR | event::ZERO => {
                let index = word(8).unwrap_or(u64::MAX) as usize;
                let Some(decl) = maps.get(index) else {
                    return Ok(());
                };
                let name = decode::bpf_map_name(&self.compiled.maps, index);
                match kind {
                    event::PRINT => printer
                        .map_shaped(&self.dump(index, decl)?, shape(decl))
                        .map_err(io)?,
                    event::CLEAR => self.object.map_delete_all(name)?,
                    _ => {
                        for (key, cpus) in self.object.map_entries(name)? {
                            let zeros: Vec<Vec<u8>> =
                                cpus.iter().map(|v| vec![0u8; v.len()]).collect();
                            self.object.map_update(name, &key, &zeros)?;
                        }
                    }
                }
            }
            n => {
                let id = n.wrapping_sub(event::PRINTF_BASE) as usize;
                let (Some(decl), Some(pieces)) =
                    (self.compiled.script.printfs.get(id), self.formats.get(id))
                else {
                    return Ok(());
                };
                let args = decode::values(&decl.args, record.get(8..).unwrap_or(&[]), self.symbols);
                printer
                    .printf(&output::printf::format(pieces, &args))
                    .map_err(io)?;
            }
        }
        Ok(())
    }
}
