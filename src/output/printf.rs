//! bpftrace 0.17's `printf()` output: decoded arguments formatted into the
//! pieces of a parsed format string (`format::printf`) exactly as bpftrace
//! prints them.

use super::model::Value;
use super::text::value_text;
use crate::format::printf::{Conversion, ConversionKind, Length, Piece};

/// Formats `args` into the pieces as bpftrace prints them. Missing
/// arguments print nothing; integers given to `%s` print as decimal text.
/// A conversion with a position (`%2$s`) prints that argument and the
/// next one continues after it.
pub fn format(pieces: &[Piece], args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    for piece in pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Conversion(conversion) => {
                let index = conversion.position.map_or(next, |n| n - 1);
                next = index + 1;
                if let Some(arg) = args.get(index) {
                    out.push_str(&format_one(conversion, arg));
                }
            }
        }
    }
    out
}

/// One formatted conversion, padded to its width.
fn format_one(conversion: &Conversion, arg: &Value) -> String {
    let bits = match arg {
        Value::Int(v) if conversion.kind != ConversionKind::Str => *v as u64,
        Value::UInt(v) if conversion.kind != ConversionKind::Str => *v,
        _ => return pad(conversion, &string_arg(conversion, arg), false),
    };
    let (unsigned, signed) = match conversion.length {
        Length::Char => (u64::from(bits as u8), i64::from(bits as i8)),
        Length::Short => (u64::from(bits as u16), i64::from(bits as i16)),
        Length::Int => (u64::from(bits as u32), i64::from(bits as i32)),
        Length::Long => (bits, bits as i64),
    };
    let (sign, digits) = match conversion.kind {
        ConversionKind::Signed if signed < 0 => ("-", signed.unsigned_abs().to_string()),
        // `%s` of an integer took the text path above.
        ConversionKind::Signed | ConversionKind::Str => ("", signed.to_string()),
        ConversionKind::Unsigned => ("", unsigned.to_string()),
        ConversionKind::Octal => ("", format!("{unsigned:o}")),
        ConversionKind::LowerHex => ("", format!("{unsigned:x}")),
        ConversionKind::UpperHex => ("", format!("{unsigned:X}")),
        ConversionKind::Char => return pad(conversion, &char::from(bits as u8).to_string(), false),
        ConversionKind::Pointer if bits == 0 => return pad(conversion, "(nil)", false),
        ConversionKind::Pointer => return pad(conversion, &format!("0x{bits:x}"), false),
    };
    let digits = match conversion.precision {
        Some(min_digits) if digits.len() < min_digits => {
            format!("{}{digits}", "0".repeat(min_digits - digits.len()))
        }
        _ => digits,
    };
    let number = format!("{sign}{digits}");
    pad(conversion, &number, conversion.precision.is_none())
}

/// An argument as `%s` text, cut to the precision.
fn string_arg(conversion: &Conversion, arg: &Value) -> String {
    let text = value_text(arg);
    match conversion.precision {
        Some(max) if conversion.kind == ConversionKind::Str => text.chars().take(max).collect(),
        _ => text,
    }
}

/// Pads `text` to the conversion's width: spaces on the left (or right with
/// `-`), or zeros after the sign when zero padding applies to a number.
fn pad(conversion: &Conversion, text: &str, zeros_allowed: bool) -> String {
    // C counts bytes, not characters.
    let len = text.len();
    if len >= conversion.width {
        return text.to_string();
    }
    let fill = conversion.width - len;
    if conversion.left_align {
        format!("{text}{}", " ".repeat(fill))
    } else if conversion.zero_pad && zeros_allowed {
        let (sign, digits) = text.split_at(usize::from(text.starts_with('-')));
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{text}", " ".repeat(fill))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::printf::parse_format;

    fn run(fmt: &str, args: &[Value]) -> String {
        format(&parse_format(fmt).expect("valid format"), args)
    }

    #[test]
    fn the_widest_field_is_printed_whole() {
        assert_eq!(run("%4096d|", &[Value::Int(1)]).len(), 4097);
    }

    #[test]
    fn percent_escapes_follow_bpftrace() {
        assert_eq!(run("100%%\n", &[]), "100%%\n");
        assert_eq!(
            run("%d%%|%%%d\n", &[Value::Int(5), Value::Int(6)]),
            "5%|%6\n"
        );
        assert_eq!(run("50%\n", &[]), "50%\n");
    }

    #[test]
    fn integer_widths_and_lengths() {
        assert_eq!(
            run(
                "[%-05d][%05d][%d]",
                &[Value::Int(-4), Value::Int(-4), Value::UInt(4294967301)]
            ),
            "[-4   ][-0004][5]"
        );
        assert_eq!(
            run(
                "%hhd %hd %x",
                &[Value::Int(300), Value::Int(70000), Value::Int(-1)]
            ),
            "44 4464 ffffffff"
        );
        assert_eq!(run("%i", &[Value::Int(7)]), "7");
    }
}
