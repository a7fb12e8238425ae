//! Decoding of raw map entries and ring-buffer records into the output
//! model, following `ir::layout`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bpf::STACK_DEPTH;
use crate::ir::layout::{key_layout, MapTable};
use crate::kernel::symbols::Kallsyms;
use crate::output::anonymize;
use crate::output::model::{Aggregate, MapDump, Value};
use crate::sema::tast::{Agg, MapDecl, MapValue};
use crate::types::{tuple_layout, Names, Ty};

/// Resolves what values need from the kernel: symbols and stacks.
pub trait Symbolizer {
    /// `sym` or `sym+off` of a kernel address (`with_offset` for stack frames).
    fn symbol(&self, addr: u64, with_offset: bool) -> String;
    /// The frames of a recorded kernel stack.
    fn stack(&self, id: u64) -> Vec<u64>;
}

/// Symbolises addresses through /proc/kallsyms; knows no recorded stacks.
pub struct KallsymsOnly;

impl Symbolizer for KallsymsOnly {
    fn symbol(&self, addr: u64, with_offset: bool) -> String {
        match Kallsyms::global() {
            Ok(k) => kallsyms_symbol(k, addr, with_offset),
            Err(_) => format!("0x{:x}", addr),
        }
    }

    fn stack(&self, _id: u64) -> Vec<u64> {
        Vec::new()
    }
}

/// Symbolises through /proc/kallsyms (loaded on first use).
pub fn kallsyms_symbol(syms: &Kallsyms, addr: u64, with_offset: bool) -> String {
    match syms.resolve(addr) {
        Some((name, off)) if with_offset => format!("{}+{}", name, off),
        Some((name, _)) => name.to_string(),
        None => format!("0x{:x}", addr),
    }
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}

/// Decodes one value of type `ty` stored at the start of `b`.
pub fn value(ty: &Ty, b: &[u8], sym: &dyn Symbolizer) -> Value {
    match ty {
        Ty::Int { signed: true, .. } => Value::Int(u64_at(b, 0) as i64),
        Ty::Int { .. } | Ty::Ptr(_) | Ty::PacketPtr(_) | Ty::Record(_) | Ty::Void => {
            Value::UInt(u64_at(b, 0))
        }
        Ty::Str(n) => {
            let bytes = &b[..(*n as usize).min(b.len())];
            let end = bytes.iter().position(|c| *c == 0).unwrap_or(bytes.len());
            Value::Str(String::from_utf8_lossy(&bytes[..end]).into_owned())
        }
        Ty::KSym => Value::Sym(sym.symbol(u64_at(b, 0), false)),
        Ty::Named(names) => match (names.as_ref(), anonymize::active()) {
            (Names::Redacted(Ty::Int { size, .. }), Some(anonymizer)) => {
                Value::UInt(anonymizer.integer(u64_at(b, 0), *size))
            }
            (Names::Redacted(int), None) => value(int, b, sym),
            _ => Value::Str(names.render(u64_at(b, 0))),
        },
        Ty::KStack => {
            // The stack id is the low 32 bits; kstack(n) puts n above them.
            let raw = u64_at(b, 0);
            let (id, limit) = (raw as u32 as i32, (raw >> 32) as usize & 0xff);
            let mut frames = if id < 0 {
                Vec::new()
            } else {
                sym.stack(id as u64)
            };
            if limit > 0 {
                frames.truncate(limit);
            }
            Value::Stack(frames.into_iter().map(|ip| sym.symbol(ip, true)).collect())
        }
        Ty::Inet => {
            let family = b
                .get(0..4)
                .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
                .unwrap_or(0);
            let addr = b.get(4..20).unwrap_or(&[0; 16]);
            let ip = if family == 10 {
                let mut a = [0u8; 16];
                a.copy_from_slice(addr);
                IpAddr::V6(Ipv6Addr::from(a))
            } else {
                IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
            };
            match anonymize::active() {
                Some(anonymizer) => Value::Str(anonymizer.address(ip)),
                None => Value::Addr(ip),
            }
        }
        Ty::Tuple(items) => {
            let (offs, _) = tuple_layout(items);
            Value::Tuple(
                items
                    .iter()
                    .zip(offs)
                    .map(|(t, o)| value(t, b.get(o as usize..).unwrap_or(&[]), sym))
                    .collect(),
            )
        }
    }
}

/// Decodes a list of values laid out as a tuple (map keys, printf arguments).
pub fn values(tys: &[Ty], b: &[u8], sym: &dyn Symbolizer) -> Vec<Value> {
    let (offs, _) = tuple_layout(tys);
    tys.iter()
        .zip(offs)
        .map(|(t, o)| value(t, b.get(o as usize..).unwrap_or(&[]), sym))
        .collect()
}

/// Decodes every entry of a user map (values of per-CPU maps summed).
pub fn map_dump(
    decl: &MapDecl,
    entries: &[(Vec<u8>, Vec<Vec<u8>>)],
    sym: &dyn Symbolizer,
) -> MapDump {
    let kl = key_layout(decl);
    let keys_of = |k: &[u8]| values(&decl.keys, k, sym);
    let mut out: Vec<(Vec<Value>, Aggregate)> = Vec::new();
    match &decl.value {
        MapValue::Plain(ty) => {
            for (k, vals) in entries {
                let v = vals
                    .first()
                    .map(|b| value(ty, b, sym))
                    .unwrap_or(Value::UInt(0));
                out.push((keys_of(k), Aggregate::Scalar(v)));
            }
        }
        MapValue::Agg(agg @ (Agg::Hist { .. } | Agg::Lhist { .. })) => {
            let mut groups: BTreeMap<Vec<u8>, BTreeMap<u64, u64>> = BTreeMap::new();
            for (k, vals) in entries {
                let b = kl.bucket.unwrap_or(0) as usize;
                let count: u64 = vals.iter().map(|v| u64_at(v, 0)).sum();
                *groups
                    .entry(k[..b].to_vec())
                    .or_default()
                    .entry(u64_at(k, b))
                    .or_default() += count;
            }
            for (k, buckets) in groups {
                let len = match agg {
                    Agg::Lhist { min, max, step } => ((max - min) / step + 2) as usize,
                    _ => buckets.keys().max().map(|m| *m as usize + 1).unwrap_or(0),
                };
                let mut counts = vec![0u64; len];
                for (i, c) in buckets {
                    if let Some(slot) = counts.get_mut(i as usize) {
                        *slot += c;
                    }
                }
                let value = match *agg {
                    Agg::Lhist { min, max, step } => Aggregate::Lhist {
                        min,
                        max,
                        step,
                        buckets: counts,
                    },
                    Agg::Hist { bits } if bits > 0 => Aggregate::SubHist {
                        bits,
                        buckets: counts,
                    },
                    _ => Aggregate::Hist(counts),
                };
                out.push((keys_of(&k), value));
            }
        }
        MapValue::Agg(agg) => {
            for (k, vals) in entries {
                out.push((keys_of(k), aggregate(*agg, vals)));
            }
        }
    }
    MapDump {
        name: decl.name.clone(),
        entries: out,
    }
}

/// Combines the per-CPU values of one aggregation entry.
fn aggregate(agg: Agg, cpus: &[Vec<u8>]) -> Aggregate {
    let word = |i: usize| cpus.iter().map(move |v| u64_at(v, i * 8));
    match agg {
        Agg::Count => Aggregate::Count(word(0).sum()),
        Agg::Sum => Aggregate::Sum(word(0).fold(0i64, |a, v| a.wrapping_add(v as i64))),
        Agg::Min | Agg::Max => {
            let set = cpus
                .iter()
                .filter(|v| u64_at(v, 8) != 0)
                .map(|v| u64_at(v, 0) as i64);
            let v = if agg == Agg::Min {
                set.min()
            } else {
                set.max()
            };
            if agg == Agg::Min {
                Aggregate::Min(v.unwrap_or(0))
            } else {
                Aggregate::Max(v.unwrap_or(0))
            }
        }
        Agg::Avg | Agg::Stats => {
            let count: u64 = word(0).sum();
            let total = word(1).fold(0i64, |a, v| a.wrapping_add(v as i64));
            let avg = if count == 0 { 0 } else { total / count as i64 };
            if agg == Agg::Avg {
                Aggregate::Avg(avg)
            } else {
                Aggregate::Stats { count, avg, total }
            }
        }
        Agg::Hist { .. } | Agg::Lhist { .. } => {
            unreachable!("histograms are grouped by the caller")
        }
    }
}

/// The frames of a stack id read from the stack map's raw value.
pub fn stack_frames(raw: &[u8]) -> Vec<u64> {
    (0..STACK_DEPTH as usize)
        .map(|i| u64_at(raw, i * 8))
        .take_while(|ip| *ip != 0)
        .collect()
}

/// Name of the BPF map that holds user map `index`.
pub fn bpf_map_name(maps: &MapTable, index: usize) -> &str {
    &maps.specs[index].name
}
