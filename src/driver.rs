//! The one way from a script to a compiled program, for the command line
//! and the REPL alike: parse the script (with the stdlib) once, read its
//! parameters from that AST and bind the arguments, then run the
//! [`pipeline`] stages with the decisions that depend on the running
//! kernel: fentry/fexit compiled as kprobe/kretprobe when the kernel
//! refuses them (or `--no-fentry` says so), rate limits without
//! compare-and-exchange before Linux 5.12, each said on stderr with the
//! script's warnings. A fallback redoes only the stages it changes, from
//! the same AST.

use std::collections::HashMap;

use crate::diag::{Result, Source};
use crate::kernel::symbols::Kallsyms;
use crate::params::{self, Param, Request, Value};
use crate::pipeline::{self, Compiled};
use crate::providers;
use crate::runtime;
use crate::sema::tast::MapDecl;
use crate::sema::{self, StageChoice};
use crate::stack::{on_stack, COMPILE_STACK_BYTES};
use crate::syntax::{self, ast};

/// How to compile a script, beside its arguments.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Compile fentry/fexit probes as kprobe/kretprobe even where the
    /// kernel loads them (`--no-fentry`).
    pub no_fentry: bool,
    /// Leave out probes that do not exist on this kernel, with a warning
    /// (`--missing-probes warn`).
    pub skip_missing_probes: bool,
    /// Which alternative of a path stage is taken (`--stages`).
    pub stage_choice: StageChoice,
    /// Packets in flight each path's record table holds (`--path-records`).
    pub path_records: Option<u32>,
    /// Capture reported packets' headers (`--pcap`).
    pub pcap: bool,
    /// Maps that already exist (a REPL session's), in `MapId` order.
    pub known_maps: Vec<MapDecl>,
    /// The monotonic clock at start-up (`elapsed` counts from it).
    pub start_ns: u64,
}

/// A script parsed once, with its parameters.
pub struct ParsedScript<'a> {
    /// The text, for placing the warnings.
    source: &'a Source,
    ast: ast::Program,
    params: Vec<Param>,
    library_start: usize,
}

impl<'a> ParsedScript<'a> {
    /// Parses `source` (the stdlib attached: `stdlib::attach`)
    /// and reads the parameters it declares, none of which may take the
    /// flags `reserved` (netscript's own: [`crate::cli::OwnOptions`]).
    /// Starts reading the kernel's symbols ahead when the script names
    /// kernel functions.
    pub fn parse(source: &'a Source, reserved: &[String]) -> Result<ParsedScript<'a>> {
        let ast = syntax::parse_source(source)?;
        if providers::names_kernel_functions(&ast) {
            Kallsyms::prefetch();
        }
        let params = params::declared(&ast, reserved)?;
        Ok(ParsedScript {
            source,
            ast,
            params,
            library_start: source.script_end(),
        })
    }

    /// The parameters the script declares (for its `--help`).
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Binds the script's arguments (`--flag value`) to its parameters;
    /// an error is a usage error.
    pub fn bind(&self, args: &[String]) -> Result<Request> {
        params::bind(&self.params, args)
    }

    /// Compiles the script with its bound parameter values, deciding the
    /// kernel-dependent fallbacks. Runs on a stack of its own (see
    /// [`crate::stack`]).
    pub fn compile(self, values: HashMap<String, Value>, options: &Options) -> Result<Compiled> {
        let mut sema_options = sema::Options {
            skip_missing_probes: options.skip_missing_probes,
            params: values,
            library_start: Some(self.library_start),
            stage_choice: options.stage_choice,
            path_records: options.path_records,
            pcap: options.pcap,
            known_maps: options.known_maps.clone(),
            wall_offset_ns: runtime::wall_offset_ns(),
            ..Default::default()
        };
        let (ast, source) = (self.ast, self.source);
        let start_ns = options.start_ns;
        on_stack(COMPILE_STACK_BYTES, move || {
            let mut script = sema::check(&ast, &sema_options)?;
            let has_fentry = script
                .programs
                .iter()
                .any(|p| p.probe.kprobe_fallback().is_some());
            if let Some(reason) =
                kprobe_instead(has_fentry, options.no_fentry, runtime::fentry_supported)
            {
                eprintln!("netscript: {reason}; using kprobe/kretprobe instead");
                sema_options.fentry_as_kprobe = true;
                script = sema::check(&ast, &sema_options)?;
            }
            let mut lowered = pipeline::lower(&script, start_ns)?;
            let uses_cmpxchg = lowered.ir.iter().any(|f| f.uses_cmpxchg());
            if plain_rate_limits(uses_cmpxchg, runtime::cmpxchg_supported) {
                eprintln!("netscript: this kernel's BPF has no atomic compare-and-exchange (5.12+); rate limits take their slots with plain stores, so CPUs racing for a limit's last slot may both pass");
                script.plain_rate_limits = true;
                lowered = pipeline::lower(&script, start_ns)?;
            }
            let compiled = pipeline::generate(ast, script, lowered)?;
            for w in &compiled.script.warnings {
                eprint!("{}", w.render(Some(source)));
            }
            Ok(compiled)
        })
    }
}

/// Why the script's fentry/fexit probes are compiled as kprobe/kretprobe,
/// if they are: `--no-fentry`, or a kernel that does not load them (asked
/// only when it matters).
fn kprobe_instead(
    has_fentry: bool,
    no_fentry: bool,
    fentry_supported: impl FnOnce() -> bool,
) -> Option<&'static str> {
    if !has_fentry {
        None
    } else if no_fentry {
        Some("fentry/fexit disabled by --no-fentry")
    } else if !fentry_supported() {
        Some("this kernel cannot load fentry/fexit programs")
    } else {
        None
    }
}

/// Whether rate limits take their slots with plain stores: the script has
/// a compare-and-exchange and the kernel's BPF has none (asked only then).
fn plain_rate_limits(uses_cmpxchg: bool, cmpxchg_supported: impl FnOnce() -> bool) -> bool {
    uses_cmpxchg && !cmpxchg_supported()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel question that must not be asked.
    fn unasked() -> bool {
        panic!("the kernel was asked without need")
    }

    #[test]
    fn fentry_stays_where_the_kernel_loads_it_and_no_flag_says_otherwise() {
        assert_eq!(kprobe_instead(true, false, || true), None);
        assert_eq!(kprobe_instead(false, false, unasked), None);
        assert_eq!(kprobe_instead(false, true, unasked), None);
    }

    #[test]
    fn fentry_becomes_kprobe_when_refused_or_disabled() {
        assert_eq!(
            kprobe_instead(true, false, || false),
            Some("this kernel cannot load fentry/fexit programs")
        );
        assert_eq!(
            kprobe_instead(true, true, unasked),
            Some("fentry/fexit disabled by --no-fentry")
        );
    }

    #[test]
    fn rate_limits_use_plain_stores_only_without_cmpxchg() {
        assert!(plain_rate_limits(true, || false));
        assert!(!plain_rate_limits(true, || true));
        assert!(!plain_rate_limits(false, unasked));
    }

    #[test]
    fn parameters_come_from_the_parsed_script() {
        let mut source = Source::new("t", "param port: int = 80 \"a port\"\nBEGIN { exit(); }");
        crate::stdlib::attach(&mut source);
        let reserved = crate::cli::reserved_flags();
        let script = ParsedScript::parse(&source, &reserved).expect("parses");
        let names: Vec<&str> = script.params().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["port"]);
        assert!(matches!(
            script.bind(&["--help".to_string()]),
            Ok(Request::Help)
        ));
        assert!(script.bind(&["--nope".to_string()]).is_err());
        let Ok(Request::Run(values)) = script.bind(&["--port".into(), "8080".into()]) else {
            panic!("binds")
        };
        let compiled = script
            .compile(values, &Options::default())
            .expect("compiles");
        assert_eq!(compiled.script.programs.len(), 1);
    }
}
