//! Capturing libbpf's messages (and with them the verifier log) during
//! open/load, and condensing a verifier log for error messages.

use std::sync::Mutex;

use libbpf_rs::PrintLevel;

/// Messages printed by libbpf while a capture is active.
static CAPTURED: Mutex<String> = Mutex::new(String::new());
/// Serialises captures: libbpf's print callback is process-wide.
static CAPTURE_LOCK: Mutex<()> = Mutex::new(());

fn record(_level: PrintLevel, message: String) {
    if let Ok(mut buffer) = CAPTURED.lock() {
        buffer.push_str(&message);
    }
}

/// Runs `f` with libbpf's messages redirected into a buffer; returns the
/// result of `f` and everything libbpf printed meanwhile.
pub(super) fn capture_libbpf_output<T>(f: impl FnOnce() -> T) -> (T, String) {
    let _guard = CAPTURE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let previous = libbpf_rs::set_print(Some((PrintLevel::Info, record)));
    let result = f();
    libbpf_rs::set_print(previous);
    let output = match CAPTURED.lock() {
        Ok(mut buffer) => std::mem::take(&mut *buffer),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    (result, output)
}

/// Whether a verifier log ends because the verifier ran out of its budget
/// (instructions walked, branches pending) rather than finding a wrong
/// access.
pub(super) fn out_of_budget(log: &str) -> bool {
    ["is too complex", "BPF program is too large"]
        .iter()
        .any(|m| log.contains(m))
}

const LOG_BEGIN: &str = "-- BEGIN PROG LOAD LOG --";
const LOG_END: &str = "-- END PROG LOAD LOG --";

/// The program named in libbpf's `prog 'NAME': ...` messages (the first one).
pub(super) fn failing_program(libbpf_output: &str) -> Option<String> {
    let start = libbpf_output.find("prog '")? + "prog '".len();
    let len = libbpf_output[start..].find('\'')?;
    Some(libbpf_output[start..start + len].to_string())
}

/// Splits libbpf's output into its own messages and the embedded verifier log.
pub(super) fn split_verifier_log(libbpf_output: &str) -> (String, String) {
    let Some(begin) = libbpf_output.find(LOG_BEGIN) else {
        return (libbpf_output.to_string(), String::new());
    };
    let log_start = begin + LOG_BEGIN.len();
    let log_end = libbpf_output[log_start..]
        .find(LOG_END)
        .map_or(libbpf_output.len(), |i| log_start + i);
    let log = libbpf_output[log_start..log_end]
        .trim_start_matches('\n')
        .to_string();
    let after = (log_end + LOG_END.len()).min(libbpf_output.len());
    let messages = format!("{}{}", &libbpf_output[..begin], &libbpf_output[after..]);
    (messages, log)
}

/// True for verifier log lines worth showing to a user (not statistics).
fn is_meaningful(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty()
        && !line.starts_with("processed ")
        && !line.starts_with("verification time")
        && !line.starts_with("stack depth")
}

/// The last `lines` meaningful lines of a verifier log (blank lines and the
/// closing statistics dropped), joined with newlines.
pub fn verifier_summary(log: &str, lines: usize) -> String {
    let kept: Vec<&str> = log.lines().filter(|line| is_meaningful(line)).collect();
    kept[kept.len().saturating_sub(lines)..].join("\n")
}

/// The index of the instruction the verifier rejected: the last
/// instruction line (`N: (opcode) ...`) of the log.
pub fn failing_insn(log: &str) -> Option<usize> {
    log.lines().rev().find_map(|line| {
        let (index, rest) = line.split_once(": (")?;
        let opcode_end = rest.find(')')?;
        let is_opcode = opcode_end > 0 && rest[..opcode_end].chars().all(|c| c.is_ascii_hexdigit());
        if is_opcode {
            index.trim().parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "func#0 @0\n0: R1=ctx() R10=fp0\n0: (b7) r1 = 0                        ; R1_w=0\n\
        5: (85) call bpf_map_lookup_elem#1    ; R0_w=map_value_or_null(id=1)\n\
        6: (79) r1 = *(u64 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'\n\n\
        processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";

    #[test]
    fn summary_keeps_last_meaningful_lines() {
        assert_eq!(
            verifier_summary(LOG, 2),
            "6: (79) r1 = *(u64 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'"
        );
        assert_eq!(verifier_summary("", 3), "");
    }

    #[test]
    fn finds_failing_instruction() {
        assert_eq!(failing_insn(LOG), Some(6));
        assert_eq!(failing_insn("no instructions here: (x)"), None);
    }

    #[test]
    fn splits_libbpf_output() {
        let output = format!(
            "libbpf: prog 'bad': BPF program load failed: Permission denied\n\
             libbpf: prog 'bad': {LOG_BEGIN}\n{LOG}{LOG_END}\nlibbpf: failed to load object 'x'\n"
        );
        let (messages, log) = split_verifier_log(&output);
        assert_eq!(log, LOG);
        assert!(messages.contains("load failed") && messages.contains("failed to load object"));
        assert!(!messages.contains("invalid mem access"));
        assert_eq!(failing_program(&output).as_deref(), Some("bad"));
    }
}
