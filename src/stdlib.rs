//! The standard library, written in netscript (`stdlib/*.ns`): compiled
//! into the binary and appended to every script, so its functions can be
//! called from any script; a script's own function of the same name wins.

use crate::diag::Source;

/// The library files, by path.
pub const FILES: &[(&str, &str)] = &[
    ("stdlib/skb.ns", include_str!("../stdlib/skb.ns")),
    ("stdlib/frame.ns", include_str!("../stdlib/frame.ns")),
    ("stdlib/ip.ns", include_str!("../stdlib/ip.ns")),
    ("stdlib/sock.ns", include_str!("../stdlib/sock.ns")),
    ("stdlib/stages.ns", include_str!("../stdlib/stages.ns")),
];

/// Appends the library to a script's source.
pub fn attach(source: &mut Source) {
    for (name, text) in FILES {
        source.append(name, text);
    }
}
