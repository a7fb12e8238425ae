//! Reading and writing the maps of a loaded object, and reading its ring
//! buffers.

use std::time::Duration;

use std::os::fd::{AsFd, BorrowedFd};

use libbpf_rs::{Map, MapCore, MapFlags, MapHandle, RingBuffer, RingBufferBuilder};

use super::LoadedObject;
use crate::diag::Diagnostic;

/// Polls one ring buffer, calling the record callback given to
/// [`LoadedObject::ring_buffer`] for every record.
pub struct RingReader<'a> {
    ring: RingBuffer<'a>,
}

impl RingReader<'_> {
    /// Waits up to `timeout` for a wake-up and consumes all records that
    /// are ready (also those written without waking the reader, see
    /// `Lower::send`). A signal arriving during the wait (Ctrl-C) is not
    /// an error.
    pub fn poll(&self, timeout: Duration) -> Result<(), Diagnostic> {
        match self.ring.poll(timeout) {
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => Ok(()),
            r => r.map_err(|e| Diagnostic::plain(format!("cannot read the ring buffer: {e:#}"))),
        }?;
        self.consume()
    }

    /// Consumes the records that are ready without waiting.
    pub fn consume(&self) -> Result<(), Diagnostic> {
        self.ring
            .consume()
            .map_err(|e| Diagnostic::plain(format!("cannot read the ring buffer: {e:#}")))
    }
}

/// One map entry: the key and its value (one per possible CPU for per-CPU maps).
pub type MapEntry = (Vec<u8>, Vec<Vec<u8>>);

/// Diagnostic for a failed operation on a map.
fn map_error(operation: &str, map: &str, error: libbpf_rs::Error) -> Diagnostic {
    Diagnostic::plain(format!("cannot {operation} map '{map}': {error:#}"))
}

/// The value(s) stored under `key`: one per possible CPU for per-CPU maps.
fn lookup(map: &impl MapCore, name: &str, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>, Diagnostic> {
    let result = if map.map_type().is_percpu() {
        map.lookup_percpu(key, MapFlags::ANY)
    } else {
        map.lookup(key, MapFlags::ANY)
            .map(|value| value.map(|v| vec![v]))
    };
    result.map_err(|e| map_error("read", name, e))
}

/// True for maps whose entries cannot be deleted, only overwritten.
fn is_array(map: &impl MapCore) -> bool {
    matches!(
        map.map_type(),
        libbpf_rs::MapType::Array | libbpf_rs::MapType::PercpuArray
    )
}

impl LoadedObject {
    /// The map named `name` (its symbol name).
    fn map(&self, name: &str) -> Result<Map<'_>, Diagnostic> {
        self.object
            .maps()
            .find(|map| map.name() == name)
            .ok_or_else(|| Diagnostic::plain(format!("internal error: no BPF map named '{name}'")))
    }

    /// Every key of map `map` with its value: one value per possible CPU
    /// for per-CPU maps, a single value otherwise.
    pub fn map_entries(&self, map: &str) -> Result<Vec<MapEntry>, Diagnostic> {
        entries(&self.map(map)?, map)
    }

    /// The sum over CPUs of u64 counter `index` of per-CPU array `map`.
    pub fn percpu_counter(&self, map: &str, index: u32) -> Result<u64, Diagnostic> {
        let values = self.map_lookup(map, &index.to_le_bytes())?;
        Ok(values
            .unwrap_or_default()
            .iter()
            .map(|v| {
                u64::from_le_bytes(v.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]))
            })
            .sum())
    }

    /// The value(s) under `key` in map `map`, if present.
    pub fn map_lookup(&self, map: &str, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>, Diagnostic> {
        lookup(&self.map(map)?, map, key)
    }

    /// Deletes one key of map `map` (a key already gone is not an error).
    pub fn map_delete(&self, map: &str, key: &[u8]) -> Result<(), Diagnostic> {
        match self.map(map)?.delete(key) {
            Err(e) if e.kind() != libbpf_rs::ErrorKind::NotFound => {
                Err(map_error("delete from", map, e))
            }
            _ => Ok(()),
        }
    }

    /// Empties map `map` (bpftrace's `clear()`): deletes every key, or, for
    /// array maps whose entries cannot be deleted, zeroes every value.
    pub fn map_delete_all(&self, map: &str) -> Result<(), Diagnostic> {
        delete_all(&self.map(map)?, map)
    }

    /// Stores `value_per_cpu` under `key` (one value per possible CPU for
    /// per-CPU maps, exactly one otherwise), e.g. zeroes for `zero()`.
    pub fn map_update(
        &self,
        map: &str,
        key: &[u8],
        value_per_cpu: &[Vec<u8>],
    ) -> Result<(), Diagnostic> {
        update(&self.map(map)?, map, key, value_per_cpu)
    }

    /// A handle on map `map` that keeps the kernel map alive after this
    /// object is dropped, and can be reused by later objects
    /// ([`super::load_reusing`]).
    pub fn shared_map(&self, map: &str) -> Result<SharedMap, Diagnostic> {
        let handle =
            MapHandle::try_from(&self.map(map)?).map_err(|e| map_error("share", map, e))?;
        Ok(SharedMap {
            name: map.to_string(),
            handle,
        })
    }

    /// A reader of ring buffer map `map` that passes every record to
    /// `on_record`.
    pub fn ring_buffer<'a>(
        &'a self,
        map: &str,
        mut on_record: impl FnMut(&[u8]) + 'a,
    ) -> Result<RingReader<'a>, Diagnostic> {
        let handle = self.map(map)?;
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&handle, move |record| {
                on_record(record);
                0
            })
            .map_err(|e| map_error("read", map, e))?;
        let ring = builder.build().map_err(|e| map_error("read", map, e))?;
        Ok(RingReader { ring })
    }
}

/// Every key of `map` with its value(s).
fn entries(map: &impl MapCore, name: &str) -> Result<Vec<MapEntry>, Diagnostic> {
    let mut entries = Vec::new();
    for key in map.keys() {
        // A key deleted by a program since keys() returned it is skipped.
        if let Some(values) = lookup(map, name, &key)? {
            entries.push((key, values));
        }
    }
    Ok(entries)
}

/// How many values a lookup of `map` returns.
fn cpu_slots(map: &impl MapCore) -> Result<usize, Diagnostic> {
    if !map.map_type().is_percpu() {
        return Ok(1);
    }
    libbpf_rs::num_possible_cpus()
        .map_err(|e| Diagnostic::plain(format!("cannot count the CPUs: {e:#}")))
}

/// Stores `value_per_cpu` under `key` in `map`.
fn update(
    map: &impl MapCore,
    name: &str,
    key: &[u8],
    value_per_cpu: &[Vec<u8>],
) -> Result<(), Diagnostic> {
    let result = match value_per_cpu {
        _ if map.map_type().is_percpu() => map.update_percpu(key, value_per_cpu, MapFlags::ANY),
        [value] => map.update(key, value, MapFlags::ANY),
        _ => {
            let message = format!(
                "{} values given for a map that holds one",
                value_per_cpu.len()
            );
            return Err(Diagnostic::plain(format!(
                "cannot update map '{name}': {message}"
            )));
        }
    };
    result.map_err(|e| map_error("update", name, e))
}

/// Deletes every key of `map`, or zeroes every value of an array map.
fn delete_all(map: &impl MapCore, name: &str) -> Result<(), Diagnostic> {
    let keys: Vec<Vec<u8>> = map.keys().collect();
    if is_array(map) {
        let zero = vec![vec![0u8; map.value_size() as usize]; cpu_slots(map)?];
        return keys
            .iter()
            .try_for_each(|key| update(map, name, key, &zero));
    }
    for key in keys {
        match map.delete(&key) {
            Err(e) if e.kind() != libbpf_rs::ErrorKind::NotFound => {
                return Err(map_error("clear", name, e))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A kernel map held independently of the object that created it (e.g. a
/// REPL map that outlives the probes filling it).
#[derive(Debug)]
pub struct SharedMap {
    name: String,
    handle: MapHandle,
}

impl SharedMap {
    /// The map's name in the objects that use it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every key with its value(s), as [`LoadedObject::map_entries`].
    pub fn entries(&self) -> Result<Vec<MapEntry>, Diagnostic> {
        entries(&self.handle, &self.name)
    }

    /// Empties the map, as [`LoadedObject::map_delete_all`].
    pub fn delete_all(&self) -> Result<(), Diagnostic> {
        delete_all(&self.handle, &self.name)
    }

    /// The map's file descriptor, for [`super::load_reusing`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.handle.as_fd()
    }
}
