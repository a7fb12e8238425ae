//! A minimal forward scan that tells tokens from trivia (whitespace and
//! comments) while stepping over string literals. The parser uses it to trim
//! the trivia pest leaves at the end of some nodes, and to report strings and
//! comments that are never closed.

/// One run of source text found by [`pieces`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Whitespace or a closed comment.
    Trivia,
    /// Any other character, or a whole closed string literal.
    Token,
    /// A string literal that reaches the end of the text.
    UnterminatedString,
    /// A `/*` comment that reaches the end of the text.
    UnterminatedComment,
}

/// Splits `text` into `(piece, start, end)` runs in order.
pub fn pieces(text: &str) -> Vec<(Piece, usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (piece, end) = match (bytes[i], bytes.get(i + 1)) {
            (b'/', Some(b'/')) => (
                Piece::Trivia,
                text[i..].find('\n').map_or(bytes.len(), |n| i + n),
            ),
            (b'/', Some(b'*')) => match text[i + 2..].find("*/") {
                Some(n) => (Piece::Trivia, i + 2 + n + 2),
                None => (Piece::UnterminatedComment, bytes.len()),
            },
            (b'"', _) => match closing_quote(bytes, i + 1) {
                Some(close) => (Piece::Token, close + 1),
                None => (Piece::UnterminatedString, bytes.len()),
            },
            (c, _) if c.is_ascii_whitespace() => (Piece::Trivia, i + 1),
            _ => (Piece::Token, i + 1),
        };
        out.push((piece, i, end));
        i = end;
    }
    out
}

/// Length of `text` without its trailing whitespace and comments.
pub fn content_end(text: &str) -> usize {
    pieces(text)
        .iter()
        .rev()
        .find(|(piece, _, _)| *piece != Piece::Trivia)
        .map_or(0, |p| p.2)
}

/// Index of the `"` closing a string whose contents start at `from`.
fn closing_quote(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_trivia_is_trimmed_but_strings_are_kept() {
        let cases = [
            ("a + b  ", 5),
            ("f() /* c */ \n", 3),
            ("x // c\n  ", 1),
            ("\"a//b\" ", 6),
            ("\"a\\\"/*\"\t", 7),
            ("   ", 0),
            ("", 0),
        ];
        for (text, end) in cases {
            assert_eq!(content_end(text), end, "text: {text:?}");
        }
    }

    #[test]
    fn unterminated_pieces_run_to_the_end() {
        assert_eq!(
            pieces("x \"ab").last(),
            Some(&(Piece::UnterminatedString, 2, 5))
        );
        assert_eq!(
            pieces("/* ab").last(),
            Some(&(Piece::UnterminatedComment, 0, 5))
        );
        assert_eq!(
            pieces("\"a\\").last(),
            Some(&(Piece::UnterminatedString, 0, 3))
        );
    }
}
