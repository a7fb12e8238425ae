//! The live state of a REPL session: the probes attached so far (one BPF
//! object per input), the maps they share, and the scratch definitions
//! (`param`, `fn`, `stage`) that later inputs may use.

use std::os::fd::OwnedFd;

use crate::bpf::AttachPoint;
use crate::diag::{Diagnostic, Failure, Source};
use crate::driver;
use crate::output::Printer;
use crate::params;
use crate::pipeline::Compiled;
use crate::providers::Kind;
use crate::runtime::decode::{self, KallsymsOnly};
use crate::runtime::paths::PathReports;
use crate::runtime::session::{attach, drain_events, load_checked_reusing, shape};
use crate::runtime::{self, LoadedObject, SharedMap};
use crate::sema::tast::{Agg, MapDecl, MapValue};
use crate::syntax::{self, ast::Item};

/// Name of the pseudo-file holding the session's definitions in
/// diagnostics.
const DEFINITIONS: &str = "<definitions>";

/// One input's probes, attached together.
pub struct LiveProbe {
    /// Session-wide id (`:detach ID`).
    pub id: u32,
    /// Where the probes came from (`<input 3>` or a script file).
    pub origin: String,
    /// Where each program is attached, as used on this kernel
    /// (`tracepoint:net:netif_rx`, `kprobe:tcp_sendmsg`; BEGIN and END
    /// run once).
    pub points: Vec<String>,
    compiled: Compiled,
    object: LoadedObject,
}

impl LiveProbe {
    /// How many times the programs ran (0 unless BPF run statistics are on).
    pub fn hits(&self) -> u64 {
        self.object.program_stats().iter().map(|s| s.run_cnt).sum()
    }

    /// Kernel ids of the programs (as `bpftool prog show` lists them).
    pub fn program_ids(&self) -> Vec<u32> {
        self.object.program_ids()
    }

    /// Names of the packet paths this input defined.
    pub fn path_names(&self) -> Vec<String> {
        let paths = &self.compiled.script.paths;
        paths.iter().map(|p| p.name.clone()).collect()
    }
}

/// A scratch definition kept for later inputs.
struct Definition {
    /// `param`, `fn` or `stage`.
    kind: &'static str,
    name: String,
    text: String,
}

/// What an input did.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Probes were attached under this id.
    Attached(u32),
    /// Only definitions: their names.
    Defined(Vec<String>),
    /// `--help` of a loaded script: its parameters.
    Help(String),
}

/// The probes, maps and definitions of a REPL session.
pub struct Session {
    definitions: Vec<Definition>,
    maps: Vec<(MapDecl, SharedMap)>,
    probes: Vec<LiveProbe>,
    next_id: u32,
    start_ns: u64,
    /// The flags no parameter may take: netscript's own options.
    reserved_flags: Vec<String>,
    /// Keeps the kernel's BPF run statistics on while the session lives.
    _stats: Option<OwnedFd>,
}

/// The source of an item (`start..end`), with the `;` that ends it if one follows.
fn item_text(text: &str, start: usize, end: usize) -> String {
    let rest = &text[end..];
    let trimmed = rest.trim_start();
    let end = if trimmed.starts_with(';') {
        end + (rest.len() - trimmed.len()) + 1
    } else {
        end
    };
    text[start..end].to_string()
}

impl Session {
    /// An empty session, whose inputs' parameters may not take the flags
    /// `reserved_flags` (netscript's own options).
    pub fn new(reserved_flags: Vec<String>) -> Session {
        Session {
            definitions: Vec::new(),
            maps: Vec::new(),
            probes: Vec::new(),
            next_id: 1,
            start_ns: runtime::monotonic_ns(),
            reserved_flags,
            _stats: runtime::enable_run_stats().ok(),
        }
    }

    /// The attached probes, by id.
    pub fn probes(&self) -> &[LiveProbe] {
        &self.probes
    }

    /// The session's maps, in creation order.
    pub fn maps(&self) -> impl Iterator<Item = &MapDecl> {
        self.maps.iter().map(|(decl, _)| decl)
    }

    /// Compiles an input (`name` labels it in diagnostics), attaches its
    /// probes under a new id and keeps its definitions. `args` binds the
    /// input's parameters (`--flag value`). On any error nothing changes.
    pub fn submit(&mut self, name: &str, text: &str, args: &[String]) -> Result<Outcome, Failure> {
        let own = Source::new(name, text);
        let ast = syntax::parse(text).map_err(|d| Failure::new((d, Some(own.clone()))))?;
        let mut defined = Vec::new();
        let mut attaches = false;
        for item in &ast.items {
            let (kind, name, span) = match item {
                Item::Param(d) => ("param", &d.name, d.span),
                Item::Config(d) => ("config", &d.name, d.span),
                Item::Const(d) => ("const", &d.name, d.span),
                Item::Fn(d) => ("fn", &d.name, d.span),
                Item::Stage(d) => ("stage", &d.name, d.span),
                Item::Probe(_) | Item::Path(_) | Item::StageProgram(_) => {
                    attaches = true;
                    continue;
                }
            };
            defined.push(Definition {
                kind,
                name: name.clone(),
                text: item_text(text, span.start, span.end),
            });
        }
        let mut source = own;
        let kept: Vec<&Definition> = self
            .definitions
            .iter()
            .filter(|d| !defined.iter().any(|n| n.kind == d.kind && n.name == d.name))
            .collect();
        if !kept.is_empty() {
            let text: Vec<&str> = kept.iter().map(|d| d.text.as_str()).collect();
            source.append(DEFINITIONS, &text.join("\n"));
        }
        crate::stdlib::attach(&mut source);
        let fail = |d: Diagnostic| Failure::new((d, Some(source.clone())));
        let script = driver::ParsedScript::parse(&source, &self.reserved_flags).map_err(fail)?;
        let values = match script.bind(args).map_err(|d| Failure::new((d, None)))? {
            params::Request::Run(values) => values,
            params::Request::Help => return Ok(Outcome::Help(params::help(name, script.params()))),
        };
        if !attaches {
            let names = defined.iter().map(|d| format!("{} {}", d.kind, d.name));
            let names = names.collect();
            self.keep(defined);
            return Ok(Outcome::Defined(names));
        }
        let known: Vec<MapDecl> = self.maps().cloned().collect();
        let options = driver::Options {
            known_maps: known.clone(),
            start_ns: self.start_ns,
            ..Default::default()
        };
        let compiled = script.compile(values, &options).map_err(fail)?;
        if let Some((old, new)) = known
            .iter()
            .zip(&compiled.script.maps)
            .find(|(a, b)| a != b)
        {
            return Err(fail(Diagnostic::plain(format!(
                "map {} would change from {} to {}: :clear or rename it",
                old.name,
                describe(old),
                describe(new)
            ))));
        }
        let reuse: Vec<&SharedMap> = self.maps.iter().map(|(_, m)| m).collect();
        let mut object = load_checked_reusing(&compiled, &reuse).map_err(fail)?;
        let attached = attach(&compiled, &mut object, false, &source, || false).map_err(fail)?;
        let points = (compiled.script.programs.iter())
            .filter_map(|p| match p.probe.attach_point() {
                AttachPoint::Manual => Some(p.probe.display()),
                point => attached
                    .iter()
                    .any(|a| a.name == p.name)
                    .then(|| point.to_string()),
            })
            .collect();
        let mut new_maps = Vec::new();
        for (i, decl) in compiled.script.maps.iter().enumerate().skip(known.len()) {
            let shared = object
                .shared_map(decode::bpf_map_name(&compiled.maps, i))
                .map_err(fail)?;
            new_maps.push((decl.clone(), shared));
        }
        for p in compiled.script.programs.iter() {
            if p.probe.kind == Kind::Begin {
                object.run_once(&p.name).map_err(fail)?;
            }
        }
        self.maps.extend(new_maps);
        self.keep(defined);
        let id = self.next_id;
        self.next_id += 1;
        self.probes.push(LiveProbe {
            id,
            origin: name.to_string(),
            points,
            compiled,
            object,
        });
        Ok(Outcome::Attached(id))
    }

    /// Keeps new definitions, replacing earlier ones of the same name.
    fn keep(&mut self, defined: Vec<Definition>) {
        self.definitions
            .retain(|d| !defined.iter().any(|n| n.kind == d.kind && n.name == d.name));
        self.definitions.extend(defined);
    }

    /// Detaches the probes of input `id` (running its END probes first);
    /// false if there is none.
    pub fn detach(&mut self, id: u32, printer: &mut Printer) -> Result<bool, Diagnostic> {
        let Some(at) = self.probes.iter().position(|p| p.id == id) else {
            return Ok(false);
        };
        let probe = self.probes.remove(at);
        for p in &probe.compiled.script.programs {
            if p.probe.kind == Kind::End {
                probe.object.run_once(&p.name)?;
            }
        }
        drain_events(&probe.compiled, &probe.object, printer)?;
        let paths = &probe.compiled.script.paths;
        PathReports::new(paths, &probe.compiled.maps).report(
            &probe.object,
            printer,
            runtime::monotonic_ns(),
            true,
        )?;
        Ok(true)
    }

    /// Detaches every probe; returns their ids.
    pub fn detach_all(&mut self, printer: &mut Printer) -> Result<Vec<u32>, Diagnostic> {
        let ids: Vec<u32> = self.probes.iter().map(|p| p.id).collect();
        for id in &ids {
            self.detach(*id, printer)?;
        }
        Ok(ids)
    }

    /// Prints what the probes sent since the last call (printf, print,
    /// paths); probes that called `exit()` are detached, their ids returned.
    pub fn drain(&mut self, printer: &mut Printer) -> Result<Vec<u32>, Diagnostic> {
        let mut exited = Vec::new();
        for p in &self.probes {
            if drain_events(&p.compiled, &p.object, printer)? {
                exited.push(p.id);
            }
        }
        for id in &exited {
            self.detach(*id, printer)?;
        }
        Ok(exited)
    }

    /// The map called `name` (`@x`).
    fn map(&self, name: &str) -> Result<&(MapDecl, SharedMap), Diagnostic> {
        self.maps
            .iter()
            .find(|(decl, _)| decl.name == name)
            .ok_or_else(|| Diagnostic::plain(format!("no map named {name} (see :maps)")))
    }

    /// Prints map `name` as bpftrace would at exit.
    pub fn print_map(&self, name: &str, printer: &mut Printer) -> Result<(), Diagnostic> {
        let (decl, shared) = self.map(name)?;
        let dump = decode::map_dump(decl, &shared.entries()?, &KallsymsOnly);
        printer
            .map_shaped(&dump, shape(decl))
            .and_then(|_| printer.flush())
            .map_err(|e| Diagnostic::plain(format!("cannot write output: {e}")))
    }

    /// Empties map `name` while its probes keep running.
    pub fn clear_map(&self, name: &str) -> Result<(), Diagnostic> {
        self.map(name)?.1.delete_all()
    }

    /// `name  keys -> value  (N entries)` for every map.
    pub fn map_lines(&self) -> Result<Vec<String>, Diagnostic> {
        let mut lines = Vec::new();
        for (decl, shared) in &self.maps {
            lines.push(format!(
                "{}  {}  ({} entries)",
                decl.name,
                describe(decl),
                shared.entries()?.len()
            ));
        }
        Ok(lines)
    }
}

/// A map's key and value types, e.g. `[u32, string] -> count`.
fn describe(decl: &MapDecl) -> String {
    let keys: Vec<String> = decl.keys.iter().map(|k| k.describe()).collect();
    let value = match &decl.value {
        MapValue::Plain(ty) => ty.describe(),
        MapValue::Agg(Agg::Hist { bits: 0 }) => "hist".to_string(),
        MapValue::Agg(Agg::Hist { bits }) => format!("hist(x, {bits})"),
        MapValue::Agg(Agg::Lhist { min, max, step }) => format!("lhist(x, {min}, {max}, {step})"),
        MapValue::Agg(agg) => format!("{agg:?}").to_lowercase(),
    };
    if keys.is_empty() {
        value
    } else {
        format!("[{}] -> {}", keys.join(", "), value)
    }
}
