//! The printf format language as bpftrace 0.17 reads it: parsing a format
//! string into literal text and conversions, and checking the arguments
//! against them. The compiler checks formats with it; `output::printf`
//! prints with the same pieces.
//!
//! bpftrace finds conversions with the pattern
//! `%-?[0-9]*(\.[0-9]+)?(s|c|[hh|h|l|ll|j|z|t]?(d|u|o|x|X|p))` and hands the
//! text before each conversion to C's `snprintf` (so `%%` there prints `%`),
//! while the text after the last conversion is printed untouched (`%%` stays
//! `%%`, and so does a whole format without conversions). We accept `%i` as
//! a synonym of `%d` (bpftrace treats it as plain text) and reject `%r`
//! buffers and `%` sequences C would interpret differently.

/// A piece of a parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text printed as is.
    Literal(String),
    /// A conversion consuming one argument.
    Conversion(Conversion),
}

/// One `%` conversion specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// `%N$...`: the argument it prints (1-based), instead of the next
    /// one (path report formats only).
    pub position: Option<usize>,
    /// The specification as bpftrace names it in errors, without flags and
    /// width (e.g. `%lu`, `%s`).
    pub token: String,
    /// `-`: pad on the right.
    pub left_align: bool,
    /// Width written with a leading `0`: pad numbers with zeros.
    pub zero_pad: bool,
    /// Minimum field width.
    pub width: usize,
    /// `.N`: maximum characters for `%s`, minimum digits for integers.
    pub precision: Option<usize>,
    /// Integer size the argument is cut to.
    pub length: Length,
    /// What is printed.
    pub kind: ConversionKind,
}

/// C length modifier: the integer width an argument is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// `hh`: 8 bits.
    Char,
    /// `h`: 16 bits.
    Short,
    /// No modifier: C `int`, 32 bits (`%d` of 2^32+5 prints 5).
    Int,
    /// `l`, `ll`, `j`, `z`, `t`: 64 bits.
    Long,
}

/// The conversion character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversionKind {
    /// `%d`, `%i`: signed decimal.
    Signed,
    /// `%u`: unsigned decimal.
    Unsigned,
    /// `%o`: octal.
    Octal,
    /// `%x`: lower-case hexadecimal.
    LowerHex,
    /// `%X`: upper-case hexadecimal.
    UpperHex,
    /// `%c`: one character.
    Char,
    /// `%p`: `0x...`, or `(nil)` for 0.
    Pointer,
    /// `%s`: a string (also symbols, stacks, addresses).
    Str,
}

/// The kind of argument a conversion expects (bpftrace's type check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// An integer or pointer.
    Integer,
    /// A string, or anything printed as text (ksym, kstack, ntop, ...).
    String,
}

impl ArgKind {
    /// The name bpftrace uses in its error messages.
    pub fn name(self) -> &'static str {
        match self {
            ArgKind::Integer => "integer",
            ArgKind::String => "string",
        }
    }
}

impl Conversion {
    /// The kind of argument this conversion expects.
    pub fn expects(&self) -> ArgKind {
        if self.kind == ConversionKind::Str {
            ArgKind::String
        } else {
            ArgKind::Integer
        }
    }
}

/// The widest field width or precision a conversion may ask for: every
/// event's line stays bounded (a page), where C would pad to gigabytes.
pub const MAX_FIELD_WIDTH: usize = 4096;

/// Splits `fmt` into literal text and conversions, or explains why it is
/// not a format bpftrace would print the same way.
pub fn parse_format(fmt: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut part_start = 0;
    let mut search = 0;
    while let Some(offset) = fmt[search..].find('%') {
        let at = search + offset;
        match parse_conversion(&fmt[at..]) {
            Some((conversion, len)) => {
                let widest = conversion.width.max(conversion.precision.unwrap_or(0));
                if widest > MAX_FIELD_WIDTH {
                    return Err(format!(
                        "printf: the field width or precision {} in '{}' is too large \
                         (at most {MAX_FIELD_WIDTH})",
                        widest,
                        &fmt[at..at + len]
                    ));
                }
                let before = unescape_before_conversion(&fmt[part_start..at])?;
                if !before.is_empty() {
                    pieces.push(Piece::Literal(before));
                }
                pieces.push(Piece::Conversion(conversion));
                part_start = at + len;
                search = part_start;
            }
            None => search = at + 1,
        }
    }
    if part_start < fmt.len() {
        pieces.push(Piece::Literal(fmt[part_start..].to_string()));
    }
    Ok(pieces)
}

/// Checks argument count and kinds against the conversions, with bpftrace's
/// error messages (e.g. `printf: Not enough arguments for format string
/// (1 supplied, 2 expected)`).
pub fn check_args(pieces: &[Piece], args: &[ArgKind]) -> Result<(), String> {
    let conversions: Vec<&Conversion> = pieces
        .iter()
        .filter_map(|piece| match piece {
            Piece::Conversion(conversion) => Some(conversion),
            Piece::Literal(_) => None,
        })
        .collect();
    if let Some(c) = conversions.iter().find(|c| c.position.is_some()) {
        return Err(format!(
            "printf: {} names its argument by position; only path report formats (describe, halves) may",
            c.token
        ));
    }
    let (supplied, expected) = (args.len(), conversions.len());
    if supplied != expected {
        let problem = if supplied < expected {
            "Not enough"
        } else {
            "Too many"
        };
        return Err(format!(
            "printf: {problem} arguments for format string ({supplied} supplied, {expected} expected)"
        ));
    }
    match conversions
        .iter()
        .zip(args)
        .find(|(c, arg)| c.expects() != **arg)
    {
        Some((conversion, arg)) => Err(format!(
            "printf: {} specifier expects a value of type {} ({} supplied)",
            conversion.token,
            conversion.expects().name(),
            arg.name()
        )),
        None => Ok(()),
    }
}

/// Checks a path report format against the kinds of the values it
/// formats: each conversion takes the next value or, with `%N$`, value N;
/// values may go unused.
pub fn check_report_args(pieces: &[Piece], args: &[ArgKind]) -> Result<(), String> {
    let mut next = 0;
    for piece in pieces {
        let Piece::Conversion(c) = piece else {
            continue;
        };
        let index = c.position.map_or(next, |n| n - 1);
        next = index + 1;
        let Some(arg) = args.get(index) else {
            return Err(format!(
                "{} asks for value {} of {}",
                c.token,
                index + 1,
                args.len()
            ));
        };
        if c.expects() != *arg {
            return Err(format!(
                "{} (value {}) expects a value of type {} ({} supplied)",
                c.token,
                index + 1,
                c.expects().name(),
                arg.name()
            ));
        }
    }
    Ok(())
}

/// Parses the conversion at the start of `text` (which starts with `%`),
/// returning it and its length in bytes.
fn parse_conversion(text: &str) -> Option<(Conversion, usize)> {
    let bytes = text.as_bytes();
    let mut pos = 1;
    let position = match digits(bytes, pos) {
        (n, after) if after > pos && bytes.get(after) == Some(&b'$') && n > 0 => {
            pos = after + 1;
            Some(n)
        }
        _ => None,
    };
    let left_align = bytes.get(pos) == Some(&b'-');
    if left_align {
        pos += 1;
    }
    let zero_pad = bytes.get(pos) == Some(&b'0');
    let (width, after_width) = digits(bytes, pos);
    pos = after_width;
    let mut precision = None;
    if bytes.get(pos) == Some(&b'.') {
        let (value, after) = digits(bytes, pos + 1);
        if after > pos + 1 {
            precision = Some(value);
            pos = after;
        }
    }
    let token_start = pos;
    let (length, kind, len) = conversion_spec(&bytes[pos..])?;
    pos += len;
    let token = format!("%{}", &text[token_start..pos]);
    let conversion = Conversion {
        position,
        token,
        left_align,
        zero_pad,
        width,
        precision,
        length,
        kind,
    };
    Some((conversion, pos))
}

/// Reads decimal digits at `pos`: their value and the position after them.
fn digits(bytes: &[u8], mut pos: usize) -> (usize, usize) {
    let mut value: usize = 0;
    while let Some(d) = bytes.get(pos).filter(|b| b.is_ascii_digit()) {
        value = value
            .saturating_mul(10)
            .saturating_add(usize::from(d - b'0'));
        pos += 1;
    }
    (value, pos)
}

/// Length modifier and conversion character at the start of `bytes`.
fn conversion_spec(bytes: &[u8]) -> Option<(Length, ConversionKind, usize)> {
    match bytes.first()? {
        b's' => return Some((Length::Long, ConversionKind::Str, 1)),
        b'c' => return Some((Length::Int, ConversionKind::Char, 1)),
        b'i' => return Some((Length::Int, ConversionKind::Signed, 1)),
        _ => {}
    }
    const MODIFIERS: [(&[u8], Length); 7] = [
        (b"hh", Length::Char),
        (b"h", Length::Short),
        (b"ll", Length::Long),
        (b"l", Length::Long),
        (b"j", Length::Long),
        (b"z", Length::Long),
        (b"t", Length::Long),
    ];
    let (length, modifier_len) = MODIFIERS
        .iter()
        .find(|(prefix, _)| bytes.starts_with(prefix))
        .map_or((Length::Int, 0), |(prefix, length)| (*length, prefix.len()));
    let kind = match bytes.get(modifier_len)? {
        b'd' => ConversionKind::Signed,
        b'u' => ConversionKind::Unsigned,
        b'o' => ConversionKind::Octal,
        b'x' => ConversionKind::LowerHex,
        b'X' => ConversionKind::UpperHex,
        b'p' => ConversionKind::Pointer,
        _ => return None,
    };
    Some((length, kind, modifier_len + 1))
}

/// Text before a conversion goes through C's printf: `%%` prints `%`, and
/// any other `%` would be read as a conversion we cannot reproduce.
fn unescape_before_conversion(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(next) => return Err(format!("printf: Unknown format string token: %{next}")),
            None => return Err("printf: a lone '%' before a conversion: write '%%'".to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_widths_are_bounded() {
        for fmt in [
            "%99999999999999999999d\n",
            "%999999999d",
            "%-4097s|",
            "%.5000s",
        ] {
            let err = parse_format(fmt).expect_err(fmt);
            assert!(err.contains("too large (at most 4096)"), "{fmt}: {err}");
        }
    }

    #[test]
    fn rejects_what_c_would_read_differently() {
        assert!(parse_format("%q %d").is_err());
        assert!(parse_format("%%%%d").is_err());
        let pieces = parse_format("%%%d %r").expect("valid");
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[2], Piece::Literal(" %r".into()));
    }

    #[test]
    fn argument_checks_use_bpftrace_messages() {
        let pieces = parse_format("%-5s %lu").expect("valid");
        assert_eq!(
            check_args(&pieces, &[ArgKind::String]),
            Err("printf: Not enough arguments for format string (1 supplied, 2 expected)".into())
        );
        assert_eq!(
            check_args(&pieces, &[ArgKind::Integer, ArgKind::Integer]),
            Err("printf: %s specifier expects a value of type string (integer supplied)".into())
        );
        assert_eq!(
            check_args(&pieces, &[ArgKind::String, ArgKind::Integer]),
            Ok(())
        );
    }
}
