use std::collections::HashMap;
use std::sync::OnceLock;

use super::*;

/// One type of `bpftool btf dump ... format raw`: kind, name and members
/// `(name, type id, bit offset, bitfield size)`.
struct RawType {
    kind: String,
    name: String,
    members: Vec<(String, u32, u32, u32)>,
}

fn field(line: &str, key: &str) -> Option<u32> {
    let start = line.find(key)? + key.len();
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// vmlinux BTF as bpftool (libbpf's independent parser) sees it.
fn bpftool_types() -> &'static HashMap<u32, RawType> {
    static TYPES: OnceLock<HashMap<u32, RawType>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let out = std::process::Command::new("bpftool")
            .args([
                "btf",
                "dump",
                "file",
                "/sys/kernel/btf/vmlinux",
                "format",
                "raw",
            ])
            .output()
            .expect("bpftool runs");
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let mut types = HashMap::new();
        let mut current = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix('[') {
                let (id, rest) = rest.split_once("] ").expect("type line");
                let mut words = rest.splitn(2, ' ');
                let kind = words.next().unwrap_or_default().to_string();
                let name = rest.split('\'').nth(1).unwrap_or_default().to_string();
                let id: u32 = id.parse().expect("id");
                types.insert(
                    id,
                    RawType {
                        kind,
                        name,
                        members: Vec::new(),
                    },
                );
                current = Some(id);
            } else if let (Some(id), Some(name)) = (current, line.trim_start().strip_prefix('\'')) {
                let name = name.split('\'').next().unwrap_or_default().to_string();
                if let (Some(ty), Some(off)) =
                    (field(line, "type_id="), field(line, "bits_offset="))
                {
                    let bits = field(line, "bitfield_size=").unwrap_or(0);
                    let entry = types.get_mut(&id).expect("current type");
                    entry.members.push((
                        if name == "(anon)" {
                            String::new()
                        } else {
                            name
                        },
                        ty,
                        off,
                        bits,
                    ));
                }
            }
        }
        types
    })
}

/// Member lookup through anonymous members, done on bpftool's view.
fn bpftool_member(agg: u32, name: &str) -> Option<(u32, u32, u32)> {
    let types = bpftool_types();
    types
        .get(&agg)?
        .members
        .iter()
        .find_map(|(member, ty, off, bits)| {
            if member == name {
                Some((*ty, *off, *bits))
            } else if member.is_empty() {
                bpftool_member(*ty, name).map(|(ty, inner, bits)| (ty, off + inner, bits))
            } else {
                None
            }
        })
}

fn bpftool_struct(name: &str) -> u32 {
    let types = bpftool_types();
    let mut ids: Vec<u32> = types
        .iter()
        .filter(|(_, t)| t.name == name && (t.kind == "STRUCT" || t.kind == "UNION"))
        .map(|(id, _)| *id)
        .collect();
    ids.sort();
    ids[0]
}

fn vmlinux() -> &'static Btf {
    Btf::vmlinux().expect("vmlinux BTF")
}

fn assert_member_matches_bpftool(agg: &str, member: &str) -> MemberInfo {
    let btf = vmlinux();
    let id = btf.find_struct(agg).expect("struct exists");
    assert_eq!(id.0, bpftool_struct(agg), "type id of struct {agg}");
    let ours = btf.member(id, member).expect("member exists");
    let (ty, off, bits) = bpftool_member(id.0, member).expect("bpftool sees the member");
    assert_eq!(
        (ours.ty.0, ours.bit_offset, ours.bitfield_size),
        (ty, off, bits),
        "{agg}.{member}"
    );
    ours
}

#[test]
fn sk_buff_members_match_bpftool() {
    let len = assert_member_matches_bpftool("sk_buff", "len");
    assert_eq!(vmlinux().type_name(len.ty), "unsigned int");
    // Inside anonymous unions/structs.
    let dev = assert_member_matches_bpftool("sk_buff", "dev");
    assert_eq!(vmlinux().type_name(dev.ty), "struct net_device *");
    assert_member_matches_bpftool("sk_buff", "tstamp");
    // A bitfield inside the anonymous `headers` group.
    let pkt_type = assert_member_matches_bpftool("sk_buff", "pkt_type");
    assert_eq!(pkt_type.bitfield_size, 3);
    assert_member_matches_bpftool("sock_common", "skc_daddr");
    assert!(vmlinux()
        .member(vmlinux().find_struct("sk_buff").unwrap(), "no_such_member")
        .is_none());
}

#[test]
fn member_through_nested_struct() {
    let btf = vmlinux();
    let sock = btf.find_struct("sock").unwrap();
    let common = btf.member(sock, "__sk_common").unwrap();
    assert_eq!(btf.type_name(common.ty), "struct sock_common");
    let daddr = btf.member(common.ty, "skc_daddr").unwrap();
    assert_eq!(btf.size_of(daddr.ty), Some(4));
    assert_eq!(
        daddr.bit_offset,
        bpftool_member(common.ty.0, "skc_daddr").unwrap().1
    );
}

#[test]
fn tcp_sendmsg_signature() {
    let btf = vmlinux();
    let (params, ret) = btf
        .func_signature("tcp_sendmsg")
        .expect("tcp_sendmsg in BTF");
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sk", "msg", "size"]);
    assert_eq!(btf.type_name(params[0].1), "struct sock *");
    assert_eq!(btf.type_name(params[1].1), "struct msghdr *");
    assert_eq!(btf.type_name(params[2].1), "size_t");
    assert_eq!(btf.type_name(ret), "int");
    assert!(btf.func_names().any(|n| n == "tcp_sendmsg"));
    assert!(btf.func_signature("no_such_function_xyz").is_none());
}

#[test]
fn enums_and_typedefs() {
    let btf = vmlinux();
    let (ty, value) = btf.enum_value("TCP_ESTABLISHED").unwrap();
    assert_eq!(value, 1);
    assert!(
        matches!(btf.ty(ty), Type::Enum { values, .. } if values.iter().any(|(n, _)| n == "TCP_CLOSE"))
    );
    assert!(btf.enum_value("SKB_DROP_REASON_NOT_SPECIFIED").is_some());
    assert!(btf.enum_value("NO_SUCH_ENUMERATOR").is_none());
    let reason = btf.find_enum("skb_drop_reason").unwrap();
    assert_eq!(btf.type_name(reason), "enum skb_drop_reason");
    let u32_id = btf.find_typedef("u32").unwrap();
    assert_eq!(btf.size_of(u32_id), Some(4));
    assert_eq!(btf.type_name(btf.skip_modifiers(u32_id)), "unsigned int");
}

#[test]
fn type_names_in_c_spelling() {
    let btf = vmlinux();
    let task = btf.find_struct("task_struct").unwrap();
    let comm = btf.member(task, "comm").unwrap();
    assert_eq!(btf.type_name(comm.ty), "char[16]");
    assert_eq!(btf.size_of(comm.ty), Some(16));
    let skb = btf.find_struct("sk_buff").unwrap();
    let head = btf.member(skb, "head").unwrap();
    assert_eq!(btf.type_name(head.ty), "unsigned char *");
    let ops = btf.find_struct("proto").unwrap();
    let close = btf.member(ops, "close").unwrap();
    assert_eq!(btf.type_name(close.ty), "void (*)(struct sock *, long int)");
    assert_eq!(btf.size_of(close.ty), Some(8));
}

#[test]
fn missing_module_btf_is_a_clear_error() {
    let err = Btf::module("no_such_module_xyz").unwrap_err();
    assert!(
        err.message.contains("/sys/kernel/btf/no_such_module_xyz"),
        "{}",
        err.message
    );
    assert!(Btf::module("../vmlinux").is_err());
}

// ---- hand-built blobs: every kind, bitfield encodings, split BTF, errors ----

/// Builds a BTF blob from type words and a string table.
fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let type_len = (types.len() * 4) as u32;
    let mut data = Vec::new();
    data.extend_from_slice(&0xeb9fu16.to_ne_bytes());
    data.extend_from_slice(&[1, 0]);
    for word in [24, 0, type_len, type_len, strings.len() as u32] {
        data.extend_from_slice(&word.to_ne_bytes());
    }
    for word in types {
        data.extend_from_slice(&word.to_ne_bytes());
    }
    data.extend_from_slice(strings);
    data
}

fn info(kind: u32, vlen: u32, kind_flag: bool) -> u32 {
    (u32::from(kind_flag) << 31) | (kind << 24) | vlen
}

const STRINGS: &[u8] = b"\0int\0s\0a\0b\0e\0BIG\0NEG\0u8\0old\0";
// offsets: int=1 s=5 a=7 b=9 e=11 BIG=13 NEG=17 u8=21 old=24

fn sample() -> &'static Btf {
    static SAMPLE: OnceLock<Btf> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        #[rustfmt::skip]
        let types = [
            // [1] int: signed, 32 bits
            1, info(raw::kind::INT, 0, false), 4, (1 << 24) | 32,
            // [2] struct s { int a; int b:3 (bit 32) } with kind_flag
            5, info(raw::kind::STRUCT, 2, true), 8, 7, 1, 0, 9, 1, (3 << 24) | 32,
            // [3] signed enum64 e { BIG = 1<<40, NEG = -2 }
            11, info(raw::kind::ENUM64, 2, true), 8, 13, 0, 1 << 8, 17, (-2i64) as u32, ((-2i64) >> 32) as u32,
            // [4] u8 as a 3-bit INT bitfield at bit 5 (legacy encoding)
            21, info(raw::kind::INT, 0, false), 1, (5 << 16) | 3,
            // [5] struct old { u8 a:3 } without kind_flag, member at bit 8
            24, info(raw::kind::STRUCT, 1, false), 2, 7, 4, 8,
            // [6] type tag, [7] decl tag on member 0 of [2], [8] const -> tag
            5, info(raw::kind::TYPE_TAG, 0, false), 1,
            7, info(raw::kind::DECL_TAG, 0, false), 2, 0,
            0, info(raw::kind::CONST, 0, false), 6,
        ];
        Btf::from_bytes(&blob(&types, STRINGS), None).expect("valid blob")
    })
}

#[test]
fn decodes_hand_built_kinds() {
    let btf = sample();
    assert!(matches!(
        btf.ty(TypeId(1)),
        Type::Int {
            signed: true,
            size: 4,
            ..
        }
    ));
    let s = btf.find_struct("s").unwrap();
    assert_eq!(
        btf.member(s, "b"),
        Some(MemberInfo {
            ty: TypeId(1),
            bit_offset: 32,
            bitfield_size: 3
        })
    );
    assert_eq!(btf.enum_value("BIG"), Some((TypeId(3), 1 << 40)));
    assert_eq!(btf.enum_value("NEG"), Some((TypeId(3), -2)));
    let old = btf.find_struct("old").unwrap();
    assert_eq!(
        btf.member(old, "a"),
        Some(MemberInfo {
            ty: TypeId(4),
            bit_offset: 13,
            bitfield_size: 3
        })
    );
    assert_eq!(
        btf.ty(TypeId(7)),
        &Type::DeclTag {
            name: "a".into(),
            ty: TypeId(2),
            component_idx: 0
        }
    );
    assert_eq!(btf.skip_modifiers(TypeId(8)), TypeId(1));
    assert_eq!(btf.type_name(TypeId(8)), "const int");
    assert_eq!(btf.ty(TypeId(999)), &Type::Void);
    assert_eq!(btf.size_of(TypeId(0)), None);
}

#[test]
fn split_btf_continues_ids_and_strings() {
    let base = sample();
    // [9] struct a { s b; } -- names "a"/"b" from the base, "int" too.
    let own_strings = b"mine\0";
    let str_base = STRINGS.len() as u32;
    #[rustfmt::skip]
    let types = [
        str_base, info(raw::kind::STRUCT, 1, false), 8, 9, 2, 0,
        0, info(raw::kind::PTR, 0, false), 9,
    ];
    let split = Btf::from_bytes(&blob(&types, own_strings), Some(base)).unwrap();
    let mine = split.find_struct("mine").unwrap();
    assert_eq!(mine, TypeId(9));
    assert_eq!(split.type_name(TypeId(10)), "struct mine *");
    let b = split.member(mine, "b").unwrap();
    assert_eq!(split.type_name(b.ty), "struct s");
    assert_eq!(split.member(b.ty, "a").map(|m| m.ty), Some(TypeId(1)));
    assert_eq!(split.find_struct("s"), Some(TypeId(2)));
    assert_eq!(split.enum_value("NEG"), Some((TypeId(3), -2)));
    assert!(split.has_type(TypeId(10)) && split.has_type(TypeId(2)));
    assert!(base.has_type(TypeId(8)) && !base.has_type(TypeId(9)));
}

#[test]
fn vmlinux_functions_are_described_by_vmlinux_btf() {
    let vmlinux = Btf::vmlinux().unwrap();
    for name in ["tcp_sendmsg", "no_such_function_xyz"] {
        assert!(
            std::ptr::eq(Btf::of_function(name).unwrap(), vmlinux),
            "{name}"
        );
    }
}

#[test]
fn rejects_corrupt_blobs() {
    let good = blob(&[1, info(raw::kind::INT, 0, false), 4, 32], STRINGS);
    assert!(Btf::from_bytes(&good, None).is_ok());
    assert!(Btf::from_bytes(&good[..10], None)
        .unwrap_err()
        .message
        .contains("corrupt BTF"));
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xff;
    assert!(Btf::from_bytes(&bad_magic, None).is_err());
    let truncated = blob(&[1, info(raw::kind::INT, 0, false), 4], STRINGS);
    assert!(Btf::from_bytes(&truncated, None).is_err());
    let unknown = blob(&[1, info(31, 0, false), 4], STRINGS);
    assert!(Btf::from_bytes(&unknown, None)
        .unwrap_err()
        .message
        .contains("unknown type kind 31"));
    // A struct claiming more members than present.
    let short = blob(&[1, info(raw::kind::STRUCT, 5, false), 4], STRINGS);
    assert!(Btf::from_bytes(&short, None).is_err());
}

#[test]
fn vmlinux_parse_time() {
    for _ in 0..3 {
        time_vmlinux_parse();
    }
}

fn time_vmlinux_parse() {
    let start = std::time::Instant::now();
    let data = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let read = start.elapsed();
    let btf = Btf::from_bytes(&data, None).unwrap();
    let parsed = start.elapsed();
    let skb = btf.find_struct("sk_buff").unwrap();
    let indexed = start.elapsed();
    btf.member(skb, "len").unwrap();
    btf.enum_value("TCP_ESTABLISHED").unwrap();
    let all = start.elapsed();
    println!(
        "vmlinux BTF ({} bytes, {} types): read {read:?}, parsed {parsed:?}, \
         name index {indexed:?}, + member and enumerator lookups {all:?}",
        data.len(),
        btf.type_count() - 1
    );
}
