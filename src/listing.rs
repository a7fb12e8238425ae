//! `-l` / `-lv`: listing probe points and their arguments.

use crate::diag::{Diagnostic, Result};
use crate::providers::{self, targets, Kind};

/// Lines for `netscript -l PATTERN` (and `-lv` with `verbose`). The pattern
/// is `provider:glob` (`tracepoint:net:*`, `kprobe:tcp_*`), or
/// `stage:glob` for the stdlib's stage catalogue; a bare glob searches
/// tracepoints. `script:glob` (`scripts`: all) lists the bundled tools
/// with what each does (with `verbose`: each one's options).
pub fn list(pattern: &str, verbose: bool) -> Result<Vec<String>> {
    if let Some(glob) = pattern.strip_prefix("stage:") {
        return list_stages(glob, verbose);
    }
    if pattern == "scripts" {
        return list_scripts("*", verbose);
    }
    if let Some(glob) = pattern.strip_prefix("script:") {
        return list_scripts(glob, verbose);
    }
    let (provider, rest) = match pattern.split_once(':') {
        Some((p, rest)) if providers::lookup(p).is_some() => (providers::lookup(p), rest),
        _ => (None, pattern),
    };
    let provider = provider.unwrap_or(providers::of_kind(Kind::Tracepoint));
    let canonical = provider.names[0];
    let mut out = Vec::new();
    for target in targets::matching(provider, rest)? {
        out.push(format!("{canonical}:{target}"));
        if verbose {
            let signature = targets::signature(provider, &target)?;
            out.extend(
                signature
                    .args
                    .iter()
                    .map(|a| format!("    {}", a.declaration)),
            );
            out.extend(signature.returns.map(|ty| format!("    {ty} retval")));
        }
    }
    Ok(out)
}

/// `stage:NAME` for every catalogue stage of the stdlib whose name matches
/// `glob`; with `verbose`, its alternatives (`probe -> packet`) in order.
/// The bundled scripts whose name matches `glob`, one per line with its
/// summary; with `verbose`, each followed by its options (`SCRIPT --help`).
fn list_scripts(glob: &str, verbose: bool) -> Result<Vec<String>> {
    let glob = if glob.is_empty() { "*" } else { glob };
    let scripts: Vec<&(&str, &str)> = crate::bundled::SCRIPTS
        .iter()
        .filter(|(name, _)| crate::glob::glob_match(glob, name))
        .collect();
    let width = scripts.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let reserved = crate::cli::reserved_flags();
    let mut out = Vec::new();
    for (name, text) in scripts {
        out.push(format!("{name:<width$}  {}", crate::bundled::summary(text)));
        if verbose {
            let program = crate::syntax::parse(text)
                .map_err(|e| Diagnostic::plain(format!("{name}: {}", e.message)))?;
            let params = crate::params::declared(&program, &reserved)
                .map_err(|e| Diagnostic::plain(format!("{name}: {}", e.message)))?;
            let help = crate::params::help(name, &params);
            out.extend(
                help.lines()
                    .skip(1)
                    .filter(|l| !l.is_empty())
                    .map(|l| format!("    {l}")),
            );
        }
    }
    Ok(out)
}

fn list_stages(glob: &str, verbose: bool) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (file, text) in crate::stdlib::FILES {
        let program = crate::syntax::parse(text)
            .map_err(|e| Diagnostic::plain(format!("{}: {}", file, e.message)))?;
        for item in &program.items {
            let crate::syntax::ast::Item::Stage(stage) = item else {
                continue;
            };
            if !crate::glob::glob_match(if glob.is_empty() { "*" } else { glob }, &stage.name) {
                continue;
            }
            out.push(format!("stage:{}", stage.name));
            if verbose {
                for alt in &stage.alternatives {
                    let span = match alt {
                        crate::syntax::ast::StageAlt::Probe(p) => p.span(),
                        crate::syntax::ast::StageAlt::Named { span, guard, .. } => {
                            crate::diag::Span::new(
                                span.start,
                                guard.as_ref().map_or(span.end, |g| g.span.end),
                            )
                        }
                    };
                    out.push(format!("    {}", &text[span.start..span.end]));
                }
            }
        }
    }
    Ok(out)
}
