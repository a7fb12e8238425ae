//! Diagnostics: errors that point at a place in a script (`file:line:col`
//! with the source line and a caret) or, for command-line and system
//! problems, carry only a message.

use std::fmt;

/// A byte range in a script's source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span covering `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A script source with its display name, used to render diagnostics.
/// Library files (the stdlib) may be appended after the script; spans in
/// them render with their own file name and lines.
#[derive(Debug, Clone)]
pub struct Source {
    /// File name, or `-e` for a one-liner.
    pub name: String,
    /// The full text.
    pub text: String,
    /// Appended files: name and the offset where each starts.
    appended: Vec<(String, usize)>,
}

impl Source {
    /// A new source.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
            appended: Vec::new(),
        }
    }

    /// Appends a library file after the script (on a line of its own).
    pub fn append(&mut self, name: &str, text: &str) {
        self.text.push('\n');
        self.appended.push((name.to_string(), self.text.len()));
        self.text.push_str(text);
    }

    /// Offset where the script ends and the appended libraries begin.
    pub fn script_end(&self) -> usize {
        self.appended
            .first()
            .map(|(_, start)| *start)
            .unwrap_or(self.text.len())
    }

    /// The file an offset is in, and where that file starts.
    fn file_of(&self, offset: usize) -> (&str, usize) {
        self.appended
            .iter()
            .rev()
            .find(|(_, start)| offset >= *start)
            .map(|(n, s)| (n.as_str(), *s))
            .unwrap_or((&self.name, 0))
    }

    /// 1-based line and column (in characters) of a byte offset, within
    /// the file that holds it.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let (_, file_start) = self.file_of(offset);
        let before = &self.text[file_start..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before
            .rfind('\n')
            .map(|i| file_start + i + 1)
            .unwrap_or(file_start);
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    /// The text of the line containing `offset` (without the newline).
    pub fn line_text(&self, offset: usize) -> &str {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let end = self.text[offset..]
            .find('\n')
            .map(|i| offset + i)
            .unwrap_or(self.text.len());
        &self.text[start..end]
    }
}

/// Whether a diagnostic stops the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    /// The script cannot run.
    #[default]
    Error,
    /// The script runs without something (a probe, a stage, a metric).
    Warning,
}

/// An error or warning about a script or about the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One-line description.
    pub message: String,
    /// Where in the script, if the problem is in the script.
    pub span: Option<Span>,
    /// Extra lines printed after the caret (e.g. the verifier's last lines).
    pub notes: Vec<String>,
    /// Further errors found in the same check, printed after this one.
    pub also: Vec<Diagnostic>,
    /// An error that follows from another one found in the same check (a
    /// read of a variable whose assignment failed): left out of a report
    /// that has the other.
    pub consequence: bool,
}

impl Diagnostic {
    /// An error at a place in the script.
    pub fn at(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: Some(span),
            notes: Vec::new(),
            also: Vec::new(),
            consequence: false,
        }
    }

    /// An error at a place in the script caused by another error there,
    /// already reported (see [`Diagnostic::consequence`]).
    pub fn consequence(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            consequence: true,
            ..Diagnostic::at(span, message)
        }
    }

    /// An error not tied to a place in the script.
    pub fn plain(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: None,
            notes: Vec::new(),
            also: Vec::new(),
            consequence: false,
        }
    }

    /// A warning, at the place in the script it is about if there is one.
    pub fn warning(span: Option<Span>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            span,
            ..Diagnostic::plain(message)
        }
    }

    /// Adds a note line.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Every error of `errors` as one result: `Ok` when there is none,
    /// else the first, carrying the others (in order, each once) in
    /// [`Diagnostic::also`]. Consequences are left out unless there is
    /// nothing else to report.
    pub fn collected(errors: Vec<Diagnostic>) -> Result<()> {
        let only_consequences = errors.iter().all(|e| e.consequence);
        let mut errors = errors
            .into_iter()
            .filter(|e| only_consequences || !e.consequence);
        let Some(mut first) = errors.next() else {
            return Ok(());
        };
        for e in errors {
            let same = |d: &Diagnostic| d.span == e.span && d.message == e.message;
            if !same(&first) && !first.also.iter().any(same) {
                first.also.push(e);
            }
        }
        Err(first)
    }

    /// Renders as `file:line:col: error: msg`, the source line and a
    /// caret, then each further error the same way.
    /// A warning renders as `netscript: warning: msg` and, when it has a
    /// place, ` --> file:line:col` below it.
    pub fn render(&self, source: Option<&Source>) -> String {
        if self.severity == Severity::Warning {
            let mut out = format!("netscript: warning: {}\n", self.message);
            if let (Some(span), Some(src)) = (self.span, source) {
                let (line, col) = src.line_col(span.start);
                out.push_str(&format!(
                    "  --> {}:{}:{}\n",
                    src.file_of(span.start).0,
                    line,
                    col
                ));
            }
            return out;
        }
        let mut out = String::new();
        match (self.span, source) {
            (Some(span), Some(src)) => {
                let (line, col) = src.line_col(span.start);
                out.push_str(&format!(
                    "{}:{}:{}: error: {}\n",
                    src.file_of(span.start).0,
                    line,
                    col,
                    self.message
                ));
                let text = src.line_text(span.start);
                out.push_str(&format!("{}\n", text));
                let line_chars = text.chars().count();
                let width = src.text[span.start..span.end.min(src.text.len())]
                    .chars()
                    .take_while(|c| *c != '\n')
                    .count()
                    .clamp(1, line_chars.saturating_sub(col - 1).max(1));
                out.push_str(&format!("{}{}\n", " ".repeat(col - 1), "^".repeat(width)));
            }
            _ => out.push_str(&format!("error: {}\n", self.message)),
        }
        for note in &self.notes {
            out.push_str(note);
            out.push('\n');
        }
        for more in &self.also {
            out.push_str(&more.render(source));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// Result alias used across the compiler.
pub type Result<T> = std::result::Result<T, Diagnostic>;

/// A diagnostic with the source it points into (boxed: errors stay small).
pub type Failure = Box<(Diagnostic, Option<Source>)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_span() {
        let src = Source::new("t.ns", "BEGIN {\n  foo(1);\n}\n");
        let start = src.text.find("foo").unwrap();
        let d = Diagnostic::at(Span::new(start, start + 3), "unknown function 'foo'");
        assert_eq!(
            d.render(Some(&src)),
            "t.ns:2:3: error: unknown function 'foo'\n  foo(1);\n  ^^^\n"
        );
    }

    #[test]
    fn a_warning_renders_its_line_and_its_place() {
        let src = Source::new("t.ns", "BEGIN {}\nkprobe:f {}\n");
        let at = Span::new(9, 17);
        assert_eq!(
            Diagnostic::warning(Some(at), "kprobe:f: not found, probe skipped").render(Some(&src)),
            "netscript: warning: kprobe:f: not found, probe skipped\n  --> t.ns:2:1\n"
        );
        assert_eq!(
            Diagnostic::warning(None, "metric x off").render(Some(&src)),
            "netscript: warning: metric x off\n"
        );
    }

    #[test]
    fn collected_errors_render_in_order_each_once() {
        let src = Source::new("t.ns", "a b\n");
        let (a, b) = (
            Diagnostic::at(Span::new(0, 1), "first"),
            Diagnostic::at(Span::new(2, 3), "second"),
        );
        assert_eq!(Diagnostic::collected(Vec::new()), Ok(()));
        let all = Diagnostic::collected(vec![a.clone(), b.clone(), a, b]).unwrap_err();
        assert_eq!(
            all.render(Some(&src)),
            "t.ns:1:1: error: first\na b\n^\nt.ns:1:3: error: second\na b\n  ^\n"
        );
    }

    #[test]
    fn a_consequence_is_reported_only_without_its_cause() {
        let cause = Diagnostic::at(Span::new(2, 3), "cause");
        let follows = Diagnostic::consequence(Span::new(0, 1), "follows");
        let both = Diagnostic::collected(vec![follows.clone(), cause.clone()]).unwrap_err();
        assert_eq!((both.message.as_str(), both.also.len()), ("cause", 0));
        let alone = Diagnostic::collected(vec![follows]).unwrap_err();
        assert_eq!(alone.message, "follows");
    }
}
