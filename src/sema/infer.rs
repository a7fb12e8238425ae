//! Map types to a fixed point: a probe may read a map that a later probe
//! writes, so the checker runs in rounds over the whole program.
//!
//! The first round only infers: a map read before any write gets a
//! placeholder type (a 64-bit integer), and its errors are dropped. Every
//! later round checks for real, starting from the types the round before
//! ended with; those stay provisional until the map's first write in the
//! round, which widens them (or, where they cannot unify, replaces them:
//! they came from a guess). A round is settled when every read saw the
//! type its map ended the round with, and no map read as unknown was
//! written later. Otherwise what a read flowed into may be typed wrong
//! (`@z = @y; @y = @x;` before `@x = comm`): its errors are dropped and
//! another round follows. Most scripts settle in the first check round.

use super::tast::{MapDecl, MapValue};
use super::{Checker, Options, Passes, Round};
use crate::bpf::MapId;
use crate::diag::{Diagnostic, Result, Span};
use crate::types::{self, Ty};

/// Rounds at most; the last one's errors are reported even if unsettled.
const MAX_ROUNDS: usize = 8;

/// Runs checker rounds over the program the AST passes left until one
/// settles, and returns that round's checker (its programs, maps and
/// errors are the result).
pub(super) fn check_to_fixed_point<'o>(passes: &'o Passes, options: &'o Options) -> Checker<'o> {
    let folded = &passes.folded;
    let program = &folded.program;
    let mut checker = Checker::new(options, Round::Infer, passes);
    checker.declare_maps(options.known_maps.clone());
    checker.note_off(folded.in_probes.iter().cloned());
    checker.run(program);
    for _ in 1..MAX_ROUNDS {
        let mut next = Checker::new(options, Round::Check, passes);
        next.declare_maps(options.known_maps.clone());
        // What the round before learnt, provisionally (the session's
        // maps keep their types).
        for (i, decl) in checker.maps.into_iter().enumerate() {
            let known = i < options.known_maps.len();
            if !known && !checker.placeholders.contains(&MapId(i as u32)) {
                next.provisional.insert(MapId(next.maps.len() as u32));
                next.declare_maps(vec![decl]);
            }
        }
        next.off = checker.off;
        next.failed_writes = checker.failed_writes;
        next.run(program);
        checker = next;
        if checker.settled() {
            break;
        }
    }
    checker
}

impl Checker<'_> {
    /// Whether this round's types are final: every read saw its map's end
    /// type, and no map read as unknown was written after the read.
    fn settled(&self) -> bool {
        let typed = |(id, seen): &(MapId, MapValue)| *seen == self.maps[id.0 as usize].value;
        self.reads.iter().all(typed)
            && !self
                .unknown_reads
                .iter()
                .any(|m| self.map_ids.contains_key(m))
    }

    /// Declares maps of known types, in order (they take the next ids).
    pub(super) fn declare_maps(&mut self, maps: Vec<MapDecl>) {
        for decl in maps {
            self.map_ids
                .insert(decl.name.clone(), MapId(self.maps.len() as u32));
            self.maps.push(decl);
        }
    }

    /// A map whose value an expression reads (by name without `@`, with
    /// the types of the keys it is read at).
    pub(super) fn read_map(&mut self, name: &str, keys: &[Ty], span: Span) -> Result<MapId> {
        let id = self.declare_map(name, keys, None, span)?;
        let seen = (id, self.maps[id.0 as usize].value.clone());
        if !self.reads.contains(&seen) {
            self.reads.push(seen);
        }
        Ok(id)
    }

    /// Declares or refines a map from one of its uses (a write when
    /// `value` is given).
    pub(super) fn use_map(
        &mut self,
        name: &str,
        keys: &[Ty],
        value: Option<MapValue>,
        span: Span,
    ) -> Result<MapId> {
        let write = value.is_some();
        let id = self.declare_map(name, keys, value, span)?;
        if write {
            self.writes.insert(id);
        }
        Ok(id)
    }

    /// The map `@name`, declared at this use or its type refined by it;
    /// uses that cannot agree with the map's type are errors.
    fn declare_map(
        &mut self,
        name: &str,
        keys: &[Ty],
        value: Option<MapValue>,
        span: Span,
    ) -> Result<MapId> {
        let full = format!("@{}", name);
        if let Some(&id) = self.map_ids.get(&full) {
            if let Some(v) = &value {
                // The first write of a guessed map decides its type.
                let guess = &self.maps[id.0 as usize];
                let decided = if self.placeholders.remove(&id) {
                    Some((keys.to_vec(), v.clone()))
                } else if self.provisional.remove(&id) {
                    Some((
                        widened_keys(&guess.keys, keys),
                        widened_value(&guess.value, v),
                    ))
                } else {
                    None
                };
                if let Some((keys, value)) = decided {
                    self.maps[id.0 as usize] = MapDecl {
                        name: full,
                        keys,
                        value,
                    };
                    return Ok(id);
                }
            }
            let decl = &mut self.maps[id.0 as usize];
            if decl.keys.len() != keys.len() {
                return Err(Diagnostic::at(
                    span,
                    format!(
                        "map {} is used with {} key(s) here but {} elsewhere",
                        full,
                        keys.len(),
                        decl.keys.len()
                    ),
                ));
            }
            for (have, new) in decl.keys.iter_mut().zip(keys) {
                *have = unify(have, new).ok_or_else(|| {
                    Diagnostic::at(
                        span,
                        format!(
                            "map {} key has type {} here but {} elsewhere",
                            full,
                            new.describe(),
                            have.describe()
                        ),
                    )
                })?;
            }
            if let Some(value) = value {
                decl.value = match (&decl.value, &value) {
                    (MapValue::Plain(a), MapValue::Plain(b)) => {
                        MapValue::Plain(unify(a, b).ok_or_else(|| {
                            Diagnostic::at(
                                span,
                                format!(
                                    "map {} holds {} here but {} elsewhere",
                                    full,
                                    b.describe(),
                                    a.describe()
                                ),
                            )
                        })?)
                    }
                    (a, b) if a == b => value,
                    _ => {
                        return Err(Diagnostic::at(
                            span,
                            format!("map {} is used with two different aggregations", full),
                        ))
                    }
                };
            }
            return Ok(id);
        }
        let value = match value {
            Some(v) => v,
            None if self.round == Round::Infer => {
                self.placeholders.insert(MapId(self.maps.len() as u32));
                MapValue::Plain(Ty::I64)
            }
            None => {
                self.unknown_reads.push(full.clone());
                let mut off: Vec<&str> = Vec::new();
                for o in self.off.iter().filter(|o| o.map == full) {
                    if !off.contains(&o.why.as_str()) {
                        off.push(&o.why);
                    }
                }
                let message = if self.failed_writes.contains(&full) {
                    let message = format!("map {} has no value: its assignments failed", full);
                    return Err(Diagnostic::consequence(span, message));
                } else if off.is_empty() {
                    format!("map {} is read but never assigned", full)
                } else {
                    format!(
                        "map {} is off on this kernel ({}) and cannot be read here",
                        full,
                        off.join("; ")
                    )
                };
                return Err(Diagnostic::at(span, message));
            }
        };
        let id = MapId(self.maps.len() as u32);
        self.maps.push(MapDecl {
            name: full.clone(),
            keys: keys.to_vec(),
            value,
        });
        self.map_ids.insert(full, id);
        Ok(id)
    }
}

/// Keys a map carried from the round before widened by a write's, or the
/// write's where they do not unify.
fn widened_keys(carried: &[Ty], keys: &[Ty]) -> Vec<Ty> {
    let unified = (carried.len() == keys.len())
        .then(|| carried.iter().zip(keys).map(|(a, b)| unify(a, b)).collect())
        .flatten();
    unified.unwrap_or_else(|| keys.to_vec())
}

/// A value type carried from the round before widened by a write's, or
/// the write's where they do not unify.
fn widened_value(carried: &MapValue, value: &MapValue) -> MapValue {
    match (carried, value) {
        (MapValue::Plain(a), MapValue::Plain(b)) => {
            MapValue::Plain(unify(a, b).unwrap_or_else(|| b.clone()))
        }
        _ => value.clone(),
    }
}

/// The common type of two uses of a map key, map value or variable:
/// integers widen to the larger size, strings to the longer buffer.
pub(crate) fn unify(a: &Ty, b: &Ty) -> Option<Ty> {
    match (a, b) {
        (Ty::Int { size: x, signed }, Ty::Int { size: y, .. }) => Some(Ty::Int {
            size: *x.max(y),
            signed: *signed,
        }),
        (Ty::Str(x), Ty::Str(y)) => Some(Ty::Str(*x.max(y))),
        (Ty::Tuple(x), Ty::Tuple(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .map(|(p, q)| unify(p, q))
            .collect::<Option<Vec<_>>>()
            .map(Ty::Tuple),
        (Ty::Ptr(_), Ty::Ptr(_)) | (Ty::Ptr(_), Ty::Int { .. }) => Some(a.clone()),
        (Ty::PacketPtr(_), Ty::PacketPtr(_)) => Some(a.clone()),
        // A redacted integer stays redacted when it meets a plain one.
        (Ty::Named(n), plain @ Ty::Int { .. }) | (plain @ Ty::Int { .. }, Ty::Named(n)) => {
            match n.as_ref() {
                types::Names::Redacted(inner) => unify(inner, plain)
                    .map(|t| Ty::Named(std::sync::Arc::new(types::Names::Redacted(t)))),
                _ => None,
            }
        }
        _ if a == b => Some(a.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tast::MapValue;
    use super::super::{check, Options};
    use crate::syntax::parse;
    use crate::types::Ty;

    /// The value type of each map of `src`, by name.
    fn values(src: &str) -> Vec<(String, MapValue)> {
        let ast = parse(src).unwrap_or_else(|e| panic!("parse: {}", e.message));
        let script = check(&ast, &Options::default()).unwrap_or_else(|e| panic!("{}", e.message));
        script.maps.into_iter().map(|m| (m.name, m.value)).collect()
    }

    fn string(size: u32) -> MapValue {
        MapValue::Plain(Ty::Str(size))
    }

    #[test]
    fn a_type_flows_back_through_maps_read_before_they_are_written() {
        // Round 1 types @x and so @y as guesses; later rounds correct both.
        let maps =
            values("BEGIN { @z = @y; @y = @x; } tracepoint:net:netif_receive_skb { @x = comm; }");
        let mut names: Vec<&str> = maps.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        assert_eq!(names, ["@x", "@y", "@z"]);
        assert!(maps.iter().all(|(_, v)| *v == string(16)), "{:?}", maps);
    }

    #[test]
    fn a_read_sees_the_value_widened_by_a_later_write() {
        let maps = values(r#"BEGIN { @s = "ab"; @t = @s; } END { @s = "abcdef"; }"#);
        assert_eq!(maps, [("@s".into(), string(7)), ("@t".into(), string(7))]);
    }

    #[test]
    fn a_write_the_first_round_could_not_type_is_found_in_the_next() {
        // `@x == "ab"` fails while @x is a guessed integer, so round 1
        // never sees @q written.
        let maps = values(
            r#"BEGIN { printf("%d\n", @q); } tracepoint:net:netif_receive_skb { @q = @x == "ab"; } END { @x = comm; }"#,
        );
        assert!(maps.iter().any(|(n, _)| n == "@q"), "{:?}", maps);
    }

    #[test]
    fn conflicting_writes_and_reads_of_unwritten_maps_are_still_errors() {
        for (src, message) in [
            (
                r#"BEGIN { @a = 1; } END { @a = "s"; }"#,
                "map @a holds string[2] here but int64 elsewhere",
            ),
            (
                "BEGIN { @b = @never; }",
                "map @never is read but never assigned",
            ),
        ] {
            let ast = parse(src).unwrap_or_else(|e| panic!("parse: {}", e.message));
            let e = check(&ast, &Options::default()).expect_err(src);
            assert_eq!(e.message, message);
        }
    }
}
