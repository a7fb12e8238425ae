//! The path expansion pass, over the AST before type checking: each path
//! declaration's settings are checked and its constant ones evaluated
//! into its [`tast::PathInfo`]; each stage's catalogue references are resolved
//! and the first alternative this kernel can attach is chosen (stages it
//! cannot attach are skipped, one warning per reason); then stages on one
//! probe point with one packet become one [`ast::StageProgram`], whichever
//! paths they belong to, in place of the paths and catalogue stages.

use std::collections::HashMap;

use super::settings::{self, OPTIONS};
use super::{Expanded, ExpandedPath};
use crate::diag::{Diagnostic, Result, Span};
use crate::kernel::symbols::kernel_features;
use crate::providers::{self, Kind, ProbePoint};
use crate::sema::recall::recalled_stage;
use crate::sema::tast;
use crate::sema::{define, params, Options, StageChoice};
use crate::syntax::ast;

/// How deep catalogue stages may refer to one another.
const MAX_CATALOGUE_DEPTH: usize = 8;

/// Expands the paths of `items` (see the module comment): their path and
/// catalogue stage items are replaced by stage programs, appended after
/// the other items in the order their programs are to be checked.
pub(in crate::sema) fn expand(items: &mut Vec<ast::Item>, options: &Options) -> Expanded {
    let mut pass = Pass {
        options,
        catalogue: HashMap::new(),
        skipped: Vec::new(),
        expanded: Expanded::default(),
    };
    let (taken, kept): (Vec<ast::Item>, Vec<ast::Item>) = std::mem::take(items)
        .into_iter()
        .partition(|item| matches!(item, ast::Item::Path(_) | ast::Item::Stage(_)));
    *items = kept;
    for item in &taken {
        if let ast::Item::Stage(s) = item {
            let library = options.library_start;
            let defined = define(&mut pass.catalogue, &s.name, s, s.span, library, "stage");
            pass.keep_error(defined);
        }
    }
    let mut plans = Vec::new();
    for item in &taken {
        if let ast::Item::Path(path) = item {
            let chosen = pass.path(path);
            plans.extend(pass.keep_error(chosen).into_iter().flatten());
        }
    }
    pass.stage_warnings();
    let programs = pass.stage_programs(plans);
    items.extend(programs.into_iter().map(ast::Item::StageProgram));
    pass.expanded
}

/// The state of [`expand`].
struct Pass<'o> {
    options: &'o Options,
    /// Catalogue stages by name (the script's and the stdlib's).
    catalogue: HashMap<String, ast::StageDecl>,
    /// Path stages this kernel cannot attach: (why, stage, path, where
    /// the stage is declared).
    skipped: Vec<(String, String, String, Span)>,
    expanded: Expanded,
}

/// A stage this kernel can attach: its path, its index among the path's
/// attachable stages, its declaration and its path's, the alternative it
/// attaches, whether it may start a record, and for the first stage with
/// a packet after a recalled stage, the recalled stage's span.
struct StagePlan<'d> {
    path: u32,
    index: u32,
    decl: &'d ast::StageDecl,
    path_decl: &'d ast::PathDecl,
    alt: ast::StageProbe,
    point: ProbePoint,
    starter: bool,
    recall: Option<ast::Expr>,
}

impl Pass<'_> {
    /// The value of `result`, or `None` with its error kept for the report.
    fn keep_error<T>(&mut self, result: Result<T>) -> Option<T> {
        result.map_err(|e| self.expanded.errors.push(e)).ok()
    }

    /// Checks a path declaration and adds it to the paths; its attachable
    /// stages are returned (none when the path is not enabled).
    fn path<'d>(&mut self, decl: &'d ast::PathDecl) -> Result<Vec<StagePlan<'d>>> {
        for (name, e) in &decl.options {
            if name != "key" && name != "filter" && !OPTIONS.contains(&name.as_str()) {
                return Err(Diagnostic::at(
                    e.span,
                    format!(
                        "unknown path setting '{}' (key, filter, {})",
                        name,
                        OPTIONS.join(", ")
                    ),
                ));
            }
        }
        for (i, stage) in decl.stages.iter().enumerate() {
            if decl.stages[..i].iter().any(|s| s.name == stage.name) {
                return Err(Diagnostic::at(
                    stage.span,
                    format!("path {}: stage {} is declared twice", decl.name, stage.name),
                ));
            }
        }
        if let Some(e) = decl.option("enabled") {
            if settings::constant(e)? == 0 {
                return Ok(Vec::new());
            }
        }
        if decl.option("key").is_none() {
            return Err(Diagnostic::at(
                decl.span,
                format!("path {} needs `key = ...;`", decl.name),
            ));
        }
        let (mut info, formats) = settings::path_info(decl, self.options)?;
        let path_id = self.expanded.paths.len() as u32;
        // `split` names a declared stage; stages left out shift the measured ones.
        let declared_split = info.report.split as usize;
        info.report.split = 0;
        // The stages this kernel can attach, each with the alternative it
        // attaches and whether it may start a record (no stage before it
        // must fire).
        let mut chosen = Vec::new();
        for (declared, stage) in decl.stages.iter().enumerate() {
            if declared == declared_split && declared > 0 {
                info.report.split = info.stages.len() as u32;
            }
            let probes = self.stage_probes(&stage.alternatives, 0)?;
            let recalled = recalled_stage(stage, &probes, declared)?;
            let Some((alt, point)) = self.stage_probe(stage, &decl.name, &probes)? else {
                continue;
            };
            let starter = info.stages.iter().all(|s| s.optional);
            // The first stage with a packet recalls the recalled stage's marks.
            let recall = match chosen.first().map(|p: &StagePlan| &p.alt.target) {
                Some(ast::StageTarget::Recall { span, .. }) if chosen.len() == 1 => {
                    Some(span.clone())
                }
                _ => None,
            };
            info.stages.push(tast::StageInfo {
                name: stage.name.clone(),
                label: stage_label(&stage.name, &probes, declared, declared_split),
                optional: stage.optional,
                probe: point.display(),
                recalled,
            });
            chosen.push(StagePlan {
                path: path_id,
                index: info.stages.len() as u32 - 1,
                decl: stage,
                path_decl: decl,
                alt: alt.clone(),
                point,
                starter,
                recall,
            });
        }
        // Reported, and the stages are checked on (their maps still count).
        if info.stages.iter().filter(|s| !s.recalled).count() < 2 {
            self.expanded.errors.push(Diagnostic::at(
                decl.span,
                format!(
                    "path {} has fewer than two stages with a packet this kernel can attach",
                    decl.name
                ),
            ));
        }
        info.capture = self.options.pcap && info.detail;
        self.expanded.paths.push(ExpandedPath { info, formats });
        Ok(chosen)
    }

    /// The probes a stage may use, in order: catalogue references are
    /// replaced by the catalogue stage's alternatives, each with the
    /// reference's guard added.
    fn stage_probes(&self, alts: &[ast::StageAlt], depth: usize) -> Result<Vec<ast::StageProbe>> {
        let mut probes = Vec::new();
        for alt in alts {
            let (name, guard, span) = match alt {
                ast::StageAlt::Probe(p) => {
                    probes.push(p.clone());
                    continue;
                }
                ast::StageAlt::Named { name, guard, span } => (name, guard, *span),
            };
            let entry = self.catalogue.get(name).ok_or_else(|| {
                Diagnostic::at(
                    span,
                    format!("unknown stage '{}' (not in the stage catalogue)", name),
                )
            })?;
            if depth >= MAX_CATALOGUE_DEPTH {
                return Err(Diagnostic::at(
                    span,
                    format!("stage '{}' refers to itself through the catalogue", name),
                ));
            }
            for mut probe in self.stage_probes(&entry.alternatives, depth + 1)? {
                if let Some(g) = guard {
                    probe.guard = Some(match probe.guard {
                        Some(own) => ast::Expr {
                            span: g.span,
                            kind: ast::ExprKind::Binary {
                                op: ast::BinOp::And,
                                lhs: Box::new(own),
                                rhs: Box::new(g.clone()),
                            },
                        },
                        None => g.clone(),
                    });
                }
                probes.push(probe);
            }
        }
        Ok(probes)
    }

    /// The first alternative of a stage (of path `path`) that this kernel
    /// can attach, or `None` (noted for [`Pass::stage_warnings`]) when
    /// there is none.
    fn stage_probe<'s>(
        &mut self,
        stage: &ast::StageDecl,
        path: &str,
        probes: &'s [ast::StageProbe],
    ) -> Result<Option<(&'s ast::StageProbe, ProbePoint)>> {
        let options = self.options;
        let mut reasons = Vec::new();
        for alt in probes {
            let spec = &alt.spec;
            match providers::expand(
                &spec.provider,
                &params::probe_parts(spec, &options.params)?,
                spec.span,
            ) {
                Ok(points) if points.len() == 1 => {
                    let mut point = points.into_iter().next().expect("one point");
                    if let (Some(k), true) = (point.kprobe_fallback(), options.fentry_as_kprobe) {
                        point = k;
                    }
                    let kprobe = matches!(point.kind, Kind::Kprobe | Kind::Kretprobe);
                    let skip = match options.stage_choice {
                        StageChoice::Attachable => kprobe && !kernel_features().kprobes,
                        StageChoice::Kprobe => false,
                        StageChoice::Tracepoint => {
                            kprobe || matches!(point.kind, Kind::Fentry | Kind::Fexit)
                        }
                    };
                    if skip {
                        let why = match options.stage_choice {
                            StageChoice::Tracepoint => "left out by --stages tracepoint",
                            _ => "this kernel has no kprobes",
                        };
                        reasons.push(format!("{}: {}", point.display(), why));
                        continue;
                    }
                    return Ok(Some((alt, point)));
                }
                Ok(_) => {
                    return Err(Diagnostic::at(
                        spec.span,
                        "a stage must name exactly one probe (no wildcards)",
                    ))
                }
                Err(e) if providers::lookup(&spec.provider).is_some() => reasons.push(e.message),
                Err(e) => return Err(e),
            }
        }
        let why = reasons.join("; ");
        self.skipped
            .push((why, stage.name.clone(), path.to_string(), stage.span));
        Ok(None)
    }

    /// One warning per reason stages were left out (a missing kernel
    /// function, say), naming every stage it takes out and their paths:
    /// `WHY, stage(s) skipped: STAGE (path, path), STAGE (path)`.
    fn stage_warnings(&mut self) {
        // Each reason with the stages it takes out, each with its paths.
        type Stages<'a> = Vec<(&'a str, Vec<&'a str>)>;
        let mut reasons: Vec<(&str, Span, Stages)> = Vec::new();
        for (why, stage, path, span) in &self.skipped {
            let at = match reasons.iter().position(|(w, _, _)| w == why) {
                Some(at) => at,
                None => {
                    reasons.push((why, *span, Vec::new()));
                    reasons.len() - 1
                }
            };
            let stages = &mut reasons[at].2;
            match stages.iter_mut().find(|(s, _)| s == stage) {
                Some((_, paths)) => paths.push(path),
                None => stages.push((stage, vec![path])),
            }
        }
        let warnings = reasons.iter().map(|(why, span, stages)| {
            let named: Vec<String> = stages
                .iter()
                .map(|(stage, paths)| format!("{} ({})", stage, paths.join(", ")))
                .collect();
            let noun = if stages.len() == 1 { "stage" } else { "stages" };
            Diagnostic::warning(
                Some(*span),
                format!("{}, {} skipped: {}", why, noun, named.join(", ")),
            )
        });
        self.expanded.warnings.extend(warnings);
    }

    /// The programs of the paths' stages: stages on the same probe point
    /// with the same packet share one program, whichever paths they
    /// belong to (one run per hit, and the headers found once for every
    /// guard and filter; bpftrace runs one program per probe too).
    fn stage_programs(&mut self, plans: Vec<StagePlan>) -> Vec<ast::StageProgram> {
        let mut groups: Vec<Vec<StagePlan>> = Vec::new();
        for plan in plans {
            match groups.iter_mut().find(|g| {
                g[0].point.display() == plan.point.display()
                    && same_target(&g[0].alt.target, &plan.alt.target)
            }) {
                Some(group) => group.push(plan),
                None => groups.push(vec![plan]),
            }
        }
        groups
            .into_iter()
            .map(|group| self.stage_program(group))
            .collect()
    }

    /// The program of the stages of `group` (one probe point, one packet
    /// expression, or recalled stages only).
    fn stage_program(&mut self, group: Vec<StagePlan>) -> ast::StageProgram {
        let first = &group[0];
        let span = first.decl.span;
        let packet = match &first.alt.target {
            ast::StageTarget::Packet(packet) => Some(packet.clone()),
            ast::StageTarget::Recall { .. } => None,
        };
        let point = self.expanded.points.len();
        self.expanded.points.push(first.point.clone());
        let stages = group
            .into_iter()
            .map(|plan| self.program_stage(plan))
            .collect();
        ast::StageProgram {
            point,
            packet,
            stages,
            span,
        }
    }

    /// What stage `plan` does in its program.
    fn program_stage(&self, plan: StagePlan) -> ast::ProgramStage {
        let info = &self.expanded.paths[plan.path as usize].info;
        let last = plan.index as usize + 1 == info.stages.len();
        let option = |name: &str| plan.path_decl.option(name).cloned();
        let record = match plan.alt.target {
            ast::StageTarget::Recall { mark, .. } => ast::StageRecord::Mark(mark),
            ast::StageTarget::Packet(_) => {
                let key = option("key").expect("a path has a key once expanded");
                // Stages that start records of a path with `--pcap`
                // capture the packet.
                let capture = (plan.starter && info.capture).then(|| pkt_capture(key.span));
                ast::StageRecord::Packet(Box::new(ast::PacketRecord {
                    key,
                    filter: option("filter"),
                    info: option("info").filter(|_| plan.starter),
                    group: option("hist_by").filter(|_| last),
                    recall: plan.recall,
                    capture,
                }))
            }
        };
        ast::ProgramStage {
            path: plan.path,
            index: plan.index,
            guard: plan.alt.guard,
            record,
            span: plan.decl.span,
            probe_span: plan.alt.spec.span,
        }
    }
}

/// `pkt_capture($skb)` written at `span` (a stage's key): what `--pcap`
/// keeps of the packet.
fn pkt_capture(span: Span) -> ast::Expr {
    ast::Expr {
        kind: ast::ExprKind::Call {
            name: "pkt_capture".to_string(),
            args: vec![ast::Expr {
                kind: ast::ExprKind::Var("skb".to_string()),
                span,
            }],
        },
        span,
    }
}

/// True when two stage alternatives take the same thing: packets written
/// alike, or marks (a recalled stage has no packet to bind).
fn same_target(a: &ast::StageTarget, b: &ast::StageTarget) -> bool {
    use ast::StageTarget::{Packet, Recall};
    match (a, b) {
        (Packet(x), Packet(y)) => same_packet(x, y),
        (Recall { .. }, Recall { .. }) => true,
        _ => false,
    }
}

/// True when two stages' packet expressions are written alike (wherever
/// they are written): the same argument, context field, or dereference or
/// cast of one. Anything else is taken as different.
fn same_packet(a: &ast::Expr, b: &ast::Expr) -> bool {
    use ast::ExprKind as E;
    match (&a.kind, &b.kind) {
        (E::Builtin(x), E::Builtin(y)) | (E::Ident(x), E::Ident(y)) | (E::Var(x), E::Var(y)) => {
            x == y
        }
        (
            E::Field {
                expr: x,
                field: f,
                arrow: r,
            },
            E::Field {
                expr: y,
                field: g,
                arrow: s,
            },
        ) => f == g && r == s && same_packet(x, y),
        (E::Unary { op: o, expr: x }, E::Unary { op: p, expr: y }) => o == p && same_packet(x, y),
        (E::Cast { ty: t, expr: x }, E::Cast { ty: u, expr: y }) => {
            (&t.base, t.pointer_depth) == (&u.base, u.pointer_depth) && same_packet(x, y)
        }
        _ => false,
    }
}

/// What reports call stage `name`, declared at `declared` in a path whose
/// second half starts at `split` (0: not split): in a split path
/// `P1:S0 (function)`, the function its first probe names.
fn stage_label(name: &str, probes: &[ast::StageProbe], declared: usize, split: usize) -> String {
    let function = probes.first().and_then(|p| p.spec.target.last());
    match function {
        Some(f) if split > 0 => {
            let (half, index) = if declared < split {
                (1, declared)
            } else {
                (2, declared - split)
            };
            format!("P{}:S{} ({})", half, index, f)
        }
        _ => name.to_string(),
    }
}
