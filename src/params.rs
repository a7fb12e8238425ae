//! Script parameters: `param NAME: TYPE = DEFAULT "help" alias(A, ...)`
//! declarations become command-line flags (`--name value`, and `-a value`
//! or `--other-name value` for their aliases), are validated, and are
//! compiled into the programs as constants.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::diag::{Diagnostic, Result};
use crate::syntax::ast::{EnumChoice, Item, ParamDecl, Program};

/// The flags that ask for a script's `--help`.
const HELP_FLAGS: &[&str] = &["-h", "--help"];

/// The type of a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An IP address or prefix (`10.0.0.1`, `10.0.0.0/8`, `fd00::/64`) or `any`.
    Addr,
    /// A TCP/UDP port or `any`.
    Port,
    /// A signed integer.
    Int,
    /// `true`/`false` (a bare `--flag` is true).
    Bool,
    /// A duration: `500ms`, `2s`, `1m`, `10us`, a bare number is seconds.
    Duration,
    /// A network interface name, or `any`.
    Iface,
    /// A comma-separated list of interface names, or `any`; given more
    /// than once, the lists add up.
    Ifaces,
    /// One of the listed words (or one of its aliases, which stands for it).
    Enum(Vec<EnumChoice>),
    /// A cgroup v2 directory, or `any`; its value is the cgroup id (the
    /// directory's inode number).
    Cgroup,
    /// A network namespace: its inode number, or a path to it
    /// (`/proc/PID/ns/net`, `/run/netns/NAME`), or `any`.
    Netns,
}

/// A validated parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `any`: the filter matches everything.
    Any,
    /// An address with its prefix length.
    Prefix(IpAddr, u8),
    /// An integer (also ports, booleans as 0/1, durations in ns, cgroup
    /// ids and network namespace inode numbers).
    Int(i64),
    /// An enum choice.
    Word(String),
    /// Interfaces with their ifindex.
    Ifaces(Vec<(String, u32)>),
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Name as declared.
    pub name: String,
    /// Type.
    pub kind: Kind,
    /// Default value, as written (`None`: the flag is required).
    pub default: Option<String>,
    /// Help text.
    pub help: String,
    /// Other names of the flag: one letter is a short flag (`-p`), a
    /// longer name a long flag (`--phy-iface1`).
    pub aliases: Vec<String>,
}

/// The long flag of a name: `--src-ip` for `src_ip`.
fn long_flag(name: &str) -> String {
    format!("--{}", name.replace('_', "-"))
}

/// The flag of an alias: `-p` for `p`, `--phy-iface1` for `phy_iface1`.
fn alias_flag(alias: &str) -> String {
    if alias.len() == 1 {
        format!("-{}", alias)
    } else {
        long_flag(alias)
    }
}

impl Param {
    /// The command-line flag: `--src-ip` for `src_ip`.
    pub fn flag(&self) -> String {
        long_flag(&self.name)
    }

    /// Every spelling of the flag: short aliases, the flag, long aliases.
    pub fn flags(&self) -> Vec<String> {
        let (short, long): (Vec<&String>, Vec<&String>) =
            self.aliases.iter().partition(|a| a.len() == 1);
        short
            .into_iter()
            .map(|a| alias_flag(a))
            .chain(std::iter::once(self.flag()))
            .chain(long.into_iter().map(|a| alias_flag(a)))
            .collect()
    }

    /// What the flag's value looks like (`ADDR[/LEN]|any`, `N`, the words).
    pub fn type_label(&self) -> String {
        match &self.kind {
            Kind::Addr => "ADDR[/LEN]|any".into(),
            Kind::Port => "PORT|any".into(),
            Kind::Int => "N".into(),
            Kind::Bool => "true|false".into(),
            Kind::Duration => "DURATION".into(),
            Kind::Iface => "IFACE|any".into(),
            Kind::Ifaces => "IFACE[,IFACE...]|any".into(),
            Kind::Enum(c) => c
                .iter()
                .map(|c| c.value.as_str())
                .collect::<Vec<_>>()
                .join("|"),
            Kind::Cgroup => "PATH|any".into(),
            Kind::Netns => "INODE|PATH|any".into(),
        }
    }
}

/// The parameters declared by a script, with their types checked; no
/// flag may be one of `reserved` (netscript's own options, as the command
/// line defines them).
pub fn declared(program: &Program, reserved: &[String]) -> Result<Vec<Param>> {
    let mut out: Vec<Param> = Vec::new();
    for item in &program.items {
        let Item::Param(d) = item else { continue };
        if out.iter().any(|p| p.name == d.name) {
            return Err(Diagnostic::at(
                d.span,
                format!("parameter {} is declared twice", d.name),
            ));
        }
        let param = Param {
            name: d.name.clone(),
            kind: kind(d)?,
            default: d.default.clone(),
            help: d.help.clone().unwrap_or_default(),
            aliases: d.aliases.clone(),
        };
        if let Some(default) = &param.default {
            parse(&param, default)
                .map_err(|m| Diagnostic::at(d.span, format!("default of {}: {}", d.name, m)))?;
        }
        for flag in param.flags() {
            let taken = if reserved.contains(&flag) || HELP_FLAGS.contains(&flag.as_str()) {
                Some("netscript's own option".to_string())
            } else {
                out.iter()
                    .find(|p| p.flags().contains(&flag))
                    .map(|p| format!("the flag of parameter {}", p.name))
            };
            if let Some(taken) = taken {
                return Err(Diagnostic::at(
                    d.span,
                    format!("parameter {}: {} is already {}", d.name, flag, taken),
                ));
            }
        }
        out.push(param);
    }
    Ok(out)
}

fn kind(d: &ParamDecl) -> Result<Kind> {
    let k = match d.ty.as_str() {
        "addr" => Kind::Addr,
        "port" => Kind::Port,
        "int" => Kind::Int,
        "bool" => Kind::Bool,
        "duration" => Kind::Duration,
        "iface" => Kind::Iface,
        "ifaces" => Kind::Ifaces,
        "enum" if !d.choices.is_empty() => {
            let mut seen: Vec<&String> = Vec::new();
            for word in d.choices.iter().flat_map(|c| std::iter::once(&c.value).chain(&c.aliases)) {
                if seen.contains(&word) {
                    return Err(Diagnostic::at(
                        d.span,
                        format!("parameter {}: the value {} is given twice", d.name, word),
                    ));
                }
                seen.push(word);
            }
            Kind::Enum(d.choices.clone())
        }
        "cgroup" => Kind::Cgroup,
        "netns" => Kind::Netns,
        other => {
            return Err(Diagnostic::at(
                d.span,
                format!("unknown parameter type '{}' (addr, port, int, bool, duration, iface, ifaces, cgroup, netns, enum(a, b, ...))", other),
            ))
        }
    };
    Ok(k)
}

/// Parses and validates one value for a parameter.
pub fn parse(param: &Param, text: &str) -> std::result::Result<Value, String> {
    let any = text == "any" || text == "0.0.0.0" || text == "::";
    match &param.kind {
        Kind::Addr if any => Ok(Value::Any),
        Kind::Addr => {
            let (addr, len) = match text.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (text, None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("'{}' is not an IP address or prefix", text))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(l) => l
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("bad prefix length in '{}'", text))?,
                None => max,
            };
            Ok(Value::Prefix(ip, len))
        }
        Kind::Port if text == "any" || text == "0" => Ok(Value::Any),
        Kind::Port => text
            .parse::<u16>()
            .map(|p| Value::Int(p as i64))
            .map_err(|_| format!("'{}' is not a port (1-65535)", text)),
        Kind::Int => parse_int(text)
            .map(Value::Int)
            .ok_or_else(|| format!("'{}' is not an integer", text)),
        Kind::Bool => match text {
            "true" | "1" | "yes" => Ok(Value::Int(1)),
            "false" | "0" | "no" => Ok(Value::Int(0)),
            _ => Err(format!("'{}' is not true or false", text)),
        },
        Kind::Duration => duration_ns(text)
            .map(Value::Int)
            .ok_or_else(|| format!("'{}' is not a duration (e.g. 500ms, 2s, 1m)", text)),
        Kind::Iface | Kind::Ifaces if text == "any" => Ok(Value::Any),
        Kind::Iface | Kind::Ifaces => {
            let mut names: Vec<&str> = Vec::new();
            for name in text.split(',').filter(|n| !n.is_empty()) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            if param.kind == Kind::Iface && names.len() != 1 {
                return Err(format!("'{}' is not one interface name", text));
            }
            if names.is_empty() {
                return Err(format!("'{}' names no interface", text));
            }
            if names.contains(&"any") {
                return Err(format!(
                    "'any' cannot be listed with interface names ('{}')",
                    text
                ));
            }
            names
                .iter()
                .map(|n| ifindex(n).map(|i| (n.to_string(), i)))
                .collect::<std::result::Result<_, _>>()
                .map(Value::Ifaces)
        }
        Kind::Enum(choices) => choices
            .iter()
            .find(|c| c.value == text || c.aliases.iter().any(|a| a == text))
            .map(|c| Value::Word(c.value.clone()))
            .ok_or_else(|| {
                let words: Vec<String> = choices
                    .iter()
                    .map(|c| match c.aliases.is_empty() {
                        true => c.value.clone(),
                        false => format!("{} (or {})", c.value, c.aliases.join(", ")),
                    })
                    .collect();
                format!("'{}' is not one of {}", text, words.join(", "))
            }),
        Kind::Cgroup | Kind::Netns if text == "any" => Ok(Value::Any),
        Kind::Cgroup => {
            inode_on(text, CGROUP2_SUPER_MAGIC, "a cgroup v2 directory").map(Value::Int)
        }
        Kind::Netns => match text.parse::<u32>() {
            Ok(inode) => Ok(Value::Int(inode as i64)),
            Err(_) => inode_on(
                text,
                NSFS_MAGIC,
                "a network namespace (/proc/PID/ns/net, /run/netns/NAME)",
            )
            .map(Value::Int),
        },
    }
}

/// `statfs` magic of a cgroup v2 filesystem.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// `statfs` magic of the namespace filesystem (`/proc/PID/ns/*`).
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// The inode number of `path` (symbolic links followed), which must live
/// on the filesystem with statfs magic `magic` (and, for cgroup2, be a
/// directory): a cgroup's id, a namespace's inode number.
fn inode_on(path: &str, magic: i64, what: &str) -> std::result::Result<i64, String> {
    use std::os::unix::fs::MetadataExt;
    let not_it = |why: String| format!("'{}' is not {} ({})", path, what, why);
    let meta = std::fs::metadata(path).map_err(|e| not_it(e.to_string()))?;
    if magic == CGROUP2_SUPER_MAGIC && !meta.is_dir() {
        return Err(not_it("not a directory".into()));
    }
    let c = std::ffi::CString::new(path).map_err(|_| not_it("NUL in the path".into()))?;
    // SAFETY: statfs reads a NUL-terminated path we own and writes into a
    // zeroed struct of the right type.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut fs) } != 0 {
        return Err(not_it(std::io::Error::last_os_error().to_string()));
    }
    if fs.f_type as i64 != magic {
        return Err(not_it(format!("filesystem type 0x{:x}", fs.f_type)));
    }
    Ok(meta.ino() as i64)
}

fn parse_int(text: &str) -> Option<i64> {
    match text.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn duration_ns(text: &str) -> Option<i64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit {
        "" | "s" => 1e9,
        "ms" => 1e6,
        "us" => 1e3,
        "ns" => 1.0,
        "m" => 60e9,
        _ => return None,
    };
    Some((n * scale) as i64)
}

/// The ifindex of a network interface in this network namespace.
pub fn ifindex(name: &str) -> std::result::Result<u32, String> {
    let c = std::ffi::CString::new(name).map_err(|_| format!("bad interface name '{}'", name))?;
    // SAFETY: if_nametoindex reads a NUL-terminated string we own.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(format!("no network interface named '{}'", name)),
        i => Ok(i),
    }
}

/// What the command line asked for after the script name.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Run with these values (every parameter bound).
    Run(HashMap<String, Value>),
    /// `--help`: print the script's parameters.
    Help,
}

/// Binds `--flag value` / `--flag=value` arguments (any spelling of a
/// flag: `-p 42` for `--pid 42`) to the parameters, filling in defaults;
/// a flag given again replaces the earlier value, except that interface
/// lists add up. Unknown flags, missing values and invalid values are
/// errors naming the flag.
pub fn bind(params: &[Param], args: &[String]) -> Result<Request> {
    let mut given: HashMap<String, String> = HashMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if HELP_FLAGS.contains(&arg.as_str()) {
            return Ok(Request::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let p = params
            .iter()
            .find(|p| p.flags().iter().any(|f| f == flag))
            .ok_or_else(|| {
                let known: Vec<String> = params.iter().flat_map(|p| p.flags()).collect();
                Diagnostic::plain(format!(
                    "unknown option '{}' for this script (its options: {})",
                    flag,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(" ")
                    }
                ))
            })?;
        let value = match (inline, &p.kind) {
            (Some(v), _) => v,
            (None, Kind::Bool) => "true".to_string(),
            (None, _) => it.next().cloned().ok_or_else(|| {
                Diagnostic::plain(format!("{} needs a value ({})", flag, p.type_label()))
            })?,
        };
        match given.get_mut(&p.name) {
            Some(list) if p.kind == Kind::Ifaces => {
                list.push(',');
                list.push_str(&value);
            }
            _ => {
                given.insert(p.name.clone(), value);
            }
        }
    }
    let mut out = HashMap::new();
    for p in params {
        let text = match given.get(&p.name).or(p.default.as_ref()) {
            Some(t) => t,
            None => {
                return Err(Diagnostic::plain(format!(
                    "{} is required ({})",
                    p.flag(),
                    p.type_label()
                )))
            }
        };
        let v = parse(p, text).map_err(|m| Diagnostic::plain(format!("{}: {}", p.flag(), m)))?;
        out.insert(p.name.clone(), v);
    }
    Ok(Request::Run(out))
}

/// The `--help` text of a script.
pub fn help(script: &str, params: &[Param]) -> String {
    let mut out = format!("usage: netscript {} [OPTIONS]\n", script);
    if params.is_empty() {
        out.push_str("\nThis script has no options.\n");
        return out;
    }
    out.push_str("\noptions:\n");
    let rows: Vec<(String, String)> = params
        .iter()
        .map(|p| {
            let mut right = p.help.clone();
            match &p.default {
                Some(d) => right.push_str(&format!(" [default: {}]", d)),
                None => right.push_str(" [required]"),
            }
            // Short aliases stand before the flag, long ones after the help.
            let (short, long): (Vec<String>, Vec<String>) = p
                .flags()
                .into_iter()
                .filter(|f| *f != p.flag())
                .partition(|f| !f.starts_with("--"));
            if !long.is_empty() {
                right.push_str(&format!(" [also: {}]", long.join(", ")));
            }
            if let Kind::Enum(choices) = &p.kind {
                for c in choices.iter().filter(|c| !c.aliases.is_empty()) {
                    right.push_str(&format!(
                        " [also: {} for {}]",
                        c.aliases.join(", "),
                        c.value
                    ));
                }
            }
            let left: Vec<String> = short.into_iter().chain([p.flag()]).collect();
            (format!("  {} {}", left.join(", "), p.type_label()), right)
        })
        .collect();
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (l, r) in rows {
        out.push_str(&format!("{:<width$}  {}\n", l, r, width = width));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(src: &str) -> Vec<Param> {
        declared(
            &crate::syntax::parse(src).unwrap(),
            &crate::cli::reserved_flags(),
        )
        .unwrap()
    }

    #[test]
    fn values_are_validated_by_type() {
        let ps = params(
            "param a: addr = any \"addr\"\nparam p: port = 80\nparam d: duration = 1s\nparam m: enum(tx, rx) = tx\nparam b: bool = false\nparam i: ifaces = lo\n",
        );
        let get = |name: &str, text: &str| parse(ps.iter().find(|p| p.name == name).unwrap(), text);
        assert_eq!(
            get("a", "10.0.0.0/8"),
            Ok(Value::Prefix("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(
            get("a", "fd00::1"),
            Ok(Value::Prefix("fd00::1".parse().unwrap(), 128))
        );
        assert_eq!(get("a", "0.0.0.0"), Ok(Value::Any));
        assert_eq!(
            get("a", "10.0.0.300"),
            Err("'10.0.0.300' is not an IP address or prefix".into())
        );
        assert_eq!(
            get("a", "10.0.0.0/33"),
            Err("bad prefix length in '10.0.0.0/33'".into())
        );
        assert_eq!(
            get("p", "70000"),
            Err("'70000' is not a port (1-65535)".into())
        );
        assert_eq!(get("d", "250ms"), Ok(Value::Int(250_000_000)));
        assert_eq!(get("m", "up"), Err("'up' is not one of tx, rx".into()));
        assert_eq!(get("i", "lo"), Ok(Value::Ifaces(vec![("lo".into(), 1)])));
        assert_eq!(
            get("i", "nosuchif0"),
            Err("no network interface named 'nosuchif0'".into())
        );
    }

    #[test]
    fn flags_bind_with_defaults_and_clear_errors() {
        let ps = params("param src_ip: addr = any \"source\"\nparam latency_us: int \"threshold\"\nparam quiet: bool = false\n");
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let Ok(Request::Run(v)) = bind(&ps, &args(&["--latency-us", "5", "--quiet"])) else {
            panic!()
        };
        assert_eq!(v["src_ip"], Value::Any);
        assert_eq!(v["latency_us"], Value::Int(5));
        assert_eq!(v["quiet"], Value::Int(1));
        assert_eq!(bind(&ps, &args(&["--help"])).unwrap(), Request::Help);
        let e = |a: &[&str]| bind(&ps, &args(a)).unwrap_err().message;
        assert_eq!(e(&[]), "--latency-us is required (N)");
        assert_eq!(
            e(&["--latency-us=x"]),
            "--latency-us: 'x' is not an integer"
        );
        assert_eq!(
            e(&["--nope"]),
            "unknown option '--nope' for this script (its options: --src-ip --latency-us --quiet)"
        );
        let h = help("t.ns", &ps);
        assert!(
            h.contains("  --src-ip ADDR[/LEN]|any  source [default: any]\n"),
            "{}",
            h
        );
    }

    #[test]
    fn aliases_are_other_spellings_of_a_flag() {
        let ps = params(concat!(
            "param pid: int = 0 \"process\" alias(p)\n",
            "param dev: ifaces = any \"devices\" alias(dev1, dev2)\n",
            "param mode: enum(detail alias(detailed, full), histogram) = detail \"mode\"\n",
        ));
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let run = |a: &[&str]| match bind(&ps, &args(a)) {
            Ok(Request::Run(v)) => v,
            other => panic!("{:?}", other),
        };
        assert_eq!(ps[0].flags(), ["-p", "--pid"]);
        assert_eq!(ps[1].flags(), ["--dev", "--dev1", "--dev2"]);
        assert_eq!(run(&["-p", "42"])["pid"], Value::Int(42));
        assert_eq!(run(&["-p=7"])["pid"], Value::Int(7));
        assert_eq!(run(&["--pid", "1", "-p", "2"])["pid"], Value::Int(2));
        // An alias of an enum value stands for the value itself.
        assert_eq!(
            run(&["--mode", "detailed"])["mode"],
            Value::Word("detail".into())
        );
        assert_eq!(
            run(&["--mode", "full"])["mode"],
            Value::Word("detail".into())
        );
        // Interface lists add up, under any spelling, without repeats.
        let lo = || ("lo".to_string(), 1);
        assert_eq!(
            run(&["--dev1", "lo", "--dev2", "lo"])["dev"],
            Value::Ifaces(vec![lo()])
        );
        assert_eq!(run(&["--dev", "lo,lo"])["dev"], Value::Ifaces(vec![lo()]));
        let e = |a: &[&str]| bind(&ps, &args(a)).unwrap_err().message;
        assert_eq!(
            e(&["--dev1", "lo", "--dev2", "any"]),
            "--dev: 'any' cannot be listed with interface names ('lo,any')"
        );
        assert_eq!(e(&["--dev", ","]), "--dev: ',' names no interface");
        assert_eq!(
            e(&["--mode", "x"]),
            "--mode: 'x' is not one of detail (or detailed, full), histogram"
        );
        assert_eq!(e(&["-q"]), "unknown option '-q' for this script (its options: -p --pid --dev --dev1 --dev2 --mode)");
        assert_eq!(e(&["-p"]), "-p needs a value (N)");
        let h = help("t.ns", &ps);
        assert!(h.contains("  -p, --pid N  "), "{}", h);
        assert!(
            h.contains("devices [default: any] [also: --dev1, --dev2]\n"),
            "{}",
            h
        );
        assert!(h.contains("  --mode detail|histogram     mode [default: detail] [also: detailed, full for detail]\n"), "{}", h);
    }

    #[test]
    fn a_flag_spelt_twice_or_like_netscript_own_options_is_refused() {
        let error = |src: &str| {
            declared(
                &crate::syntax::parse(src).unwrap(),
                &crate::cli::reserved_flags(),
            )
            .unwrap_err()
            .message
        };
        assert_eq!(
            error("param dev: iface = any alias(d)"),
            "parameter dev: -d is already netscript's own option"
        );
        assert_eq!(
            error("param duration: int = 1"),
            "parameter duration: --duration is already netscript's own option"
        );
        assert_eq!(
            error("param help: bool = false"),
            "parameter help: --help is already netscript's own option"
        );
        assert_eq!(
            error("param pid: int = 0 alias(p)\nparam port: port = any alias(p)"),
            "parameter port: -p is already the flag of parameter pid"
        );
        assert_eq!(
            error("param a: int = 0 alias(b_c)\nparam b_c: int = 0"),
            "parameter b_c: --b-c is already the flag of parameter a"
        );
        assert_eq!(
            error("param m: enum(a alias(b), b) = a"),
            "parameter m: the value b is given twice"
        );
    }

    /// The cgroup2 mount point, from /proc/mounts.
    fn cgroup2_mount() -> Option<String> {
        let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
        mounts.lines().find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(2) == Some(&"cgroup2")).then(|| fields[1].to_string())
        })
    }

    #[test]
    fn cgroup_and_netns_paths_become_inode_numbers() {
        use std::os::unix::fs::MetadataExt;
        let ps = params("param cg: cgroup = any \"cgroup\"\nparam ns: netns = any \"netns\"\n");
        let get = |name: &str, text: &str| parse(ps.iter().find(|p| p.name == name).unwrap(), text);
        assert_eq!(get("cg", "any"), Ok(Value::Any));
        assert_eq!(get("ns", "any"), Ok(Value::Any));
        if let Some(root) = cgroup2_mount() {
            let ino = std::fs::metadata(&root).unwrap().ino() as i64;
            assert_eq!(get("cg", &root), Ok(Value::Int(ino)));
        }
        let e = get("cg", "/tmp").unwrap_err();
        assert!(
            e.starts_with("'/tmp' is not a cgroup v2 directory ("),
            "{}",
            e
        );
        let e = get("cg", "/no/such/cgroup").unwrap_err();
        assert!(e.contains("No such file or directory"), "{}", e);
        let net = std::fs::metadata("/proc/self/ns/net").unwrap().ino() as i64;
        assert_eq!(get("ns", "/proc/self/ns/net"), Ok(Value::Int(net)));
        assert_eq!(get("ns", &net.to_string()), Ok(Value::Int(net)));
        let e = get("ns", "/tmp").unwrap_err();
        assert!(e.starts_with("'/tmp' is not a network namespace"), "{}", e);
        let args = vec!["--cg".to_string(), "/tmp".to_string()];
        let e = bind(&ps, &args).unwrap_err().message;
        assert!(
            e.starts_with("--cg: '/tmp' is not a cgroup v2 directory"),
            "{}",
            e
        );
        let h = help("t.ns", &ps);
        assert!(
            h.contains("  --cg PATH|any        cgroup [default: any]\n"),
            "{}",
            h
        );
        assert!(
            h.contains("  --ns INODE|PATH|any  netns [default: any]\n"),
            "{}",
            h
        );
    }
}
