//! tracefs: where it is mounted, tracepoint record formats
//! (`events/<category>/<name>/format`) and the list of tracepoints.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::diag::Diagnostic;
use crate::glob::glob_match;

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// The tracefs mount point (`/sys/kernel/tracing`, or the older
/// `/sys/kernel/debug/tracing`). When neither is mounted and we are root,
/// tracefs is mounted at `/sys/kernel/tracing` silently. Cached.
pub fn tracefs_root() -> Result<PathBuf, Diagnostic> {
    static ROOT: OnceLock<Result<PathBuf, Diagnostic>> = OnceLock::new();
    ROOT.get_or_init(find_or_mount_tracefs).clone()
}

fn is_mounted(dir: &str) -> bool {
    Path::new(dir).join("events").is_dir()
}

fn find_or_mount_tracefs() -> Result<PathBuf, Diagnostic> {
    if let Some(dir) = [TRACEFS, DEBUGFS_TRACING]
        .into_iter()
        .find(|dir| is_mounted(dir))
    {
        return Ok(PathBuf::from(dir));
    }
    // A tracefs only root may read looks unmounted to everyone else.
    let denied = [TRACEFS, DEBUGFS_TRACING].into_iter().find(|dir| {
        std::fs::read_dir(dir).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    });
    if let Some(dir) = denied {
        return Err(Diagnostic::plain(format!(
            "cannot read tracefs at {dir}: permission denied (tracepoint formats need root)"
        )));
    }
    let hint = format!("tracefs is not mounted (as root: mount -t tracefs nodev {TRACEFS})");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Diagnostic::plain(hint));
    }
    // SAFETY: all pointers are valid NUL-terminated strings; data may be null.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 && is_mounted(TRACEFS) {
        Ok(PathBuf::from(TRACEFS))
    } else {
        Err(Diagnostic::plain(format!(
            "{hint}: mounting it failed: {}",
            std::io::Error::last_os_error()
        )))
    }
}

/// One field of a tracepoint record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracepointField {
    /// Field name.
    pub name: String,
    /// C type as written by the kernel, without array brackets: `void *`,
    /// `unsigned int`, `char` for both `char comm[16]` and
    /// `__data_loc char[] name`.
    pub c_type: String,
    /// Byte offset in the record.
    pub offset: u32,
    /// Size in bytes in the record (4 for a `__data_loc` field).
    pub size: u32,
    /// Whether the kernel says the type is signed.
    pub signed: bool,
    /// A `__data_loc` field: the record holds `len << 16 | offset` of the
    /// data, the offset counted from the start of the record.
    pub data_loc: bool,
    /// A `__rel_loc` field: like `data_loc`, but the offset is counted from
    /// the end of this field.
    pub rel_loc: bool,
    /// Element count of a fixed-size array field (`char comm[16]`).
    pub array_len: Option<u32>,
}

/// The record format of a tracepoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracepointFormat {
    /// Category (tracefs event system), e.g. `net`.
    pub category: String,
    /// Tracepoint name, e.g. `netif_receive_skb`.
    pub name: String,
    /// Event id (used for perf attachment).
    pub id: u32,
    /// The tracepoint's own fields, in record order.
    pub fields: Vec<TracepointField>,
    /// The `common_*` fields every record starts with.
    pub common: Vec<TracepointField>,
}

/// Reads and parses the format of tracepoint `category:name`.
pub fn tracepoint_format(category: &str, name: &str) -> Result<TracepointFormat, Diagnostic> {
    let not_found = || Diagnostic::plain(format!("tracepoint {category}:{name} not found"));
    let valid = |part: &str| !part.is_empty() && !part.contains('/') && part != "." && part != "..";
    if !valid(category) || !valid(name) {
        return Err(not_found());
    }
    let path = tracefs_root()?
        .join("events")
        .join(category)
        .join(name)
        .join("format");
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not_found(),
        _ => Diagnostic::plain(format!("cannot read {}: {e}", path.display())),
    })?;
    parse_format(category, name, &text).ok_or_else(|| {
        Diagnostic::plain(format!(
            "cannot parse the format of tracepoint {category}:{name}"
        ))
    })
}

/// Parses the text of a tracefs `format` file.
pub fn parse_format(category: &str, name: &str, text: &str) -> Option<TracepointFormat> {
    let mut id = None;
    let mut fields = Vec::new();
    let mut common = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("ID:") {
            id = value.trim().parse().ok();
        } else if line.starts_with("field:") {
            let field = parse_field(line)?;
            if field.name.starts_with("common_") {
                &mut common
            } else {
                &mut fields
            }
            .push(field);
        }
    }
    Some(TracepointFormat {
        category: category.into(),
        name: name.into(),
        id: id?,
        fields,
        common,
    })
}

/// Parses `field:unsigned int len;\toffset:16;\tsize:4;\tsigned:0;`.
fn parse_field(line: &str) -> Option<TracepointField> {
    let mut parts = line.split(';').map(str::trim);
    let declaration = parts.next()?.strip_prefix("field:")?;
    let mut number =
        |key: &str| -> Option<u32> { parts.next()?.strip_prefix(key)?.trim().parse().ok() };
    let (offset, size, signed) = (
        number("offset:")?,
        number("size:")?,
        number("signed:")? != 0,
    );

    let (data_loc, rel_loc, declaration) = match declaration.split_once(' ') {
        Some(("__data_loc", rest)) => (true, false, rest),
        Some(("__rel_loc", rest)) => (false, true, rest),
        _ => (false, false, declaration),
    };
    let (declarator, array_text) = match declaration
        .strip_suffix(']')
        .and_then(|d| d.rsplit_once('['))
    {
        Some((head, len)) => (head, Some(len)),
        None => (declaration, None),
    };
    let name_start = declarator
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let name = &declarator[name_start..];
    let c_type = declarator[..name_start]
        .trim()
        .trim_end_matches("[]")
        .trim_end();
    if name.is_empty() || c_type.is_empty() {
        return None;
    }
    // A length the kernel printed as an expression (`[sizeof(struct sockaddr_in6)]`)
    // is the byte size for byte arrays.
    let byte_element = matches!(
        c_type,
        "char" | "unsigned char" | "signed char" | "u8" | "__u8" | "s8" | "__s8"
    );
    let array_len = array_text.map(|len| len.trim().parse().ok().or(byte_element.then_some(size)));
    Some(TracepointField {
        name: name.to_string(),
        c_type: c_type.to_string(),
        offset,
        size,
        signed,
        data_loc,
        rel_loc,
        array_len: array_len.flatten(),
    })
}

/// Tracepoints `(category, name)` matching `pattern`: `category:name` with
/// globs on each part (`net:*`, `*:*skb*`); a pattern without `:` matches
/// names in every category. Sorted.
pub fn list_tracepoints(pattern: &str) -> Result<Vec<(String, String)>, Diagnostic> {
    let (category_glob, name_glob) = pattern.split_once(':').unwrap_or(("*", pattern));
    let path = tracefs_root()?.join("available_events");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Diagnostic::plain(format!("cannot read {}: {e}", path.display())))?;
    let mut found: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(category, name)| {
            glob_match(category_glob, category) && glob_match(name_glob, name)
        })
        .map(|(category, name)| (category.to_string(), name.to_string()))
        .collect();
    found.sort();
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netif_receive_skb_format() {
        if !crate::testing::bpf_available() {
            return;
        }
        let format = tracepoint_format("net", "netif_receive_skb").unwrap();
        assert!(format.id > 0);
        let field = |name: &str| {
            format
                .fields
                .iter()
                .find(|f| f.name == name)
                .unwrap()
                .clone()
        };
        let skbaddr = field("skbaddr");
        assert_eq!(
            (skbaddr.offset, skbaddr.size, skbaddr.c_type.as_str()),
            (8, 8, "void *")
        );
        let len = field("len");
        assert_eq!(
            (len.offset, len.size, len.c_type.as_str(), len.signed),
            (16, 4, "unsigned int", false)
        );
        let dev = field("name");
        assert!(dev.data_loc && dev.array_len.is_none());
        assert_eq!((dev.c_type.as_str(), dev.size), ("char", 4));
        assert_eq!(format.fields.len(), 3);
        assert_eq!(format.common.len(), 4);
        assert!(format
            .common
            .iter()
            .any(|f| f.name == "common_pid" && f.signed));
    }

    #[test]
    fn unknown_tracepoint_is_named() {
        if !crate::testing::bpf_available() {
            return;
        }
        let err = tracepoint_format("net", "no_such_tp").unwrap_err();
        assert_eq!(err.message, "tracepoint net:no_such_tp not found");
        assert!(tracepoint_format("..", "x").is_err());
    }

    #[test]
    fn parses_arrays_and_odd_declarations() {
        let text = "name: t\nID: 7\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\
            \tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:1;\n\
            \tfield:__u8 saddr[sizeof(struct sockaddr_in6)];\toffset:24;\tsize:28;\tsigned:0;\n\
            \tfield:const struct xdp_mem_allocator * xa;\toffset:56;\tsize:8;\tsigned:0;\n\
            \tfield:unsigned lockval;\toffset:64;\tsize:4;\tsigned:0;\n\
            \tfield:__data_loc u64[] ips;\toffset:68;\tsize:4;\tsigned:0;\n\
            \tfield:__rel_loc char[] msg;\toffset:72;\tsize:4;\tsigned:0;\n\
            \nprint fmt: \"\"\n";
        let format = parse_format("c", "t", text).unwrap();
        assert_eq!(format.id, 7);
        let summary: Vec<(&str, &str, Option<u32>, bool, bool)> = format
            .fields
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.c_type.as_str(),
                    f.array_len,
                    f.data_loc,
                    f.rel_loc,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("comm", "char", Some(16), false, false),
                ("saddr", "__u8", Some(28), false, false),
                ("xa", "const struct xdp_mem_allocator *", None, false, false),
                ("lockval", "unsigned", None, false, false),
                ("ips", "u64", None, true, false),
                ("msg", "char", None, false, true),
            ]
        );
        assert!(
            parse_format("c", "t", "name: t\nformat:\n").is_none(),
            "no ID"
        );
    }

    #[test]
    fn lists_tracepoints_by_glob() {
        if !crate::testing::bpf_available() {
            return;
        }
        let net = list_tracepoints("net:*").unwrap();
        assert!(net.contains(&("net".into(), "netif_receive_skb".into())));
        assert!(net.iter().all(|(category, _)| category == "net"));
        assert!(net.windows(2).all(|w| w[0] < w[1]));
        let skb = list_tracepoints("*:*skb*").unwrap();
        assert!(skb.contains(&("skb".into(), "kfree_skb".into())));
        assert!(skb.iter().all(|(_, name)| name.contains("skb")));
        assert!(list_tracepoints("nonexistent_category:*")
            .unwrap()
            .is_empty());
    }
}
