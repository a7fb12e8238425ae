//! Probe providers: one table entry per probe type (`kprobe`, `tracepoint`,
//! `interval`, ...). An entry knows its spellings, how a probe spec expands
//! into concrete probe points, which ELF section tells libbpf the program
//! type, how the program is attached and how its arguments are read.

use crate::bpf::AttachPoint;
use crate::diag::{Diagnostic, Result, Span};
use crate::kernel::{symbols, tracefs};
use crate::syntax::ast;

pub mod targets;
pub use targets::Targets;

/// The probe types netscript knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `kprobe:func`
    Kprobe,
    /// `kretprobe:func`
    Kretprobe,
    /// `fentry:func` (falls back to a kprobe)
    Fentry,
    /// `fexit:func` (falls back to a kretprobe)
    Fexit,
    /// `tracepoint:category:name`
    Tracepoint,
    /// `rawtracepoint:name`
    RawTracepoint,
    /// `interval:s:N` / `interval:ms:N` / `interval:us:N`
    Interval,
    /// `BEGIN`
    Begin,
    /// `END`
    End,
    /// `xdp:IFACE`: every packet received on a network interface, with
    /// direct access to its bytes (`pkt`, `pkt_len`).
    Xdp,
}

/// The longest `interval` period: a day.
const MAX_INTERVAL_NS: u64 = 86_400 * 1_000_000_000;

/// `XDP_PASS`: what XDP programs return (netscript never drops a packet).
pub const XDP_PASS: i64 = 2;

impl Kind {
    /// The value the program returns: `XDP_PASS` for XDP (the packet goes
    /// on), 0 for every other program type.
    pub fn exit_code(self) -> i64 {
        match self {
            Kind::Xdp => XDP_PASS,
            _ => 0,
        }
    }
}

/// How a program reads `arg0..argN` and `retval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgAccess {
    /// From `struct pt_regs` (kprobes), where the `arch` module says the
    /// target CPU keeps them.
    Regs,
    /// From an array of u64 at the context (fentry, fexit, raw tracepoints).
    U64Array,
    /// The probe has no arguments.
    None,
}

/// A table entry.
#[derive(Debug)]
pub struct Provider {
    /// Which probe type.
    pub kind: Kind,
    /// Accepted spellings, the canonical one first.
    pub names: &'static [&'static str],
    /// One line of help for `-l`.
    pub help: &'static str,
    /// How arguments are read.
    pub args: ArgAccess,
    /// Whether the probe has a `retval`.
    pub has_retval: bool,
    /// Number of target parts after the provider (`kprobe:f` has 1).
    pub parts: &'static [usize],
    /// What its probes attach to (listed by `-l`, completed by the REPL).
    pub targets: Targets,
}

/// Every provider.
pub static PROVIDERS: &[Provider] = &[
    Provider {
        kind: Kind::Kprobe,
        names: &["kprobe", "k"],
        help: "kernel function entry",
        args: ArgAccess::Regs,
        has_retval: false,
        parts: &[1, 2],
        targets: Targets::Functions,
    },
    Provider {
        kind: Kind::Kretprobe,
        names: &["kretprobe", "kr"],
        help: "kernel function return",
        args: ArgAccess::Regs,
        has_retval: true,
        parts: &[1, 2],
        targets: Targets::Functions,
    },
    Provider {
        kind: Kind::Fentry,
        names: &["fentry", "f", "kfunc"],
        help: "kernel function entry (BTF, falls back to kprobe)",
        args: ArgAccess::U64Array,
        has_retval: false,
        parts: &[1, 2],
        targets: Targets::Functions,
    },
    Provider {
        kind: Kind::Fexit,
        names: &["fexit", "fr", "kretfunc"],
        help: "kernel function return (BTF, falls back to kretprobe)",
        args: ArgAccess::U64Array,
        has_retval: true,
        parts: &[1, 2],
        targets: Targets::Functions,
    },
    Provider {
        kind: Kind::Tracepoint,
        names: &["tracepoint", "t"],
        help: "kernel tracepoint",
        args: ArgAccess::None,
        has_retval: false,
        parts: &[2],
        targets: Targets::Tracepoints,
    },
    Provider {
        kind: Kind::RawTracepoint,
        names: &["rawtracepoint", "rt"],
        help: "raw kernel tracepoint",
        args: ArgAccess::U64Array,
        has_retval: false,
        parts: &[1],
        targets: Targets::TracepointNames,
    },
    Provider {
        kind: Kind::Interval,
        names: &["interval", "i"],
        help: "timer on one CPU",
        args: ArgAccess::None,
        has_retval: false,
        parts: &[2],
        targets: Targets::None,
    },
    Provider {
        kind: Kind::Xdp,
        names: &["xdp"],
        help: "packets received on an interface (XDP, always passed on)",
        args: ArgAccess::None,
        has_retval: false,
        parts: &[1],
        targets: Targets::Interfaces,
    },
    Provider {
        kind: Kind::Begin,
        names: &["BEGIN"],
        help: "once at start",
        args: ArgAccess::None,
        has_retval: false,
        parts: &[0],
        targets: Targets::None,
    },
    Provider {
        kind: Kind::End,
        names: &["END"],
        help: "once at exit",
        args: ArgAccess::None,
        has_retval: false,
        parts: &[0],
        targets: Targets::None,
    },
];

/// Finds a provider by any of its spellings.
pub fn lookup(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.names.contains(&name))
}

/// True when a program names kernel functions (a kprobe, kretprobe,
/// fentry or fexit probe, or a path stage from the catalogue, whose
/// entries have kprobe alternatives): compiling it reads the kernel's
/// symbols.
pub fn names_kernel_functions(program: &ast::Program) -> bool {
    let function = |spec: &ast::ProbeSpec| {
        lookup(&spec.provider).is_some_and(|p| {
            matches!(
                p.kind,
                Kind::Kprobe | Kind::Kretprobe | Kind::Fentry | Kind::Fexit
            )
        })
    };
    program.items.iter().any(|item| match item {
        ast::Item::Path(path) => {
            path.stages
                .iter()
                .flat_map(|s| &s.alternatives)
                .any(|alt| match alt {
                    ast::StageAlt::Probe(probe) => function(&probe.spec),
                    ast::StageAlt::Named { .. } => true,
                })
        }
        ast::Item::Probe(block) => block.specs.iter().any(function),
        _ => false,
    })
}

/// The provider of a kind.
pub fn of_kind(kind: Kind) -> &'static Provider {
    PROVIDERS
        .iter()
        .find(|p| p.kind == kind)
        .expect("every kind has a table entry")
}

/// What a concrete probe point attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A kernel function (the symbol actually attached, e.g. `ip_rcv.isra.0`
    /// for kprobes; the BTF name for fentry), with its module if known.
    Function {
        /// The name the user wrote, which is also the BTF name.
        name: String,
        /// The kallsyms symbol to attach to.
        symbol: String,
    },
    /// `category:name`
    Tracepoint {
        /// Category (`net`).
        category: String,
        /// Event name (`netif_receive_skb`).
        name: String,
    },
    /// A raw tracepoint name.
    RawTracepoint(String),
    /// A period in nanoseconds.
    Interval(u64),
    /// BEGIN/END.
    Once,
    /// A network interface (XDP).
    Interface {
        /// Its name.
        name: String,
        /// Its index.
        ifindex: u32,
    },
}

/// One concrete probe point after wildcard expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePoint {
    /// The probe type.
    pub kind: Kind,
    /// What it attaches to.
    pub target: Target,
}

impl ProbePoint {
    /// The probe's name as bpftrace prints it (`probe` builtin), e.g.
    /// `tracepoint:net:netif_receive_skb`, `kprobe:tcp_sendmsg`.
    pub fn display(&self) -> String {
        let p = of_kind(self.kind).names[0];
        match &self.target {
            Target::Function { name, .. } => format!("{}:{}", p, name),
            Target::Tracepoint { category, name } => format!("{}:{}:{}", p, category, name),
            Target::RawTracepoint(n) => format!("{}:{}", p, n),
            Target::Interval(ns) => format!("{}:ms:{}", p, ns / 1_000_000),
            Target::Once => p.to_string(),
            Target::Interface { name, .. } => format!("{}:{}", p, name),
        }
    }

    /// The ELF section naming the program type (and, for fentry, the target).
    pub fn section(&self) -> String {
        match (&self.kind, &self.target) {
            (Kind::Kprobe, Target::Function { symbol, .. }) => format!("kprobe/{}", symbol),
            (Kind::Kretprobe, Target::Function { symbol, .. }) => format!("kretprobe/{}", symbol),
            (Kind::Fentry, Target::Function { name, .. }) => format!("fentry/{}", name),
            (Kind::Fexit, Target::Function { name, .. }) => format!("fexit/{}", name),
            (Kind::Tracepoint, Target::Tracepoint { category, name }) => {
                format!("tracepoint/{}/{}", category, name)
            }
            (Kind::RawTracepoint, Target::RawTracepoint(n)) => format!("raw_tp/{}", n),
            (Kind::Interval, _) => "perf_event".into(),
            (Kind::Xdp, _) => "xdp".into(),
            _ => "raw_tp".into(),
        }
    }

    /// How the runtime attaches the loaded program.
    pub fn attach_point(&self) -> AttachPoint {
        match (&self.kind, &self.target) {
            (Kind::Kprobe | Kind::Kretprobe, Target::Function { symbol, .. }) => {
                AttachPoint::Kprobe {
                    func: symbol.clone(),
                    retprobe: self.kind == Kind::Kretprobe,
                }
            }
            (Kind::Fentry | Kind::Fexit, _) => AttachPoint::Fentry,
            (Kind::Tracepoint, Target::Tracepoint { category, name }) => AttachPoint::Tracepoint {
                category: category.clone(),
                name: name.clone(),
            },
            (Kind::RawTracepoint, Target::RawTracepoint(n)) => {
                AttachPoint::RawTracepoint { name: n.clone() }
            }
            (Kind::Interval, Target::Interval(ns)) => AttachPoint::Interval { period_ns: *ns },
            (Kind::Xdp, Target::Interface { ifindex, .. }) => AttachPoint::Xdp {
                ifindex: *ifindex as i32,
            },
            _ => AttachPoint::Manual,
        }
    }

    /// The kprobe twin of an fentry/fexit probe (used when the kernel
    /// refuses fentry programs).
    pub fn kprobe_fallback(&self) -> Option<ProbePoint> {
        let kind = match self.kind {
            Kind::Fentry => Kind::Kprobe,
            Kind::Fexit => Kind::Kretprobe,
            _ => return None,
        };
        Some(ProbePoint {
            kind,
            target: self.target.clone(),
        })
    }
}

/// Expands a probe spec as written into concrete probe points, resolving
/// wildcards against the running kernel.
pub fn expand(provider: &str, parts: &[String], span: Span) -> Result<Vec<ProbePoint>> {
    let p = lookup(provider).ok_or_else(|| {
        let known: Vec<&str> = PROVIDERS.iter().map(|p| p.names[0]).collect();
        Diagnostic::at(
            span,
            format!(
                "unknown probe type '{}' (known: {})",
                provider,
                known.join(", ")
            ),
        )
    })?;
    if !p.parts.contains(&parts.len()) {
        return Err(Diagnostic::at(
            span,
            format!(
                "'{}' probe expects {} part(s) after the type",
                p.names[0], p.parts[0]
            ),
        ));
    }
    let err = |e: Diagnostic| Diagnostic::at(span, e.message);
    let points = match p.kind {
        Kind::Begin | Kind::End => vec![ProbePoint {
            kind: p.kind,
            target: Target::Once,
        }],
        Kind::Kprobe | Kind::Kretprobe | Kind::Fentry | Kind::Fexit => {
            let pattern = parts.last().map(String::as_str).unwrap_or_default();
            let names = if pattern.contains(['*', '?']) {
                symbols::list_functions(pattern).map_err(err)?
            } else {
                vec![pattern.to_string()]
            };
            let mut points = Vec::new();
            for name in names {
                let symbol = symbols::resolve_function(&name).map_err(err)?;
                points.push(ProbePoint {
                    kind: p.kind,
                    target: Target::Function { name, symbol },
                });
            }
            points
        }
        // A plain name needs no scan of every event, only a look at its directory.
        Kind::Tracepoint if !parts.iter().any(|p| p.contains(['*', '?'])) => {
            let dir = tracefs::tracefs_root()
                .map_err(err)?
                .join("events")
                .join(&parts[0])
                .join(&parts[1]);
            if !dir.is_dir() {
                return Err(Diagnostic::at(
                    span,
                    format!("tracepoint {}:{} not found", parts[0], parts[1]),
                ));
            }
            vec![ProbePoint {
                kind: p.kind,
                target: Target::Tracepoint {
                    category: parts[0].clone(),
                    name: parts[1].clone(),
                },
            }]
        }
        Kind::Tracepoint => {
            let pattern = format!("{}:{}", parts[0], parts[1]);
            let found = tracefs::list_tracepoints(&pattern).map_err(err)?;
            found
                .into_iter()
                .map(|(category, name)| ProbePoint {
                    kind: p.kind,
                    target: Target::Tracepoint { category, name },
                })
                .collect()
        }
        Kind::Xdp => {
            let ifindex = crate::params::ifindex(&parts[0]).map_err(|m| Diagnostic::at(span, m))?;
            vec![ProbePoint {
                kind: p.kind,
                target: Target::Interface {
                    name: parts[0].clone(),
                    ifindex,
                },
            }]
        }
        Kind::RawTracepoint => vec![ProbePoint {
            kind: p.kind,
            target: Target::RawTracepoint(parts[0].clone()),
        }],
        Kind::Interval => {
            let unit: u64 = match parts[0].as_str() {
                "s" => 1_000_000_000,
                "ms" => 1_000_000,
                "us" => 1_000,
                "hz" => 0,
                other => {
                    return Err(Diagnostic::at(
                        span,
                        format!("unknown interval unit '{}' (use s, ms, us or hz)", other),
                    ))
                }
            };
            let n: u64 = parts[1].parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                Diagnostic::at(
                    span,
                    format!("interval needs a positive integer, got '{}'", parts[1]),
                )
            })?;
            // hz: the period, which must not round to below 1 µs either.
            let ns = match unit {
                0 => Some(1_000_000_000 / n).filter(|_| n <= 1_000_000),
                _ => n.checked_mul(unit),
            };
            let ns = ns
                .filter(|ns| (1_000..=MAX_INTERVAL_NS).contains(ns))
                .ok_or_else(|| {
                    Diagnostic::at(
                        span,
                        format!(
                            "interval:{}:{}: the period must be 1 us to 1 day (at most 1000000 hz)",
                            parts[0], parts[1]
                        ),
                    )
                })?;
            vec![ProbePoint {
                kind: p.kind,
                target: Target::Interval(ns),
            }]
        }
    };
    if points.is_empty() {
        return Err(Diagnostic::at(
            span,
            format!("no probe matches '{}:{}'", provider, parts.join(":")),
        ));
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_resolves_to_its_kind() {
        for (name, kind) in [
            ("k", Kind::Kprobe),
            ("kr", Kind::Kretprobe),
            ("f", Kind::Fentry),
            ("fr", Kind::Fexit),
            ("t", Kind::Tracepoint),
            ("BEGIN", Kind::Begin),
        ] {
            assert_eq!(lookup(name).map(|p| p.kind), Some(kind));
        }
        assert!(lookup("nope").is_none());
    }

    #[test]
    fn kernel_symbols_are_read_ahead_only_for_kernel_functions_and_paths() {
        let names = |src: &str| names_kernel_functions(&crate::syntax::parse(src).unwrap());
        assert!(names("k:tcp_sendmsg { }"));
        assert!(names(
            "tracepoint:net:net_dev_queue { } fexit:tcp_sendmsg { }"
        ));
        assert!(names("path p { key = 1; stage A = dev_queue_xmit; }"));
        assert!(!names(
            "path p { key = 1; stage A = tracepoint:net:net_dev_queue -> args->skbaddr; }"
        ));
        assert!(!names("tracepoint:net:net_dev_queue { } BEGIN { }"));
        assert!(!names("stage s = kprobe:f -> arg0; interval:s:1 { }"));
    }

    #[test]
    fn interval_units_and_sections() {
        let ms = expand("interval", &["ms".into(), "100".into()], Span::default()).unwrap();
        assert_eq!(ms[0].target, Target::Interval(100_000_000));
        assert_eq!(ms[0].section(), "perf_event");
        let err = expand("interval", &["m".into(), "1".into()], Span::new(0, 10)).unwrap_err();
        assert!(err.message.contains("unknown interval unit"));
        assert!(expand("bogus", &[], Span::default())
            .unwrap_err()
            .message
            .contains("unknown probe type"));
    }

    #[test]
    fn xdp_resolves_its_interface_and_passes_packets() {
        let lo = expand("xdp", &["lo".into()], Span::default()).unwrap();
        assert_eq!(lo[0].display(), "xdp:lo");
        assert_eq!(lo[0].section(), "xdp");
        assert_eq!(lo[0].attach_point(), AttachPoint::Xdp { ifindex: 1 });
        assert_eq!(lo[0].kind.exit_code(), XDP_PASS);
        assert_eq!(Kind::Kprobe.exit_code(), 0);
        let err = expand("xdp", &["nope0".into()], Span::new(3, 12)).unwrap_err();
        assert!(err.message.contains("no network interface named 'nope0'"));
    }
}
