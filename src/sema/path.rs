//! Packet paths: each stage becomes a program that binds `$skb` to the
//! packet, applies the stage guard and the path's filter, computes the
//! path's key and records the stage (`Stmt::PathStage`); stages of a path
//! on one probe point with one packet share a program. A recalled first
//! stage (before the packet exists) keeps its time under a mark
//! (`Stmt::PathMark`), which the next stage recalls by the packet's span.
//! Stages whose probe this kernel lacks are skipped with one notice; the
//! path is measured over the stages that remain.

use super::recall::{expect_integers, mark_stage, no_packet, recalled_stage};
use super::scope::Scope;
use super::stmt::param_count;
use super::tast::{self, Expr, PathInfo, Stmt};
use super::{params, program_name, Checker, StageChoice};
use crate::diag::{Diagnostic, Result, Span};
use crate::format::printf::ArgKind;
use crate::kernel::btf::Btf;
use crate::kernel::symbols::kernel_features;
use crate::providers::{self, Kind, ProbePoint};
use crate::syntax::ast;
use crate::types::Ty;

/// Packets in flight a path's record table holds unless `records` says
/// otherwise.
pub const DEFAULT_RECORDS: i64 = 4096;
/// The most packets in flight a path's record table may be asked to hold.
pub const MAX_RECORDS: u32 = 1 << 24;

/// Option names a path accepts, besides `key` and `filter`.
const OPTIONS: &[&str] = &[
    "threshold",
    "rate_limit",
    "timeout",
    "records",
    "hist_bits",
    "hist_by",
    "hist_groups",
    "detail",
    "histogram",
    "stacks",
    "interval",
    "title",
    "subtitle",
    "describe",
    "info",
    "split",
    "skip_note",
    "style",
    "halves",
    "half_fields",
    "enabled",
];

impl Checker<'_> {
    /// Checks a path declaration and adds it to the script's paths; its
    /// attachable stages are returned for [`Checker::stage_programs`]
    /// (none when the path is not enabled).
    pub(super) fn check_path<'d>(&mut self, decl: &'d ast::PathDecl) -> Result<Vec<StagePlan<'d>>> {
        let option = |name: &str| decl.option(name);
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
        if let Some(e) = option("enabled") {
            if self.constant(e)? == 0 {
                return Ok(Vec::new());
            }
        }
        if option("key").is_none() {
            return Err(Diagnostic::at(
                decl.span,
                format!("path {} needs `key = ...;`", decl.name),
            ));
        }
        let constant = |c: &mut Self, name: &str, default: i64| -> Result<i64> {
            match option(name) {
                Some(e) => c.constant(e),
                None => Ok(default),
            }
        };
        let mut info = PathInfo {
            name: decl.name.clone(),
            stages: Vec::new(),
            key: Ty::Void,
            threshold_ns: constant(self, "threshold", 0)?.max(0) as u64,
            rate_limit: constant(self, "rate_limit", 0)?.max(0) as u64,
            timeout_ns: constant(self, "timeout", 5_000_000_000)?.max(1) as u64,
            // bpftrace's map size: a table a stage finds in the CPU caches
            // (docs/performance.md); `evicted` tells when it is too small.
            records: match self.options.path_records {
                Some(n) => n,
                None => {
                    constant(self, "records", DEFAULT_RECORDS)?.clamp(1, MAX_RECORDS.into()) as u32
                }
            },
            hist_bits: constant(self, "hist_bits", 3)?.clamp(0, tast::MAX_HIST_BITS as i64) as u8,
            hist_groups: self.hist_groups(decl)?,
            detail: constant(self, "detail", 1)? != 0,
            histogram: constant(self, "histogram", 1)? != 0,
            stacks: constant(self, "stacks", 0)? != 0,
            interval_ns: constant(self, "interval", 0)?.max(0) as u64,
            dev_offsets: skb_dev_offsets(),
            capture: false,
            report: tast::PathReport {
                title: self.setting_str(option("title"))?.unwrap_or_default(),
                subtitle: self.setting_str(option("subtitle"))?.unwrap_or_default(),
                describe: self.setting_str(option("describe"))?,
                info: Ty::Void,
                split: constant(self, "split", 0)?.max(0) as u32,
                skip_note: self.setting_str(option("skip_note"))?.unwrap_or_default(),
                style: match self.setting_str(option("style"))?.as_deref() {
                    None | Some("trace") => tast::ReportStyle::Trace,
                    Some("compact") => tast::ReportStyle::Compact,
                    Some(other) => {
                        return Err(Diagnostic::at(
                            option("style").map_or(decl.span, |e| e.span),
                            format!("unknown report style '{}' (trace, compact)", other),
                        ))
                    }
                },
                halves: self.half_settings(option("halves"))?,
                half_fields: self.half_settings(option("half_fields"))?,
            },
        };
        let path_id = self.paths.len() as u32;
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
            self.errors.push(Diagnostic::at(
                decl.span,
                format!(
                    "path {} has fewer than two stages with a packet this kernel can attach",
                    decl.name
                ),
            ));
        }
        if info.stacks {
            self.uses_kstack = true;
        }
        info.capture = self.options.pcap && info.detail;
        self.paths.push(info);
        Ok(chosen)
    }

    /// Adds the programs of the paths' stages: stages on the same probe
    /// point with the same packet share one program, whichever paths they
    /// belong to (one run per hit, and the headers found once for every
    /// guard and filter; bpftrace runs one program per probe too). Each
    /// path's key and `info` types come from its stages.
    pub(super) fn stage_programs(&mut self, plans: Vec<StagePlan>) -> Result<()> {
        self.stage_warnings();
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
        for group in &groups {
            let program = self.stage_program(group)?;
            for stmt in &program.body {
                let Stmt::If(_, inner, _) = stmt else {
                    continue;
                };
                let Some(Stmt::PathStage { path, stage, .. }) = inner.first() else {
                    continue;
                };
                let plan = group
                    .iter()
                    .find(|p| p.path == *path && p.index == *stage)
                    .expect("a stage of the group");
                let (key_ty, info_ty) = recorded_types(inner).unwrap_or((Ty::Void, Ty::Void));
                let info = &mut self.paths[*path as usize];
                if *stage == info.leader() {
                    info.report.info = info_ty;
                }
                match (&info.key, &key_ty) {
                    (Ty::Void, _) => info.key = key_ty,
                    (have, new) if have != new => {
                        return Err(Diagnostic::at(
                            plan.decl.span,
                            format!(
                                "the key is {} at this stage but {} at the first",
                                new.describe(),
                                have.describe()
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            self.programs.push(program);
        }
        for plan in groups.iter().flatten() {
            let info = &self.paths[plan.path as usize];
            if plan.index != info.leader() {
                continue;
            }
            let report = &info.report;
            let formats = [
                ("describe", report.describe.iter().collect::<Vec<_>>()),
                ("halves", report.halves.iter().collect()),
                ("half_fields", report.half_fields.iter().collect()),
            ];
            // Without info, the formats take the key's values.
            let values = match &report.info {
                Ty::Void => &info.key,
                info => info,
            };
            for (setting, formats) in formats {
                if let Some(e) = plan.path_decl.option(setting) {
                    for format in formats {
                        check_report_format(format, values, e.span)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A setting with one constant string per half of a split path.
    fn half_settings(&mut self, e: Option<&ast::Expr>) -> Result<Vec<String>> {
        match e {
            Some(e) => self.strings(e, Some(2), "two strings, one per half"),
            None => Ok(Vec::new()),
        }
    }

    /// The names of the groups `hist_by` splits the histograms into.
    fn hist_groups(&mut self, decl: &ast::PathDecl) -> Result<Vec<String>> {
        match (decl.option("hist_by"), decl.option("hist_groups")) {
            (None, None) => Ok(Vec::new()),
            (Some(_), Some(e)) => self.strings(e, None, "one string per group"),
            (by, groups) => Err(Diagnostic::at(
                by.or(groups).map_or(decl.span, |e| e.span),
                "`hist_by` (a packet's group, 0 to N-1) and `hist_groups` (the N groups' names) go together",
            )),
        }
    }

    /// A tuple of constant strings (`count` of them, if given; a single
    /// string is a tuple of one).
    fn strings(&mut self, e: &ast::Expr, count: Option<usize>, what: &str) -> Result<Vec<String>> {
        let items = match &e.kind {
            ast::ExprKind::Tuple(items) => items.iter().collect(),
            _ => vec![e],
        };
        if count.is_some_and(|n| n != items.len()) {
            return Err(Diagnostic::at(
                e.span,
                format!("expected {}: (\"...\", \"...\")", what),
            ));
        }
        items
            .into_iter()
            .map(|i| Ok(self.setting_str(Some(i))?.unwrap_or_default()))
            .collect()
    }

    /// A constant string setting, if given.
    fn setting_str(&mut self, e: Option<&ast::Expr>) -> Result<Option<String>> {
        let Some(e) = e else {
            return Ok(None);
        };
        let point = ProbePoint {
            kind: Kind::Begin,
            target: providers::Target::Once,
        };
        Scope::new(self, point)?.constant_str(e).map(Some)
    }

    /// A constant path setting.
    fn constant(&mut self, e: &ast::Expr) -> Result<i64> {
        let point = ProbePoint {
            kind: Kind::Begin,
            target: providers::Target::Once,
        };
        Scope::new(self, point)?.constant(e)
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
    /// can attach, or `None` (noted for [`Checker::stage_warnings`]) when
    /// there is none.
    fn stage_probe<'s>(
        &mut self,
        stage: &ast::StageDecl,
        path: &str,
        probes: &'s [ast::StageProbe],
    ) -> Result<Option<(&'s ast::StageProbe, ProbePoint)>> {
        let mut reasons = Vec::new();
        for alt in probes {
            let spec = &alt.spec;
            match providers::expand(
                &spec.provider,
                &params::probe_parts(spec, &self.options.params)?,
                spec.span,
            ) {
                Ok(points) if points.len() == 1 => {
                    let mut point = points.into_iter().next().expect("one point");
                    if let (Some(k), true) =
                        (point.kprobe_fallback(), self.options.fentry_as_kprobe)
                    {
                        point = k;
                    }
                    let kprobe = matches!(point.kind, Kind::Kprobe | Kind::Kretprobe);
                    let skip = match self.options.stage_choice {
                        StageChoice::Attachable => kprobe && !kernel_features().kprobes,
                        StageChoice::Kprobe => false,
                        StageChoice::Tracepoint => {
                            kprobe || matches!(point.kind, Kind::Fentry | Kind::Fexit)
                        }
                    };
                    if skip {
                        let why = match self.options.stage_choice {
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
        self.skipped_stages
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
        for (why, stage, path, span) in &self.skipped_stages {
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
        let warnings: Vec<Diagnostic> = reasons
            .iter()
            .map(|(why, span, stages)| {
                let named: Vec<String> = stages
                    .iter()
                    .map(|(stage, paths)| format!("{} ({})", stage, paths.join(", ")))
                    .collect();
                let noun = if stages.len() == 1 { "stage" } else { "stages" };
                Diagnostic::warning(
                    Some(*span),
                    format!("{}, {} skipped: {}", why, noun, named.join(", ")),
                )
            })
            .collect();
        self.warnings.extend(warnings);
    }

    /// The program of the stages of `group` (one probe point, one packet
    /// expression, or recalled stages only): `$skb` bound once, then each
    /// stage's guard and its path's filter around its record. Stages that
    /// may start a record keep the `info` values; the first stage with a
    /// packet after a recalled one evaluates the packet's span. A recalled
    /// stage has no packet: only its guard is around its mark.
    fn stage_program(&mut self, group: &[StagePlan]) -> Result<tast::Program> {
        let first = &group[0];
        let point = first.point.clone();
        let name = program_name(self.programs.len(), &point);
        let param_count = param_count(&point)?;
        // The last stage of its path adds to the histograms.
        let lasts: Vec<bool> = group
            .iter()
            .map(|p| p.index as usize + 1 == self.paths[p.path as usize].stages.len())
            .collect();
        // Stages that start records of a path with `--pcap` capture the packet.
        let captures: Vec<bool> = group
            .iter()
            .map(|p| p.starter && self.paths[p.path as usize].capture)
            .collect();
        let mut scope = Scope::new(self, point.clone())?;
        let mut body = Vec::new();
        let skb = match &first.alt.target {
            ast::StageTarget::Packet(packet) => {
                let packet = scope.expr(packet)?;
                scope.expect_scalar(&packet, "a stage's packet")?;
                let skb_ty = Ty::Ptr(Btf::vmlinux().ok().and_then(|b| b.find_struct("sk_buff")));
                let skb = scope.declare_var("skb", skb_ty);
                let value = Expr {
                    ty: Ty::U64,
                    kind: tast::ExprKind::Var(skb),
                    span: packet.span,
                };
                body.push(Stmt::SetVar(skb, packet));
                Some(value)
            }
            ast::StageTarget::Recall { .. } => None,
        };
        for ((plan, last), capture) in group.iter().zip(lasts).zip(captures) {
            let (ast::StageTarget::Packet(_), Some(skb)) = (&plan.alt.target, &skb) else {
                body.push(mark_stage(&mut scope, plan).map_err(no_packet)?);
                continue;
            };
            let option = |name: &str| plan.path_decl.option(name);
            let (key, filter, info) = (option("key"), option("filter"), option("info"));
            let group = option("hist_by").filter(|_| last);
            let key = key.expect("a checked path has a key");
            // The guard always runs: what it computes serves every stage
            // after it, and so does the filter of a stage without a guard.
            // A guarded stage's filter runs only when the guard holds, and
            // the key and `info` only when both do: they are checked in a
            // region of their own (sema/memo.rs), shared with each other
            // but not with the next stage.
            let guard = plan.alt.guard.as_ref().map(|g| scope.expr(g)).transpose()?;
            let always = match (&guard, filter) {
                (None, Some(f)) => Some(scope.expr(f)?),
                _ => None,
            };
            // The span is checked (and lowered) before `info`, which runs
            // only when a record starts: what `info` computes may serve it.
            let (condition, key, recall, info, group, capture) =
                scope.in_region(false, |scope| -> Result<_> {
                    let condition = match (guard, always, filter) {
                        (None, Some(f), _) => f,
                        (None, None, _) => int(1, plan.alt.spec.span),
                        (Some(g), _, Some(f)) => and(g, scope.expr(f)?),
                        (Some(g), _, None) => g,
                    };
                    scope.expect_scalar(&condition, "a stage guard")?;
                    let key = scope.expr(key)?;
                    scope.expect_storable(&key)?;
                    let recall = match &plan.recall {
                        Some(span) => {
                            let v = scope.expr(span)?;
                            expect_integers(
                                &v,
                                "a recalled stage's span",
                                "(owner, start, length)",
                            )?;
                            Some(Box::new(v))
                        }
                        None => None,
                    };
                    let info = match info.filter(|_| plan.starter) {
                        Some(e) => {
                            let v = scope.expr(e)?;
                            scope.expect_storable(&v)?;
                            Some(v)
                        }
                        None => None,
                    };
                    let group = match group {
                        Some(e) => {
                            let g = scope.expr(e)?;
                            scope.expect_scalar(&g, "`hist_by`")?;
                            Some(Box::new(g))
                        }
                        None => None,
                    };
                    let capture = match capture {
                        true => Some(Box::new(pkt_capture(scope, &key)?)),
                        false => None,
                    };
                    Ok((condition, key, recall, info, group, capture))
                })?;
            let record = Stmt::PathStage {
                path: plan.path,
                stage: plan.index,
                info,
                group,
                recall,
                capture,
                key,
                skb: skb.clone(),
            };
            body.push(Stmt::If(condition, vec![record], Vec::new()));
        }
        Ok(tast::Program {
            name,
            probe: point,
            optional: false,
            span: first.decl.span,
            entry_vars: scope.entry_vars(),
            vars: scope.var_types,
            param_count,
            writes: Vec::new(),
            body,
        })
    }
}

/// `pkt_capture($skb)` checked at a stage whose key is `key`: what
/// `--pcap` keeps of the packet (the call is written at the key).
fn pkt_capture(scope: &mut Scope, key: &Expr) -> Result<Expr> {
    let span = key.span;
    let mut call = ast::Expr {
        kind: ast::ExprKind::Call {
            name: "pkt_capture".to_string(),
            args: vec![ast::Expr {
                kind: ast::ExprKind::Var("skb".to_string()),
                span,
            }],
        },
        span,
    };
    scope.checker.functions.inline_expr(&mut call);
    let capture = scope.expr(&call)?;
    expect_integers(
        &capture,
        "pkt_capture($skb)",
        "(start, length, wire length)",
    )?;
    Ok(capture)
}

/// A stage this kernel can attach: its path, its index among the path's
/// attachable stages, its declaration and its path's, the alternative it
/// attaches, whether it may start a record, and for the first stage with
/// a packet after a recalled stage, the recalled stage's span.
pub(super) struct StagePlan<'d> {
    pub(super) path: u32,
    index: u32,
    pub(super) decl: &'d ast::StageDecl,
    path_decl: &'d ast::PathDecl,
    pub(super) alt: ast::StageProbe,
    point: ProbePoint,
    starter: bool,
    recall: Option<ast::Expr>,
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

/// How deep catalogue stages may refer to one another.
const MAX_CATALOGUE_DEPTH: usize = 8;

pub(super) fn int(v: i64, span: Span) -> Expr {
    Expr {
        ty: Ty::I64,
        kind: tast::ExprKind::Int(v),
        span,
    }
}

fn and(a: Expr, b: Expr) -> Expr {
    let span = a.span.join(b.span);
    Expr {
        ty: Ty::U64,
        kind: tast::ExprKind::Binary {
            op: ast::BinOp::And,
            lhs: Box::new(a),
            rhs: Box::new(b),
            signed: false,
        },
        span,
    }
    .folded()
}

/// The key type recorded by a stage body.
/// The types of the key and of the `info` values a stage records.
fn recorded_types(stmts: &[Stmt]) -> Option<(Ty, Ty)> {
    stmts.iter().find_map(|s| match s {
        Stmt::PathStage { key, info, .. } => Some((
            key.ty.clone(),
            info.as_ref().map_or(Ty::Void, |i| i.ty.clone()),
        )),
        _ => None,
    })
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

/// An error unless a report format (`describe`, `halves`, `half_fields`)
/// fits the values it formats (`info`'s, else the key's).
fn check_report_format(format: &str, info: &Ty, span: Span) -> Result<()> {
    let items = match info {
        Ty::Void => Vec::new(),
        Ty::Tuple(items) => items.clone(),
        other => vec![other.clone()],
    };
    let kinds: Vec<ArgKind> = items
        .iter()
        .map(|t| {
            if t.prints_as_integer() {
                ArgKind::Integer
            } else {
                ArgKind::String
            }
        })
        .collect();
    let pieces =
        crate::format::printf::parse_format(format).map_err(|m| Diagnostic::at(span, m))?;
    crate::format::printf::check_report_args(&pieces, &kinds)
        .map_err(|m| Diagnostic::at(span, format!("format and info do not fit: {}", m)))
}

/// Offsets of `sk_buff.dev` and `net_device.ifindex`, to record the
/// interface at each stage.
fn skb_dev_offsets() -> Option<tast::DevOffsets> {
    let btf = Btf::vmlinux().ok()?;
    let member = |s: &str, m: &str| Some(btf.member(btf.find_struct(s)?, m)?.bit_offset / 8);
    Some(tast::DevOffsets {
        dev: member("sk_buff", "dev")?,
        ifindex: member("net_device", "ifindex")?,
        name: member("net_device", "name")?,
    })
}
