//! The REPL driven through a pseudo-terminal: probes attached as they are
//! entered, maps growing while they run, detaching (checked with bpftool),
//! errors that leave the session as it was, tab completion, Ctrl-C, Ctrl-D
//! and history across sessions.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use expectrl::session::OsSession;
use expectrl::{ControlCode, Eof, Expect, Regex, Session};

type Repl = OsSession;

/// Starts `netscript repl` with `HOME` set to `home`, waiting for the prompt.
fn start(home: &Path) -> Repl {
    let mut cmd = Command::new(common::netscript_bin());
    cmd.arg("repl").env("HOME", home).env("TERM", "xterm");
    let mut repl = Session::spawn(cmd).expect("the REPL starts in a pty");
    repl.set_expect_timeout(Some(Duration::from_secs(30)));
    repl.expect("ns> ").expect("first prompt");
    repl
}

/// Enters `line`, waits for `pattern` in the output, then for the next
/// prompt (a line typed before the prompt is drawn would be lost, as at a
/// terminal); returns the match and its first group.
fn enter(repl: &mut Repl, line: &str, pattern: &str) -> (String, String) {
    repl.send_line(line).unwrap();
    let found = repl
        .expect(Regex(pattern))
        .unwrap_or_else(|e| panic!("after {line:?}: no match for {pattern}: {e}"));
    let text = |i| String::from_utf8_lossy(found.get(i).unwrap_or_default()).into_owned();
    let matched = (text(0), text(1));
    prompt(repl);
    matched
}

/// Waits for the next prompt (`ns> ` or the continuation `... `).
fn prompt(repl: &mut Repl) {
    repl.expect(Regex(r"ns> |\.\.\. "))
        .unwrap_or_else(|e| panic!("no prompt: {e}"));
}

/// [`enter`], returning the first group as a number.
fn enter_number(repl: &mut Repl, line: &str, pattern: &str) -> u64 {
    let (_, group) = enter(repl, line, pattern);
    group
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("'{group}' is not a number"))
}

/// Whether `bpftool prog show id ID` finds the program.
fn program_exists(id: u64) -> bool {
    Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string()])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Enters a multi-line probe counting received packets into `@rx`;
/// returns the kernel id of its program (from `:probes`).
fn attach_rx_counter(repl: &mut Repl) -> u64 {
    repl.send_line("tracepoint:net:netif_receive_skb {")
        .unwrap();
    prompt(repl);
    repl.send_line("  @rx = count();").unwrap();
    prompt(repl);
    enter(
        repl,
        "}",
        "attached probe 1: tracepoint:net:netif_receive_skb",
    );
    enter_number(repl, ":probes", r"\n1 +\d+ +(\d+) +<input 1>")
}

/// `@rx`'s value as `:print @rx` shows it.
fn print_rx(repl: &mut Repl) -> u64 {
    enter_number(repl, ":print @rx", r"\n@rx: (\d+)")
}

/// Ctrl-D: expects `detached` (when probes were attached) and the end.
fn leave(mut repl: Repl, detached: Option<&str>) {
    repl.send(ControlCode::EndOfTransmission).unwrap();
    if let Some(text) = detached {
        repl.expect(text).expect("Ctrl-D detaches");
    }
    repl.expect(Eof).expect("Ctrl-D leaves");
}

#[test]
fn probe_counts_then_detaches_and_the_program_is_gone() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let home = tempdir("attach");
    let mut repl = start(&home);
    let prog = attach_rx_counter(&mut repl);
    assert!(program_exists(prog), "bpftool sees program {prog}");
    common::ping_loopback(5, 56);
    let first = print_rx(&mut repl);
    assert!(
        first >= 5,
        "5 pings counted at least 5 packets, got {first}"
    );
    common::ping_loopback(5, 56);
    let second = print_rx(&mut repl);
    assert!(second >= first + 5, "the map grew: {first} then {second}");
    enter(&mut repl, ":detach 1", "detached probe 1");
    assert!(
        !program_exists(prog),
        "program {prog} is gone after :detach"
    );
    // The map outlives its probe and stops growing.
    let frozen = print_rx(&mut repl);
    assert!(frozen >= second);
    common::ping_loopback(3, 56);
    assert_eq!(print_rx(&mut repl), frozen);
    leave(repl, None);
}

#[test]
fn a_mistake_leaves_the_attached_probe_counting() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let home = tempdir("mistake");
    let mut repl = start(&home);
    let prog = attach_rx_counter(&mut repl);
    let (error, _) = enter(
        &mut repl,
        "tracepoint:net:netif_receive_skb { @rx = count() +; }",
        r"<input 2>:1:\d+: error: [^\r\n]*\r?\n[^\r\n]*\r?\n *\^",
    );
    assert!(error.contains("expected"), "{error}");
    enter(
        &mut repl,
        "tracepoint:net:netif_rx { @n = nosuchfunction(); }",
        r"<input 3>:1:\d+: error: unknown function",
    );
    enter(
        &mut repl,
        "tracepoint:net:netif_rx { $i = 1; while ($i) { @y = 1; } }",
        r"<input 4>:1:\d+: error: the kernel verifier rejected the program for tracepoint:net:netif_rx",
    );
    // The rejected input left no map behind.
    enter(&mut repl, ":print @y", "no map named @y");
    common::ping_loopback(2, 56);
    let before = print_rx(&mut repl);
    common::ping_loopback(5, 56);
    let after = print_rx(&mut repl);
    assert!(after >= before + 5, "still counting: {before} then {after}");
    assert!(program_exists(prog), "program {prog} still loaded");
    enter(&mut repl, ":probes", r"\n1 +\d+ +\d+ +<input 1>");
    leave(repl, Some("detached 1 probe"));
    assert!(!program_exists(prog), "program {prog} gone after Ctrl-D");
}

/// ICMP payload size of this test's pings: their packets are the only
/// ones of length [`SHARED_LEN`] (payload + ICMP + IPv4 headers) that the
/// probes count, whatever other tests send at the same time.
const SHARED_PAYLOAD: u32 = 333;
/// `args->len` of those packets at `netif_receive_skb`.
const SHARED_LEN: u32 = SHARED_PAYLOAD + 8 + 20;

#[test]
fn later_probes_share_maps_and_definitions() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let home = tempdir("share");
    let mut repl = start(&home);
    let filter = format!("tracepoint:net:netif_receive_skb /args->len == {SHARED_LEN}/");
    enter(
        &mut repl,
        &format!("{filter} {{ @rx = count(); }}"),
        "attached probe 1",
    );
    enter(
        &mut repl,
        "fn twice($x) { return $x * 2; }",
        "defined fn twice",
    );
    // A second object writes the same kernel map, keyed by a definition.
    enter(
        &mut repl,
        &format!("{filter} {{ @rx = count(); @k[twice(21)] = count(); }}"),
        "attached probe 2",
    );
    common::ping_loopback(3, SHARED_PAYLOAD);
    // 3 requests and 3 replies, each counted by both probes.
    assert_eq!(print_rx(&mut repl), 12);
    enter(&mut repl, ":print @k", r"@k\[42\]: 6");
    // A use that would change a live map's type is refused.
    enter(
        &mut repl,
        "tracepoint:net:netif_receive_skb { @rx = 1; }",
        r"<input 4>:1:\d+: error",
    );
    // :clear empties a map while its probes run; they fill it again.
    enter(&mut repl, ":clear @rx", "");
    enter(&mut repl, ":maps", r"@rx  count  \(0 entries\)");
    common::ping_loopback(1, SHARED_PAYLOAD);
    assert_eq!(print_rx(&mut repl), 4);
    // :watch prints until Ctrl-C, then the prompt is back.
    repl.send_line(":watch 0.2 @k").unwrap();
    repl.expect(Regex(r"@k\[42\]: 8")).expect("first print");
    repl.expect(Regex(r"@k\[42\]: 8")).expect("second print");
    repl.send(ControlCode::EndOfText).unwrap();
    prompt(&mut repl);
    enter(&mut repl, ":probes", r"\n2 +\d+");
    leave(repl, Some("detached 2 probe"));
}

#[test]
fn tab_completes_struct_fields_commands_and_maps() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let home = tempdir("complete");
    let mut repl = start(&home);
    repl.send(
        "tracepoint:net:netif_receive_skb { @len = sum(((struct sk_buff *)args->skbaddr)->le",
    )
    .unwrap();
    repl.send("\t").unwrap();
    // `len` is the only field of sk_buff that starts with `le`.
    repl.expect("->len").expect("the field is completed");
    enter(&mut repl, "); }", "attached probe 1");
    // args-> of a tracepoint completes its fields (skbaddr, len, name).
    repl.send("tracepoint:net:netif_receive_skb { @s = args->skb")
        .unwrap();
    repl.send("\t").unwrap();
    repl.expect("args->skbaddr")
        .expect("tracepoint field completed");
    repl.send(ControlCode::EndOfText).unwrap();
    prompt(&mut repl);
    common::ping_loopback(2, 56);
    repl.send(":pri\t").unwrap();
    repl.expect(":print").expect("command completed");
    repl.send(" @l\t").unwrap();
    repl.expect("@len").expect("map name completed");
    enter(&mut repl, "", r"\n@len: \d+");
    leave(repl, Some("detached 1 probe"));
}

#[test]
fn load_runs_a_script_with_its_parameters_and_paths() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let home = tempdir("load");
    let script = home.join("lo.ns");
    std::fs::write(
        &script,
        "param bucket: int = 0 \"a key\"\n\
         tracepoint:net:netif_receive_skb { @loaded[bucket] = count(); }\n\
         path lo_path {\n\
           key = pkt_key($skb);\n\
           detail = 0;\n\
           stage XMIT = tracepoint:net:net_dev_queue -> args->skbaddr;\n\
           stage RECV = tracepoint:net:netif_receive_skb -> args->skbaddr;\n\
         }\n",
    )
    .expect("script written");
    let mut repl = start(&home);
    let load = format!(":load {} --bucket 7", script.display());
    enter(&mut repl, &load, "attached probe 1: ");
    common::ping_loopback(3, 56);
    enter(&mut repl, ":print @loaded", r"@loaded\[7\]: \d+");
    enter(&mut repl, ":paths", r"lo_path  \(probe 1");
    enter(&mut repl, ":detach 1", r"lo_path: started [1-9]");
    leave(repl, None);
}

#[test]
fn history_is_kept_across_sessions() {
    let home = tempdir("history");
    let mut repl = start(&home);
    let listed = r"\ntracepoint:net:netif_receive_skb\r?\n";
    enter(&mut repl, ":list tracepoint:net:netif_receive_skb", listed);
    leave(repl, None);
    let saved = std::fs::read_to_string(home.join(".netscript_history")).unwrap_or_default();
    assert!(
        saved.contains(":list tracepoint:net:netif_receive_skb"),
        "{saved}"
    );
    let mut again = start(&home);
    again.send("\x1b[A").unwrap(); // Up: the previous session's line.
    again.expect(":list").expect("recalled from history");
    enter(&mut again, "", listed);
    leave(again, None);
}

/// A fresh directory under the target's temp dir to serve as `$HOME`.
fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netscript-repl-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
