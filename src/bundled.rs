//! The bundled tools (`scripts/*.ns`), compiled into the binary so that
//! `netscript ovs_tcp_latency ...` runs one on a host where only the
//! binary was copied (a file of that name, when there is one, wins).

use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/bundled_scripts.rs"));

/// The bundled script a command-line script argument names when no file
/// of that name exists: `NAME`, `NAME.ns` or `scripts/NAME.ns` (the
/// spelling of the docs, run from outside a checkout). Returns the
/// script's name and text.
pub fn find(arg: &Path) -> Option<(&'static str, &'static str)> {
    let parent = arg.parent().map(|p| p.as_os_str().to_str())?;
    if !matches!(parent, Some("" | "scripts")) {
        return None;
    }
    let file = arg.file_name()?.to_str()?;
    let name = file.strip_suffix(".ns").unwrap_or(file);
    SCRIPTS.iter().copied().find(|(n, _)| *n == name)
}

/// The one-line description of a script: the first sentence of its
/// opening comment, after `NAME: ` (up to the first `: `, or `. ` before
/// a capital letter).
pub fn summary(text: &str) -> String {
    let paragraph: Vec<&str> = text
        .lines()
        .map_while(|l| l.strip_prefix("//"))
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let joined = paragraph.join(" ");
    let body = joined.split_once(": ").map_or(joined.as_str(), |(_, b)| b);
    let sentence_end = body
        .match_indices(". ")
        .map(|(at, _)| at)
        .find(|&at| body[at + 2..].starts_with(|c: char| c.is_uppercase()));
    let end = body.find(": ").into_iter().chain(sentence_end).min();
    body[..end.unwrap_or(body.len())]
        .trim_end_matches(['.', ':'])
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_is_found_by_its_spellings_and_has_a_summary() {
        assert!(SCRIPTS.len() >= 8, "{}", SCRIPTS.len());
        for (name, text) in SCRIPTS {
            for arg in [
                name.to_string(),
                format!("{name}.ns"),
                format!("scripts/{name}.ns"),
            ] {
                assert_eq!(find(Path::new(&arg)).map(|s| s.1), Some(*text), "{arg}");
            }
            assert!(!summary(text).is_empty(), "{name}");
        }
        assert_eq!(find(Path::new("/tmp/ovs_tcp_latency.ns")), None);
        assert_eq!(find(Path::new("no_such_tool")), None);
    }

    #[test]
    fn the_summary_is_the_first_sentence_of_the_opening_comment() {
        let text = "// tool: counts packets (net:x), per CPU: fast.\n// more\n\nparam";
        assert_eq!(summary(text), "counts packets (net:x), per CPU");
        assert_eq!(summary("// tool: one line.\nprobe"), "one line");
        let text = "// tool: a path, e.g. a veth.\n// Then more.\n";
        assert_eq!(summary(text), "a path, e.g. a veth");
        assert_eq!(
            summary("// tool: logs in these words:\n"),
            "logs in these words"
        );
    }
}
