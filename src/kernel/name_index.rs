//! A compact, allocation-light name index shared by the BTF reader and the
//! kallsyms table: one sorted `u64` per entry, the hash of its name in the
//! high half and the entry in the low half. A lookup returns the candidate
//! entries whose name hashes alike; the caller confirms each candidate by
//! comparing the real name, so collisions (a few among the 100,000-odd
//! names of a kernel) are harmless.

/// Sorted `hash << 32 | entry` words; see the module documentation.
#[derive(Debug, Default)]
pub struct NameIndex {
    entries: Vec<u64>,
}

/// 32-bit FNV-1a: fast on the short identifiers of kernel symbols and types.
fn name_hash(name: &str) -> u64 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    u64::from(hash) << 32
}

impl NameIndex {
    /// Builds the index from `(name, entry)` pairs.
    pub fn build<'a>(pairs: impl Iterator<Item = (&'a str, u32)>) -> NameIndex {
        let mut entries: Vec<u64> = pairs
            .map(|(name, entry)| name_hash(name) | u64::from(entry))
            .collect();
        entries.sort_unstable();
        NameIndex { entries }
    }

    /// Entries whose name may be `name` (in insertion-independent, ascending
    /// entry order); callers must check the actual name.
    pub fn candidates(&self, name: &str) -> impl Iterator<Item = u32> + '_ {
        let hash = name_hash(name);
        let start = self.entries.partition_point(|&e| e < hash);
        self.entries[start..]
            .iter()
            .take_while(move |&&e| e & !0xffff_ffff == hash)
            .map(|&e| e as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_entry_of_a_name() {
        let index = NameIndex::build([("a", 3), ("b", 1), ("a", 7)].into_iter());
        assert_eq!(index.candidates("a").collect::<Vec<_>>(), vec![3, 7]);
        assert_eq!(index.candidates("b").collect::<Vec<_>>(), vec![1]);
        assert_eq!(index.candidates("c").count(), 0);
    }
}
