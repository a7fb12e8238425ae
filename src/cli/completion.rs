//! Shell completions (`netscript completions bash|zsh|fish`) and the man
//! page (`netscript man`), generated from the same definitions as the
//! command line: [`Cli`](super::Cli) with, as subcommands, the bundled scripts (each
//! with its own options) and the words `repl`, `completions` and `man`.

use std::io::Write;

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, Command, ValueHint};
use clap_complete::Shell;

use super::OwnOptions;
use crate::diag::{Diagnostic, Result};
use crate::params::{self, Kind, Param};
use crate::{bundled, syntax};

/// netscript's command line as the shells and the man page see it.
pub fn command() -> Result<Command> {
    let own_options = OwnOptions::new();
    let reserved = own_options.reserved_flags();
    let mut command = own_options
        .command
        .subcommand(Command::new("repl").about("Attach probe points interactively"))
        .subcommand(
            Command::new("completions")
                .about("Print the completion script of a shell")
                .arg(
                    Arg::new("shell")
                        .required(true)
                        .value_parser(clap::value_parser!(Shell)),
                ),
        )
        .subcommand(
            Command::new("man")
                .about("Print this manual page (roff), or that of a subcommand")
                .arg(Arg::new("page").help("A bundled script, repl, completions or man")),
        );
    for (name, text) in bundled::SCRIPTS {
        command = command.subcommand(script_command(name, text, &reserved)?);
    }
    Ok(command)
}

/// A bundled script as a subcommand: its summary and its options (none
/// of which takes the flags `reserved`).
fn script_command(name: &'static str, text: &str, reserved: &[String]) -> Result<Command> {
    let located = |d: Diagnostic| Diagnostic::plain(format!("bundled/{name}.ns: {}", d.message));
    let program = syntax::parse(text).map_err(located)?;
    let params = params::declared(&program, reserved).map_err(located)?;
    Ok(Command::new(name)
        .about(bundled::summary(text))
        .args(params.iter().map(param_arg)))
}

/// A script parameter as a clap argument: its flags, help and values.
fn param_arg(p: &Param) -> Arg {
    let mut arg = Arg::new(p.name.clone())
        .long(p.name.replace('_', "-"))
        .help(p.help.clone());
    for alias in &p.aliases {
        arg = match alias.chars().next() {
            Some(c) if alias.len() == 1 => arg.short(c),
            _ => arg.visible_alias(alias.replace('_', "-")),
        };
    }
    if let (Some(default), false) = (&p.default, p.kind == Kind::Bool) {
        arg = arg.default_value(default.clone());
    }
    match &p.kind {
        Kind::Bool => arg.action(ArgAction::SetTrue),
        Kind::Enum(choices) => arg.value_parser(PossibleValuesParser::new(
            choices
                .iter()
                .flat_map(|c| std::iter::once(&c.value).chain(&c.aliases))
                .cloned()
                .collect::<Vec<String>>(),
        )),
        Kind::Cgroup | Kind::Netns => arg.value_hint(ValueHint::AnyPath),
        _ => arg.value_name(p.type_label()),
    }
}

/// Writes the completion script of `shell` (`bash`, `zsh`, `fish`...).
pub fn completions(shell: &str, out: &mut dyn Write) -> Result<()> {
    let shell: Shell = shell.parse().map_err(|_| {
        Diagnostic::plain(format!(
            "completions: no shell '{shell}' (bash, elvish, fish, powershell or zsh)"
        ))
    })?;
    clap_complete::generate(shell, &mut command()?, "netscript", out);
    Ok(())
}

/// Writes the man page (roff): netscript's, or with `page` that of a
/// subcommand (`netscript man tcp_metrics`: the script's options), as the
/// main page's `netscript-NAME(1)` names it.
pub fn man_page(page: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let command = command()?;
    let command = match page {
        None => command,
        Some(name) => {
            let sub = command.find_subcommand(name).ok_or_else(|| {
                Diagnostic::plain(format!(
                    "man: no page '{name}' (a bundled script, repl, completions or man)"
                ))
            })?;
            sub.clone()
                .name(format!("netscript-{name}"))
                .bin_name(format!("netscript {name}"))
        }
    };
    match clap_mangen::Man::new(command).render(out) {
        // A pager or `head` that stopped reading is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Diagnostic::plain(format!("man: {e}")))
        }
        _ => Ok(()),
    }
}
