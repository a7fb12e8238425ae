//! Semantic analysis: resolves probes through the provider table, types
//! every expression (kernel structs from BTF, tracepoint records from
//! tracefs), infers map key and value types across probes, and produces the
//! checked program in [`tast`].

mod access;
mod expr;
mod inline;
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
use crate::types::{self, Ty};
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

/// Checks a parsed script against the running kernel.
pub fn check(program: &ast::Program, options: &Options) -> Result<Script> {
    // Pass 1 learns every map's type from its assignments, so that a probe
    // may read a map that a later probe writes; pass 2 checks for real.
    let mut first = Checker::new(options, true);
    for decl in &options.known_maps {
        first
            .map_ids
            .insert(decl.name.clone(), MapId(first.maps.len() as u32));
        first.maps.push(decl.clone());
    }
    first.run(program);
    let mut second = Checker::new(options, false);
    // Maps that pass 1 only saw read are not declared: pass 2 reports them.
    for (i, decl) in first.maps.into_iter().enumerate() {
        if !first.placeholders.contains(&MapId(i as u32)) {
            second
                .map_ids
                .insert(decl.name.clone(), MapId(second.maps.len() as u32));
            second.maps.push(decl);
        }
    }
    second.off = first.off;
    second.failed_writes = first.failed_writes;
    second.run(program);
    // Pass 1 reports what it checks for real (definitions, paths); pass 2
    // the same again (kept once) and every probe: all, in source order.
    first.errors.append(&mut second.errors);
    first
        .errors
        .sort_by_key(|e| e.span.map_or(usize::MAX, |s| s.start));
    Diagnostic::collected(first.errors)?;
    let live = |name: &str| second.map_ids.contains_key(name);
    let mut warnings = second.warnings;
    // A skipped probe is named unless the metrics it takes down say it.
    for (maps, why, span) in &second.skipped {
        if !maps.iter().any(|m| !m.starts_with("@_") && !live(m)) {
            warnings.push(Diagnostic::warning(
                Some(*span),
                format!("{}, probe skipped", why),
            ));
        }
    }
    warnings.extend(
        off_metrics(&second.off, live)
            .into_iter()
            .map(|line| Diagnostic::warning(None, line)),
    );
    warnings.extend(btf_less_warnings(&second.btf_less));
    if options.pcap && !second.paths.iter().any(|p| p.capture) {
        return Err(Diagnostic::plain(
            "--pcap writes the packets a path reports, and no path of this script reports packets (a `path` with `detail` on)",
        ));
    }
    Ok(Script {
        map_keys: map_keys(program, options)?,
        print_maps_on_exit: print_maps_on_exit(program)?,
        programs: second.programs,
        maps: second.maps,
        printfs: second.printfs,
        uses_kstack: second.uses_kstack,
        rate_limits: second.rate_limits.len() as u32,
        plain_rate_limits: options.plain_rate_limits,
        warnings,
        paths: second.paths,
    })
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
/// only switched-off code writes: `metric @m off: why`. `live` says
/// whether some running code writes the map after all.
pub fn off_metrics<'a>(
    off: impl IntoIterator<Item = &'a (String, String)>,
    live: impl Fn(&str) -> bool,
) -> Vec<String> {
    let off = off
        .into_iter()
        .filter(|(name, _)| !name.starts_with("@_") && !live(name))
        .map(|(name, why)| (name.as_str(), why.as_str()));
    grouped(off)
        .into_iter()
        .map(|(name, whys)| format!("metric {} off: {}", name, whys.join("; ")))
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
/// come after the script in the source), a name defined twice is an error.
fn define<T: Clone>(
    table: &mut HashMap<String, T>,
    name: &str,
    item: &T,
    span: Span,
    from_library: bool,
    what: &str,
) -> Result<()> {
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
    /// Pass 1: unknown maps read as u64 instead of failing.
    collecting: bool,
    maps: Vec<MapDecl>,
    map_ids: HashMap<String, MapId>,
    /// User functions by name (the script's and the stdlib's).
    functions: HashMap<String, ast::FnDecl>,
    /// Catalogue stages by name (the script's and the stdlib's).
    catalogue: HashMap<String, ast::StageDecl>,
    /// Pass 1: maps seen only read so far (their type is a guess).
    placeholders: std::collections::HashSet<MapId>,
    printfs: Vec<PrintfDecl>,
    programs: Vec<tast::Program>,
    uses_kstack: bool,
    /// The `ratelimit()` calls of the source, by limiter slot.
    rate_limits: Vec<Span>,
    warnings: Vec<Diagnostic>,
    /// Path stages this kernel cannot attach: (why, stage, path, where
    /// the stage is declared).
    skipped_stages: Vec<(String, String, String, Span)>,
    paths: Vec<tast::PathInfo>,
    /// Maps written by the program being checked.
    writes: std::collections::BTreeSet<MapId>,
    /// (map, why) for each map assignment in switched-off code.
    off: Vec<(String, String)>,
    /// Pass 2: the maps of each probe skipped as missing, why, and the
    /// probe's place.
    skipped: Vec<(Vec<String>, String, Span)>,
    /// Pass 2: (module, probe, place) for each fentry/fexit probe attached
    /// as a kprobe because its function's module has no BTF.
    btf_less: Vec<(String, String, Span)>,
    /// The errors found so far: each definition, path and probe is
    /// checked on after an error in another, and all are reported.
    errors: Vec<Diagnostic>,
    /// Maps assigned by statements that failed (from pass 1 on): reading
    /// one that is never assigned is a consequence of their errors.
    failed_writes: std::collections::HashSet<String>,
}

impl<'o> Checker<'o> {
    fn new(options: &'o Options, collecting: bool) -> Self {
        Checker {
            options,
            collecting,
            maps: Vec::new(),
            map_ids: HashMap::new(),
            functions: HashMap::new(),
            catalogue: HashMap::new(),
            placeholders: Default::default(),
            printfs: Vec::new(),
            programs: Vec::new(),
            uses_kstack: false,
            rate_limits: Vec::new(),
            warnings: Vec::new(),
            skipped_stages: Vec::new(),
            paths: Vec::new(),
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

    /// Records the maps `stmts` assign as switched off for `why` (pass 1
    /// learns them all; pass 2 starts with the list).
    fn switch_off(&mut self, stmts: &[ast::Stmt], why: &str) {
        if !self.collecting {
            return;
        }
        let mut maps = Vec::new();
        kernel_has::assigned_maps(stmts, &self.functions, &mut maps);
        self.off
            .extend(maps.into_iter().map(|m| (m, why.to_string())));
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

    /// Whether map `@name` is written only by switched-off code (known in
    /// pass 2).
    fn is_off(&self, name: &str) -> bool {
        let full = format!("@{}", name);
        !self.collecting
            && !self.map_ids.contains_key(&full)
            && self.off.iter().any(|(n, _)| *n == full)
    }

    /// `table(@a, @b, ...)` prints one table: the maps have no key, or all
    /// the same key types, so that a row is a key.
    fn check_table(&self, maps: &[MapId], span: Span) -> Result<()> {
        if self.collecting {
            return Ok(());
        }
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

    /// True for a span in the appended standard library.
    fn in_library(&self, span: Span) -> bool {
        self.options
            .library_start
            .is_some_and(|start| span.start >= start)
    }

    /// Checks every definition, path and probe of the program, on after
    /// errors, which it keeps in `errors`.
    fn run(&mut self, program: &ast::Program) {
        for item in &program.items {
            let defined = match item {
                ast::Item::Fn(f) => self.define_function(f),
                ast::Item::Stage(s) => {
                    let library = self.in_library(s.span);
                    define(&mut self.catalogue, &s.name, s, s.span, library, "stage")
                }
                _ => Ok(()),
            };
            self.keep_error(defined);
        }
        let mut stages = Vec::new();
        for item in &program.items {
            match item {
                ast::Item::Probe(block) => {
                    for spec in &block.specs {
                        let checked = self.check_spec(block, spec);
                        self.keep_error(checked);
                    }
                }
                ast::Item::Path(path) => {
                    let plans = self.check_path(path);
                    stages.extend(self.keep_error(plans).into_iter().flatten());
                }
                _ => {}
            }
        }
        let staged = self.stage_programs(stages);
        self.keep_error(staged);
        if self.programs.is_empty() && !self.collecting && self.errors.is_empty() {
            self.errors
                .push(Diagnostic::plain("the script has no probes"));
        }
    }

    /// Defines a user function: not a built-in's name, each parameter once.
    fn define_function(&mut self, f: &ast::FnDecl) -> Result<()> {
        if crate::builtins::function(&f.name).is_some() {
            return Err(Diagnostic::at(
                f.span,
                format!("{} is a built-in function and cannot be redefined", f.name),
            ));
        }
        if let Some(twice) = f
            .params
            .iter()
            .enumerate()
            .find_map(|(i, a)| f.params[..i].contains(a).then_some(a))
        {
            return Err(Diagnostic::at(
                f.span,
                format!(
                    "function {}: parameter ${} is declared twice",
                    f.name, twice
                ),
            ));
        }
        let library = self.in_library(f.span);
        define(&mut self.functions, &f.name, f, f.span, library, "function")
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
                if !self.collecting {
                    let mut maps = Vec::new();
                    kernel_has::assigned_maps(&block.body.stmts, &self.functions, &mut maps);
                    self.skipped.push((maps, e.message.clone(), spec.span));
                }
                self.switch_off(&block.body.stmts, &e.message);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for point in points {
            let point = match point.kprobe_fallback() {
                Some(k) if self.options.fentry_as_kprobe => k,
                Some(k) => match point_module_without_btf(&point) {
                    Some(module) => {
                        if !self.collecting {
                            self.btf_less.push((module, point.display(), spec.span));
                        }
                        k
                    }
                    None => point,
                },
                _ => point,
            };
            match stmt::check_probe(self, block, spec, point) {
                Ok(Some(checked)) => self.programs.push(checked),
                Ok(None) => {}
                Err(_) if self.collecting => {}
                Err(e) => self.errors.push(e),
            }
        }
        Ok(())
    }

    /// Declares or refines a map from one of its uses (a write when
    /// `value` is given).
    fn use_map(
        &mut self,
        name: &str,
        keys: &[Ty],
        value: Option<MapValue>,
        span: Span,
    ) -> Result<MapId> {
        let write = value.is_some();
        let id = self.declare_map(name, keys, value, span)?;
        if write {
            self.writes.insert(id);
        }
        Ok(id)
    }

    fn declare_map(
        &mut self,
        name: &str,
        keys: &[Ty],
        value: Option<MapValue>,
        span: Span,
    ) -> Result<MapId> {
        let full = format!("@{}", name);
        if let Some(&id) = self.map_ids.get(&full) {
            if let Some(v) = value.as_ref().filter(|_| self.placeholders.contains(&id)) {
                self.placeholders.remove(&id);
                self.maps[id.0 as usize] = MapDecl {
                    name: full,
                    keys: keys.to_vec(),
                    value: v.clone(),
                };
                return Ok(id);
            }
            let decl = &mut self.maps[id.0 as usize];
            if decl.keys.len() != keys.len() {
                return Err(Diagnostic::at(
                    span,
                    format!(
                        "map {} is used with {} key(s) here but {} elsewhere",
                        full,
                        keys.len(),
                        decl.keys.len()
                    ),
                ));
            }
            for (have, new) in decl.keys.iter_mut().zip(keys) {
                *have = unify(have, new).ok_or_else(|| {
                    Diagnostic::at(
                        span,
                        format!(
                            "map {} key has type {} here but {} elsewhere",
                            full,
                            new.describe(),
                            have.describe()
                        ),
                    )
                })?;
            }
            if let Some(value) = value {
                decl.value = match (&decl.value, &value) {
                    (MapValue::Plain(a), MapValue::Plain(b)) => {
                        MapValue::Plain(unify(a, b).ok_or_else(|| {
                            Diagnostic::at(
                                span,
                                format!(
                                    "map {} holds {} here but {} elsewhere",
                                    full,
                                    b.describe(),
                                    a.describe()
                                ),
                            )
                        })?)
                    }
                    (a, b) if a == b => value,
                    _ => {
                        return Err(Diagnostic::at(
                            span,
                            format!("map {} is used with two different aggregations", full),
                        ))
                    }
                };
            }
            return Ok(id);
        }
        let value = match value {
            Some(v) => v,
            None if self.collecting => {
                self.placeholders.insert(MapId(self.maps.len() as u32));
                MapValue::Plain(Ty::I64)
            }
            None => {
                let mut off: Vec<&str> = Vec::new();
                for (_, why) in self.off.iter().filter(|(n, _)| *n == full) {
                    if !off.contains(&why.as_str()) {
                        off.push(why);
                    }
                }
                let message = if self.failed_writes.contains(&full) {
                    let message = format!("map {} has no value: its assignments failed", full);
                    return Err(Diagnostic::consequence(span, message));
                } else if off.is_empty() {
                    format!("map {} is read but never assigned", full)
                } else {
                    format!(
                        "map {} is off on this kernel ({}) and cannot be read here",
                        full,
                        off.join("; ")
                    )
                };
                return Err(Diagnostic::at(span, message));
            }
        };
        let id = MapId(self.maps.len() as u32);
        self.maps.push(MapDecl {
            name: full.clone(),
            keys: keys.to_vec(),
            value,
        });
        self.map_ids.insert(full, id);
        Ok(id)
    }
}

/// The common type of two uses of a map key, map value or variable:
/// integers widen to the larger size, strings to the longer buffer.
pub(crate) fn unify(a: &Ty, b: &Ty) -> Option<Ty> {
    match (a, b) {
        (Ty::Int { size: x, signed }, Ty::Int { size: y, .. }) => Some(Ty::Int {
            size: *x.max(y),
            signed: *signed,
        }),
        (Ty::Str(x), Ty::Str(y)) => Some(Ty::Str(*x.max(y))),
        (Ty::Tuple(x), Ty::Tuple(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .map(|(p, q)| unify(p, q))
            .collect::<Option<Vec<_>>>()
            .map(Ty::Tuple),
        (Ty::Ptr(_), Ty::Ptr(_)) | (Ty::Ptr(_), Ty::Int { .. }) => Some(a.clone()),
        (Ty::PacketPtr(_), Ty::PacketPtr(_)) => Some(a.clone()),
        // A redacted integer stays redacted when it meets a plain one.
        (Ty::Named(n), plain @ Ty::Int { .. }) | (plain @ Ty::Int { .. }, Ty::Named(n)) => {
            match n.as_ref() {
                types::Names::Redacted(inner) => unify(inner, plain)
                    .map(|t| Ty::Named(std::sync::Arc::new(types::Names::Redacted(t)))),
                _ => None,
            }
        }
        _ if a == b => Some(a.clone()),
        _ => None,
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
