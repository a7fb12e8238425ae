//! Test hosts: two network namespaces joined by a veth pair, removed on drop.

use std::process::{Command, Stdio};

/// Runs a command, panicking with its output if it fails.
pub fn sh(cmd: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "`{}` failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces `<tag>a` (10.77.N.1, fd77:N::1 on veth `<tag>0`) and `<tag>b`
/// (10.77.N.2, fd77:N::2 on veth `<tag>1`), or on other subnets.
pub struct NetnsPair {
    /// Namespace names.
    pub ns: [String; 2],
    /// Device names (in namespace 0 and 1).
    pub dev: [String; 2],
    /// IPv4 addresses.
    pub ip4: [String; 2],
    /// IPv6 addresses.
    pub ip6: [String; 2],
}

impl NetnsPair {
    /// Creates the pair; `n` (1..=250) keeps concurrent tests apart.
    pub fn new(tag: &str, n: u8) -> NetnsPair {
        NetnsPair::on_subnets(tag, "10.77", "fd77", n)
    }

    /// Creates the pair on `<v4>.N.1`/`.2` and `<v6>:N::1`/`::2` (e.g. "10.231"
    /// and "fde7"), for tests whose tracepoints must not see other tests'
    /// addresses.
    pub fn on_subnets(tag: &str, v4: &str, v6: &str, n: u8) -> NetnsPair {
        let p = NetnsPair {
            ns: [format!("{}a", tag), format!("{}b", tag)],
            dev: [format!("{}0", tag), format!("{}1", tag)],
            ip4: [format!("{v4}.{n}.1"), format!("{v4}.{n}.2")],
            ip6: [format!("{v6}:{n}::1"), format!("{v6}:{n}::2")],
        };
        p.remove();
        for i in 0..2 {
            sh(&format!("ip netns add {}", p.ns[i]));
        }
        sh(&format!(
            "ip link add {} netns {} type veth peer name {} netns {}",
            p.dev[0], p.ns[0], p.dev[1], p.ns[1]
        ));
        for i in 0..2 {
            let (ns, dev) = (&p.ns[i], &p.dev[i]);
            sh(&format!("ip -n {ns} link set lo up"));
            sh(&format!("ip -n {ns} addr add {}/24 dev {dev}", p.ip4[i]));
            sh(&format!(
                "ip -n {ns} addr add {}/64 dev {dev} nodad",
                p.ip6[i]
            ));
            sh(&format!("ip -n {ns} link set {dev} up"));
        }
        // Resolve neighbours once so that counted traffic has no ARP/ND in it
        // (echoes every second until the first reply, for up to 5 s: a
        // link just brought up may lose the first solicitation).
        p.exec(0, &format!("ping -q -c 1 -w 5 {}", p.ip4[1]));
        p.exec(0, &format!("ping -q -c 1 -w 5 {}", p.ip6[1]));
        p
    }

    /// Runs a shell command inside namespace `i`.
    pub fn exec(&self, i: usize, cmd: &str) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns[i], "sh", "-c", cmd])
            .output()
            .expect("ip runs");
        assert!(
            out.status.success(),
            "`{}` in {} failed: {}",
            cmd,
            self.ns[i],
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts a shell command inside namespace `i` in the background, in
    /// its own process group: it and its children are killed when the
    /// returned handle is dropped, so a failing test leaves nothing behind.
    pub fn spawn(&self, i: usize, cmd: &str) -> Spawned {
        use std::os::unix::process::CommandExt;
        Spawned(
            Command::new("ip")
                .args(["netns", "exec", &self.ns[i], "sh", "-c", cmd])
                .stdout(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("ip netns exec runs"),
        )
    }

    fn remove(&self) {
        for ns in &self.ns {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A background process group started by [`NetnsPair::spawn`].
pub struct Spawned(std::process::Child);

impl Spawned {
    /// Waits for the process to end.
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            // SAFETY: kill(2) on our own child's process group.
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
}
