//! Execution tests: generated code is loaded into the running kernel as a
//! socket filter and run with `BPF_PROG_TEST_RUN` on a dummy packet.

use super::insn::PSEUDO_MAP_FD;
use super::{disassemble, generate, ProgramCode};
use crate::bpf::helper;
use crate::bpf::MapId;
use crate::ir::{Addr, AluOp, Cond, Function, Inst, Operand, VReg, Width};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Size of the verifier log buffer used when a load fails.
const LOG_SIZE: usize = 1 << 20;

/// Loads `code` (with `maps[i]` the fd of `MapId(i)`), runs it once and
/// returns r0 (the kernel reports its low 32 bits).
pub(super) fn run_code(code: &ProgramCode, maps: &[&OwnedFd]) -> u32 {
    let mut insns = code.insns.clone();
    for reloc in &code.map_relocs {
        let fd = maps[reloc.map.0 as usize].as_raw_fd();
        insns[reloc.insn].src = PSEUDO_MAP_FD;
        insns[reloc.insn].imm = fd;
    }
    let raw: Vec<u64> = insns
        .iter()
        .map(|i| u64::from_le_bytes(i.encode()))
        .collect();
    let license = CString::new("GPL").unwrap();
    let name = CString::new("ns_test").unwrap();
    let load = |log: Option<&mut Vec<u8>>| {
        let mut opts = libbpf_sys::bpf_prog_load_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
            ..Default::default()
        };
        if let Some(buf) = log {
            opts.log_level = 1;
            opts.log_size = buf.len() as u32;
            opts.log_buf = buf.as_mut_ptr().cast();
        }
        // SAFETY: every pointer refers to live, correctly sized buffers for the duration of the call.
        unsafe {
            libbpf_sys::bpf_prog_load(
                libbpf_sys::BPF_PROG_TYPE_SOCKET_FILTER,
                name.as_ptr(),
                license.as_ptr(),
                raw.as_ptr().cast(),
                raw.len() as _,
                &mut opts,
            )
        }
    };
    let fd = load(None);
    if fd < 0 {
        let mut log = vec![0u8; LOG_SIZE];
        load(Some(&mut log));
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        panic!(
            "verifier rejected the program ({}):\n{}\n--- code ---\n{}",
            std::io::Error::from_raw_os_error(-fd),
            String::from_utf8_lossy(&log[..end]),
            disassemble(code)
        );
    }
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    let prog = unsafe { OwnedFd::from_raw_fd(fd) };
    let packet = [0u8; 64];
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
        data_in: packet.as_ptr().cast(),
        data_size_in: packet.len() as u32,
        ..Default::default()
    };
    // SAFETY: opts points at the live packet buffer.
    let err = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    assert_eq!(
        err,
        0,
        "test run failed: {}",
        std::io::Error::last_os_error()
    );
    opts.retval
}

/// Runs the body built by `build` (which returns the result register)
/// twice, returning the low and then the high half, to get all 64 bits.
pub(super) fn run_value(build: impl Fn(&mut Function) -> VReg) -> u64 {
    let half = |shift: i64| {
        let mut f = Function::new("t");
        let v = build(&mut f);
        let out = f.vreg();
        f.push(Inst::Alu {
            op: AluOp::Rsh,
            dst: out,
            lhs: Operand::Reg(v),
            rhs: Operand::Imm(shift),
        });
        f.push(Inst::Exit(Operand::Reg(out)));
        let code = generate(&f).unwrap_or_else(|e| panic!("codegen failed: {e}\n{f}"));
        run_code(&code, &[])
    };
    u64::from(half(0)) | (u64::from(half(32)) << 32)
}

/// A register holding `value`, set at run time.
/// A loop adding 1..=100 (a bounded loop the verifier must accept); the
/// register holding the sum.
pub(super) fn sum_to_hundred(f: &mut Function) -> VReg {
    let head = f.label();
    let i = constant(f, 1);
    let s = constant(f, 0);
    f.push(Inst::Label(head));
    f.push(Inst::Alu {
        op: AluOp::Add,
        dst: s,
        lhs: Operand::Reg(s),
        rhs: Operand::Reg(i),
    });
    f.push(Inst::Alu {
        op: AluOp::Add,
        dst: i,
        lhs: Operand::Reg(i),
        rhs: Operand::Imm(1),
    });
    f.push(Inst::Branch {
        cond: Cond::Le,
        lhs: i,
        rhs: Operand::Imm(100),
        target: head,
    });
    s
}

pub(super) fn constant(f: &mut Function, value: i64) -> VReg {
    let r = f.vreg();
    f.push(Inst::Mov {
        dst: r,
        src: Operand::Imm(value),
    });
    r
}

#[test]
fn values_survive_helper_calls() {
    if !crate::testing::bpf_available() {
        return;
    }
    // Seven values live across two calls (more than r6..r9 hold), plus the context.
    let got = run_value(|f| {
        let vals: Vec<VReg> = (1..=7).map(|k| constant(f, k * 1000)).collect();
        let t1 = f.vreg();
        f.push(Inst::Call {
            helper: helper::KTIME_GET_NS,
            args: vec![],
            dst: Some(t1),
        });
        let t2 = f.vreg();
        f.push(Inst::Call {
            helper: helper::KTIME_GET_NS,
            args: vec![],
            dst: Some(t2),
        });
        let elapsed = f.vreg();
        f.push(Inst::Alu {
            op: AluOp::Sub,
            dst: elapsed,
            lhs: Operand::Reg(t2),
            rhs: Operand::Reg(t1),
        });
        let sane = f.label();
        f.push(Inst::Branch {
            cond: Cond::Lt,
            lhs: elapsed,
            rhs: Operand::Imm(1_000_000_000),
            target: sane,
        });
        f.push(Inst::Exit(Operand::Imm(-1)));
        f.push(Inst::Label(sane));
        let sum = constant(f, 0);
        for v in vals {
            f.push(Inst::Alu {
                op: AluOp::Add,
                dst: sum,
                lhs: Operand::Reg(sum),
                rhs: Operand::Reg(v),
            });
        }
        // The context pointer also survived: it is non-zero.
        let ok = f.label();
        f.push(Inst::Branch {
            cond: Cond::Ne,
            lhs: f.ctx,
            rhs: Operand::Imm(0),
            target: ok,
        });
        f.push(Inst::Exit(Operand::Imm(-2)));
        f.push(Inst::Label(ok));
        sum
    });
    assert_eq!(got, 28_000);
}

fn create_array_map() -> OwnedFd {
    let name = CString::new("ns_test_arr").unwrap();
    // SAFETY: valid name, null opts are allowed.
    let fd = unsafe {
        libbpf_sys::bpf_map_create(
            libbpf_sys::BPF_MAP_TYPE_ARRAY,
            name.as_ptr(),
            4,
            8,
            1,
            std::ptr::null(),
        )
    };
    assert!(
        fd >= 0,
        "map create failed: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd was just returned by the kernel.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn array_map_update_lookup_and_store_through_pointer() {
    if !crate::testing::bpf_available() {
        return;
    }
    let map = create_array_map();
    let mut f = Function::new("t");
    let key = f.slot(4, 4);
    let value = f.slot(8, 8);
    f.push(Inst::Store {
        addr: Addr::Stack(key, 0),
        width: Width::B4,
        src: Operand::Imm(0),
    });
    f.push(Inst::Store {
        addr: Addr::Stack(value, 0),
        width: Width::B8,
        src: Operand::Imm(0x1_0000_0064),
    });
    let (m, k, v) = (f.vreg(), f.vreg(), f.vreg());
    f.push(Inst::MapPtr {
        dst: m,
        map: MapId(0),
    });
    f.push(Inst::StackAddr {
        dst: k,
        slot: key,
        off: 0,
    });
    f.push(Inst::StackAddr {
        dst: v,
        slot: value,
        off: 0,
    });
    let args = vec![
        Operand::Reg(m),
        Operand::Reg(k),
        Operand::Reg(v),
        Operand::Imm(0),
    ];
    f.push(Inst::Call {
        helper: helper::MAP_UPDATE_ELEM,
        args,
        dst: None,
    });
    let (m2, k2, p) = (f.vreg(), f.vreg(), f.vreg());
    f.push(Inst::MapPtr {
        dst: m2,
        map: MapId(0),
    });
    f.push(Inst::StackAddr {
        dst: k2,
        slot: key,
        off: 0,
    });
    f.push(Inst::Call {
        helper: helper::MAP_LOOKUP_ELEM,
        args: vec![Operand::Reg(m2), Operand::Reg(k2)],
        dst: Some(p),
    });
    let found = f.label();
    f.push(Inst::Branch {
        cond: Cond::Ne,
        lhs: p,
        rhs: Operand::Imm(0),
        target: found,
    });
    f.push(Inst::Exit(Operand::Imm(-1)));
    f.push(Inst::Label(found));
    let (old, new) = (f.vreg(), f.vreg());
    f.push(Inst::Load {
        dst: old,
        addr: Addr::Reg(p, 0),
        width: Width::B8,
    });
    f.push(Inst::Alu {
        op: AluOp::Add,
        dst: new,
        lhs: Operand::Reg(old),
        rhs: Operand::Imm(42),
    });
    f.push(Inst::Store {
        addr: Addr::Reg(p, 0),
        width: Width::B8,
        src: Operand::Reg(new),
    });
    let low = f.vreg();
    f.push(Inst::Load {
        dst: low,
        addr: Addr::Reg(p, 0),
        width: Width::B4,
    });
    f.push(Inst::Exit(Operand::Reg(low)));
    let code = generate(&f).unwrap();
    assert_eq!(code.map_relocs.len(), 2);
    assert_eq!(run_code(&code, &[&map]), 142);
    let mut stored = 0u64;
    let zero = 0u32;
    // SAFETY: key and value buffers match the map's sizes.
    let err = unsafe {
        libbpf_sys::bpf_map_lookup_elem(
            map.as_raw_fd(),
            (&zero as *const u32).cast(),
            (&mut stored as *mut u64).cast(),
        )
    };
    assert_eq!(err, 0);
    assert_eq!(stored, 0x1_0000_0064 + 42);
}

#[test]
fn stack_addresses_passed_to_helper() {
    if !crate::testing::bpf_available() {
        return;
    }
    // bpf_probe_read_kernel(&to, 8, &from) copies one stack slot into another.
    let got = run_value(|f| {
        let from = f.slot(8, 8);
        let to = f.slot(16, 8);
        f.push(Inst::Store {
            addr: Addr::Stack(from, 0),
            width: Width::B8,
            src: Operand::Imm(0x1122_3344_5566_7788),
        });
        f.push(Inst::Store {
            addr: Addr::Stack(to, 8),
            width: Width::B8,
            src: Operand::Imm(0),
        });
        let (dst, src) = (f.vreg(), f.vreg());
        f.push(Inst::StackAddr {
            dst,
            slot: to,
            off: 8,
        });
        f.push(Inst::StackAddr {
            dst: src,
            slot: from,
            off: 0,
        });
        let rc = f.vreg();
        let args = vec![Operand::Reg(dst), Operand::Imm(8), Operand::Reg(src)];
        f.push(Inst::Call {
            helper: helper::PROBE_READ_KERNEL,
            args,
            dst: Some(rc),
        });
        let result = f.vreg();
        f.push(Inst::Mov {
            dst: result,
            src: Operand::Reg(rc),
        });
        let failed = f.label();
        f.push(Inst::Branch {
            cond: Cond::Ne,
            lhs: rc,
            rhs: Operand::Imm(0),
            target: failed,
        });
        f.push(Inst::Load {
            dst: result,
            addr: Addr::Stack(to, 8),
            width: Width::B8,
        });
        f.push(Inst::Label(failed));
        result
    });
    assert_eq!(got, 0x1122_3344_5566_7788);
}

#[test]
fn compare_and_exchange_swaps_only_the_expected_value() {
    if !crate::testing::bpf_available() {
        return;
    }
    let map = create_array_map();
    let mut f = Function::new("t");
    let key = f.slot(4, 4);
    f.push(Inst::Store {
        addr: Addr::Stack(key, 0),
        width: Width::B4,
        src: Operand::Imm(0),
    });
    let (m, k, p) = (f.vreg(), f.vreg(), f.vreg());
    f.push(Inst::MapPtr {
        dst: m,
        map: MapId(0),
    });
    f.push(Inst::StackAddr {
        dst: k,
        slot: key,
        off: 0,
    });
    f.push(Inst::Call {
        helper: helper::MAP_LOOKUP_ELEM,
        args: vec![Operand::Reg(m), Operand::Reg(k)],
        dst: Some(p),
    });
    let found = f.label();
    f.push(Inst::Branch {
        cond: Cond::Ne,
        lhs: p,
        rhs: Operand::Imm(0),
        target: found,
    });
    f.push(Inst::Exit(Operand::Imm(-1)));
    f.push(Inst::Label(found));
    // 0 -> 7 succeeds (old 0); 0 -> 9 fails (old 7); the word stays 7.
    let (zero, seven, nine, first, second, now) = (
        constant(&mut f, 0),
        constant(&mut f, 7),
        constant(&mut f, 9),
        f.vreg(),
        f.vreg(),
        f.vreg(),
    );
    f.push(Inst::CmpXchg {
        base: p,
        off: 0,
        expected: zero,
        new: seven,
        old: first,
    });
    f.push(Inst::CmpXchg {
        base: p,
        off: 0,
        expected: zero,
        new: nine,
        old: second,
    });
    f.push(Inst::Load {
        dst: now,
        addr: Addr::Reg(p, 0),
        width: Width::B8,
    });
    let out = f.vreg();
    f.push(Inst::Alu {
        op: AluOp::Mul,
        dst: out,
        lhs: Operand::Reg(second),
        rhs: Operand::Imm(10),
    });
    f.push(Inst::Alu {
        op: AluOp::Add,
        dst: out,
        lhs: Operand::Reg(out),
        rhs: Operand::Reg(first),
    });
    let scaled = f.vreg();
    f.push(Inst::Alu {
        op: AluOp::Mul,
        dst: scaled,
        lhs: Operand::Reg(now),
        rhs: Operand::Imm(100),
    });
    f.push(Inst::Alu {
        op: AluOp::Add,
        dst: out,
        lhs: Operand::Reg(out),
        rhs: Operand::Reg(scaled),
    });
    f.push(Inst::Exit(Operand::Reg(out)));
    let code = generate(&f).unwrap();
    assert!(
        disassemble(&code).contains("r0 = cmpxchg("),
        "{}",
        disassemble(&code)
    );
    assert_eq!(run_code(&code, &[&map]), 770);
}
