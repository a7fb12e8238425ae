//! Shell-style globs (`tcp_*`, `net:*`), as probe patterns and `-l`
//! listings use them.

/// Glob match of ASCII `text` against `pattern`: `*` matches any run of
/// bytes, `?` one byte, everything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Position after the last `*` and the text position it is tried at.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                backtrack = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((after_star, tried)) => {
                    backtrack = Some((after_star, tried + 1));
                    p = after_star;
                    t = tried + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_cases() {
        assert!(glob_match("*", ""));
        assert!(glob_match("tcp_*", "tcp_sendmsg"));
        assert!(glob_match("*skb*", "netif_receive_skb"));
        assert!(glob_match("tcp_?endmsg", "tcp_sendmsg"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("tcp_*", "udp_sendmsg"));
        assert!(!glob_match("?", ""));
        assert!(!glob_match("a*b", "aXbY"));
    }
}
