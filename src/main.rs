//! The `netscript` command line.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use netscript::cli::{self, Cli, MissingProbes, OutFormat, OwnOptions, Stage, Stages};
use netscript::diag::{Diagnostic, Failure, Source};
use netscript::output::anonymize::{self, Anonymizer};
use netscript::output::report::{PathOutline, Recorder};
use netscript::output::{Format, Printer};
use netscript::runtime::session::{self, RunOptions};
use netscript::{bundled, codegen, driver, listing, params, runtime, sema};

fn main() -> ExitCode {
    // netscript's own options, built once for the whole run.
    let mut own_options = OwnOptions::new();
    let cli = own_options.parse(std::env::args().collect());
    match run(cli, &own_options) {
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

/// `netscript` without a script, or `netscript repl`: the REPL, whose
/// inputs' parameters may not take the flags `reserved`.
fn repl(reserved: Vec<String>) -> Result<u8, Diagnostic> {
    if let Some(why) = netscript::kernel::privilege::missing() {
        return Err(Diagnostic::plain(why));
    }
    netscript::repl::Repl::new(reserved)?.run()?;
    Ok(0)
}

fn run(cli: Cli, own_options: &OwnOptions) -> Result<u8, Failure> {
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
            return repl(own_options.reserved_flags()).map_err(plain)
        }
        (None, Some(path)) if path.as_os_str() == "completions" && !path.exists() => {
            let [shell] = &cli.script_args[..] else {
                return Ok(usage_error(Diagnostic::plain(
                    "usage: netscript completions bash|zsh|fish|elvish|powershell",
                )));
            };
            cli::completion::completions(shell, &mut std::io::stdout()).map_err(plain)?;
            return Ok(0);
        }
        (None, Some(path)) if path.as_os_str() == "man" && !path.exists() => {
            let page = match &cli.script_args[..] {
                [] => None,
                [page] => Some(page.as_str()),
                _ => {
                    return Ok(usage_error(Diagnostic::plain(
                        "usage: netscript man [SCRIPT]",
                    )))
                }
            };
            cli::completion::man_page(page, &mut std::io::stdout()).map_err(plain)?;
            return Ok(0);
        }
        (None, Some(path)) => match (path.exists(), bundled::find(path)) {
            (false, Some((name, text))) => {
                Source::new(format!("bundled/{name}.ns"), text.to_string())
            }
            _ => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    let hint = match path.components().count() {
                        1 => " (nor is it a bundled script: `netscript -l scripts` lists them)",
                        _ => "",
                    };
                    plain(Diagnostic::plain(format!(
                        "cannot read {}: {}{hint}",
                        path.display(),
                        e
                    )))
                })?;
                Source::new(path.display().to_string(), text)
            }
        },
        (None, None) => return repl(own_options.reserved_flags()).map_err(plain),
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
    // As the user named the script: a bundled one by its bare name.
    let invoked_as = match (&cli.program, &cli.file) {
        (None, Some(path)) => path.display().to_string(),
        _ => source.name.clone(),
    };
    let mut source = source;
    netscript::stdlib::attach(&mut source);
    let fail = |d: Diagnostic| Failure::new((d, Some(source.clone())));
    let start_ns = runtime::monotonic_ns();
    let reserved = own_options.reserved_flags();
    let script = driver::ParsedScript::parse(&source, &reserved).map_err(fail)?;
    let values = match script.bind(&cli.script_args) {
        Ok(params::Request::Run(values)) => values,
        Ok(params::Request::Help) => {
            print!(
                "{}{}",
                params::help(&invoked_as, script.params()),
                own_options.help()
            );
            return Ok(0);
        }
        Err(d) => return Ok(usage_error(d)),
    };
    let skip_missing = cli.missing_probes == MissingProbes::Warn;
    let options = driver::Options {
        no_fentry: cli.no_fentry,
        skip_missing_probes: skip_missing,
        stage_choice: match cli.stages {
            Stages::Auto => sema::StageChoice::Attachable,
            Stages::Kprobe => sema::StageChoice::Kprobe,
            Stages::Tracepoint => sema::StageChoice::Tracepoint,
        },
        path_records: cli.path_records,
        pcap: cli.pcap.is_some(),
        known_maps: Vec::new(),
        start_ns,
    };
    let compiled = script.compile(values, &options).map_err(fail)?;
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
            let file = netscript::output::create_file(path, "").map_err(plain)?;
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
    // Created now, so that a path it cannot be written to ends the run
    // before it starts.
    let report = match &cli.report {
        Some(path) => Some((
            netscript::output::create_file(path, "").map_err(plain)?,
            path,
        )),
        None => None,
    };
    if report.is_some() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let started = netscript::output::local_time(now);
        let paths = compiled
            .script
            .paths
            .iter()
            .map(|p| PathOutline {
                name: p.name.clone(),
                title: p.title().to_string(),
                stages: p.stages.iter().map(|s| s.name.clone()).collect(),
            })
            .collect();
        printer.record_to(Recorder::new(
            &invoked_as,
            format!("{} {}", started.0, started.1),
            paths,
        ));
    }
    let prometheus = cli
        .prometheus
        .as_deref()
        .map(runtime::prometheus::listen_addr)
        .transpose()
        .map_err(plain)?;
    let options = RunOptions {
        source: &source,
        prometheus,
        duration: cli.duration.map(Duration::from_secs_f64),
        command: cli.command,
        skip_missing_probes: skip_missing,
        verbose: cli.verbose,
        pcap: cli.pcap,
    };
    let code = session::run(&compiled, &mut printer, &options).map_err(fail)?;
    if let (Some((mut file, path)), Some(recorder)) = (report, printer.take_recorder()) {
        file.write_all(recorder.html().as_bytes()).map_err(|e| {
            plain(Diagnostic::plain(format!(
                "cannot write {}: {e}",
                path.display()
            )))
        })?;
    }
    Ok(code as u8)
}
