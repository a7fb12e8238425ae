//! A compact, allocation-light name index shared by the BTF reader and the
//! kallsyms table: a vector of `(hash of name, entry)` pairs sorted by hash.
//! A lookup returns the candidate entries whose name hashes alike; the caller
//! confirms each candidate by comparing the real name, so collisions are
//! harmless.

/// Sorted `(name hash, entry)` pairs; see the module documentation.
#[derive(Debug, Default)]
pub struct NameIndex {
    entries: Vec<(u64, u32)>,
}

/// FNV-1a: fast on the short identifiers of kernel symbols and types.
pub fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl NameIndex {
    /// Builds the index from `(name, entry)` pairs.
    pub fn build<'a>(pairs: impl Iterator<Item = (&'a str, u32)>) -> NameIndex {
        let mut entries: Vec<(u64, u32)> = pairs
            .map(|(name, entry)| (name_hash(name), entry))
            .collect();
        entries.sort_unstable();
        NameIndex { entries }
    }

    /// Entries whose name may be `name` (in insertion-independent, ascending
    /// entry order); callers must check the actual name.
    pub fn candidates(&self, name: &str) -> impl Iterator<Item = u32> + '_ {
        let hash = name_hash(name);
        let start = self.entries.partition_point(|&(h, _)| h < hash);
        self.entries[start..]
            .iter()
            .take_while(move |&&(h, _)| h == hash)
            .map(|&(_, entry)| entry)
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
