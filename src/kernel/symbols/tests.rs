use super::*;

const SAMPLE: &str = "\
ffffffff81000000 T _stext
ffffffff81000100 t helper.isra.0
ffffffff81000200 t helper.constprop.0
ffffffff81000300 t other.part.0
ffffffff81000400 T other.cold
ffffffff81000500 D some_data
ffffffffc0001000 t ovs_vport_receive\t[openvswitch]
garbage line
";

#[test]
fn parses_and_resolves_sample() {
    let syms = Kallsyms::parse(SAMPLE.to_string());
    assert_eq!(syms.resolve(0xffffffff81000105), Some(("helper.isra.0", 5)));
    assert_eq!(syms.resolve(0xffffffff81000000), Some(("_stext", 0)));
    assert_eq!(syms.resolve(0x1000), None);
    assert_eq!(syms.module_of("ovs_vport_receive"), Some("openvswitch"));
    assert_eq!(syms.module_of("_stext"), None);
    assert_eq!(syms.module_of("some_data"), None, "not a function");
    let clones: Vec<&str> = syms
        .functions_named("helper")
        .map(|s| syms.name(s))
        .collect();
    assert_eq!(clones.len(), 2);
    assert_eq!(clone_rank("helper.isra.0", "helper"), 1);
    assert_eq!(clone_rank("helper.constprop.0", "helper"), 2);
    assert_eq!(clone_rank("other.part.0", "other"), 3);
    assert_eq!(clone_rank("other.cold", "other"), 4);
    assert_eq!(clone_rank("other", "other"), 0);
}

#[test]
fn resolves_real_functions() {
    if !crate::testing::bpf_available() {
        return;
    }
    assert_eq!(resolve_function("tcp_sendmsg").unwrap(), "tcp_sendmsg");
    let err = resolve_function("no_such_function_xyz").unwrap_err();
    assert_eq!(
        err.message,
        "kernel function no_such_function_xyz not found"
    );
    // A static function GCC cloned on this kernel, if there is one: asking
    // for its base name finds the clone.
    let kallsyms = Kallsyms::global().unwrap();
    let clone = kallsyms.symbols.iter().map(|s| kallsyms.name(s)).find(|n| {
        n.contains(".isra.")
            && kallsyms
                .functions_named(base_name(n))
                .all(|s| kallsyms.name(s) != base_name(n))
    });
    if let Some(clone) = clone {
        let resolved = resolve_function(base_name(clone)).unwrap();
        assert!(
            resolved.starts_with(base_name(clone)) && resolved.contains('.'),
            "{clone} -> {resolved}"
        );
    }
}

#[test]
fn resolves_address_of_known_symbol() {
    if !crate::testing::bpf_available() {
        return;
    }
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let line = text
        .lines()
        .find(|l| l.ends_with(" T tcp_sendmsg"))
        .expect("tcp_sendmsg in kallsyms");
    let addr = u64::from_str_radix(line.split(' ').next().unwrap(), 16).unwrap();
    let start = std::time::Instant::now();
    let kallsyms = Kallsyms::load().unwrap();
    println!(
        "kallsyms: {} symbols loaded in {:?}",
        kallsyms.symbols.len(),
        start.elapsed()
    );
    // Loaded BPF programs come and go in kallsyms: count one reading.
    let lines = text.lines().count();
    assert_eq!(
        Kallsyms::parse(text).symbols.len(),
        lines,
        "every line read"
    );
    assert_eq!(kallsyms.resolve(addr), Some(("tcp_sendmsg", 0)));
    assert_eq!(
        kallsyms.resolve(addr + 3).map(|(_, offset)| offset),
        Some(3)
    );
    assert_eq!(kallsyms.module_of("tcp_sendmsg"), None);
}

#[test]
fn lists_traceable_functions() {
    if !crate::testing::bpf_available() {
        return;
    }
    let tcp = list_functions("tcp_send*").unwrap();
    assert!(tcp.contains(&"tcp_sendmsg".to_string()));
    assert!(tcp
        .iter()
        .all(|name| name.starts_with("tcp_send") && !name.contains(' ')));
    assert!(tcp.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn features_of_this_kernel() {
    let features = kernel_features();
    assert!(features.btf);
    assert!(features.ringbuf);
    // This kernel is built without CONFIG_KPROBES (see COMMON.md).
    assert_eq!(
        features.kprobes,
        Path::new("/sys/bus/event_source/devices/kprobe").exists()
    );
    assert!(kernel_version().is_some_and(|v| v >= (5, 8)));
}

#[test]
fn skips_malformed_lines_and_reads_modules() {
    let text = "ffffffff81000000 T\nzz T bad_address\nffffffff81000010 T\tnot_spaced\n\
                ffffffff81000020 t short\n12345678901234567 T too_long\n\
                ffffffffc0002000 T vport_cmd\t[openvswitch]\nffffffffc0002100 t no_module\t[]";
    let syms = Kallsyms::parse(text.to_string());
    let names: Vec<&str> = syms.symbols.iter().map(|s| syms.name(s)).collect();
    assert_eq!(names, ["short", "vport_cmd", "no_module"]);
    assert_eq!(syms.module_of("vport_cmd"), Some("openvswitch"));
    assert_eq!(syms.module_of("short"), None);
    assert_eq!(syms.module_of("no_module"), None);
    assert_eq!(syms.resolve(0xffffffffc0002005), Some(("vport_cmd", 5)));
}
