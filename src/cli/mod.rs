//! The command line: netscript's own options (one clap definition, from
//! which the split of a script's arguments, the end of a script's
//! `--help`, the shell completions and the man page all derive).

pub mod completion;

use std::path::PathBuf;

use clap::{Arg, Command, CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::sema;

/// A bpftrace-like language for finding where network latency goes,
/// compiled straight to BPF.
#[derive(Parser, Debug)]
#[command(name = "netscript", version, about)]
pub struct Cli {
    /// Script file to run, or the name of a bundled script (`-l scripts`
    /// lists them); with -l, the probe pattern to list.
    #[arg(value_hint = clap::ValueHint::FilePath)]
    pub file: Option<PathBuf>,
    /// The script's own options, after the script file (see `SCRIPT --help`).
    #[arg(skip)]
    pub script_args: Vec<String>,
    /// Run this program text instead of a file.
    #[arg(short = 'e', value_name = "PROGRAM")]
    pub program: Option<String>,
    /// List probes matching the pattern (`tracepoint:net:*`, `kprobe:tcp_*`),
    /// or the bundled scripts (`-l scripts`; with -v, their options).
    #[arg(short = 'l')]
    pub list: bool,
    /// Say on stderr what each probe attached as and which path stages it
    /// serves, and at exit how many times each program ran and its average
    /// cost (kernel BPF statistics). With -l: show each probe's arguments.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Output format.
    #[arg(short = 'f', value_enum, default_value = "text")]
    pub format: OutFormat,
    /// Write output to this file instead of stdout.
    #[arg(short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Run this command and stop tracing when it exits.
    #[arg(short = 'c', value_name = "CMD")]
    pub command: Option<String>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Compile and load every program through the kernel verifier, attach nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the BPF ELF object to this file.
    #[arg(long, value_name = "FILE")]
    pub emit_elf: Option<PathBuf>,
    /// Treat fentry/fexit as unavailable and use kprobe/kretprobe.
    #[arg(long)]
    pub no_fentry: bool,
    /// What to do with probes this kernel does not have.
    #[arg(long, value_enum, default_value = "error")]
    pub missing_probes: MissingProbes,
    /// Which alternative of each path stage to use: the first this kernel
    /// can attach (auto), kprobes even where they cannot attach (kprobe; to
    /// check a script's kprobe form with --dry-run), or none of the kprobe
    /// and fentry ones (tracepoint).
    #[arg(long, value_enum, default_value = "auto")]
    pub stages: Stages,
    /// Packets in flight each path's record table holds (default: the
    /// path's `records` setting, else 4096); raise it when a path's
    /// counters show packets evicted.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(sema::MAX_RECORDS)))]
    pub path_records: Option<u32>,
    /// Write every packet a path reports to FILE (pcapng): up to 128 bytes
    /// from its IP header as captured at its first stage, wall-clock
    /// timestamped, with its stages' times and latencies as the comment.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Serve the script's maps in the Prometheus text format on
    /// ADDR:PORT (PORT alone: 127.0.0.1), read at each scrape of /metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub prometheus: Option<String>,
    /// At the end of the run, write a self-contained HTML page of it to
    /// this file: per path, each segment's p50/p90/p99 as stacked bars,
    /// the histograms, total latency over time and the counters.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Print every IP address (ntop() values) and every value passed
    /// through redact() as a keyed hash (v4-/v6- and 10 hex digits; a
    /// redacted port stays a number 0..65535). The key is random per run
    /// unless --anonymize-key gives one.
    #[arg(long)]
    pub anonymize: bool,
    /// With --anonymize (implies it): derive the key from this file (at
    /// least 16 bytes) so the hashes are the same in every run.
    #[arg(long, value_name = "FILE")]
    pub anonymize_key: Option<PathBuf>,
    /// Print a pipeline stage and exit.
    #[arg(short = 'd', value_enum, value_name = "STAGE")]
    pub debug: Option<Stage>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutFormat {
    /// bpftrace's text.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum MissingProbes {
    /// A probe this kernel lacks is an error.
    Error,
    /// Warn and run without it.
    Warn,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Stages {
    /// The first alternative this kernel can attach.
    Auto,
    /// kprobes, even where they cannot attach.
    Kprobe,
    /// None of the kprobe and fentry alternatives.
    Tracepoint,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Stage {
    /// The syntax tree.
    Ast,
    /// The IR of each program.
    Ir,
    /// The BPF instructions of each program.
    Bpf,
}

/// netscript's own options as [`Cli`] defines them, in the clap command
/// built once: the command line is parsed with it, and the flags no
/// script parameter may take and the end of a script's `--help` are read
/// from it.
pub struct OwnOptions {
    command: Command,
}

impl Default for OwnOptions {
    fn default() -> Self {
        OwnOptions::new()
    }
}

impl OwnOptions {
    /// The options, their clap command built.
    pub fn new() -> OwnOptions {
        OwnOptions {
            command: Cli::command(),
        }
    }

    /// The options that may stand among a script's own (all but -e, -l,
    /// the script file, and the `--help` and `--version` clap adds when
    /// it parses).
    fn among_the_script(&self) -> impl Iterator<Item = &Arg> {
        self.command.get_arguments().filter(|a| {
            !a.is_positional()
                && !["program", "list", "help", "version"].contains(&a.get_id().as_str())
        })
    }

    /// The spellings (`-f`, `--duration`) of the options that may stand
    /// among a script's, each with whether it takes a value.
    fn spellings(&self) -> Vec<(String, bool)> {
        self.among_the_script()
            .flat_map(|a| {
                let takes_value = a.get_action().takes_values();
                let short = a.get_short().map(|c| format!("-{c}"));
                let long = a.get_long().map(|l| format!("--{l}"));
                short.into_iter().chain(long).map(move |s| (s, takes_value))
            })
            .collect()
    }

    /// The flags no script parameter may take: the options that may
    /// stand among a script's, and `-h`/`--help`.
    pub fn reserved_flags(&self) -> Vec<String> {
        self.spellings()
            .into_iter()
            .map(|(s, _)| s)
            .chain(["-h".to_string(), "--help".to_string()])
            .collect()
    }

    /// The end of a script's `--help`: the options that apply to every
    /// script (not -e, -l or the script file), each with the first
    /// sentence of its help.
    pub fn help(&self) -> String {
        let rows: Vec<(String, String)> = self
            .among_the_script()
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

    /// Parses the command line `argv` (the program name first). Everything
    /// after the script file (or the program of `-e`) belongs to the script
    /// (`netscript x.ns --src-ip 10.0.0.1 --help`), except netscript's own
    /// options, which may stand there too (`-f json`). Exits with clap's
    /// message and code 2 on a bad option.
    pub fn parse(&mut self, argv: Vec<String>) -> Cli {
        let own_options = self.spellings();
        let takes_value = |a: &str| own_options.iter().find(|(s, _)| s == a).map(|(_, v)| *v);
        let mut file_at = None;
        let mut i = 1;
        while i < argv.len() {
            let a = argv[i].as_str();
            // The program of -e stands where a script file would.
            if a == "-e" {
                file_at = Some(i + 1).filter(|&at| at < argv.len());
                break;
            }
            if takes_value(a) == Some(true) {
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
            return self.parsed(argv);
        };
        let mut own = argv[..=file_at].to_vec();
        let mut script = Vec::new();
        let mut it = argv[file_at + 1..].iter();
        while let Some(a) = it.next() {
            let name = a.split_once('=').map(|(n, _)| n).unwrap_or(a);
            match takes_value(name) {
                Some(true) if !a.contains('=') => {
                    own.insert(1, a.clone());
                    if let Some(v) = it.next() {
                        own.insert(2, v.clone());
                    }
                }
                Some(_) => own.insert(1, a.clone()),
                None => script.push(a.clone()),
            }
        }
        let mut cli = self.parsed(own);
        cli.script_args = script;
        cli
    }

    /// `argv` parsed with the command, as `Cli::parse_from` would.
    fn parsed(&mut self, argv: Vec<String>) -> Cli {
        let mut matches = (self.command)
            .try_get_matches_from_mut(argv)
            .unwrap_or_else(|e| e.exit());
        Cli::from_arg_matches_mut(&mut matches)
            .unwrap_or_else(|e| e.format(&mut self.command).exit())
    }
}

/// The flags no script parameter may take ([`OwnOptions::reserved_flags`]),
/// for a caller without the command line's [`OwnOptions`] at hand.
pub fn reserved_flags() -> Vec<String> {
    OwnOptions::new().reserved_flags()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_command_that_parsed_the_line_still_tells_the_scripts_flags_and_help() {
        let mut own = OwnOptions::new();
        let (reserved, help) = (own.reserved_flags(), own.help());
        let cli = own.parse(argv(&[
            "netscript",
            "x.ns",
            "--src-ip",
            "10.0.0.1",
            "-f",
            "json",
            "--help",
        ]));
        assert_eq!(cli.file, Some(PathBuf::from("x.ns")));
        assert!(matches!(cli.format, OutFormat::Json));
        // --help after the script is the script's, not netscript's.
        assert_eq!(cli.script_args, ["--src-ip", "10.0.0.1", "--help"]);
        // Parsing built the command (clap added --help and --version):
        // what it says of the options is what it said before.
        assert_eq!(own.reserved_flags(), reserved);
        assert_eq!(own.help(), help);
        assert!(reserved.contains(&"--duration".to_string()), "{reserved:?}");
        assert!(!reserved.contains(&"--version".to_string()), "{reserved:?}");
        assert!(help.contains("  -f text|json"), "{help}");
        assert!(
            !help.contains("--version") && !help.contains("-e "),
            "{help}"
        );
    }
}
