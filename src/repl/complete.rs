//! Tab completion: commands, probe types, tracepoint and kernel function
//! names, map names, and struct fields after `->` when the type is known
//! (`args->` in a tracepoint or fentry probe, `((struct sk_buff *)x)->`).

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::kernel::btf::{Btf, Type, TypeId};

use crate::providers::{self, targets};

/// The REPL's commands, for completion and `:help`.
pub const COMMANDS: &[&str] = &[
    ":help", ":probes", ":detach", ":maps", ":print", ":clear", ":set", ":load", ":stages",
    ":paths", ":list", ":args", ":watch", ":quit",
];

/// Completion state: what the session knows that the line does not.
#[derive(Default)]
pub struct ReplHelper {
    /// Lines of the input being continued (an unclosed probe block).
    pub pending: String,
    /// Names of the session's maps (`@x`).
    pub maps: Vec<String>,
    files: FilenameCompleter,
}

/// Characters of a word being completed (probe specs include `:`).
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '@' | '.' | '*' | '-' | '$')
}

fn pairs(start: usize, words: impl IntoIterator<Item = String>) -> (usize, Vec<Pair>) {
    let mut words: Vec<String> = words.into_iter().collect();
    words.sort();
    words.dedup();
    let pairs = words
        .into_iter()
        .map(|w| Pair {
            display: w.clone(),
            replacement: w,
        })
        .collect();
    (start, pairs)
}

/// Completions of a probe spec prefix (`tracepoint:net:netif_`,
/// `kprobe:tcp_send`, or a bare provider prefix).
pub fn probe_candidates(word: &str) -> Vec<String> {
    let Some((provider, rest)) = word.split_once(':') else {
        return providers::PROVIDERS
            .iter()
            .flat_map(|p| p.names.iter())
            .filter(|n| n.starts_with(word))
            .map(|n| format!("{n}:"))
            .collect();
    };
    let Some(p) = providers::lookup(provider) else {
        return Vec::new();
    };
    targets::completions(p, rest)
        .into_iter()
        .map(|target| format!("{provider}:{target}"))
        .collect()
}

/// Field names of a struct or union, through anonymous members.
fn fields(btf: &Btf, id: TypeId, out: &mut Vec<String>) {
    let members = match btf.ty(btf.skip_modifiers(id)) {
        Type::Struct { members, .. } | Type::Union { members, .. } => members.clone(),
        _ => return,
    };
    for m in members {
        if m.name.is_empty() {
            fields(btf, m.ty, out);
        } else {
            out.push(m.name);
        }
    }
}

/// The struct whose fields follow `->` at the end of `before`:
/// `(struct NAME *)...)` casts name it.
fn cast_struct(before: &str) -> Option<String> {
    let at = before.rfind("struct ")?;
    let rest = &before[at + "struct ".len()..];
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    rest[name.len()..]
        .trim_start()
        .starts_with('*')
        .then_some(name)
}

/// The last probe spec written in `text` (the probe whose body is being typed).
fn last_probe(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '{' | ',' | '/'))
        .rfind(|w| {
            w.split_once(':')
                .is_some_and(|(p, _)| providers::lookup(p).is_some())
        })
        .map(str::to_string)
}

/// Field names after `->`, given everything typed before the `->`
/// (earlier lines of the input included).
pub fn field_candidates(before: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(btf) = Btf::vmlinux() else {
        return out;
    };
    if let Some(name) = cast_struct(before).filter(|_| before.trim_end().ends_with(')')) {
        if let Some(id) = btf.find_struct(&name) {
            fields(btf, id, &mut out);
        }
        return out;
    }
    if !before.ends_with("args") {
        return out;
    }
    let Some(probe) = last_probe(before) else {
        return out;
    };
    let parts: Vec<&str> = probe.split(':').collect();
    if let Some(p) = parts
        .first()
        .and_then(|p| providers::lookup(p))
        .filter(|p| targets::named_arguments(p))
    {
        if let Ok(signature) = targets::signature(p, &parts[1..].join(":")) {
            out.extend(signature.args.into_iter().map(|a| a.name));
        }
    }
    out
}

impl ReplHelper {
    /// The completions of the word ending at `pos` in `line`.
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<Pair>) {
        let head = &line[..pos];
        let start = head
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_word_char(*c))
            .last()
            .map_or(pos, |(i, _)| i);
        let word = &head[start..];
        let command = line.split_whitespace().next().unwrap_or("");
        if line.trim_start().starts_with(':') && !head.trim_start().contains(' ') {
            let found = COMMANDS.iter().filter(|c| c.starts_with(word));
            return pairs(start, found.map(|c| c.to_string()));
        }
        if command == ":load" {
            return self
                .files
                .complete_path(line, pos)
                .unwrap_or((pos, Vec::new()));
        }
        if command == ":set" {
            let options = ["format text", "format json"];
            let typed = head.trim_start()[4..].trim_start();
            let found = options.iter().filter(|o| o.starts_with(typed));
            let at = pos - typed.len();
            return pairs(at, found.map(|o| o.to_string()));
        }
        if word.starts_with('@') {
            let found = self.maps.iter().filter(|m| m.starts_with(word));
            return pairs(start, found.cloned());
        }
        if let Some(before) = head[..start].strip_suffix("->") {
            let found = field_candidates(&format!("{}{}", self.pending, before));
            return pairs(start, found.into_iter().filter(|f| f.starts_with(word)));
        }
        let at_probe_position = self.pending.is_empty()
            && (head[..start].trim().is_empty() || matches!(command, ":list" | ":args"));
        if at_probe_position || word.contains(':') {
            return pairs(start, probe_candidates(word));
        }
        (pos, Vec::new())
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(helper: &ReplHelper, line: &str) -> Vec<String> {
        let (_, found) = helper.candidates(line, line.len());
        found.into_iter().map(|p| p.replacement).collect()
    }

    #[test]
    fn commands_complete_from_a_colon() {
        let h = ReplHelper::default();
        assert_eq!(words(&h, ":det"), vec![":detach"]);
        assert!(words(&h, ":").contains(&":probes".to_string()));
    }

    #[test]
    fn maps_complete_from_at() {
        let h = ReplHelper {
            maps: vec!["@rx".into(), "@tx".into()],
            ..Default::default()
        };
        assert_eq!(words(&h, ":print @r"), vec!["@rx"]);
    }

    #[test]
    fn providers_complete_at_the_start() {
        let h = ReplHelper::default();
        assert!(words(&h, "trace").contains(&"tracepoint:".to_string()));
    }

    #[test]
    fn probe_names_complete_from_tracefs_and_kernel_functions() {
        let tracepoints = probe_candidates("tracepoint:net:netif_receive_s");
        if crate::kernel::tracefs::tracefs_root().is_ok() {
            assert!(tracepoints.contains(&"tracepoint:net:netif_receive_skb".to_string()));
            assert!(probe_candidates("tracepoint:ne").contains(&"tracepoint:net:".to_string()));
        }
        let functions = probe_candidates("kprobe:tcp_sendms");
        if !functions.is_empty() {
            assert!(functions.contains(&"kprobe:tcp_sendmsg".to_string()));
            assert!(functions.iter().all(|f| f.starts_with("kprobe:tcp_sendms")));
        }
    }

    #[test]
    fn casts_name_the_struct() {
        assert_eq!(
            cast_struct("((struct sk_buff *)args->skbaddr)"),
            Some("sk_buff".to_string())
        );
        assert_eq!(cast_struct("(struct sk_buff)x"), None);
        assert_eq!(
            last_probe("tracepoint:net:netif_rx { @x = args"),
            Some("tracepoint:net:netif_rx".to_string())
        );
    }

    #[test]
    fn struct_fields_after_a_cast() {
        if crate::kernel::btf::Btf::vmlinux().is_err() {
            return;
        }
        let found = field_candidates("((struct sk_buff *)x)");
        assert!(found.contains(&"len".to_string()), "{found:?}");
    }
}
