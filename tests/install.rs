//! netscript on a host where only the binary was copied: it needs no
//! library but the C library's, runs the bundled scripts by name, lists
//! them, and gives the shells their completions and the user a man page.

mod common;

use common::{netscript_bin, Tracer};
use std::path::Path;
use std::process::Command;

/// Runs netscript with `args` in directory `dir`; (exit code, stdout, stderr).
fn netscript_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(netscript_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run netscript");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A directory with nothing in it, as on a host where only the binary was
/// copied (no checkout, no scripts/).
fn empty_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netscript-install-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// The names of the scripts of the checkout's `scripts/`.
fn checkout_scripts() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("scripts/")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "ns").then(|| path.file_stem().unwrap().to_string_lossy().into())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn the_binary_needs_no_library_but_the_c_librarys() {
    let out = Command::new("ldd")
        .arg(netscript_bin())
        .output()
        .expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    let libraries: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(libraries.iter().any(|l| l.starts_with("libc.so")), "{text}");
    // glibc (libc, libm, the dynamic loader), the kernel's vDSO, and the
    // unwinder glibc loads for thread cancellation anyway.
    let glibc = [
        "libc.so",
        "libm.so",
        "ld-linux",
        "linux-vdso",
        "libgcc_s.so",
        "/lib64/ld-linux",
    ];
    for lib in &libraries {
        assert!(
            glibc.iter().any(|g| lib.starts_with(g)),
            "{lib} is needed at run time: {text}"
        );
    }
}

#[test]
fn every_bundled_script_is_listed_and_runs_by_name_outside_a_checkout() {
    let dir = empty_dir("by-name");
    let (code, out, err) = netscript_in(&dir, &["-l", "scripts"]);
    assert_eq!(code, 0, "{err}");
    let listed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, checkout_scripts(), "{out}");
    assert!(
        out.contains("tcp_metrics         continuous TCP performance observability"),
        "{out}"
    );
    // -lv adds each script's options.
    let (code, out, err) = netscript_in(&dir, &["-lv", "script:tcp_conn*"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("tcp_connlife  the life of TCP connections"),
        "{out}"
    );
    assert!(out.contains("    -p, --pid N  "), "{out}");
    for name in checkout_scripts() {
        for spelling in [
            name.clone(),
            format!("{name}.ns"),
            format!("scripts/{name}.ns"),
        ] {
            let (code, out, err) = netscript_in(&dir, &[&spelling, "--help"]);
            assert_eq!(code, 0, "{spelling}: {err}");
            assert!(
                out.starts_with(&format!("usage: netscript {spelling} [OPTIONS]\n")),
                "{out}"
            );
            assert!(out.contains("netscript's own options"), "{out}");
        }
    }
    // A name that is neither a file nor a bundled script says where to look.
    let (code, _, err) = netscript_in(&dir, &["ovs_tcp_latencyy"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot read ovs_tcp_latencyy") && err.contains("netscript -l scripts"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bundled_script_passes_the_verifier_by_name_and_a_file_of_its_name_wins() {
    if !netscript::testing::bpf_available() {
        return;
    }
    let dir = empty_dir("verifier");
    let (code, _, err) = netscript_in(&dir, &["kernel_icmp_rtt", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("passed the kernel verifier"), "{err}");
    // A file of that name in the working directory is run instead.
    std::fs::write(
        dir.join("kernel_icmp_rtt"),
        "BEGIN { printf(\"mine\\n\"); exit(); }\n",
    )
    .unwrap();
    let (code, out, err) = netscript_in(&dir, &["kernel_icmp_rtt"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Attaching 1 probe...\nmine\n\n\n"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What bash's completion of `netscript` offers for the words `words`
/// (the last one being completed), with the script of `netscript
/// completions bash` loaded as bash-completion would load it.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {script}\nCOMP_WORDS=({line})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         _netscript netscript '{current}' '{previous}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script = script.display(),
        cword = words.len() - 1,
        current = words[words.len() - 1],
        previous = words[words.len() - 2],
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_offers_the_bundled_scripts_and_their_flags() {
    let dir = empty_dir("bash");
    let (code, script, err) = netscript_in(&dir, &["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    let path = dir.join("netscript.bash");
    std::fs::write(&path, script).unwrap();
    let mut names = bash_completes(&path, &["netscript", "ovs_"]);
    names.sort();
    assert_eq!(names, ["ovs_icmp_rtt", "ovs_tcp_latency"]);
    assert_eq!(
        bash_completes(&path, &["netscript", "ovs_tcp_latency", "--src-i"]),
        ["--src-ip"]
    );
    // An option with words completes to them.
    let mut modes = bash_completes(&path, &["netscript", "vm_network_latency", "--mode", ""]);
    modes.sort();
    assert!(modes.contains(&"histogram".to_string()), "{modes:?}");
    assert!(modes.contains(&"detail".to_string()), "{modes:?}");
    // netscript's own options too.
    assert_eq!(
        bash_completes(&path, &["netscript", "--dry-r"]),
        ["--dry-run"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn zsh_and_fish_completions_and_the_man_page_name_every_script() {
    for shell in ["zsh", "fish"] {
        let (code, out, err) = common::netscript(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        for name in checkout_scripts() {
            assert!(out.contains(&name), "{shell}: no {name}");
        }
        assert!(out.contains("src-ip"), "{shell}: no script flag");
    }
    let (code, _, err) = common::netscript(&["completions", "tcsh"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no shell 'tcsh' (bash, elvish, fish, powershell or zsh)"),
        "{err}"
    );
    let (code, _, err) = common::netscript(&["completions"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("usage: netscript completions bash|zsh|fish"),
        "{err}"
    );
    let (code, man, err) = common::netscript(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(man.contains(".TH netscript 1"), "{man}");
    assert!(man.contains("\\-\\-dry\\-run"), "{man}");
    for name in checkout_scripts() {
        assert!(man.contains(&name), "the man page names {name}");
    }
    // It is valid roff: man renders it, with the scripts as subcommands.
    let (code, text, err) = Tracer::start(
        "sh",
        &["-c", &format!("{} man | man -l -P cat -", netscript_bin())],
    )
    .finish();
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("SUBCOMMANDS"), "{text}");
    assert!(text.contains("tcp_metrics"), "{text}");
    // Each script has its page, with its options and their defaults.
    let (code, page, err) = common::netscript(&["man", "tcp_connlife"]);
    assert_eq!(code, 0, "{err}");
    assert!(page.contains("netscript tcp_connlife"), "{page}");
    assert!(
        page.contains("\\-\\-pid") && page.contains("[default: 0]"),
        "{page}"
    );
    let (code, _, err) = common::netscript(&["man", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("man: no page 'nope'"), "{err}");
    // The zsh script is valid zsh.
    let dir = empty_dir("zsh");
    let (_, zsh, _) = common::netscript(&["completions", "zsh"]);
    std::fs::write(dir.join("_netscript"), zsh).unwrap();
    let status = Command::new("zsh")
        .args(["-n", dir.join("_netscript").to_str().unwrap()])
        .status()
        .expect("run zsh (apt-get install zsh)");
    assert!(status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}
