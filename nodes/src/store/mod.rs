//! Durable per-node storage (redb): secret-shared values, programs and computation results.
//!
//! Every write is one committed redb write transaction, so a reopened store sees everything
//! written before the drop. Records use a small hand-written, versioned binary format:
//!
//! ```text
//! record  = tag:u8 version:u8 body            (tag b'V' value: version 3; b'R' result: version 2)
//! string  = len:u64le utf8-bytes
//! words   = count:u64le count * u64le
//! value   = owner:string  grants:(count:u64le (client:string program:string)*)  receive:(count:u64le string*)  shares
//! shares  = 64:u8 own:words next:words                          (Z_2^64)
//!         | 32:u8 own:comp32 next:comp32                        (Z_2^32, compact)
//! comp32  = 0:u8 count:u64le count * u32le                      (explicit words)
//!         | 1:u8 seed:[u8; 32] offset:u64le len:u64le           (a ChaCha20 keystream, kept as a seed)
//! result  = recipient:string  outputs:(count:u64le (name:string own:words next:words)*)  rounds:u64le  bytes_sent:u64le  security:u8
//! ```
//!
//! `security` is the session's mode (0 semi-honest, 1 malicious, as on the wire); a version-1
//! result, written before the mode existed, has none and decodes as semi-honest.
//!
//! A version-2 value is a version-3 one without the ring byte (always Z_2^64).
//! A version-1 value (written before grants named programs) held a `compute:(count string*)` list
//! of clients allowed to run *any* program; it decodes with no grants (fail closed: owner and
//! `receive` rights are kept, blanket compute rights are dropped).
//!
//! Programs are stored as raw UTF-8. Decoding rejects truncated, oversized or trailing data
//! with [`StoreError::Corrupt`]; error messages carry kinds and ids, never share words.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};
use veil_proto::convert::{security_mode, security_to_wire};
use veil_runtime::SecurityMode;
use veil_runtime::sharing::{Comp32, PartyShares, SEED_BYTES, Shares, Shares32};

use crate::policy::{Access, Grant};
mod cache;

pub use cache::HeldValue;
use cache::ValueCache;

const VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("values");
const PROGRAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("programs");
const RESULTS: TableDefinition<&str, &[u8]> = TableDefinition::new("results");

/// Results since they record the session's security mode.
const RESULT_VERSION: u8 = 2;
/// Values since they carry their ring (compact Z_2^32 values).
const VALUE_VERSION: u8 = 3;
/// The ring byte of a Z_2^64 value, and of a compact Z_2^32 one.
const RING_64: u8 = 64;
const RING_32: u8 = 32;
/// The kind byte of an explicit compact component, and of a seeded one.
const COMP_WORDS: u8 = 0;
const COMP_SEED: u8 = 1;
const TAG_VALUE: u8 = b'V';
const TAG_RESULT: u8 = b'R';

const KIND_VALUE: &str = "value";
const KIND_PROGRAM: &str = "program";
const KIND_RESULT: &str = "result";

/// Errors from the node store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The underlying database failed (environment: disk, lock, I/O).
    #[error("store database error: {0}")]
    Db(String),
    /// A record with this id already exists (caller error).
    #[error("{kind} {id:?} already exists")]
    AlreadyExists {
        /// Record kind: "value" or "result".
        kind: &'static str,
        /// The id that is taken.
        id: String,
    },
    /// A stored record could not be decoded (environment: corrupt or foreign data).
    #[error("{kind} {id:?} is corrupt: {what}")]
    Corrupt {
        /// Record kind: "value", "program" or "result".
        kind: &'static str,
        /// The id of the bad record.
        id: String,
        /// What is wrong with it (never contains stored data).
        what: &'static str,
    },
}

fn db_err<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(e.into().to_string())
}

/// One party's shares of a stored secret value, with its access rights.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredValue {
    /// Owner, per-program grants and raw-receive rights (see [`crate::policy`]).
    pub access: Access,
    /// This party's two components, over Z_2^64 or compact over Z_2^32 (`Debug` redacted).
    pub shares: PartyShares,
}

impl fmt::Debug for StoredValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredValue")
            .field("access", &self.access)
            .field("shares", &self.shares)
            .finish()
    }
}

/// One party's shares of a computation result, kept for its recipient to fetch.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredResult {
    /// Client allowed to fetch the result.
    pub recipient: String,
    /// Named outputs: (name, own share words, next share words).
    pub outputs: Vec<(String, Vec<u64>, Vec<u64>)>,
    /// Communication rounds the computation took.
    pub rounds: u64,
    /// Bytes this party sent during the computation.
    pub bytes_sent: u64,
    /// The security mode of the session that computed it.
    pub security: SecurityMode,
}

impl fmt::Debug for StoredResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outputs: Vec<_> = self
            .outputs
            .iter()
            .map(|(name, own, next)| (name, own.len(), next.len()))
            .collect();
        f.debug_struct("StoredResult")
            .field("recipient", &self.recipient)
            .field("outputs(name, own_len, next_len)", &outputs)
            .field("rounds", &self.rounds)
            .field("bytes_sent", &self.bytes_sent)
            .field("security", &self.security)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn put_u64(buf: &mut Vec<u8>, x: u64) {
    buf.extend_from_slice(&x.to_le_bytes());
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u64(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

fn put_strs(buf: &mut Vec<u8>, v: &[String]) {
    put_u64(buf, v.len() as u64);
    for s in v {
        put_str(buf, s);
    }
}

fn put_words(buf: &mut Vec<u8>, w: &[u64]) {
    put_u64(buf, w.len() as u64);
    veil_runtime::kernels::extend_le_bytes(buf, w);
}

fn strs_len(v: &[String]) -> usize {
    8 + v.iter().map(|s| 8 + s.len()).sum::<usize>()
}

fn put_comp32(buf: &mut Vec<u8>, c: &Comp32) {
    match c {
        Comp32::Words(w) => {
            buf.push(COMP_WORDS);
            put_u64(buf, w.len() as u64);
            for x in w.iter() {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
        Comp32::Seed { seed, offset, len } => {
            buf.push(COMP_SEED);
            buf.extend_from_slice(seed);
            put_u64(buf, *offset as u64);
            put_u64(buf, *len as u64);
        }
    }
}

/// Bytes a component takes in a record.
fn comp32_len(c: &Comp32) -> usize {
    match c {
        Comp32::Words(w) => 9 + 4 * w.len(),
        Comp32::Seed { .. } => 1 + SEED_BYTES + 16,
    }
}

pub(crate) fn encode_value(v: &StoredValue) -> Vec<u8> {
    let a = &v.access;
    let grants: usize = a
        .grants
        .iter()
        .map(|g| 16 + g.client.len() + g.program.len())
        .sum();
    let cap = 2
        + 8
        + a.owner.len()
        + 8
        + grants
        + strs_len(&a.receive)
        + 1
        + match &v.shares {
            PartyShares::Ring64(s) => 16 + 8 * (s.own.len() + s.next.len()),
            PartyShares::Ring32(s) => comp32_len(&s.own) + comp32_len(&s.next),
        };
    let mut buf = Vec::with_capacity(cap);
    buf.push(TAG_VALUE);
    buf.push(VALUE_VERSION);
    put_str(&mut buf, &a.owner);
    put_u64(&mut buf, a.grants.len() as u64);
    for g in &a.grants {
        put_str(&mut buf, &g.client);
        put_str(&mut buf, &g.program);
    }
    put_strs(&mut buf, &a.receive);
    match &v.shares {
        PartyShares::Ring64(s) => {
            buf.push(RING_64);
            put_words(&mut buf, &s.own);
            put_words(&mut buf, &s.next);
        }
        PartyShares::Ring32(s) => {
            buf.push(RING_32);
            put_comp32(&mut buf, &s.own);
            put_comp32(&mut buf, &s.next);
        }
    }
    buf
}

pub(crate) fn encode_result(r: &StoredResult) -> Vec<u8> {
    let outputs: usize = r
        .outputs
        .iter()
        .map(|(n, a, b)| 8 + n.len() + 16 + 8 * (a.len() + b.len()))
        .sum();
    let mut buf = Vec::with_capacity(2 + 8 + r.recipient.len() + 8 + outputs + 17);
    buf.push(TAG_RESULT);
    buf.push(RESULT_VERSION);
    put_str(&mut buf, &r.recipient);
    put_u64(&mut buf, r.outputs.len() as u64);
    for (name, own, next) in &r.outputs {
        put_str(&mut buf, name);
        put_words(&mut buf, own);
        put_words(&mut buf, next);
    }
    put_u64(&mut buf, r.rounds);
    put_u64(&mut buf, r.bytes_sent);
    buf.push(security_to_wire(r.security) as u8);
    buf
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Bounds-checked cursor; every failure is a static description, never data.
struct Reader<'a> {
    buf: &'a [u8],
}

type Dec<T> = Result<T, &'static str>;

impl<'a> Reader<'a> {
    /// The reader after the header, and the record's version.
    fn versioned(buf: &'a [u8], tag: u8) -> Dec<(Self, u8)> {
        match buf {
            [] | [_] => Err("truncated header"),
            [t, _, ..] if *t != tag => Err("wrong record tag"),
            [_, v, rest @ ..] => Ok((Reader { buf: rest }, *v)),
        }
    }

    fn take(&mut self, n: usize) -> Dec<&'a [u8]> {
        if n > self.buf.len() {
            return Err("truncated record");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Dec<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A count of items each at least `min_item` bytes long, checked against what is left.
    fn count(&mut self, min_item: usize) -> Dec<usize> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| "count too large")?;
        match n.checked_mul(min_item) {
            Some(need) if need <= self.buf.len() => Ok(n),
            _ => Err("count exceeds record length"),
        }
    }

    fn string(&mut self) -> Dec<String> {
        let n = self.count(1)?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "invalid utf-8 in name")
    }

    fn strings(&mut self) -> Dec<Vec<String>> {
        let n = self.count(8)?;
        (0..n).map(|_| self.string()).collect()
    }

    fn words(&mut self) -> Dec<Vec<u64>> {
        let n = self.count(8)?;
        Ok(veil_runtime::kernels::le_bytes_to_words(self.take(n * 8)?))
    }

    fn u8(&mut self) -> Dec<u8> {
        Ok(self.take(1)?[0])
    }

    fn comp32(&mut self) -> Dec<Comp32> {
        match self.u8()? {
            COMP_WORDS => {
                let n = self.count(4)?;
                let words: Vec<u32> = self
                    .take(n * 4)?
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Ok(Comp32::words(words))
            }
            COMP_SEED => {
                let seed: [u8; SEED_BYTES] = self
                    .take(SEED_BYTES)?
                    .try_into()
                    .map_err(|_| "truncated seed")?;
                let offset = usize::try_from(self.u64()?).map_err(|_| "offset too large")?;
                let len = usize::try_from(self.u64()?).map_err(|_| "length too large")?;
                Comp32::seeded(seed, offset, len).map_err(|_| "seed range overflows")
            }
            _ => Err("unknown component kind"),
        }
    }

    /// The shares of a value record: a ring byte first from version 3 on.
    fn shares(&mut self, version: u8) -> Dec<PartyShares> {
        let ring = if version >= 3 { self.u8()? } else { RING_64 };
        match ring {
            RING_64 => Ok(PartyShares::Ring64(Arc::new(Shares {
                own: self.words()?,
                next: self.words()?,
            }))),
            RING_32 => {
                let s = Shares32 {
                    own: self.comp32()?,
                    next: self.comp32()?,
                };
                if s.own.len() != s.next.len() {
                    return Err("components of different lengths");
                }
                Ok(PartyShares::Ring32(Arc::new(s)))
            }
            _ => Err("unknown ring"),
        }
    }

    fn finish(self) -> Dec<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes")
        }
    }
}

pub(crate) fn decode_value(buf: &[u8]) -> Dec<StoredValue> {
    let (mut r, version) = Reader::versioned(buf, TAG_VALUE)?;
    if !(1..=VALUE_VERSION).contains(&version) {
        return Err("unsupported version");
    }
    let owner = r.string()?;
    let grants = match version {
        // Version 1: a list of clients with blanket compute rights, dropped (fail closed).
        1 => {
            r.strings()?;
            Vec::new()
        }
        _ => {
            let n = r.count(16)?;
            (0..n)
                .map(|_| Ok(Grant::new(r.string()?, r.string()?)))
                .collect::<Dec<Vec<_>>>()?
        }
    };
    let v = StoredValue {
        access: Access {
            owner,
            grants,
            receive: r.strings()?,
        },
        shares: r.shares(version)?,
    };
    r.finish()?;
    Ok(v)
}

/// Only the owner (first field), so listing does not decode share words.
pub(crate) fn decode_value_owner(buf: &[u8]) -> Dec<String> {
    match Reader::versioned(buf, TAG_VALUE)? {
        (mut r, 1..=VALUE_VERSION) => r.string(),
        _ => Err("unsupported version"),
    }
}

/// The reader after a result's header, and its version (1 or 2).
fn result_header(buf: &[u8]) -> Dec<(Reader<'_>, u8)> {
    match Reader::versioned(buf, TAG_RESULT)? {
        (r, v @ 1..=RESULT_VERSION) => Ok((r, v)),
        _ => Err("unsupported version"),
    }
}

pub(crate) fn decode_result(buf: &[u8]) -> Dec<StoredResult> {
    let (mut r, version) = result_header(buf)?;
    let recipient = r.string()?;
    // Each output is at least name length + two word counts.
    let n = r.count(24)?;
    let mut outputs = Vec::with_capacity(n);
    for _ in 0..n {
        outputs.push((r.string()?, r.words()?, r.words()?));
    }
    let (rounds, bytes_sent) = (r.u64()?, r.u64()?);
    let security = match version {
        1 => SecurityMode::SemiHonest,
        _ => security_mode("", i32::from(r.u8()?)).map_err(|_| "unknown security mode")?,
    };
    let res = StoredResult {
        recipient,
        outputs,
        rounds,
        bytes_sent,
        security,
    };
    r.finish()?;
    Ok(res)
}

/// Only the recipient (first field).
pub(crate) fn decode_result_recipient(buf: &[u8]) -> Dec<String> {
    result_header(buf)?.0.string()
}

fn corrupt<'a>(kind: &'static str, id: &'a str) -> impl FnOnce(&'static str) -> StoreError + 'a {
    move |what| StoreError::Corrupt {
        kind,
        id: id.to_owned(),
        what,
    }
}

// ---------------------------------------------------------------------------------------------
// Store

/// Default budget of the in-memory cache of decoded stored values ([`Store::get_value_held`]):
/// 1 GiB of share words.
pub const DEFAULT_VALUE_CACHE_BYTES: usize = 1 << 30;

/// redb's own page cache. Small: sessions read stored values from the value cache above it, so
/// a large redb cache (its default is 1 GiB) would hold a second copy of a corpus in memory.
const REDB_CACHE_BYTES: usize = 128 << 20;

/// The node's redb database (`data_dir/store.redb`), with a bounded in-memory cache of decoded
/// stored values in front of it. `Send + Sync`; all methods take `&self`.
pub struct Store {
    db: Database,
    held: ValueCache,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

type Table = TableDefinition<'static, &'static str, &'static [u8]>;

/// What a deletion guarded by the entry's owner did ([`Store::delete_value_of`],
/// [`Store::delete_result_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The entry belonged to the caller and is gone.
    Removed,
    /// Nothing is stored under the id.
    Absent,
    /// The entry belongs to someone else and is kept.
    Refused,
}

impl Store {
    /// Opens (or creates) the database at `path` and creates the tables.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::builder()
            .set_cache_size(REDB_CACHE_BYTES)
            .create(path)
            .map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        for t in [VALUES, PROGRAMS, RESULTS] {
            txn.open_table(t).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(Store {
            db,
            held: ValueCache::new(DEFAULT_VALUE_CACHE_BYTES),
        })
    }

    /// This store with a value cache of `bytes` (0: every read goes to the database).
    pub fn with_value_cache(mut self, bytes: usize) -> Store {
        self.held = ValueCache::new(bytes);
        self
    }

    fn get_raw<T>(
        &self,
        table: Table,
        kind: &'static str,
        id: &str,
        decode: impl FnOnce(&[u8]) -> Dec<T>,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(table).map_err(db_err)?;
        match t.get(id).map_err(db_err)? {
            None => Ok(None),
            Some(g) => decode(g.value()).map(Some).map_err(corrupt(kind, id)),
        }
    }

    /// Inserts `bytes` under `id`; with `exclusive`, fails if the id is taken.
    fn put_raw(
        &self,
        table: Table,
        kind: &'static str,
        id: &str,
        bytes: &[u8],
        exclusive: bool,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(table).map_err(db_err)?;
            if exclusive && t.get(id).map_err(db_err)?.is_some() {
                return Err(StoreError::AlreadyExists {
                    kind,
                    id: id.to_owned(),
                });
            }
            t.insert(id, bytes).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// Deletes the entry under `id` if `party(entry)` (its first field, decoded without the
    /// share words) is `who`; the check and the removal are one write transaction.
    fn delete_guarded(
        &self,
        table: Table,
        kind: &'static str,
        id: &str,
        who: &str,
        party: fn(&[u8]) -> Dec<String>,
    ) -> Result<Removal, StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let outcome = {
            let mut t = txn.open_table(table).map_err(db_err)?;
            let holder = match t.get(id).map_err(db_err)? {
                None => None,
                Some(g) => Some(party(g.value()).map_err(corrupt(kind, id))?),
            };
            match holder {
                None => Removal::Absent,
                Some(h) if h != who => Removal::Refused,
                Some(_) => {
                    t.remove(id).map_err(db_err)?;
                    Removal::Removed
                }
            }
        };
        if outcome == Removal::Removed {
            txn.commit().map_err(db_err)?;
        } else {
            txn.abort().map_err(db_err)?;
        }
        Ok(outcome)
    }

    /// Ids in `table` (sorted), keeping those whose decoded field passes `keep`.
    fn list_raw(
        &self,
        table: Table,
        mut keep: impl FnMut(&str, &[u8]) -> Result<bool, StoreError>,
    ) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(table).map_err(db_err)?;
        let mut ids = Vec::new();
        for entry in t.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let id = k.value();
            if keep(id, v.value())? {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Stores a value under `id`; [`StoreError::AlreadyExists`] if the id is taken.
    pub fn put_value(&self, id: &str, v: &StoredValue) -> Result<(), StoreError> {
        self.put_raw(VALUES, KIND_VALUE, id, &encode_value(v), true)
    }

    /// The value stored under `id`, if any.
    pub fn get_value(&self, id: &str) -> Result<Option<StoredValue>, StoreError> {
        self.get_raw(VALUES, KIND_VALUE, id, decode_value)
    }

    /// Stores `v` under `id` like [`Store::put_value`] and keeps it decoded in the value cache
    /// (within its budget), so the first request that uses it does not read it back.
    pub fn put_value_held(&self, id: &str, v: StoredValue) -> Result<(), StoreError> {
        let generation = self.held.generation();
        self.put_value(id, &v)?;
        self.held
            .insert(id, Arc::new(HeldValue::from(v)), generation);
        Ok(())
    }

    /// The value under `id` as sessions use it: from the in-memory cache, or read, decoded and
    /// cached (within its budget). The components are shared, not copied.
    pub fn get_value_held(&self, id: &str) -> Result<Option<Arc<HeldValue>>, StoreError> {
        let generation = match self.held.get(id) {
            Ok(v) => return Ok(Some(v)),
            Err(generation) => generation,
        };
        let Some(v) = self.get_value(id)? else {
            return Ok(None);
        };
        let v = Arc::new(HeldValue::from(v));
        self.held.insert(id, Arc::clone(&v), generation);
        Ok(Some(v))
    }

    /// Deletes the value under `id` if `owner` owns it (reads only the owner, not the shares).
    /// Sessions already using it keep their reference; later reads do not see it.
    pub fn delete_value_of(&self, id: &str, owner: &str) -> Result<Removal, StoreError> {
        let outcome = self.delete_guarded(VALUES, KIND_VALUE, id, owner, decode_value_owner)?;
        if outcome == Removal::Removed {
            self.held.remove(id);
        }
        Ok(outcome)
    }

    /// Ids of the values owned by `owner`, sorted.
    pub fn list_values(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        self.list_raw(VALUES, |id, bytes| {
            let o = decode_value_owner(bytes).map_err(corrupt(KIND_VALUE, id))?;
            Ok(o == owner)
        })
    }

    /// Stores a program's JSON under `id`; storing it again is a no-op (overwrites).
    pub fn put_program(&self, id: &str, json: &str) -> Result<(), StoreError> {
        self.put_raw(PROGRAMS, KIND_PROGRAM, id, json.as_bytes(), false)
    }

    /// The program JSON stored under `id`, if any.
    pub fn get_program(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.get_raw(PROGRAMS, KIND_PROGRAM, id, |b| {
            String::from_utf8(b.to_vec()).map_err(|_| "invalid utf-8 in program")
        })
    }

    /// Ids of all stored programs, sorted.
    pub fn list_programs(&self) -> Result<Vec<String>, StoreError> {
        self.list_raw(PROGRAMS, |_, _| Ok(true))
    }

    /// Stores a result under `id`; [`StoreError::AlreadyExists`] if the id is taken.
    pub fn put_result(&self, id: &str, r: &StoredResult) -> Result<(), StoreError> {
        self.put_raw(RESULTS, KIND_RESULT, id, &encode_result(r), true)
    }

    /// The result stored under `id`, if any.
    pub fn get_result(&self, id: &str) -> Result<Option<StoredResult>, StoreError> {
        self.get_raw(RESULTS, KIND_RESULT, id, decode_result)
    }

    /// Whether a result is stored under `id` (without decoding it).
    pub fn has_result(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .get_raw(RESULTS, KIND_RESULT, id, |_| Ok(()))?
            .is_some())
    }

    /// Deletes the result under `id` if it is addressed to `recipient`.
    pub fn delete_result_for(&self, id: &str, recipient: &str) -> Result<Removal, StoreError> {
        self.delete_guarded(RESULTS, KIND_RESULT, id, recipient, decode_result_recipient)
    }

    /// Ids of the results addressed to `recipient`, sorted.
    pub fn list_results(&self, recipient: &str) -> Result<Vec<String>, StoreError> {
        self.list_raw(RESULTS, |id, bytes| {
            let r = decode_result_recipient(bytes).map_err(corrupt(KIND_RESULT, id))?;
            Ok(r == recipient)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_tmp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        (dir, store)
    }

    fn value(owner: &str, n: usize) -> StoredValue {
        StoredValue {
            access: Access {
                owner: owner.into(),
                grants: vec![Grant::new("alice", "p1"), Grant::new("bob", "p2")],
                receive: vec!["bob".into()],
            },
            shares: PartyShares::Ring64(Arc::new(Shares {
                own: (0..n as u64).collect(),
                next: (0..n as u64)
                    .map(|x| x.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .collect(),
            })),
        }
    }

    /// The Z_2^64 components of `s` (the tests' values are Z_2^64 unless they say otherwise).
    fn wide(s: &PartyShares) -> &Arc<Shares> {
        match s {
            PartyShares::Ring64(w) => w,
            PartyShares::Ring32(_) => panic!("a Z_2^64 value"),
        }
    }

    #[test]
    fn held_values_are_shared_until_deleted_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let v = value("alice", 1000);
        {
            let store = Store::open(&path).unwrap();
            store.put_value("v", &v).unwrap();
            let a = store.get_value_held("v").unwrap().unwrap();
            let b = store.get_value_held("v").unwrap().unwrap();
            assert!(
                Arc::ptr_eq(wide(&a.shares), wide(&b.shares)),
                "the second read is the cached one"
            );
            store.put_value_held("u", v.clone()).unwrap();
            let u = store.get_value_held("u").unwrap().unwrap();
            assert_eq!(Arc::strong_count(&u), 2, "held since it was stored");
            assert_eq!(store.get_value("u").unwrap().unwrap(), v);
            assert_eq!(a.shares, v.shares);
            assert_eq!(a.access, v.access);
            store.put_value("w", &v).unwrap();
            assert_eq!(
                store.delete_value_of("w", "alice").unwrap(),
                Removal::Removed
            );
            assert!(store.get_value_held("w").unwrap().is_none());
        }
        // The cache is memory only: a reopened store reads the value from disk again.
        let store = Store::open(&path).unwrap().with_value_cache(0);
        let a = store.get_value_held("v").unwrap().unwrap();
        let b = store.get_value_held("v").unwrap().unwrap();
        assert!(
            !Arc::ptr_eq(wide(&a.shares), wide(&b.shares)),
            "a zero budget holds nothing"
        );
        assert_eq!(a.shares, v.shares);
        assert_eq!(
            store.delete_value_of("v", "alice").unwrap(),
            Removal::Removed
        );
        assert!(store.get_value_held("v").unwrap().is_none());
    }

    #[test]
    fn guarded_deletes_check_the_owner_in_the_same_transaction() {
        let (_dir, s) = open_tmp();
        s.put_value_held("v", value("alice", 100)).unwrap();
        assert_eq!(s.delete_value_of("v", "bob").unwrap(), Removal::Refused);
        assert_eq!(s.get_value("v").unwrap(), Some(value("alice", 100)));
        let held = s.get_value_held("v").unwrap().unwrap();
        assert_eq!(s.delete_value_of("v", "alice").unwrap(), Removal::Removed);
        assert!(
            s.get_value_held("v").unwrap().is_none(),
            "gone from the cache too"
        );
        assert_eq!(held.shares.len(), 100, "a session holding it keeps it");
        assert_eq!(s.delete_value_of("v", "alice").unwrap(), Removal::Absent);

        s.put_result("r", &result("bob")).unwrap();
        assert!(s.has_result("r").unwrap());
        assert!(!s.has_result("q").unwrap());
        assert_eq!(s.delete_result_for("r", "alice").unwrap(), Removal::Refused);
        assert!(s.has_result("r").unwrap());
        assert_eq!(s.delete_result_for("r", "bob").unwrap(), Removal::Removed);
        assert!(!s.has_result("r").unwrap());
        assert_eq!(s.delete_result_for("r", "bob").unwrap(), Removal::Absent);

        // A corrupt record is an error, not a silent refusal or removal.
        put_garbage(&s, VALUES, "bad", b"V\x01\xff");
        assert!(matches!(
            s.delete_value_of("bad", "alice"),
            Err(StoreError::Corrupt { .. })
        ));
    }

    fn result(recipient: &str) -> StoredResult {
        StoredResult {
            recipient: recipient.into(),
            outputs: vec![
                ("sum".into(), vec![1, 2, 3], vec![4, 5, 6]),
                ("empty".into(), vec![], vec![]),
                ("ünï".into(), vec![u64::MAX], vec![0]),
            ],
            rounds: 7,
            bytes_sent: 12345,
            security: SecurityMode::Malicious,
        }
    }

    /// Writes raw bytes directly into a table, bypassing encoding.
    fn put_garbage(store: &Store, table: Table, id: &str, bytes: &[u8]) {
        let txn = store.db.begin_write().unwrap();
        txn.open_table(table).unwrap().insert(id, bytes).unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn store_values_put_get_delete_list() {
        let (_dir, s) = open_tmp();
        assert_eq!(s.get_value("x").unwrap(), None);
        s.put_value("b", &value("alice", 3)).unwrap();
        s.put_value("a", &value("alice", 0)).unwrap();
        s.put_value("c", &value("bob", 2)).unwrap();
        assert_eq!(s.get_value("b").unwrap(), Some(value("alice", 3)));
        assert_eq!(s.get_value("a").unwrap(), Some(value("alice", 0)));
        assert_eq!(s.list_values("alice").unwrap(), vec!["a", "b"]);
        assert_eq!(s.list_values("bob").unwrap(), vec!["c"]);
        assert!(s.list_values("carol").unwrap().is_empty());
        assert_eq!(s.delete_value_of("b", "alice").unwrap(), Removal::Removed);
        assert_eq!(s.delete_value_of("b", "alice").unwrap(), Removal::Absent);
        assert_eq!(s.get_value("b").unwrap(), None);
        assert_eq!(s.list_values("alice").unwrap(), vec!["a"]);
    }

    #[test]
    fn a_version_1_value_keeps_owner_and_receivers_and_drops_blanket_compute_rights() {
        let (_dir, s) = open_tmp();
        let mut v1 = vec![TAG_VALUE, 1];
        put_str(&mut v1, "alice");
        put_strs(&mut v1, &["bob".to_string()]);
        put_strs(&mut v1, &["carol".to_string()]);
        put_words(&mut v1, &[1, 2]);
        put_words(&mut v1, &[3, 4]);
        put_garbage(&s, VALUES, "old", &v1);
        let v = s.get_value("old").unwrap().unwrap();
        assert_eq!(
            v.access,
            Access {
                owner: "alice".into(),
                grants: vec![],
                receive: vec!["carol".into()],
            }
        );
        assert_eq!(
            (&wide(&v.shares).own, &wide(&v.shares).next),
            (&vec![1, 2], &vec![3, 4])
        );
        assert_eq!(s.list_values("alice").unwrap(), vec!["old"]);
        put_garbage(&s, VALUES, "future", b"V\x04");
        assert!(matches!(
            s.get_value("future"),
            Err(StoreError::Corrupt {
                what: "unsupported version",
                ..
            })
        ));
    }

    #[test]
    fn a_version_1_result_decodes_as_semi_honest() {
        let (_dir, s) = open_tmp();
        let want = StoredResult {
            security: SecurityMode::SemiHonest,
            ..result("bob")
        };
        // Version 1: the same fields without the security byte.
        let mut v1 = encode_result(&want);
        v1.pop();
        v1[1] = 1;
        put_garbage(&s, RESULTS, "old", &v1);
        assert_eq!(s.get_result("old").unwrap(), Some(want));
        assert_eq!(s.list_results("bob").unwrap(), vec!["old"]);
        let mut bad = encode_result(&result("bob"));
        *bad.last_mut().unwrap() = 7;
        put_garbage(&s, RESULTS, "odd", &bad);
        assert!(matches!(
            s.get_result("odd"),
            Err(StoreError::Corrupt {
                what: "unknown security mode",
                ..
            })
        ));
        put_garbage(&s, RESULTS, "future", b"R\x03");
        assert!(matches!(
            s.get_result("future"),
            Err(StoreError::Corrupt {
                what: "unsupported version",
                ..
            })
        ));
    }

    #[test]
    fn store_value_already_exists() {
        let (_dir, s) = open_tmp();
        s.put_value("v", &value("alice", 1)).unwrap();
        let err = s.put_value("v", &value("bob", 2)).unwrap_err();
        assert!(matches!(
            err,
            StoreError::AlreadyExists { kind: "value", ref id } if id == "v"
        ));
        // The original is untouched.
        assert_eq!(s.get_value("v").unwrap(), Some(value("alice", 1)));
    }

    #[test]
    fn store_programs() {
        let (_dir, s) = open_tmp();
        assert_eq!(s.get_program("p").unwrap(), None);
        s.put_program("p2", r#"{"b":2}"#).unwrap();
        s.put_program("p1", r#"{"a":1}"#).unwrap();
        s.put_program("p1", r#"{"a":1}"#).unwrap(); // idempotent
        assert_eq!(s.get_program("p1").unwrap().as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(s.list_programs().unwrap(), vec!["p1", "p2"]);
    }

    #[test]
    fn store_results_put_get_delete_list() {
        let (_dir, s) = open_tmp();
        s.put_result("r2", &result("bob")).unwrap();
        s.put_result("r1", &result("bob")).unwrap();
        s.put_result("r3", &result("alice")).unwrap();
        assert_eq!(s.get_result("r1").unwrap(), Some(result("bob")));
        assert_eq!(s.list_results("bob").unwrap(), vec!["r1", "r2"]);
        assert_eq!(s.list_results("alice").unwrap(), vec!["r3"]);
        let err = s.put_result("r1", &result("alice")).unwrap_err();
        assert!(matches!(
            err,
            StoreError::AlreadyExists { kind: "result", .. }
        ));
        assert_eq!(s.delete_result_for("r1", "bob").unwrap(), Removal::Removed);
        assert_eq!(s.delete_result_for("r1", "bob").unwrap(), Removal::Absent);
        assert_eq!(s.get_result("r1").unwrap(), None);
        assert_eq!(s.list_results("bob").unwrap(), vec!["r2"]);
    }

    #[test]
    fn store_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        {
            let s = Store::open(&path).unwrap();
            s.put_value("v", &value("alice", 5)).unwrap();
            s.put_program("p", "{}").unwrap();
            s.put_result("r", &result("bob")).unwrap();
            s.put_value("gone", &value("alice", 1)).unwrap();
            assert_eq!(
                s.delete_value_of("gone", "alice").unwrap(),
                Removal::Removed
            );
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.get_value("v").unwrap(), Some(value("alice", 5)));
        assert_eq!(s.get_value("gone").unwrap(), None);
        assert_eq!(s.get_program("p").unwrap().as_deref(), Some("{}"));
        assert_eq!(s.get_result("r").unwrap(), Some(result("bob")));
        assert_eq!(s.list_values("alice").unwrap(), vec!["v"]);
    }

    #[test]
    fn store_detects_corrupt_records() {
        let (_dir, s) = open_tmp();
        let good_v = encode_value(&value("alice", 4));
        let good_r = encode_result(&result("bob"));
        let mut huge_count = good_v.clone();
        // Owner length field claims an absurd length.
        huge_count[2..10].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut bad_version = good_v.clone();
        bad_version[1] = 99;
        let mut trailing = good_v.clone();
        trailing.push(0);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("garbage", b"\xde\xad\xbe\xef not a record".to_vec()),
            ("truncated", good_v[..good_v.len() - 3].to_vec()),
            ("huge", huge_count),
            ("version", bad_version),
            ("trailing", trailing),
            ("wrong_tag", good_r.clone()),
        ];
        for (id, bytes) in &cases {
            put_garbage(&s, VALUES, id, bytes);
            let err = s.get_value(id).unwrap_err();
            match &err {
                StoreError::Corrupt { kind, id: got, .. } => {
                    assert_eq!(*kind, "value");
                    assert_eq!(got, id);
                }
                other => panic!("{id}: expected Corrupt, got {other:?}"),
            }
            // Messages carry no data.
            assert!(!err.to_string().contains("alice"), "{err}");
        }
        // Every truncation of a good result is rejected, never a panic.
        for cut in 0..good_r.len() {
            put_garbage(&s, RESULTS, "cut", &good_r[..cut]);
            assert!(matches!(
                s.get_result("cut"),
                Err(StoreError::Corrupt { kind: "result", .. })
            ));
        }
        // Listing reads only the header and first name; a record broken there is reported.
        put_garbage(&s, RESULTS, "cut", &good_r[..5]);
        assert!(matches!(
            s.list_results("bob"),
            Err(StoreError::Corrupt { .. })
        ));
        put_garbage(&s, PROGRAMS, "p", b"\xff\xfe");
        assert!(matches!(
            s.get_program("p"),
            Err(StoreError::Corrupt {
                kind: "program",
                ..
            })
        ));
    }

    #[test]
    fn compact_values_keep_their_seeds_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let compact = StoredValue {
            shares: PartyShares::Ring32(Arc::new(Shares32 {
                own: Comp32::seeded([9; SEED_BYTES], 0, 5000).unwrap(),
                next: Comp32::words(
                    (0..5000u32)
                        .map(|x| x.wrapping_mul(2_654_435_761))
                        .collect::<Vec<_>>(),
                ),
            })),
            ..value("alice", 0)
        };
        {
            let store = Store::open(&path).unwrap();
            store.put_value_held("c", compact.clone()).unwrap();
            let held = store.get_value_held("c").unwrap().unwrap();
            assert_eq!(held.shares, compact.shares);
            // A seed is held as a seed: 4 bytes per explicit word, 32 for the seed.
            assert_eq!(held.bytes(), 4 * 5000 + SEED_BYTES);
        }
        let store = Store::open(&path).unwrap().with_value_cache(0);
        let got = store.get_value("c").unwrap().unwrap();
        assert_eq!(got, compact);
        let PartyShares::Ring32(s) = &got.shares else {
            panic!("a compact value stays compact");
        };
        assert!(s.own.is_seeded() && !s.next.is_seeded());
        // Records written by older nodes (version 2, Z_2^64) still read.
        let mut v2 = encode_value(&value("bob", 3));
        v2[1] = 2;
        v2.remove(v2.len() - 2 * 8 - 2 * 3 * 8 - 1);
        assert_eq!(decode_value(&v2).unwrap(), value("bob", 3));
        // A compact record with components of different lengths is corrupt, not a panic.
        let bad = StoredValue {
            shares: PartyShares::Ring32(Arc::new(Shares32 {
                own: Comp32::words(vec![1u32, 2]),
                next: Comp32::words(vec![3u32]),
            })),
            ..value("alice", 0)
        };
        assert!(decode_value(&encode_value(&bad)).is_err());
    }

    #[test]
    fn store_large_value_round_trip() {
        let (_dir, s) = open_tmp();
        let v = value("alice", 1 << 20);
        s.put_value("big", &v).unwrap();
        let got = s.get_value("big").unwrap().unwrap();
        assert_eq!(got.shares.len(), 1 << 20);
        assert_eq!(got, v);
        assert_eq!(s.list_values("alice").unwrap(), vec!["big"]);
    }

    #[test]
    fn store_debug_redacts_words() {
        let v = value("alice", 3);
        let d = format!("{v:?}");
        assert!(d.contains("Shares { len: 3, .. }"), "{d}");
        assert!(!d.contains("0x9e37") && !d.contains("[0, 1, 2]"), "{d}");
        let r = format!("{:?}", result("bob"));
        assert!(!r.contains("18446744073709551615"), "{r}");
    }

    #[test]
    fn store_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }
}
