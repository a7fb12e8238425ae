//! Converts pest failures into diagnostics that say, in words, what was
//! expected at the failing position ("expected `;` or `}`", "expected an
//! expression", "unterminated string", ...).

use super::lexical::{pieces, Piece};
use super::parser::Rule;
use crate::diag::{Diagnostic, Span};
use pest::error::{Error, ErrorVariant, InputLocation};

/// Tokens that may begin an expression (subsumed by "an expression").
const EXPR_START: &[&str] = &[
    "(", "-", "!", "~", "*", "&", "\"", "$", "@", "0x", "0X", "_", "sizeof", "offsetof",
];
/// Tokens that may begin a statement but not an expression.
const STMT_START: &[&str] = &["if", "while", "unroll", "return", "++", "--"];
/// Tokens that continue an expression; not worth listing after an operand.
const CONTINUATIONS: &[&str] = &[
    "||", "&&", "|", "^", "&", "==", "!=", "<<", ">>", "<=", ">=", "<", ">", "+", "-", "*", "/",
    "%", "?", "->", ".", "[",
];
/// Whitespace, comment openers and word characters: tried everywhere, never
/// worth listing.
const TRIVIA: &[&str] = &[" ", "\t", "\r", "\n", "//", "/*", "_"];
/// Characters that can start some token of the language.
const TOKEN_CHARS: &str = "\"$@(){}[];,:/.*?-+!~&|^=<>%_";

/// What a missing probe is called.
const PROBE_PHRASE: &str = "a probe such as `BEGIN` or `kprobe:name`";

/// Rules whose failure is best described by a phrase of their own.
const RULE_PHRASES: &[(Rule, &str)] = &[
    (Rule::probe_part, "a probe target after `:`"),
    (Rule::field_name, "a field name"),
    (Rule::int, "an integer literal"),
    (Rule::ident_raw, "a name"),
    (Rule::program, PROBE_PHRASE),
    (Rule::probe_spec, PROBE_PHRASE),
    (Rule::probe, PROBE_PHRASE),
];

/// Turns a pest error into a diagnostic at the failing position.
pub fn convert(source: &str, err: &Error<Rule>) -> Diagnostic {
    if let Some(diag) = unterminated(source) {
        return diag;
    }
    let attempts = err.parse_attempts();
    let rule_pos = match err.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    };
    let pos = attempts
        .as_ref()
        .map_or(rule_pos, |a| a.max_position)
        .min(source.len());
    // pest records the rules it tried only at its own failure position,
    // which can lie before the farthest token attempt.
    let positives: &[Rule] = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } if rule_pos == pos => positives,
        _ => &[],
    };
    let tokens: Vec<String> = attempts
        .map(|a| {
            a.expected_tokens()
                .into_iter()
                .map(|t| t.to_string())
                .filter_map(token_text)
                .collect()
        })
        .unwrap_or_default();
    let found = source[pos..].chars().next();
    let span = Span::new(pos, pos + found.map_or(0, char::len_utf8));
    if let ErrorVariant::CustomError { message } = &err.variant {
        // pest's own guard against deep recursion ("stack limit reached").
        return Diagnostic::at(span, format!("script is nested too deeply ({message})"));
    }
    let expected = join_alternatives(&expectations(positives, &tokens));
    let message = match found {
        None => format!("unexpected end of input, expected {expected}"),
        Some(c) if !c.is_alphanumeric() && !c.is_whitespace() && !TOKEN_CHARS.contains(c) => {
            format!("unexpected character `{c}`")
        }
        Some(_) => format!("expected {expected}"),
    };
    Diagnostic::at(span, message)
}

/// The literal text of an expected token, from its display form (pest does
/// not export the token type); character ranges (`a..z`) and builtin rules
/// become `None`, they only continue or start words.
fn token_text(display: String) -> Option<String> {
    let chars: Vec<char> = display.chars().collect();
    let is_range = chars.len() == 4 && chars[1] == '.' && chars[2] == '.';
    (!is_range && display != "BUILTIN_RULE").then_some(display)
}

/// Phrases for what could have come next, most specific first.
fn expectations(positives: &[Rule], tokens: &[String]) -> Vec<String> {
    if let Some((_, phrase)) = RULE_PHRASES
        .iter()
        .find(|(rule, _)| positives.contains(rule))
    {
        return vec![phrase.to_string()];
    }
    let has = |t: &str| tokens.iter().any(|x| x == t);
    let mut skipped: Vec<&str> = TRIVIA.to_vec();
    let mut trailing = Vec::new();
    if has("return") {
        skipped.extend(STMT_START.iter().chain(EXPR_START).chain(&[";"]));
        trailing.push("a statement".to_string());
    } else if has("\"") {
        skipped.extend(EXPR_START);
        trailing.push("an expression".to_string());
    }
    if has("?") {
        skipped.extend(CONTINUATIONS);
    }
    let mut phrases: Vec<String> = tokens
        .iter()
        .filter(|t| !skipped.contains(&t.as_str()))
        .map(|t| format!("`{t}`"))
        .collect();
    if positives.contains(&Rule::pred_end) {
        phrases.push("`/`".to_string());
    }
    phrases.sort();
    phrases.dedup();
    phrases.extend(trailing);
    if phrases.is_empty() {
        phrases.push("something else".to_string());
    }
    phrases
}

/// `a`, `a or b`, `a, b or c`.
fn join_alternatives(phrases: &[String]) -> String {
    match phrases.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {}", rest.join(", "), last),
        None => String::new(),
    }
}

/// Finds a string literal or block comment that is never closed.
fn unterminated(source: &str) -> Option<Diagnostic> {
    pieces(source)
        .into_iter()
        .find_map(|(piece, start, _)| match piece {
            Piece::UnterminatedString => {
                let line_end = source[start..]
                    .find('\n')
                    .map_or(source.len(), |n| start + n);
                Some(Diagnostic::at(
                    Span::new(start, line_end),
                    "unterminated string",
                ))
            }
            Piece::UnterminatedComment => Some(Diagnostic::at(
                Span::new(start, start + 2),
                "unterminated comment",
            )),
            Piece::Trivia | Piece::Token => None,
        })
}
