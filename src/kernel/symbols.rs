//! Kernel symbols: `/proc/kallsyms` (address resolution,
//! modules, GCC clone names), traceable functions and kernel features.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use super::name_index::NameIndex;
use super::tracefs::tracefs_root;
use crate::diag::Diagnostic;
use crate::glob::glob_match;

/// One kallsyms line, with byte ranges into the file text.
#[derive(Debug, Clone)]
struct Symbol {
    addr: u64,
    name: Range<u32>,
    /// Empty for vmlinux symbols.
    module: Range<u32>,
    kind: u8,
}

impl Symbol {
    /// The symbol of kallsyms line `line`, which starts at byte `start` of
    /// the file; `None` for a malformed line.
    fn parse(line: &[u8], start: u32) -> Option<Symbol> {
        let field_end = |from: usize| {
            let rest = line.get(from..).unwrap_or_default();
            from + rest
                .iter()
                .position(u8::is_ascii_whitespace)
                .unwrap_or(rest.len())
        };
        let addr_end = field_end(0);
        let addr = parse_address(&line[..addr_end])?;
        // `addr kind name`: one space apart.
        let (&kind, &space) = (line.get(addr_end + 1)?, line.get(addr_end + 2)?);
        let name_start = addr_end + 3;
        let name_end = field_end(name_start);
        let module = line
            .get(name_end + 1..)
            .and_then(|m| m.strip_prefix(b"[")?.strip_suffix(b"]"))
            .map_or(0..0, |m| {
                let from = (line.len() - m.len() - 1) as u32;
                start + from..start + from + m.len() as u32
            });
        (space == b' ' && name_end > name_start).then(|| Symbol {
            addr,
            name: start + name_start as u32..start + name_end as u32,
            module,
            kind,
        })
    }

    fn is_text(&self) -> bool {
        matches!(self.kind, b't' | b'T')
    }
}

/// A kallsyms address: up to 16 hex digits. (`u64::from_str_radix` after
/// `str::from_utf8` costs 25M more instructions over a kernel's 121,000
/// lines, 6% of a large script's start-up.)
fn parse_address(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut value = 0u64;
    for &digit in digits {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            b'A'..=b'F' => digit - b'A' + 10,
            _ => return None,
        };
        value = value << 4 | u64::from(nibble);
    }
    Some(value)
}

/// `/proc/kallsyms`, sorted by address.
pub struct Kallsyms {
    text: String,
    symbols: Vec<Symbol>,
    /// Symbols by the part of their name before the first `.`, so that GCC
    /// clones (`name.isra.0`) share their function's key. Built lazily.
    by_base_name: OnceLock<NameIndex>,
}

/// The part of a symbol name before a GCC clone suffix.
fn base_name(name: &str) -> &str {
    // A byte loop: names are short, and `str::find` costs more to set up.
    let end = name.bytes().position(|b| b == b'.').unwrap_or(name.len());
    &name[..end]
}

impl Kallsyms {
    /// Reads and parses `/proc/kallsyms`.
    pub fn load() -> Result<Kallsyms, Diagnostic> {
        let text = std::fs::read_to_string("/proc/kallsyms")
            .map_err(|e| Diagnostic::plain(format!("cannot read /proc/kallsyms: {e}")))?;
        Ok(Kallsyms::parse(text))
    }

    /// Starts loading the process-wide table on another thread (about
    /// 30 ms of reading and parsing /proc/kallsyms), so that compiling a
    /// script that resolves kernel functions finds it loaded, or waits
    /// for the rest only.
    pub fn prefetch() {
        std::thread::spawn(|| {
            let _ = Kallsyms::global();
        });
    }

    /// The process-wide table, loaded on first use.
    pub fn global() -> Result<&'static Kallsyms, Diagnostic> {
        static GLOBAL: OnceLock<Result<Kallsyms, Diagnostic>> = OnceLock::new();
        GLOBAL
            .get_or_init(Kallsyms::load)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Parses kallsyms text (`addr type name [\t[module]]` lines); malformed
    /// lines are skipped. Works on bytes: the file has over 100,000 lines,
    /// and this runs at every start-up that names a kernel function.
    fn parse(text: String) -> Kallsyms {
        let bytes = text.as_bytes();
        let mut symbols = Vec::with_capacity(bytes.len() / 40);
        let mut line_start = 0;
        for line_end in memchr::memchr_iter(b'\n', bytes).chain([bytes.len()]) {
            let line = &bytes[line_start..line_end];
            symbols.extend(Symbol::parse(line, line_start as u32));
            line_start = line_end + 1;
        }
        symbols.sort_by_key(|symbol| symbol.addr);
        Kallsyms {
            text,
            symbols,
            by_base_name: OnceLock::new(),
        }
    }

    fn str_of(&self, range: &Range<u32>) -> &str {
        self.text
            .get(range.start as usize..range.end as usize)
            .unwrap_or("")
    }

    fn name(&self, symbol: &Symbol) -> &str {
        self.str_of(&symbol.name)
    }

    /// The symbol containing `addr` and the offset into it (for `ksym()` and
    /// kernel stacks). `None` below the first symbol, or when addresses are
    /// hidden (all zero, without root).
    pub fn resolve(&self, addr: u64) -> Option<(&str, u64)> {
        let index = self
            .symbols
            .partition_point(|symbol| symbol.addr <= addr)
            .checked_sub(1)?;
        let symbol = &self.symbols[index];
        (symbol.addr != 0).then(|| (self.name(symbol), addr - symbol.addr))
    }

    /// Text symbols named `name` or a GCC clone of it (`name.<suffix>`).
    fn functions_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Symbol> + 'a {
        let index = self.by_base_name.get_or_init(|| {
            NameIndex::build(
                self.symbols
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (base_name(self.name(s)), i as u32)),
            )
        });
        index.candidates(base_name(name)).filter_map(move |i| {
            let symbol = self.symbols.get(i as usize)?;
            let symbol_name = self.name(symbol);
            let matches = symbol_name
                .strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'));
            (symbol.is_text() && matches).then_some(symbol)
        })
    }

    /// The module (bare name, e.g. `openvswitch`, usable with
    /// [`crate::kernel::btf::Btf::module`]) defining function `func`; `None`
    /// for vmlinux functions and unknown names.
    pub fn module_of(&self, func: &str) -> Option<&str> {
        let symbol = self.functions_named(func).find(|s| self.name(s) == func)?;
        (!symbol.module.is_empty()).then(|| self.str_of(&symbol.module))
    }
}

/// Preference of a clone suffix: exact name first, then `.isra`,
/// `.constprop`, `.part`, anything else.
fn clone_rank(name: &str, wanted: &str) -> u8 {
    let suffix = &name[wanted.len().min(name.len())..];
    [("", 0), (".isra.", 1), (".constprop.", 2), (".part.", 3)]
        .iter()
        .find(|(prefix, _)| {
            if prefix.is_empty() {
                suffix.is_empty()
            } else {
                suffix.starts_with(prefix)
            }
        })
        .map_or(4, |&(_, rank)| rank)
}

/// The symbol to attach a kprobe to for function `name`: the name itself if
/// it is a text symbol, else its preferred GCC clone (`name.isra.0`,
/// `name.constprop.0`, `name.part.0`, other `name.<suffix>`).
pub fn resolve_function(name: &str) -> Result<String, Diagnostic> {
    let kallsyms = Kallsyms::global()?;
    kallsyms
        .functions_named(name)
        .map(|symbol| kallsyms.name(symbol))
        .min_by_key(|symbol_name| (clone_rank(symbol_name, name), *symbol_name))
        .map(str::to_string)
        .ok_or_else(|| Diagnostic::plain(format!("kernel function {name} not found")))
}

/// Traceable kernel functions matching glob `pattern`, from tracefs
/// `available_filter_functions` when readable, else kallsyms text symbols;
/// sorted, deduplicated, without the ` [module]` suffix.
pub fn list_functions(pattern: &str) -> Result<Vec<String>, Diagnostic> {
    let from_tracefs = tracefs_root()
        .ok()
        .and_then(|root| std::fs::read_to_string(root.join("available_filter_functions")).ok());
    let mut names: Vec<String> = match from_tracefs {
        Some(text) => text
            .lines()
            .filter_map(|line| line.split_ascii_whitespace().next())
            .filter(|name| glob_match(pattern, name))
            .map(str::to_string)
            .collect(),
        None => {
            let kallsyms = Kallsyms::global()?;
            kallsyms
                .symbols
                .iter()
                .filter(|symbol| symbol.is_text())
                .map(|symbol| kallsyms.name(symbol))
                .filter(|name| glob_match(pattern, name))
                .map(str::to_string)
                .collect()
        }
    };
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

/// What the running kernel supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFeatures {
    /// kprobes can be attached (`CONFIG_KPROBES`).
    pub kprobes: bool,
    /// Multi-kprobe links (kprobes and kernel 5.18 or later).
    pub kprobe_multi: bool,
    /// Kernel BTF is available (`/sys/kernel/btf/vmlinux`).
    pub btf: bool,
    /// BPF ring buffers (kernel 5.8 or later).
    pub ringbuf: bool,
}

/// `(major, minor)` of the running kernel, from `uname`.
pub fn kernel_version() -> Option<(u32, u32)> {
    // SAFETY: utsname is plain data; uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uts is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    // SAFETY: uname NUL-terminates release.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }
        .to_str()
        .ok()?;
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The running kernel's features, probed once.
pub fn kernel_features() -> &'static KernelFeatures {
    static FEATURES: OnceLock<KernelFeatures> = OnceLock::new();
    FEATURES.get_or_init(|| {
        let kprobes = Path::new("/sys/bus/event_source/devices/kprobe").exists()
            || tracefs_root().is_ok_and(|root| root.join("kprobe_events").exists());
        let version = kernel_version().unwrap_or((0, 0));
        KernelFeatures {
            kprobes,
            kprobe_multi: kprobes && version >= (5, 18),
            btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
            ringbuf: version >= (5, 8),
        }
    })
}

#[cfg(test)]
mod tests;
