//! `--anonymize`: IP addresses and the values a script passes through
//! `redact()` printed as stable keyed hashes (SipHash-2-4 with a 128-bit
//! key) instead of themselves, in every output (printf, maps, JSON,
//! Prometheus). The same value always gives the same hash under one key;
//! the key is random per run unless read from a file.

use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use siphasher::sip128::SipHasher24;

use crate::diag::{Diagnostic, Result};

/// Hex digits of an address's hash.
const ADDRESS_HEX_DIGITS: usize = 10;
/// Fewest bytes a key file must hold.
pub const MIN_KEY_FILE_BYTES: usize = 16;

/// The keyed hash that replaces addresses and redacted values.
#[derive(Clone)]
pub struct Anonymizer {
    prf: SipHasher24,
}

impl std::fmt::Debug for Anonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Anonymizer { .. }")
    }
}

impl Anonymizer {
    /// An anonymizer with this 128-bit key.
    pub fn with_key(key: [u8; 16]) -> Anonymizer {
        Anonymizer {
            prf: SipHasher24::new_with_key(&key),
        }
    }

    /// An anonymizer with a random key from the kernel's random source
    /// (stable within the run only).
    pub fn random() -> Result<Anonymizer> {
        let mut key = [0u8; 16];
        // SAFETY: getrandom writes at most key.len() bytes into the buffer we own.
        let n = unsafe { libc::getrandom(key.as_mut_ptr().cast(), key.len(), 0) };
        if n != key.len() as isize {
            return Err(Diagnostic::plain(format!(
                "--anonymize: cannot read a random key: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Anonymizer::with_key(key))
    }

    /// An anonymizer whose key is derived from the contents of `path`
    /// (at least [`MIN_KEY_FILE_BYTES`] bytes, e.g. from /dev/urandom),
    /// so the hashes are the same in every run with that file.
    pub fn from_key_file(path: &Path) -> Result<Anonymizer> {
        let bytes = std::fs::read(path).map_err(|e| {
            Diagnostic::plain(format!(
                "--anonymize-key: cannot read {}: {}",
                path.display(),
                e
            ))
        })?;
        if bytes.len() < MIN_KEY_FILE_BYTES {
            return Err(Diagnostic::plain(format!(
                "--anonymize-key: {} holds {} bytes, a key needs at least {} (e.g. head -c 32 /dev/urandom > {})",
                path.display(),
                bytes.len(),
                MIN_KEY_FILE_BYTES,
                path.display()
            )));
        }
        let key = SipHasher24::new_with_key(&[0; 16]).hash(&bytes).as_bytes();
        Ok(Anonymizer::with_key(key))
    }

    /// The hash of a tagged input (the tag keeps the kinds of value apart).
    fn hash(&self, tag: u8, bytes: &[u8]) -> [u8; 16] {
        let mut input = Vec::with_capacity(bytes.len() + 1);
        input.push(tag);
        input.extend_from_slice(bytes);
        self.prf.hash(&input).as_bytes()
    }

    /// An address as `v4-` or `v6-` and 10 hex digits of its hash.
    pub fn address(&self, ip: IpAddr) -> String {
        let (family, digest) = match ip {
            IpAddr::V4(a) => ("v4", self.hash(4, &a.octets())),
            IpAddr::V6(a) => ("v6", self.hash(6, &a.octets())),
        };
        let hex: String = digest.iter().map(|b| format!("{:02x}", b)).collect();
        format!("{}-{}", family, &hex[..ADDRESS_HEX_DIGITS])
    }

    /// An integer of `size` bytes replaced by a hash of the same size (a
    /// port, 2 bytes, stays in 0..=65535).
    pub fn integer(&self, value: u64, size: u8) -> u64 {
        let bits = u32::from(size.clamp(1, 8)) * 8;
        let masked = if bits == 64 {
            value
        } else {
            value & ((1 << bits) - 1)
        };
        let digest = self.hash(b'i', &[&[size][..], &masked.to_le_bytes()].concat());
        let word = u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]));
        if bits == 64 {
            word
        } else {
            word & ((1 << bits) - 1)
        }
    }
}

static ACTIVE: OnceLock<Anonymizer> = OnceLock::new();

/// Turns anonymization on for the rest of the process (the `--anonymize`
/// run option); every value decoded from then on is hashed. A second call
/// keeps the first key.
pub fn install(anonymizer: Anonymizer) {
    let _ = ACTIVE.set(anonymizer);
}

/// The anonymizer in force, if `--anonymize` is on.
pub fn active() -> Option<&'static Anonymizer> {
    ACTIVE.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_input_same_hash_and_keys_differ() {
        let a = Anonymizer::with_key([1; 16]);
        let b = Anonymizer::with_key([2; 16]);
        let ip: IpAddr = "10.231.0.1".parse().unwrap();
        assert_eq!(a.address(ip), a.address(ip));
        assert_ne!(a.address(ip), b.address(ip));
        assert_ne!(a.address(ip), a.address("10.231.0.2".parse().unwrap()));
        assert_eq!(a.integer(443, 2), a.integer(443, 2));
        assert_ne!(a.integer(443, 2), b.integer(443, 2));
        assert_ne!(a.integer(443, 2), a.integer(444, 2));
    }

    #[test]
    fn family_and_width_are_kept() {
        let a = Anonymizer::with_key([7; 16]);
        let v4 = a.address("192.0.2.1".parse().unwrap());
        let v6 = a.address("2001:db8::1".parse().unwrap());
        for (text, prefix) in [(&v4, "v4-"), (&v6, "v6-")] {
            let hex = text.strip_prefix(prefix).expect(text);
            assert_eq!(hex.len(), 10, "{}", text);
            assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{}", text);
        }
        assert!((1..2000).all(|port| a.integer(port, 2) <= 0xffff));
        assert!((1..2000).any(|port| a.integer(port, 2) > 0xff));
        assert!((1..200).all(|v| a.integer(v, 1) <= 0xff));
    }

    #[test]
    fn key_files_give_the_same_key_every_run() {
        let dir = std::env::temp_dir().join(format!("ns-anon-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key");
        std::fs::write(&key, b"0123456789abcdef-a-key").unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let first = Anonymizer::from_key_file(&key).unwrap().address(ip);
        assert_eq!(Anonymizer::from_key_file(&key).unwrap().address(ip), first);
        std::fs::write(&key, b"short").unwrap();
        let e = Anonymizer::from_key_file(&key).unwrap_err().message;
        assert!(
            e.contains("holds 5 bytes, a key needs at least 16"),
            "{}",
            e
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let r1 = Anonymizer::random().unwrap().address(ip);
        let r2 = Anonymizer::random().unwrap().address(ip);
        assert_ne!(r1, r2);
    }
}
