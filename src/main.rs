//! The `netscript` command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum};
use netscript::diag::{Diagnostic, Failure, Source};
use netscript::kernel::symbols::Kallsyms;
use netscript::output::anonymize::{self, Anonymizer};
use netscript::output::{Format, Printer};
use netscript::params::{OWN_FLAGS, OWN_OPTIONS_WITH_VALUE};
use netscript::runtime::session::{self, RunOptions};
use netscript::{codegen, listing, params, pipeline, providers, runtime, sema, syntax};

/// A bpftrace-like language for finding where network latency goes,
/// compiled straight to BPF.
#[derive(Parser, Debug)]
#[command(name = "netscript", version, about)]
struct Cli {
    /// Script file to run (or, with -l, the probe pattern to list).
    file: Option<PathBuf>,
    /// The script's own options, after the script file (see `SCRIPT --help`).
    #[arg(skip)]
    script_args: Vec<String>,
    /// Run this program text instead of a file.
    #[arg(short = 'e', value_name = "PROGRAM")]
    program: Option<String>,
    /// List probes matching the pattern (`tracepoint:net:*`, `kprobe:tcp_*`).
    #[arg(short = 'l')]
    list: bool,
    /// Say on stderr what each probe attached as and which path stages it
    /// serves, and at exit how many times each program ran and its average
    /// cost (kernel BPF statistics). With -l: show each probe's arguments.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Output format.
    #[arg(short = 'f', value_enum, default_value = "text")]
    format: OutFormat,
    /// Write output to this file instead of stdout.
    #[arg(short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Run this command and stop tracing when it exits.
    #[arg(short = 'c', value_name = "CMD")]
    command: Option<String>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Compile and load every program through the kernel verifier, attach nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write the BPF ELF object to this file.
    #[arg(long, value_name = "FILE")]
    emit_elf: Option<PathBuf>,
    /// Treat fentry/fexit as unavailable and use kprobe/kretprobe.
    #[arg(long)]
    no_fentry: bool,
    /// What to do with probes this kernel does not have.
    #[arg(long, value_enum, default_value = "error")]
    missing_probes: MissingProbes,
    /// Which alternative of each path stage to use: the first this kernel
    /// can attach (auto), kprobes even where they cannot attach (kprobe; to
    /// check a script's kprobe form with --dry-run), or none of the kprobe
    /// and fentry ones (tracepoint).
    #[arg(long, value_enum, default_value = "auto")]
    stages: Stages,
    /// Packets in flight each path's record table holds (default: the
    /// path's `records` setting, else 4096); raise it when a path's
    /// counters show packets evicted.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(sema::MAX_RECORDS)))]
    path_records: Option<u32>,
    /// Serve the script's maps in the Prometheus text format on
    /// ADDR:PORT (PORT alone: 127.0.0.1), read at each scrape of /metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    prometheus: Option<String>,
    /// Print every IP address (ntop() values) and every value passed
    /// through redact() as a keyed hash (v4-/v6- and 10 hex digits; a
    /// redacted port stays a number 0..65535). The key is random per run
    /// unless --anonymize-key gives one.
    #[arg(long)]
    anonymize: bool,
    /// With --anonymize (implies it): derive the key from this file (at
    /// least 16 bytes) so the hashes are the same in every run.
    #[arg(long, value_name = "FILE")]
    anonymize_key: Option<PathBuf>,
    /// Print a pipeline stage and exit.
    #[arg(short = 'd', value_enum, value_name = "STAGE")]
    debug: Option<Stage>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum MissingProbes {
    Error,
    Warn,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Stages {
    Auto,
    Kprobe,
    Tracepoint,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Stage {
    Ast,
    Ir,
    Bpf,
}

/// The end of a script's `--help`: netscript's own options that apply to
/// every script, from their definitions in [`Cli`] (not -e, -l or the
/// script file), each with the first sentence of its help.
fn own_options_help() -> String {
    let command = Cli::command();
    let rows: Vec<(String, String)> = command
        .get_arguments()
        .filter(|a| !a.is_positional() && !["program", "list"].contains(&a.get_id().as_str()))
        .map(|a| {
            let flag = match (a.get_short(), a.get_long()) {
                (Some(short), Some(long)) => format!("-{short}, --{long}"),
                (Some(short), None) => format!("-{short}"),
                (None, Some(long)) => format!("--{long}"),
                (None, None) => a.get_id().to_string(),
            };
            let values: Vec<String> = a
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect();
            let value = match (a.get_action().takes_values(), values.is_empty()) {
                (false, _) => String::new(),
                (true, false) => format!(" {}", values.join("|")),
                (true, true) => {
                    let names = a.get_value_names().unwrap_or_default();
                    format!(
                        " {}",
                        names.first().map_or("VALUE".to_string(), |n| n.to_string())
                    )
                }
            };
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            let first = help.split(". ").next().unwrap_or("").trim_end_matches('.');
            (format!("  {flag}{value}"), first.to_string())
        })
        .collect();
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let lines: String = rows
        .iter()
        .map(|(l, r)| format!("{l:<width$}  {r}\n"))
        .collect();
    format!(
        "\nnetscript's own options (for every script; they may stand among the script's):\n{lines}"
    )
}

/// Parses the command line. Everything after the script file (or the
/// program of `-e`) belongs to the script (`netscript x.ns --src-ip
/// 10.0.0.1 --help`), except
/// netscript's own options, which may stand there too (`-f json`).
fn parse_cli() -> Cli {
    let argv: Vec<String> = std::env::args().collect();
    let mut file_at = None;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        // The program of -e stands where a script file would.
        if a == "-e" {
            file_at = Some(i + 1).filter(|&at| at < argv.len());
            break;
        }
        if OWN_OPTIONS_WITH_VALUE.contains(&a) {
            i += 2;
            continue;
        }
        if !a.starts_with('-') {
            file_at = Some(i);
            break;
        }
        i += 1;
    }
    let Some(file_at) = file_at else {
        return Cli::parse_from(&argv);
    };
    let mut own = argv[..=file_at].to_vec();
    let mut script = Vec::new();
    let mut it = argv[file_at + 1..].iter();
    while let Some(a) = it.next() {
        let name = a.split_once('=').map(|(n, _)| n).unwrap_or(a);
        if OWN_FLAGS.contains(&name) || (OWN_OPTIONS_WITH_VALUE.contains(&name) && a.contains('='))
        {
            own.insert(1, a.clone());
        } else if OWN_OPTIONS_WITH_VALUE.contains(&name) {
            own.insert(1, a.clone());
            if let Some(v) = it.next() {
                own.insert(2, v.clone());
            }
        } else {
            script.push(a.clone());
        }
    }
    let mut cli = Cli::parse_from(own);
    cli.script_args = script;
    cli
}

fn main() -> ExitCode {
    let cli = parse_cli();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let (diag, source) = *failure;
            eprint!("{}", diag.render(source.as_ref()));
            ExitCode::from(1)
        }
    }
}

/// Reports bad command-line usage (a script option's value, the
/// anonymization key); the exit code is 2, as for netscript's own options.
fn usage_error(d: Diagnostic) -> u8 {
    eprint!("{}", d.render(None));
    2
}

/// The largest script accepted: compiling costs time and memory in
/// proportion to it, and far smaller programs already exceed the kernel's.
const MAX_SCRIPT_BYTES: usize = 1 << 20;

/// Creates (or truncates) the `-o` file: mode 0644 at most whatever the
/// umask, and never through a symbolic link (which could point anywhere a
/// root process may write).
fn create_output(path: &std::path::Path) -> Result<std::fs::File, Diagnostic> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::ELOOP) => {
                    "it is a symbolic link; give the file it points to".to_string()
                }
                _ => e.to_string(),
            };
            Diagnostic::plain(format!("cannot create {}: {}", path.display(), why))
        })
}

/// `netscript` without a script, or `netscript repl`: the REPL.
fn repl() -> Result<u8, Diagnostic> {
    if let Some(why) = netscript::kernel::privilege::missing() {
        return Err(Diagnostic::plain(why));
    }
    netscript::repl::Repl::new()?.run()?;
    Ok(0)
}

fn run(cli: Cli) -> Result<u8, Failure> {
    let plain = |d: Diagnostic| Failure::new((d, None));
    // Before anything prints a value, the REPL included.
    let anonymizer = match (&cli.anonymize_key, cli.anonymize) {
        (Some(path), _) => Some(Anonymizer::from_key_file(path)),
        (None, true) => Some(Anonymizer::random()),
        (None, false) => None,
    };
    match anonymizer.transpose() {
        Ok(Some(anonymizer)) => anonymize::install(anonymizer),
        Ok(None) => {}
        Err(d) => return Ok(usage_error(d)),
    }
    if cli.list {
        let pattern = cli
            .file
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lines = listing::list(&pattern, cli.verbose).map_err(plain)?;
        let mut out = std::io::stdout().lock();
        for l in lines {
            let _ = writeln!(out, "{}", l);
        }
        return Ok(0);
    }
    let source = match (&cli.program, &cli.file) {
        (Some(text), _) => Source::new("-e", text.clone()),
        (None, Some(path)) if path.as_os_str() == "repl" && !path.exists() => {
            return repl().map_err(plain)
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                plain(Diagnostic::plain(format!(
                    "cannot read {}: {}",
                    path.display(),
                    e
                )))
            })?;
            Source::new(path.display().to_string(), text)
        }
        (None, None) => return repl().map_err(plain),
    };
    if source.text.len() > MAX_SCRIPT_BYTES {
        return Err(plain(Diagnostic::plain(format!(
            "{}: the script is {} bytes; at most {} (1 MiB): no program that large would \
             pass the kernel's verifier",
            source.name,
            source.text.len(),
            MAX_SCRIPT_BYTES
        ))));
    }
    // Loading needs privileges; printing a stage or the object does not.
    if cli.debug.is_none() && cli.emit_elf.is_none() {
        if let Some(why) = netscript::kernel::privilege::missing() {
            return Err(plain(Diagnostic::plain(why)));
        }
    }
    let mut source = source;
    netscript::stdlib::attach(&mut source);
    let fail = |d: Diagnostic| Failure::new((d, Some(source.clone())));
    let start = runtime::monotonic_ns();
    let skip_missing = cli.missing_probes == MissingProbes::Warn;
    let ast = syntax::parse(&source.text).map_err(fail)?;
    if providers::names_kernel_functions(&ast) {
        Kallsyms::prefetch();
    }
    let declared = params::declared(&ast).map_err(fail)?;
    let values = match params::bind(&declared, &cli.script_args) {
        Ok(params::Request::Run(values)) => values,
        Ok(params::Request::Help) => {
            print!(
                "{}{}",
                params::help(&source.name, &declared),
                own_options_help()
            );
            return Ok(0);
        }
        Err(d) => return Ok(usage_error(d)),
    };
    let mut options = sema::Options {
        skip_missing_probes: skip_missing,
        params: values,
        library_start: Some(source.script_end()),
        stage_choice: match cli.stages {
            Stages::Auto => sema::StageChoice::Attachable,
            Stages::Kprobe => sema::StageChoice::Kprobe,
            Stages::Tracepoint => sema::StageChoice::Tracepoint,
        },
        path_records: cli.path_records,
        wall_offset_ns: runtime::wall_offset_ns(),
        ..Default::default()
    };
    let mut compiled = pipeline::compile(&source, &options, start).map_err(fail)?;
    let has_fentry = compiled
        .script
        .programs
        .iter()
        .any(|p| p.probe.kprobe_fallback().is_some());
    let refusal = if !has_fentry {
        None
    } else if cli.no_fentry {
        Some("fentry/fexit disabled by --no-fentry")
    } else if !runtime::fentry_supported() {
        Some("this kernel cannot load fentry/fexit programs")
    } else {
        None
    };
    if let Some(reason) = refusal {
        eprintln!("netscript: {reason}; using kprobe/kretprobe instead");
        options.fentry_as_kprobe = true;
        compiled = pipeline::compile(&source, &options, start).map_err(fail)?;
    }
    if compiled.ir.iter().any(|f| f.uses_cmpxchg()) && !runtime::cmpxchg_supported() {
        eprintln!("netscript: this kernel's BPF has no atomic compare-and-exchange (5.12+); rate limits take their slots with plain stores, so CPUs racing for a limit's last slot may both pass");
        options.plain_rate_limits = true;
        compiled = pipeline::compile(&source, &options, start).map_err(fail)?;
    }
    for w in &compiled.script.warnings {
        eprintln!("netscript: warning: {}", w);
    }
    if let Some(path) = &cli.emit_elf {
        std::fs::write(path, &compiled.object).map_err(|e| {
            plain(Diagnostic::plain(format!(
                "cannot write {}: {}",
                path.display(),
                e
            )))
        })?;
    }
    if let Some(stage) = cli.debug {
        let text = match stage {
            Stage::Ast => format!("{:#?}\n", compiled.ast),
            Stage::Ir => compiled
                .ir
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            Stage::Bpf => compiled
                .code
                .iter()
                .map(|c| format!("{}:\n{}", c.name, codegen::disassemble(c)))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        print!("{}", text);
        return Ok(0);
    }
    if cli.dry_run {
        session::load_checked(&compiled).map_err(fail)?;
        eprintln!(
            "netscript: {} program(s) passed the kernel verifier",
            compiled.script.programs.len()
        );
        return Ok(0);
    }
    let format = match cli.format {
        OutFormat::Text => Format::Text,
        OutFormat::Json => Format::Json,
    };
    let mut printer = match &cli.output {
        Some(path) => {
            let file = create_output(path).map_err(plain)?;
            let console = file.try_clone().map_err(|e| {
                plain(Diagnostic::plain(format!(
                    "cannot use {}: {}",
                    path.display(),
                    e
                )))
            })?;
            Printer::with_console(format, Box::new(file), Box::new(console))
        }
        None => Printer::new(format, Box::new(std::io::stdout())),
    };
    let prometheus = cli
        .prometheus
        .as_deref()
        .map(runtime::prometheus::listen_addr)
        .transpose()
        .map_err(plain)?;
    let options = RunOptions {
        prometheus,
        duration: cli.duration.map(Duration::from_secs_f64),
        command: cli.command,
        skip_missing_probes: skip_missing,
        verbose: cli.verbose,
    };
    let code = session::run(&compiled, &mut printer, &options).map_err(fail)?;
    Ok(code as u8)
}
