//! Liveness analysis: basic blocks, live-in/live-out sets by backward
//! dataflow, and conservative live intervals over instruction positions.
//!
//! Positions: instruction `i` reads its operands at `2i` and writes its
//! destination at `2i + 1`, so a value whose last use is at `i` may share a
//! register with the value defined by `i`.

use crate::diag::Diagnostic;
use crate::ir::{Addr, Function, Inst, Label, Operand, VReg};

/// The one description of which registers an instruction reads (its
/// writes: [`the_def`]), for both a shared and a mutable instruction:
/// match ergonomics bind `&VReg` or `&mut VReg` as `inst` is.
macro_rules! each_use {
    ($inst:expr, $f:expr) => {{
        let f = $f;
        // A register operand, not an immediate.
        macro_rules! operand {
            ($o:expr) => {
                if let Operand::Reg(r) = $o {
                    f(r)
                }
            };
        }
        match $inst {
            Inst::Mov { src, .. } => operand!(src),
            Inst::Alu { lhs, rhs, .. } => {
                operand!(lhs);
                operand!(rhs);
            }
            Inst::Neg { src: r, .. }
            | Inst::ReadKernel { base: r, .. }
            | Inst::Load {
                addr: Addr::Reg(r, _),
                ..
            } => f(r),
            Inst::Store { addr, src, .. } => {
                if let Addr::Reg(r, _) = addr {
                    f(r)
                }
                operand!(src);
            }
            Inst::Call { args, .. } => {
                for arg in args {
                    operand!(arg);
                }
            }
            Inst::Branch { lhs, rhs, .. } => {
                f(lhs);
                operand!(rhs);
            }
            Inst::Exit(v) => operand!(v),
            Inst::CmpXchg {
                base,
                expected,
                new,
                ..
            } => {
                f(base);
                f(expected);
                f(new);
            }
            Inst::Load { .. }
            | Inst::StackAddr { .. }
            | Inst::MapPtr { .. }
            | Inst::Jump(_)
            | Inst::Label(_)
            | Inst::Loc(_) => {}
        }
    }};
}

/// See [`each_use`]: the register `inst` writes, if any.
macro_rules! the_def {
    ($inst:expr) => {
        match $inst {
            Inst::Mov { dst, .. }
            | Inst::Alu { dst, .. }
            | Inst::Neg { dst, .. }
            | Inst::Load { dst, .. }
            | Inst::ReadKernel { dst, .. }
            | Inst::StackAddr { dst, .. }
            | Inst::MapPtr { dst, .. }
            | Inst::CmpXchg { old: dst, .. }
            | Inst::Call { dst: Some(dst), .. } => Some(dst),
            Inst::Call { dst: None, .. }
            | Inst::Store { .. }
            | Inst::Jump(_)
            | Inst::Branch { .. }
            | Inst::Label(_)
            | Inst::Loc(_)
            | Inst::Exit(_) => None,
        }
    };
}

/// Calls `f` on every virtual register `inst` reads (in operand order,
/// possibly repeated).
pub fn visit_uses(inst: &Inst, mut f: impl FnMut(VReg)) {
    each_use!(inst, &mut |r: &VReg| f(*r))
}

/// Calls `f` on every virtual register `inst` reads, to rewrite it.
pub fn visit_uses_mut(inst: &mut Inst, mut f: impl FnMut(&mut VReg)) {
    each_use!(inst, &mut |r: &mut VReg| f(r))
}

/// The virtual register `inst` writes, if any.
pub fn def_mut(inst: &mut Inst) -> Option<&mut VReg> {
    the_def!(inst)
}

/// The virtual register `inst` writes, if any.
pub fn def(inst: &Inst) -> Option<VReg> {
    the_def!(inst).copied()
}

/// A fixed-size set of virtual registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VRegSet {
    words: Vec<u64>,
}

impl VRegSet {
    /// An empty set able to hold registers `< capacity`.
    pub fn new(capacity: u32) -> Self {
        VRegSet {
            words: vec![0; (capacity as usize).div_ceil(64)],
        }
    }

    /// Adds `r`.
    pub fn insert(&mut self, r: VReg) {
        self.words[r.0 as usize / 64] |= 1 << (r.0 % 64);
    }

    /// Removes `r`.
    pub fn remove(&mut self, r: VReg) {
        self.words[r.0 as usize / 64] &= !(1 << (r.0 % 64));
    }

    /// True if `r` is in the set.
    pub fn contains(&self, r: VReg) -> bool {
        self.words
            .get(r.0 as usize / 64)
            .is_some_and(|w| w & (1 << (r.0 % 64)) != 0)
    }
}

/// The indices of the set bits of `words`, in increasing order.
fn bits(words: &[u64]) -> impl Iterator<Item = u32> + '_ {
    words.iter().enumerate().flat_map(|(i, &w)| {
        let mut rest = w;
        std::iter::from_fn(move || {
            let bit = rest.trailing_zeros();
            (rest != 0).then(|| {
                rest &= rest - 1;
                i as u32 * 64 + bit
            })
        })
    })
}

/// One bit set per block, stored row after row in one vector.
#[derive(Debug, Clone)]
struct BlockSets {
    /// Words per row.
    width: usize,
    words: Vec<u64>,
}

impl BlockSets {
    /// `rows` empty sets able to hold members `< capacity`.
    fn new(rows: usize, capacity: usize) -> Self {
        let width = capacity.div_ceil(64);
        BlockSets {
            width,
            words: vec![0; rows * width],
        }
    }

    fn row(&self, b: usize) -> &[u64] {
        &self.words[b * self.width..(b + 1) * self.width]
    }

    fn row_mut(&mut self, b: usize) -> &mut [u64] {
        &mut self.words[b * self.width..(b + 1) * self.width]
    }

    /// Adds member `i` to row `b`.
    fn insert(&mut self, b: usize, i: u32) {
        self.words[b * self.width + i as usize / 64] |= 1 << (i % 64);
    }
}

/// A maximal straight-line run of instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Index of the first instruction.
    pub start: usize,
    /// Index of the last instruction (inclusive).
    pub end: usize,
    /// Indices of the successor blocks.
    pub succs: Vec<usize>,
}

/// Result of the dataflow analysis. Only registers read in a block before
/// it writes them can be live at a block boundary; the sets hold those
/// alone (`globals`), so a long program of short-lived values costs memory
/// and time in proportion to its size, not to blocks x registers.
#[derive(Debug, Clone)]
pub struct Liveness {
    /// The basic blocks in instruction order.
    pub blocks: Vec<Block>,
    /// The registers the sets are over: set member `i` is `globals[i]`.
    globals: Vec<VReg>,
    /// Capacity of the function's register sets (`vreg_count`).
    capacity: u32,
    /// Registers live on entry of each block (over `globals`).
    live_in: BlockSets,
    /// Registers live on exit of each block (over `globals`).
    live_out: BlockSets,
}

impl Liveness {
    /// The registers live on entry of block `b`.
    pub fn live_in(&self, b: usize) -> VRegSet {
        self.expand(self.live_in.row(b))
    }

    /// The members of `live_in(b)` (or with `exit`, of `live_out(b)`).
    pub fn live_at(&self, b: usize, exit: bool) -> impl Iterator<Item = VReg> + '_ {
        let sets = if exit { &self.live_out } else { &self.live_in };
        bits(sets.row(b)).map(|i| self.globals[i as usize])
    }

    /// The registers live on exit of block `b`.
    pub fn live_out(&self, b: usize) -> VRegSet {
        self.expand(self.live_out.row(b))
    }

    /// A row over `globals` as a set of the function's registers.
    fn expand(&self, row: &[u64]) -> VRegSet {
        let mut out = VRegSet::new(self.capacity);
        bits(row).for_each(|i| out.insert(self.globals[i as usize]));
        out
    }
}

/// The instruction index of every label of a function, by label number.
#[derive(Debug, Default)]
pub struct LabelPositions(Vec<Option<usize>>);

impl LabelPositions {
    /// Where label `l` is defined.
    pub fn get(&self, l: &Label) -> Option<&usize> {
        self.0.get(l.0 as usize)?.as_ref()
    }
}

/// The instruction index of every label; an error for a label defined twice.
pub fn label_positions(func: &Function) -> Result<LabelPositions, Diagnostic> {
    let mut at = vec![None; func.label_count as usize];
    for (i, inst) in func.insts.iter().enumerate() {
        if let Inst::Label(l) = inst {
            if at.len() <= l.0 as usize {
                at.resize(l.0 as usize + 1, None);
            }
            if at[l.0 as usize].replace(i).is_some() {
                return Err(Diagnostic::plain(format!(
                    "internal error: label L{} defined twice",
                    l.0
                )));
            }
        }
    }
    Ok(LabelPositions(at))
}

/// Splits the function into basic blocks with their successors.
pub fn blocks(func: &Function) -> Result<Vec<Block>, Diagnostic> {
    let labels = label_positions(func)?;
    let n = func.insts.len();
    let mut leader = vec![false; n];
    for (i, inst) in func.insts.iter().enumerate() {
        match inst {
            Inst::Label(_) => leader[i] = true,
            Inst::Jump(_) | Inst::Branch { .. } | Inst::Exit(_) if i + 1 < n => {
                leader[i + 1] = true
            }
            _ => {}
        }
    }
    if n > 0 {
        leader[0] = true;
    }
    let starts: Vec<usize> = (0..n).filter(|&i| leader[i]).collect();
    let block_of_inst = |i: usize| starts.partition_point(|&s| s <= i) - 1;
    let target = |l: &Label| -> Result<usize, Diagnostic> {
        labels.get(l).map(|&i| block_of_inst(i)).ok_or_else(|| {
            Diagnostic::plain(format!("internal error: jump to undefined label L{}", l.0))
        })
    };
    let mut out = Vec::with_capacity(starts.len());
    for (b, &start) in starts.iter().enumerate() {
        let end = starts.get(b + 1).map_or(n, |&s| s) - 1;
        let falls_through = b + 1 < starts.len();
        let succs = match &func.insts[end] {
            Inst::Jump(l) => vec![target(l)?],
            Inst::Branch { target: l, .. } => {
                let mut s = vec![target(l)?];
                if falls_through {
                    s.push(b + 1);
                }
                s
            }
            Inst::Exit(_) => vec![],
            _ if falls_through => vec![b + 1],
            _ => vec![],
        };
        out.push(Block { start, end, succs });
    }
    Ok(out)
}

/// Computes live-in/live-out sets by iterating the backward dataflow
/// equations to a fixpoint (loops need several rounds).
pub fn analyze(func: &Function) -> Result<Liveness, Diagnostic> {
    check_vregs(func)?;
    let blocks = blocks(func)?;
    let capacity = func.vreg_count;
    // Per block, gen (read before written in the block) and kill (written
    // in it), as runs of two flat lists (block `b`'s ends at `ends[b]`),
    // with one scratch set of the function's registers.
    let mut written = VRegSet::new(capacity);
    let (mut gens, mut kills) = (Vec::new(), Vec::new());
    let mut ends = Vec::with_capacity(blocks.len());
    for b in &blocks {
        let first_kill = kills.len();
        for inst in &func.insts[b.start..=b.end] {
            visit_uses(inst, |u| {
                if !written.contains(u) {
                    gens.push(u)
                }
            });
            if let Some(d) = def(inst) {
                if !written.contains(d) {
                    written.insert(d);
                    kills.push(d);
                }
            }
        }
        kills[first_kill..].iter().for_each(|&d| written.remove(d));
        ends.push((gens.len(), kills.len()));
    }
    // The registers some block reads before writing: the only ones that can
    // be live at a block boundary, numbered densely.
    let mut index = vec![u32::MAX; capacity as usize];
    let mut globals = Vec::new();
    for &r in &gens {
        if index[r.0 as usize] == u32::MAX {
            index[r.0 as usize] = globals.len() as u32;
            globals.push(r);
        }
    }
    let (mut gen, mut kill) = (
        BlockSets::new(blocks.len(), globals.len()),
        BlockSets::new(blocks.len(), globals.len()),
    );
    let mut starts = (0, 0);
    for (b, &(gen_end, kill_end)) in ends.iter().enumerate() {
        let dense = |r: &VReg| Some(index[r.0 as usize]).filter(|&i| i != u32::MAX);
        gens[starts.0..gen_end]
            .iter()
            .filter_map(dense)
            .for_each(|i| gen.insert(b, i));
        kills[starts.1..kill_end]
            .iter()
            .filter_map(dense)
            .for_each(|i| kill.insert(b, i));
        starts = (gen_end, kill_end);
    }
    // live_out(b) = union of live_in(successors);
    // live_in(b) = (live_out(b) - kill(b)) + gen(b).
    let mut live_in = BlockSets::new(blocks.len(), globals.len());
    let mut live_out = BlockSets::new(blocks.len(), globals.len());
    let mut changed = true;
    while changed {
        changed = false;
        for b in (0..blocks.len()).rev() {
            let out = live_out.row_mut(b);
            for &s in &blocks[b].succs {
                for (w, &o) in out.iter_mut().zip(live_in.row(s)) {
                    changed |= *w | o != *w;
                    *w |= o;
                }
            }
            let words = out.iter().zip(kill.row(b)).zip(gen.row(b));
            for (w, ((&o, &k), &g)) in live_in.row_mut(b).iter_mut().zip(words) {
                let new = *w | (o & !k) | g;
                changed |= new != *w;
                *w = new;
            }
        }
    }
    Ok(Liveness {
        blocks,
        globals,
        capacity,
        live_in,
        live_out,
    })
}

/// An error if a register is not below `func.vreg_count`.
fn check_vregs(func: &Function) -> Result<(), Diagnostic> {
    let in_range = |r: VReg| r.0 < func.vreg_count;
    let ok = in_range(func.ctx)
        && func.insts.iter().all(|i| {
            let mut ok = def(i).is_none_or(in_range);
            visit_uses(i, |u| ok &= in_range(u));
            ok
        });
    if ok {
        Ok(())
    } else {
        Err(Diagnostic::plain(
            "internal error: virtual register out of range",
        ))
    }
}

/// The positions over which a virtual register is live (inclusive, no holes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// The register.
    pub vreg: VReg,
    /// First position.
    pub start: u32,
    /// Last position.
    pub end: u32,
}

impl Interval {
    /// True if the value must survive a call at instruction `call`.
    pub fn crosses(&self, call: usize) -> bool {
        let after_call = 2 * call as u32 + 1;
        self.start < after_call && self.end > after_call
    }
}

/// Conservative live intervals of every register that occurs, sorted by
/// start. The context register is live from position 0 if it is used.
pub fn intervals(func: &Function) -> Result<Vec<Interval>, Diagnostic> {
    let live = analyze(func)?;
    let mut range: Vec<Option<(u32, u32)>> = vec![None; func.vreg_count as usize];
    let mut extend = |r: VReg, pos: u32| {
        let slot = &mut range[r.0 as usize];
        *slot = Some(slot.map_or((pos, pos), |(s, e)| (s.min(pos), e.max(pos))));
    };
    for (i, inst) in func.insts.iter().enumerate() {
        let pos = 2 * i as u32;
        visit_uses(inst, |u| extend(u, pos));
        if let Some(d) = def(inst) {
            extend(d, pos + 1);
        }
    }
    for (b, block) in live.blocks.iter().enumerate() {
        live.live_at(b, false)
            .for_each(|r| extend(r, 2 * block.start as u32));
        live.live_at(b, true)
            .for_each(|r| extend(r, 2 * block.end as u32 + 2));
    }
    let mut out: Vec<Interval> = range
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.map(|(start, end)| Interval {
                vreg: VReg(i as u32),
                start,
                end,
            })
        })
        .collect();
    out.sort_by_key(|iv| (iv.start, iv.vreg));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{AluOp, Cond};

    fn interval_of(ivs: &[Interval], r: VReg) -> Interval {
        *ivs.iter()
            .find(|iv| iv.vreg == r)
            .expect("register has an interval")
    }

    #[test]
    fn straight_line_intervals_run_from_def_to_last_use() {
        let mut f = Function::new("t");
        let a = f.vreg();
        let b = f.vreg();
        f.push(Inst::Mov {
            dst: a,
            src: Operand::Imm(1),
        }); // 0
        f.push(Inst::Mov {
            dst: b,
            src: Operand::Imm(2),
        }); // 1
        f.push(Inst::Alu {
            op: AluOp::Add,
            dst: a,
            lhs: Operand::Reg(a),
            rhs: Operand::Reg(b),
        }); // 2
        f.push(Inst::Exit(Operand::Reg(a))); // 3
        let ivs = intervals(&f).unwrap();
        assert_eq!(
            interval_of(&ivs, a),
            Interval {
                vreg: a,
                start: 1,
                end: 6
            }
        );
        assert_eq!(
            interval_of(&ivs, b),
            Interval {
                vreg: b,
                start: 3,
                end: 4
            }
        );
        assert!(
            ivs.iter().all(|iv| iv.vreg != f.ctx),
            "unused ctx has no interval"
        );
    }

    #[test]
    fn if_else_joins_liveness() {
        let mut f = Function::new("t");
        let x = f.vreg();
        let y = f.vreg();
        let (els, join) = (f.label(), f.label());
        f.push(Inst::Mov {
            dst: x,
            src: Operand::Imm(5),
        }); // 0
        f.push(Inst::Branch {
            cond: Cond::Eq,
            lhs: f.ctx,
            rhs: Operand::Imm(0),
            target: els,
        }); // 1
        f.push(Inst::Mov {
            dst: y,
            src: Operand::Imm(1),
        }); // 2
        f.push(Inst::Jump(join)); // 3
        f.push(Inst::Label(els)); // 4
        f.push(Inst::Mov {
            dst: y,
            src: Operand::Reg(x),
        }); // 5
        f.push(Inst::Label(join)); // 6
        f.push(Inst::Exit(Operand::Reg(y))); // 7
        let live = analyze(&f).unwrap();
        assert_eq!(live.blocks.len(), 4);
        assert_eq!(live.blocks[0].succs, vec![2, 1]);
        // x is live into the then-block (it flows on to the else block only through the branch).
        assert!(live.live_out(0).contains(x));
        assert!(!live.live_in(1).contains(x));
        assert!(live.live_in(2).contains(x));
        assert!(live.live_in(3).contains(y));
        assert!(live.live_in(0).contains(f.ctx));
        let ivs = intervals(&f).unwrap();
        assert_eq!(interval_of(&ivs, f.ctx).start, 0);
        assert_eq!(
            interval_of(&ivs, y),
            Interval {
                vreg: y,
                start: 5,
                end: 14
            }
        );
    }

    #[test]
    fn loop_keeps_value_live_through_back_edge() {
        let mut f = Function::new("t");
        let (step, i) = (f.vreg(), f.vreg());
        let head = f.label();
        f.push(Inst::Mov {
            dst: step,
            src: Operand::Imm(3),
        }); // 0
        f.push(Inst::Mov {
            dst: i,
            src: Operand::Imm(0),
        }); // 1
        f.push(Inst::Label(head)); // 2
        f.push(Inst::Alu {
            op: AluOp::Add,
            dst: i,
            lhs: Operand::Reg(i),
            rhs: Operand::Reg(step),
        }); // 3
        f.push(Inst::Branch {
            cond: Cond::Lt,
            lhs: i,
            rhs: Operand::Imm(30),
            target: head,
        }); // 4
        f.push(Inst::Exit(Operand::Reg(i))); // 5
        let live = analyze(&f).unwrap();
        assert!(
            live.live_out(1).contains(step),
            "step flows around the back edge"
        );
        assert!(live.live_in(1).contains(step));
        let ivs = intervals(&f).unwrap();
        // Last textual use of `step` is at 3, but the back edge keeps it live to the branch's end.
        assert_eq!(
            interval_of(&ivs, step),
            Interval {
                vreg: step,
                start: 1,
                end: 10
            }
        );
    }

    #[test]
    fn out_of_range_register_is_an_error() {
        let mut f = Function::new("t");
        f.push(Inst::Exit(Operand::Reg(VReg(7))));
        assert!(analyze(&f).is_err());
    }

    #[test]
    fn undefined_label_is_an_error() {
        let mut f = Function::new("t");
        let l = f.label();
        f.push(Inst::Jump(l));
        assert!(analyze(&f).is_err());
    }
}
