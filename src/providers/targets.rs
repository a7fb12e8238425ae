//! What a provider's probes attach to, for `-l`/`-lv` and the REPL's
//! completion: the one place that knows where tracepoints, kernel
//! functions and network interfaces are found and which arguments each
//! has. A provider's table entry names its kind of targets.

use super::{ArgAccess, Provider};
use crate::diag::{Diagnostic, Result};
use crate::glob::glob_match;
use crate::kernel::btf::Btf;
use crate::kernel::{symbols, tracefs};

/// Where a provider's targets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// `category:name` tracepoints (tracefs).
    Tracepoints,
    /// Tracepoint names without their category (raw tracepoints).
    TracepointNames,
    /// Kernel functions (kallsyms; arguments from BTF).
    Functions,
    /// The network interfaces of this network namespace.
    Interfaces,
    /// Nothing to choose from (BEGIN, END, interval periods).
    None,
}

/// One argument of a target, as `-lv` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argument {
    /// The name a script uses (`args->NAME`).
    pub name: String,
    /// The C declaration (`unsigned int len`, `__data_loc char[] name`).
    pub declaration: String,
}

/// The arguments of a target and, for a function, its return type.
#[derive(Debug, Default)]
pub struct Signature {
    /// The arguments, in order.
    pub args: Vec<Argument>,
    /// The return type (functions).
    pub returns: Option<String>,
}

/// The targets of `provider` matching `glob` (the text after
/// `provider:`; empty: all), sorted.
pub fn matching(provider: &Provider, glob: &str) -> Result<Vec<String>> {
    let glob = if glob.is_empty() { "*" } else { glob };
    let mut found = match provider.targets {
        Targets::Tracepoints => {
            let pattern = if glob.contains(':') {
                glob.to_string()
            } else {
                format!("*:{glob}")
            };
            tracefs::list_tracepoints(&pattern)?
                .into_iter()
                .map(|(category, name)| format!("{category}:{name}"))
                .collect()
        }
        Targets::TracepointNames => tracefs::list_tracepoints(&format!("*:{glob}"))?
            .into_iter()
            .map(|(_, name)| name)
            .collect(),
        Targets::Functions => symbols::list_functions(glob)?,
        Targets::Interfaces => interfaces()
            .into_iter()
            .filter(|name| glob_match(glob, name))
            .collect(),
        Targets::None => {
            return Err(Diagnostic::plain(format!(
                "'{}' probes cannot be listed; list tracepoint:, rawtracepoint:, kprobe:, fentry: \
                 or xdp: probes",
                provider.names[0]
            )))
        }
    };
    found.sort();
    found.dedup();
    Ok(found)
}

/// What completes `typed` (the text after `provider:`): whole targets, or
/// for tracepoints without a `:` yet, their categories (`net:`).
pub fn completions(provider: &Provider, typed: &str) -> Vec<String> {
    let prefix = format!("{typed}*");
    let mut found: Vec<String> = match provider.targets {
        Targets::Tracepoints if !typed.contains(':') => {
            tracefs::list_tracepoints(&format!("{prefix}:*"))
                .unwrap_or_default()
                .into_iter()
                .map(|(category, _)| format!("{category}:"))
                .collect()
        }
        Targets::None => Vec::new(),
        _ => matching(provider, &prefix).unwrap_or_default(),
    };
    found.dedup();
    found
}

/// The arguments of one target (tracepoint fields, a function's
/// parameters from BTF; none for the other targets). A module's function
/// is described by the module's BTF; a function BTF does not describe has
/// no arguments listed.
pub fn signature(provider: &Provider, target: &str) -> Result<Signature> {
    match provider.targets {
        Targets::Tracepoints => {
            let Some((category, name)) = target.split_once(':') else {
                return Ok(Signature::default());
            };
            let format = tracefs::tracepoint_format(category, name)?;
            let args = format
                .fields
                .into_iter()
                .map(|f| Argument {
                    declaration: match (f.data_loc, f.array_len) {
                        (true, _) => format!("__data_loc {}[] {}", f.c_type, f.name),
                        (false, Some(n)) => format!("{} {}[{}]", f.c_type, f.name, n),
                        (false, None) => format!("{} {}", f.c_type, f.name),
                    },
                    name: f.name,
                })
                .collect();
            Ok(Signature {
                args,
                returns: None,
            })
        }
        Targets::Functions => {
            let btf = Btf::of_function(target).or_else(|_| Btf::vmlinux())?;
            let Some((params, ret)) = btf.func_signature(target) else {
                return Ok(Signature::default());
            };
            let args = params
                .into_iter()
                .map(|(name, ty)| Argument {
                    declaration: format!("{} {}", btf.type_name(ty), name),
                    name,
                })
                .collect();
            Ok(Signature {
                args,
                returns: provider.has_retval.then(|| btf.type_name(ret)),
            })
        }
        _ => Ok(Signature::default()),
    }
}

/// Whether a script reads the targets' arguments by name (`args->len`):
/// tracepoint fields, and function parameters where BTF gives them
/// (fentry, fexit).
pub fn named_arguments(provider: &Provider) -> bool {
    match provider.targets {
        Targets::Tracepoints => true,
        Targets::Functions => provider.args == ArgAccess::U64Array,
        _ => false,
    }
}

/// The names of this network namespace's interfaces (the links in
/// `/sys/class/net`; its files, such as `bonding_masters`, are not).
fn interfaces() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    dir.filter_map(std::result::Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_symlink()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}
