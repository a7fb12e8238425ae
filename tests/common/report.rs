//! Golden files of the bundled tools' text output: a live run's output with
//! what changes from run to run masked (times, latencies, PIDs, pointers,
//! echo ids, kernel stacks, histogram rows), compared with
//! tests/golden/reports/NAME.txt (see `check_golden` in tests/common).

/// Replaces every match of `pattern` in `line` with `with`. In a pattern,
/// `9` is one digit, `#` one or more digits (with `.` inside), `x` one or
/// more hex digits, `_` one or more spaces or nothing, `*` one or more
/// characters but a space; anything else matches itself.
fn replace(line: &str, pattern: &str, with: &str) -> String {
    let (text, pat): (Vec<char>, Vec<char>) = (line.chars().collect(), pattern.chars().collect());
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        match match_at(&text, i, &pat) {
            Some(end) if end > i => {
                out.push_str(with);
                i = end;
            }
            _ => {
                out.push(text[i]);
                i += 1;
            }
        }
    }
    out
}

/// Where a match of `pat` starting at `text[i]` ends, if there is one.
fn match_at(text: &[char], mut i: usize, pat: &[char]) -> Option<usize> {
    let run =
        |i: usize, ok: &dyn Fn(char) -> bool| text[i..].iter().take_while(|c| ok(**c)).count() + i;
    for p in pat {
        match p {
            '9' if text.get(i)?.is_ascii_digit() => i += 1,
            '#' if text.get(i)?.is_ascii_digit() => i = run(i, &|c| c.is_ascii_digit() || c == '.'),
            'x' if text.get(i)?.is_ascii_hexdigit() => i = run(i, &|c| c.is_ascii_hexdigit()),
            '_' => i = run(i, &|c| c == ' '),
            '*' if text.get(i).is_some_and(|c| *c != ' ') => i = run(i, &|c| c != ' '),
            c if text.get(i) == Some(c) => i += 1,
            _ => return None,
        }
    }
    Some(i)
}

/// Is this a row of a latency histogram (`  [8.19-16.4)   : ███ 12`)?
fn histogram_row(line: &str) -> bool {
    let t = line.trim_start();
    line.starts_with("  ")
        && (t.starts_with('[') || t.starts_with("(<0)"))
        && t.contains(") ")
        && t.contains(" : ")
        && !t.contains("->")
}

/// Is this a kernel stack frame (`    ip_output+95`), or the line saying
/// why a stage has none (`    (no stack: ...)`)?
fn stack_frame(line: &str) -> bool {
    (line.starts_with("    ") && !line.trim().contains(' ') && line.contains('+'))
        || line.starts_with("    (no stack: ")
}

/// `text` with what changes from run to run masked; runs of histogram
/// rows and of stack frames become one line each.
pub fn mask(text: &str) -> String {
    mask_with(text, &[])
}

/// [`mask`], with more rules (`(pattern, replacement)`, see [`replace`])
/// applied first.
pub fn mask_with(text: &str, extra: &[(&str, &str)]) -> String {
    let rules = [
        ("9999-99-99 99:99:99.999", "<date> <time>"),
        ("[99:99:99.999]", "[<time>]"),
        ("0xx", "0x<ptr>"),
        ("PID=#_", "PID=<pid> "),
        ("PID: #", "PID: <pid>"),
        ("ID: #", "ID: <id>"),
        ("SEQ=# ACK=#", "SEQ=<seq> ACK=<ack>"),
        (":99999 ", ":<port> "),
        ("_# us", " <us> us"),
        ("#μs", "<us>μs"),
    ];
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let masked = if histogram_row(line) {
            "  <rows>".to_string()
        } else if stack_frame(line) {
            "    <frames>".to_string()
        } else {
            extra
                .iter()
                .chain(&rules)
                .fold(line.to_string(), |l, (p, w)| replace(&l, p, w))
        };
        let repeated =
            matches!(masked.as_str(), "  <rows>" | "    <frames>") && out.last() == Some(&masked);
        if !repeated {
            out.push(masked);
        }
    }
    out.join("\n") + "\n"
}

/// Compares `output`, masked, with tests/golden/reports/`name`.txt.
pub fn check_golden(name: &str, output: &str) {
    check_golden_with(name, output, &[]);
}

/// [`check_golden`] with more masking rules (see [`mask_with`]).
pub fn check_golden_with(name: &str, output: &str, extra: &[(&str, &str)]) {
    super::check_golden(&format!("reports/{name}.txt"), &mask_with(output, extra));
}
