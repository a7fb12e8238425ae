//! Semantic analysis: resolves probes through the provider table, types
//! every expression (kernel structs from BTF, tracepoint records from
//! tracefs), infers map key and value types across probes, and produces the
//! checked program in [`tast`].
//!
//! [`check`] runs, in order: four passes over the AST (parameters become
//! their values, [`params`]; kernel tests are decided and the code they
//! switch off dropped, [`kernel_has`]; paths are expanded into stage
//! programs, each stage on the alternative this kernel attaches, with
//! their settings evaluated, [`path::expand`]; user function calls become
//! `Inlined` nodes holding the function's body with its variables renamed
//! for the call, [`inline`], as bpftrace expands macros), then the checker
//! in rounds until the map types settle ([`infer`]). The checker types
//! the stage programs (a path's key is typed against each stage's probe)
//! and each inlined call where it is ([`inlined`]: a function's parameters
//! take each call's argument types, and a pure call may reuse an earlier
//! result, [`memo`]).

mod access;
mod expr;
mod infer;
mod inline;
mod inlined;
mod kernel_has;
mod memo;
mod packet;
mod params;
mod path;
mod recall;
mod scope;
pub use path::MAX_RECORDS;
mod stmt;
pub mod tast;

use std::collections::HashMap;

use crate::bpf::MapId;
use crate::diag::{Diagnostic, Result, Span};
use crate::providers::{self, ProbePoint};
use crate::syntax::ast;
use crate::types::Ty;
pub(crate) use infer::unify;
use tast::{MapDecl, MapValue, PrintfDecl, Script};

/// Options that change how probes are resolved.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Compile fentry/fexit probes as kprobe/kretprobe (the kernel refused fentry).
    pub fentry_as_kprobe: bool,
    /// Skip probes that do not exist on this kernel (with a warning)
    /// instead of failing.
    pub skip_missing_probes: bool,
    /// Which alternative of a path stage is chosen.
    pub stage_choice: StageChoice,
    /// Where library code (the stdlib) starts in the source: a script's
    /// function replaces a library function of the same name.
    pub library_start: Option<usize>,
    /// Values of the script's parameters (see `params::bind`).
    pub params: std::collections::HashMap<String, crate::params::Value>,
    /// Maps that already exist (a REPL session's): they keep their types
    /// and take the first `MapId`s, in this order.
    pub known_maps: Vec<MapDecl>,
    /// Packets in flight each path's record table holds, in place of the
    /// paths' `records` settings (`--path-records`).
    pub path_records: Option<u32>,
    /// `CLOCK_REALTIME` minus `CLOCK_MONOTONIC` in ns, measured just before
    /// the script is compiled (`walltime()` adds it).
    pub wall_offset_ns: i64,
    /// Rate limiters claim their slot with a plain store: the kernel has
    /// no BPF atomic compare-and-exchange (before 5.12).
    pub plain_rate_limits: bool,
    /// Capture each reported packet's headers at its first stage for
    /// `--pcap` (`pkt_capture`): an error when no path reports packets.
    pub pcap: bool,
}

/// The two kinds of checker run: inference rounds, then the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Learns map types (see [`infer`]); its errors are dropped.
    Infer,
    /// Checks for real, with the inferred map types.
    Check,
}

/// Which alternative of a path stage the checker picks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StageChoice {
    /// The first one this kernel can attach.
    #[default]
    Attachable,
    /// The first one that exists, kprobes included even where they cannot
    /// attach (to load a script's kprobe form through the verifier).
    Kprobe,
    /// The first that is not a kprobe (a script's tracepoint form).
    Tracepoint,
}

/// Checks a parsed script against the running kernel, in rounds that
/// settle every map's type ([`infer`]); every definition, path and probe
/// is checked, and all errors are reported together.
pub fn check(written: &ast::Program, options: &Options) -> Result<Script> {
    // The AST passes before type checking: parameters become their
    // values, kernel tests are decided, paths are expanded, then user
    // functions are inlined.
    let mut program = written.clone();
    let param_errors = params::substitute(&mut program.items, &options.params);
    let mut folded = kernel_has::fold(written, program);
    let expanded = path::expand(&mut folded.program.items, options);
    let functions = inline::Functions::collect(&folded.program.items, options.library_start);
    functions.inline_program(&mut folded.program.items);
    let passes = Passes {
        folded,
        expanded,
        functions,
    };
    let mut checker = infer::check_to_fixed_point(&passes, options);
    let mut errors = passes.expanded.errors.clone();
    errors.append(&mut checker.errors);
    errors.extend(
        param_errors
            .into_iter()
            .chain(passes.folded.errors.iter().cloned()),
    );
    errors.sort_by_key(|e| e.span.map_or(usize::MAX, |s| s.start));
    Diagnostic::collected(errors)?;
    let live = |name: &str| checker.map_ids.contains_key(name);
    let mut warnings = passes.expanded.warnings.clone();
    // A skipped probe is named unless the metrics it takes down say it.
    for (maps, why, span) in &checker.skipped {
        if !maps.iter().any(|m| !m.starts_with("@_") && !live(m)) {
            warnings.push(Diagnostic::warning(
                Some(*span),
                format!("{}, probe skipped", why),
            ));
        }
    }
    let off = (checker.off.iter()).map(|o| (o.map.as_str(), o.why.as_str()));
    warnings.extend(off_metrics(off, live).into_iter().map(|(map, line)| {
        let first = checker.off.iter().find(|o| o.map == map).map(|o| o.at);
        Diagnostic::warning(first, line)
    }));
    warnings.extend(btf_less_warnings(&checker.btf_less));
    if options.pcap && !checker.paths.iter().any(|p| p.capture) {
        return Err(Diagnostic::plain(
            "--pcap writes the packets a path reports, and no path of this script reports packets (a `path` with `detail` on)",
        ));
    }
    Ok(Script {
        map_keys: map_keys(&passes.folded.program, options)?,
        print_maps_on_exit: print_maps_on_exit(&passes.folded.program)?,
        programs: checker.programs,
        maps: checker.maps,
        printfs: checker.printfs,
        uses_kstack: checker.uses_kstack,
        rate_limits: checker.rate_limits.len() as u32,
        plain_rate_limits: options.plain_rate_limits,
        warnings,
        paths: checker.paths,
    })
}

/// The program as the AST passes left it, with what each found.
struct Passes {
    /// Parameters substituted and kernel tests decided ([`kernel_has`]);
    /// then paths expanded and calls inlined in place.
    folded: kernel_has::Folded,
    /// The paths and their stage programs ([`path::expand`]).
    expanded: path::Expanded,
    /// The user functions ([`inline`]).
    functions: inline::Functions,
}

/// `config print_maps_on_exit = false;` (bpftrace's setting): the maps
/// are not printed when the run ends (a script printing its own summary
/// in END). True unless the script says so.
fn print_maps_on_exit(program: &ast::Program) -> Result<bool> {
    let mut print = true;
    for item in &program.items {
        let ast::Item::Config(c) = item else { continue };
        if c.name != "print_maps_on_exit" {
            continue;
        }
        print = match &c.value {
            ast::ConfigValue::Int(v) if *v <= 1 => *v == 1,
            ast::ConfigValue::Param(word) if word == "true" || word == "false" => word == "true",
            _ => {
                return Err(Diagnostic::at(
                    c.span,
                    "print_maps_on_exit is true or false",
                ))
            }
        };
    }
    Ok(print)
}

/// The capacity of keyed maps: `config map_keys = N;` (an integer or a
/// parameter), else [`crate::bpf::MAP_ENTRIES`].
fn map_keys(program: &ast::Program, options: &Options) -> Result<u32> {
    let mut keys = crate::bpf::MAP_ENTRIES;
    for item in &program.items {
        let ast::Item::Config(c) = item else { continue };
        match c.name.as_str() {
            "map_keys" => {}
            "print_maps_on_exit" => continue,
            _ => {
                return Err(Diagnostic::at(
                    c.span,
                    format!(
                        "unknown config setting '{}' (known: map_keys, print_maps_on_exit)",
                        c.name
                    ),
                ))
            }
        }
        let value = match &c.value {
            ast::ConfigValue::Int(v) => i64::try_from(*v).unwrap_or(i64::MAX),
            ast::ConfigValue::Param(name) => match options.params.get(name) {
                Some(crate::params::Value::Int(v)) => *v,
                _ => {
                    return Err(Diagnostic::at(
                        c.span,
                        format!("config map_keys: '{}' is not an integer parameter", name),
                    ))
                }
            },
        };
        keys = u32::try_from(value)
            .ok()
            .filter(|k| (1..=MAX_MAP_KEYS).contains(k))
            .ok_or_else(|| {
                Diagnostic::at(
                    c.span,
                    format!(
                        "map_keys must be between 1 and {} (is {})",
                        MAX_MAP_KEYS, value
                    ),
                )
            })?;
    }
    Ok(keys)
}

/// The most entries a keyed map may be given.
const MAX_MAP_KEYS: u32 = 4 << 20;

/// One line per metric (a map whose name does not start with `@_`) that
/// only switched-off code writes, from (map, why) pairs: the metric and
/// `metric @m off: why`. `live` says whether some running code writes
/// the map after all.
pub fn off_metrics<'a>(
    off: impl IntoIterator<Item = (&'a str, &'a str)>,
    live: impl Fn(&str) -> bool,
) -> Vec<(&'a str, String)> {
    let off = (off.into_iter()).filter(|(name, _)| !name.starts_with("@_") && !live(name));
    grouped(off)
        .into_iter()
        .map(|(name, whys)| (name, format!("metric {} off: {}", name, whys.join("; "))))
        .collect()
}

/// The second items of `pairs` grouped by the first, each once, in the
/// order they first appear.
fn grouped<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (key, item) in pairs {
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, items)) if !items.contains(&item) => items.push(item),
            Some(_) => {}
            None => groups.push((key, vec![item])),
        }
    }
    groups
}

/// The module of an fentry/fexit probe's function when that module has no
/// BTF (Linux before 5.11): the probe attaches as its kprobe twin.
fn point_module_without_btf(point: &providers::ProbePoint) -> Option<String> {
    match &point.target {
        providers::Target::Function { name, .. } => {
            crate::kernel::btf::Btf::module_without_btf(name)
        }
        _ => None,
    }
}

/// One warning per module without BTF, naming every fentry/fexit probe
/// on its functions that attaches as a kprobe/kretprobe instead, at the
/// first of them.
fn btf_less_warnings(btf_less: &[(String, String, Span)]) -> Vec<Diagnostic> {
    let pairs = btf_less
        .iter()
        .map(|(module, probe, _)| (module.as_str(), probe.as_str()));
    grouped(pairs)
        .into_iter()
        .map(|(module, probes)| {
            let first = btf_less.iter().find(|(m, _, _)| m == module).map(|b| b.2);
            Diagnostic::warning(
                first,
                format!(
                    "module {} has no BTF on this kernel (module BTF: Linux 5.11+), kprobe/kretprobe instead of fentry/fexit: {}",
                    module,
                    probes.join(", ")
                ),
            )
        })
        .collect()
}

/// Adds a named definition; the script's own replaces the library's (which
/// starts at `library_start` in the source, after the script), a name
/// defined twice is an error.
fn define<T: Clone>(
    table: &mut HashMap<String, T>,
    name: &str,
    item: &T,
    span: Span,
    library_start: Option<usize>,
    what: &str,
) -> Result<()> {
    let from_library = library_start.is_some_and(|start| span.start >= start);
    if from_library && table.contains_key(name) {
        return Ok(());
    }
    if table.insert(name.to_string(), item.clone()).is_some() {
        return Err(Diagnostic::at(
            span,
            format!("{} {} is defined twice", what, name),
        ));
    }
    Ok(())
}

/// Script-wide state of the checker.
struct Checker<'o> {
    options: &'o Options,
    /// Which round this is: an inference round types a map read before
    /// any write with a placeholder, and its errors are dropped.
    round: Round,
    maps: Vec<MapDecl>,
    map_ids: HashMap<String, MapId>,
    /// User functions (the script's and the stdlib's), as the inlining
    /// pass found them.
    functions: &'o inline::Functions,
    /// Maps seen only read so far in an inference round (their type is a
    /// guess).
    placeholders: std::collections::HashSet<MapId>,
    /// A check round: maps typed as the round before ended, until their
    /// first write in this round (see [`infer`]).
    provisional: std::collections::HashSet<MapId>,
    /// A check round: the maps read before any code wrote them.
    unknown_reads: Vec<String>,
    /// Each map an expression has read in this round, with each value
    /// type it was read as.
    reads: Vec<(MapId, MapValue)>,
    printfs: Vec<PrintfDecl>,
    programs: Vec<tast::Program>,
    uses_kstack: bool,
    /// The `ratelimit()` calls of the source, by limiter slot.
    rate_limits: Vec<Span>,
    /// The paths, with the types of their keys and `info` once their
    /// stage programs are checked.
    paths: Vec<tast::PathInfo>,
    /// Maps written by the program being checked.
    writes: std::collections::BTreeSet<MapId>,
    /// Each map assignment in switched-off code (a (map, why) once).
    off: Vec<kernel_has::SwitchedOff>,
    /// The program with its `kernel_has()` tests decided, its paths
    /// expanded and its calls inlined (`Passes::folded`).
    folded: &'o kernel_has::Folded,
    /// Its paths expanded (their stage programs are among its items).
    expanded: &'o path::Expanded,
    /// The maps of each probe skipped as missing, why, and the
    /// probe's place.
    skipped: Vec<(Vec<String>, String, Span)>,
    /// (module, probe, place) for each fentry/fexit probe attached
    /// as a kprobe because its function's module has no BTF.
    btf_less: Vec<(String, String, Span)>,
    /// The errors found so far: each definition, path and probe is
    /// checked on after an error in another, and all are reported.
    errors: Vec<Diagnostic>,
    /// Maps assigned by statements that failed (in this round or the one
    /// before): reading one that is never assigned is a consequence of
    /// their errors.
    failed_writes: std::collections::HashSet<String>,
}

impl<'o> Checker<'o> {
    fn new(options: &'o Options, round: Round, passes: &'o Passes) -> Self {
        let expanded = &passes.expanded;
        Checker {
            options,
            folded: &passes.folded,
            expanded,
            functions: &passes.functions,
            round,
            maps: Vec::new(),
            map_ids: HashMap::new(),
            placeholders: Default::default(),
            provisional: Default::default(),
            unknown_reads: Vec::new(),
            reads: Vec::new(),
            printfs: Vec::new(),
            programs: Vec::new(),
            uses_kstack: expanded.paths.iter().any(|p| p.info.stacks),
            rate_limits: Vec::new(),
            paths: expanded.paths.iter().map(|p| p.info.clone()).collect(),
            writes: Default::default(),
            off: Vec::new(),
            skipped: Vec::new(),
            btf_less: Vec::new(),
            errors: Vec::new(),
            failed_writes: Default::default(),
        }
    }

    /// The value of `result`, or `None` with its error kept for the report.
    fn keep_error<T>(&mut self, result: Result<T>) -> Option<T> {
        result.map_err(|e| self.errors.push(e)).ok()
    }

    /// Records switched-off assignments, each (map, why) once (a round
    /// starts with the list of the round before).
    fn note_off(&mut self, off: impl IntoIterator<Item = kernel_has::SwitchedOff>) {
        for o in off {
            if !self.off.iter().any(|k| k.map == o.map && k.why == o.why) {
                self.off.push(o);
            }
        }
    }

    /// A call of the function declared at `decl`: what folding dropped
    /// from its body is off (what it drops is off only where it is called).
    fn calls_function(&mut self, decl: Span) {
        let folded = self.folded;
        if let Some(off) = folded.in_functions.get(&decl.start) {
            self.note_off(off.iter().cloned());
        }
    }

    /// `e` is `print`, `clear`, `zero` or `delete` of maps that only
    /// switched-off code writes: the statement is dropped. (Of several
    /// maps, those switched off are left out: [`Checker::is_off`].)
    fn acts_on_off_map(&self, e: &ast::Expr) -> bool {
        let ast::ExprKind::Call { name, args } = &e.kind else {
            return false;
        };
        let action = crate::builtins::function(name)
            .is_some_and(|d| d.role == crate::builtins::Role::Action);
        action
            && !args.is_empty()
            && args.iter().all(|a| match &a.kind {
                ast::ExprKind::Map(m) => self.is_off(&m.name),
                _ => false,
            })
    }

    /// Whether map `@name` is written only by switched-off code (sure in
    /// the check round, which starts knowing every live map).
    fn is_off(&self, name: &str) -> bool {
        let full = format!("@{}", name);
        !self.map_ids.contains_key(&full) && self.off.iter().any(|o| o.map == full)
    }

    /// `table(@a, @b, ...)` prints one table: the maps have no key, or all
    /// the same key types, so that a row is a key.
    fn check_table(&self, maps: &[MapId], span: Span) -> Result<()> {
        let decl = |m: &MapId| &self.maps[m.0 as usize];
        // Strings of any size print alike.
        let alike = |a: &[Ty], b: &[Ty]| {
            a.len() == b.len()
                && a.iter().zip(b).all(|p| match p {
                    (Ty::Str(_), Ty::Str(_)) => true,
                    (x, y) => x == y,
                })
        };
        let first = decl(&maps[0]);
        match maps.iter().map(decl).find(|d| !alike(&d.keys, &first.keys)) {
            Some(other) => Err(Diagnostic::at(
                span,
                format!(
                    "table() prints one row per key: {} and {} have different keys; \
                     print them in tables of their own",
                    first.name, other.name
                ),
            )),
            None => Ok(()),
        }
    }

    /// Checks every probe and stage program of the program, on after
    /// errors, which it keeps in `errors` (with the functions' definition
    /// errors).
    fn run(&mut self, program: &ast::Program) {
        self.errors.extend(self.functions.errors.iter().cloned());
        let mut stage_programs = Vec::new();
        for item in &program.items {
            match item {
                ast::Item::Probe(block) => {
                    for spec in &block.specs {
                        let checked = self.check_spec(block, spec);
                        self.keep_error(checked);
                    }
                }
                ast::Item::StageProgram(stage_program) => stage_programs.push(stage_program),
                _ => {}
            }
        }
        let staged = self.stage_programs(&stage_programs);
        self.keep_error(staged);
        let failed = !self.errors.is_empty() || !self.expanded.errors.is_empty();
        if self.programs.is_empty() && !failed {
            self.errors
                .push(Diagnostic::plain("the script has no probes"));
        }
    }

    /// Checks one probe spec of a block: a program per concrete probe
    /// point it expands to (errors of every point kept, the first returned).
    fn check_spec(&mut self, block: &ast::ProbeBlock, spec: &ast::ProbeSpec) -> Result<()> {
        let target = params::probe_parts(spec, &self.options.params)?;
        let points = match providers::expand(&spec.provider, &target, spec.span) {
            Ok(points) => points,
            Err(e)
                if (self.options.skip_missing_probes || block.optional)
                    && providers::lookup(&spec.provider).is_some() =>
            {
                // Its maps are switched off (each write's place kept).
                let mut maps = Vec::new();
                kernel_has::maps_assigned_when_inlined(&block.body.stmts, &mut maps);
                let names = maps.iter().map(|(map, _)| map.clone()).collect();
                self.skipped.push((names, e.message.clone(), spec.span));
                let off = maps.into_iter().map(|(map, at)| kernel_has::SwitchedOff {
                    map,
                    why: e.message.clone(),
                    at,
                });
                self.note_off(off);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for point in points {
            let point = match point.kprobe_fallback() {
                Some(k) if self.options.fentry_as_kprobe => k,
                Some(k) => match point_module_without_btf(&point) {
                    Some(module) => {
                        self.btf_less.push((module, point.display(), spec.span));
                        k
                    }
                    None => point,
                },
                _ => point,
            };
            match stmt::check_probe(self, block, spec, point) {
                Ok(Some(checked)) => self.programs.push(checked),
                Ok(None) => {}
                Err(e) => self.errors.push(e),
            }
        }
        Ok(())
    }
}

/// The program name used in the ELF object for the n-th program.
pub(crate) fn program_name(index: usize, point: &ProbePoint) -> String {
    let mut tag: String = point
        .display()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    tag.truncate(40);
    format!("p{}_{}", index, tag)
}
#[cfg(test)]
mod tests;
