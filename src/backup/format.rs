//! The backup file of SPEC §6.2, byte for byte (`docs/backup.md` is its description for an
//! auditor). Integers are big-endian.
//!
//! ```text
//! magic        8   "HUTBAK\0\x01"
//! header_len   4   ≤ 64 KiB
//! header           JSON object (`Header`)
//! chunk*           len(4) ‖ SM4-GCM ciphertext+tag (len ≤ chunk_bytes + 16)
//! end          4   0xFFFFFFFF
//! digest      32   SM3 over every byte before it
//! sig_len      2
//! signature        DER SM2 signature (SM3, default user ID) by the platform key over `digest`
//! ```
//!
//! Chunk `i` is sealed under the backup key with nonce `nonce_prefix(4) ‖ i(8)` and associated
//! data `SM3(magic ‖ header_len ‖ header) ‖ i(8) ‖ last(1)`, so chunks cannot be reordered,
//! moved to another backup, or cut off after a chunk that was not the last. The plaintext of
//! all chunks together is a stream of records, `name_len(1) ‖ keyspace ‖ key_len(4) ‖ key ‖
//! value_len(4) ‖ value`, ended by `0(1) ‖ record_count(8)`.

use crate::crypto::sm4::Sm4Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use serde::{Deserialize, Serialize};
use sm3::{Digest, Sm3};
use std::io::{Read, Write};
use zeroize::Zeroizing;

pub const MAGIC: &[u8; 8] = b"HUTBAK\x00\x01";
pub const FORMAT: u32 = 1;
/// Plaintext bytes per chunk: what a reader holds in memory at once.
pub const CHUNK_BYTES: u32 = 64 * 1024;
const END: u32 = u32::MAX;
const MAX_HEADER: u32 = 64 * 1024;
const MAX_SIGNATURE: usize = 128;
/// Bounds one key or value (a seal's DER with its picture is far smaller).
const MAX_FIELD: u32 = 64 * 1024 * 1024;
const TAG: usize = 16;

/// What a backup says of itself in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    pub created_ms: i64,
    /// Platform time, for people reading the header.
    pub created_at: String,
    pub schema_version: u32,
    pub audit_tree_size: u64,
    /// Hex of the audit tree's root at the snapshot.
    pub audit_root: String,
    /// Hex SM3 of the platform certificate's DER.
    pub platform_cert_sm3: String,
    /// Base64 DER of the platform certificate, so a backup verifies on a machine without it.
    pub platform_cert: String,
    /// `file` or `pkcs11`, and the KEK that wrapped the backup key.
    pub key_provider: String,
    pub kek_id: String,
    /// Base64 of the backup key wrapped by the KEK.
    pub wrapped_key: String,
    /// Hex of the 4-byte nonce prefix.
    pub nonce_prefix: String,
    pub chunk_bytes: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("不是 hutong 备份文件（文件头不符）")]
    NotBackup,
    #[error("备份格式版本 {0} 不受本程序支持，请升级 hutong")]
    Unsupported(u32),
    #[error("备份文件不完整（在第 {0} 字节处被截断）")]
    Truncated(u64),
    #[error("备份文件损坏: {0}")]
    Corrupt(String),
    #[error("备份文件摘要不符：文件在写成后被改动")]
    Digest,
    #[error("备份内容解密失败（第 {0} 块）：文件被改动或备份密钥不符")]
    Chunk(u64),
    #[error("读写备份文件失败: {0}")]
    Io(#[from] std::io::Error),
}

fn corrupt(what: impl Into<String>) -> FormatError {
    FormatError::Corrupt(what.into())
}

fn aad(header_digest: &[u8; 32], index: u64, last: bool) -> [u8; 41] {
    let mut a = [0u8; 41];
    a[..32].copy_from_slice(header_digest);
    a[32..40].copy_from_slice(&index.to_be_bytes());
    a[40] = last as u8;
    a
}

fn nonce(prefix: &[u8; 4], index: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(prefix);
    n[4..].copy_from_slice(&index.to_be_bytes());
    n
}

fn header_prefix(header: &[u8]) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend_from_slice(&(header.len() as u32).to_be_bytes());
    v.extend_from_slice(header);
    v
}

/// Hashes everything it passes on, so the digest covers exactly the bytes written.
struct Hashing<W> {
    out: W,
    sm3: Sm3,
    written: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.sm3.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    pub records: u64,
    pub digest: [u8; 32],
}

/// Streams records into a backup file; memory stays at one chunk.
pub struct Writer<W: Write> {
    out: Hashing<W>,
    cipher: Sm4Gcm,
    prefix: [u8; 4],
    header_digest: [u8; 32],
    index: u64,
    buf: Zeroizing<Vec<u8>>,
    records: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the magic and header; `key` is the fresh backup key the header's `wrapped_key`
    /// holds and `prefix` the header's `nonce_prefix`.
    pub fn new(
        out: W,
        header: &Header,
        key: &[u8; 16],
        prefix: [u8; 4],
    ) -> Result<Self, FormatError> {
        let json = serde_json::to_vec(header).map_err(|e| corrupt(e.to_string()))?;
        let start = header_prefix(&json);
        let mut out = Hashing {
            out,
            sm3: Sm3::new(),
            written: 0,
        };
        out.put(&start)?;
        Ok(Self {
            out,
            cipher: Sm4Gcm::new(&(*key).into()),
            prefix,
            header_digest: Sm3::digest(&start).into(),
            index: 0,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK_BYTES as usize + 1024)),
            records: 0,
        })
    }

    /// Appends one stored entry.
    pub fn record(&mut self, space: &str, key: &[u8], value: &[u8]) -> Result<(), FormatError> {
        let name = space.as_bytes();
        if name.is_empty() || name.len() > 255 {
            return Err(corrupt(format!("数据空间名 {space:?} 无效")));
        }
        if key.len() > MAX_FIELD as usize || value.len() > MAX_FIELD as usize {
            return Err(corrupt(format!("{space} 中有超过 64 MiB 的记录")));
        }
        self.buf.push(name.len() as u8);
        self.buf.extend_from_slice(name);
        self.buf
            .extend_from_slice(&(key.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(key);
        self.buf
            .extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(value);
        self.records += 1;
        while self.buf.len() >= CHUNK_BYTES as usize {
            let rest = self.buf.split_off(CHUNK_BYTES as usize);
            let full = std::mem::replace(&mut *self.buf, rest);
            self.seal(&full, false)?;
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.out.written
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    fn seal(&mut self, plain: &[u8], last: bool) -> Result<(), FormatError> {
        let ct = self
            .cipher
            .encrypt(
                &nonce(&self.prefix, self.index).into(),
                Payload {
                    msg: plain,
                    aad: &aad(&self.header_digest, self.index, last),
                },
            )
            .map_err(|_| corrupt("SM4-GCM 加密失败"))?;
        self.out.put(&(ct.len() as u32).to_be_bytes())?;
        self.out.put(&ct)?;
        self.index += 1;
        Ok(())
    }

    /// Ends the record stream, seals the last chunk, and signs the digest with `sign`.
    pub fn finish(
        mut self,
        sign: impl FnOnce(&[u8; 32]) -> Vec<u8>,
    ) -> Result<(W, Written), FormatError> {
        let count = self.records;
        self.buf.push(0);
        self.buf.extend_from_slice(&count.to_be_bytes());
        // The end marker may push the tail past one chunk: seal a full one first.
        if self.buf.len() > CHUNK_BYTES as usize {
            let rest = self.buf.split_off(CHUNK_BYTES as usize);
            let full = std::mem::replace(&mut *self.buf, rest);
            self.seal(&full, false)?;
        }
        let tail = std::mem::take(&mut *self.buf);
        self.seal(&tail, true)?;
        self.out.put(&END.to_be_bytes())?;
        let digest: [u8; 32] = self.out.sm3.clone().finalize().into();
        let sig = sign(&digest);
        if sig.len() > MAX_SIGNATURE {
            return Err(corrupt("签名过长"));
        }
        let mut out = self.out.out;
        out.write_all(&digest)?;
        out.write_all(&(sig.len() as u16).to_be_bytes())?;
        out.write_all(&sig)?;
        out.flush()?;
        Ok((
            out,
            Written {
                bytes: self.out.written + 32 + 2 + sig.len() as u64,
                records: count,
                digest,
            },
        ))
    }
}

/// Reads exactly `buf.len()` bytes, naming the offset of a short read.
fn read_exact_at(r: &mut impl Read, buf: &mut [u8], at: &mut u64) -> Result<(), FormatError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FormatError::Truncated(*at),
        _ => FormatError::Io(e),
    })?;
    *at += buf.len() as u64;
    Ok(())
}

fn read_u32(r: &mut impl Read, at: &mut u64) -> Result<u32, FormatError> {
    let mut b = [0u8; 4];
    read_exact_at(r, &mut b, at)?;
    Ok(u32::from_be_bytes(b))
}

/// Reads the magic and header; returns the header, its raw bytes' digest (the chunks'
/// associated data) and the bytes read.
fn read_header(r: &mut impl Read, at: &mut u64) -> Result<(Header, Vec<u8>), FormatError> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| FormatError::NotBackup)?;
    *at += 8;
    if magic[..6] != MAGIC[..6] {
        return Err(FormatError::NotBackup);
    }
    if magic != *MAGIC {
        return Err(FormatError::Unsupported(u32::from(magic[7])));
    }
    let len = read_u32(r, at)?;
    if len > MAX_HEADER {
        return Err(corrupt(format!("文件头长 {len} 字节，超过上限")));
    }
    let mut json = vec![0u8; len as usize];
    read_exact_at(r, &mut json, at)?;
    let header: Header =
        serde_json::from_slice(&json).map_err(|e| corrupt(format!("文件头无法解析: {e}")))?;
    if header.format != FORMAT {
        return Err(FormatError::Unsupported(header.format));
    }
    if header.chunk_bytes == 0 || header.chunk_bytes > 16 * 1024 * 1024 {
        return Err(corrupt(format!("块大小 {} 无效", header.chunk_bytes)));
    }
    Ok((header, header_prefix(&json)))
}

/// What the first pass found: the header, the digest it recomputed (equal to the file's),
/// the signature over it, and the file's size.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub header: Header,
    pub digest: [u8; 32],
    pub signature: Vec<u8>,
    pub chunks: u64,
    pub bytes: u64,
}

/// First pass: walks the file without decrypting, recomputes the digest and checks it equals
/// the stored one; the caller checks the signature. Memory stays at one chunk.
pub fn read_sealed(mut r: impl Read) -> Result<Sealed, FormatError> {
    let mut at = 0u64;
    let (header, start) = read_header(&mut r, &mut at)?;
    let mut sm3 = Sm3::new();
    sm3.update(&start);
    let max = header.chunk_bytes as usize + TAG;
    let mut buf = vec![0u8; max];
    let mut chunks = 0u64;
    loop {
        let len = read_u32(&mut r, &mut at)?;
        sm3.update(len.to_be_bytes());
        if len == END {
            break;
        }
        let len = len as usize;
        if !(TAG..=max).contains(&len) {
            return Err(corrupt(format!(
                "第 {chunks} 块长 {len} 字节，不在允许范围内"
            )));
        }
        read_exact_at(&mut r, &mut buf[..len], &mut at)?;
        sm3.update(&buf[..len]);
        chunks += 1;
    }
    let mut digest = [0u8; 32];
    read_exact_at(&mut r, &mut digest, &mut at)?;
    let computed: [u8; 32] = sm3.finalize().into();
    if computed != digest {
        return Err(FormatError::Digest);
    }
    let mut sl = [0u8; 2];
    read_exact_at(&mut r, &mut sl, &mut at)?;
    let sl = u16::from_be_bytes(sl) as usize;
    if sl == 0 || sl > MAX_SIGNATURE {
        return Err(corrupt(format!("签名长 {sl} 字节，不在允许范围内")));
    }
    let mut signature = vec![0u8; sl];
    read_exact_at(&mut r, &mut signature, &mut at)?;
    let mut extra = [0u8; 1];
    if r.read(&mut extra)? != 0 {
        return Err(corrupt("签名之后还有多余的数据"));
    }
    Ok(Sealed {
        header,
        digest,
        signature,
        chunks,
        bytes: at,
    })
}

/// One stored entry read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub space: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Second pass: decrypts chunk by chunk and yields the records. Run it on a file whose first
/// pass succeeded; it checks the chunk tags, the last-chunk flag and the record count itself.
pub struct Records<R: Read> {
    r: R,
    at: u64,
    cipher: Sm4Gcm,
    prefix: [u8; 4],
    header_digest: [u8; 32],
    chunk_max: usize,
    index: u64,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    last_seen: bool,
    count: u64,
    done: bool,
}

impl<R: Read> Records<R> {
    pub fn open(mut r: R, key: &[u8; 16]) -> Result<(Header, Self), FormatError> {
        let mut at = 0;
        let (header, start) = read_header(&mut r, &mut at)?;
        let prefix: [u8; 4] = hex::decode(&header.nonce_prefix)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| corrupt("文件头中的 nonce 前缀无效"))?;
        let chunk_max = header.chunk_bytes as usize + TAG;
        Ok((
            header,
            Self {
                r,
                at,
                cipher: Sm4Gcm::new(&(*key).into()),
                prefix,
                header_digest: Sm3::digest(&start).into(),
                chunk_max,
                index: 0,
                plain: Zeroizing::new(Vec::new()),
                pos: 0,
                last_seen: false,
                count: 0,
                done: false,
            },
        ))
    }

    /// Decrypts the next chunk into the buffer (keeping unread bytes); false at the end marker.
    fn refill(&mut self) -> Result<bool, FormatError> {
        if self.last_seen {
            return Ok(false);
        }
        let len = read_u32(&mut self.r, &mut self.at)?;
        if len == END {
            return Err(corrupt("缺少最后一块"));
        }
        let len = len as usize;
        if !(TAG..=self.chunk_max).contains(&len) {
            return Err(corrupt(format!(
                "第 {} 块长 {len} 字节，不在允许范围内",
                self.index
            )));
        }
        let mut ct = vec![0u8; len];
        read_exact_at(&mut self.r, &mut ct, &mut self.at)?;
        // A chunk's flag is not stored: try "not last", then "last".
        let mut opened = None;
        for last in [false, true] {
            if let Ok(p) = self.cipher.decrypt(
                &nonce(&self.prefix, self.index).into(),
                Payload {
                    msg: &ct,
                    aad: &aad(&self.header_digest, self.index, last),
                },
            ) {
                opened = Some((p, last));
                break;
            }
        }
        let (p, last) = opened.ok_or(FormatError::Chunk(self.index))?;
        self.index += 1;
        self.last_seen = last;
        let mut next = Zeroizing::new(self.plain[self.pos..].to_vec());
        next.extend_from_slice(&p);
        self.plain = next;
        self.pos = 0;
        Ok(true)
    }

    /// Takes `n` plaintext bytes, decrypting further chunks as needed.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, FormatError> {
        while self.plain.len() - self.pos < n {
            if !self.refill()? {
                return Err(corrupt("记录流在一条记录中间结束"));
            }
        }
        let out = self.plain[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    fn take_u32(&mut self) -> Result<u32, FormatError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn next_record(&mut self) -> Result<Option<Record>, FormatError> {
        if self.done {
            return Ok(None);
        }
        let name_len = self.take(1)?[0] as usize;
        if name_len == 0 {
            let n = self.take(8)?;
            let n = u64::from_be_bytes(n.try_into().map_err(|_| corrupt("记录数无效"))?);
            if n != self.count {
                return Err(corrupt(format!(
                    "读到 {} 条记录，结尾标记为 {n} 条",
                    self.count
                )));
            }
            if !self.last_seen || self.pos != self.plain.len() {
                return Err(corrupt("记录结束之后还有数据"));
            }
            let mut trailer = [0u8; 4];
            read_exact_at(&mut self.r, &mut trailer, &mut self.at)?;
            if u32::from_be_bytes(trailer) != END {
                return Err(corrupt("最后一块之后还有数据块"));
            }
            self.done = true;
            return Ok(None);
        }
        let space =
            String::from_utf8(self.take(name_len)?).map_err(|_| corrupt("数据空间名不是 UTF-8"))?;
        let klen = self.take_u32()?;
        if klen > MAX_FIELD {
            return Err(corrupt("键超过 64 MiB"));
        }
        let key = self.take(klen as usize)?;
        let vlen = self.take_u32()?;
        if vlen > MAX_FIELD {
            return Err(corrupt("值超过 64 MiB"));
        }
        let value = self.take(vlen as usize)?;
        self.count += 1;
        Ok(Some(Record { space, key, value }))
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<Record, FormatError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(prefix: [u8; 4]) -> Header {
        Header {
            format: FORMAT,
            created_ms: 1,
            created_at: "2026-12-03 10:00:00".into(),
            schema_version: 1,
            audit_tree_size: 3,
            audit_root: "00".repeat(32),
            platform_cert_sm3: "11".repeat(32),
            platform_cert: String::new(),
            key_provider: "file".into(),
            kek_id: "k".into(),
            wrapped_key: String::new(),
            nonce_prefix: hex::encode(prefix),
            chunk_bytes: CHUNK_BYTES,
        }
    }

    fn write(records: &[Record], key: &[u8; 16]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), &header([1, 2, 3, 4]), key, [1, 2, 3, 4]).unwrap();
        for r in records {
            w.record(&r.space, &r.key, &r.value).unwrap();
        }
        let (bytes, written) = w.finish(|d| d.to_vec()).unwrap();
        assert_eq!(written.bytes, bytes.len() as u64);
        assert_eq!(written.records, records.len() as u64);
        bytes
    }

    fn read_all(bytes: &[u8], key: &[u8; 16]) -> Result<Vec<Record>, FormatError> {
        read_sealed(bytes)?;
        let (_, recs) = Records::open(bytes, key)?;
        recs.collect()
    }

    fn sample(n: usize, size: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                space: format!("space{}", i % 3),
                key: (i as u64).to_be_bytes().to_vec(),
                value: vec![(i % 251) as u8; size],
            })
            .collect()
    }

    #[test]
    fn records_round_trip_across_chunks() {
        let key = [7u8; 16];
        let recs = sample(300, 700);
        let bytes = write(&recs, &key);
        let sealed = read_sealed(&bytes[..]).unwrap();
        assert!(sealed.chunks > 2, "records span chunks");
        assert_eq!(read_all(&bytes, &key).unwrap(), recs);
        assert_eq!(read_all(&write(&[], &key), &key).unwrap(), vec![]);
    }

    /// Records that leave a tail of one chunk less a few bytes: the end marker then spills
    /// into a chunk of its own, which a reader still accepts.
    #[test]
    fn the_end_marker_never_makes_a_chunk_longer_than_the_reader_accepts() {
        let key = [7u8; 16];
        // One record's overhead: name length, "s", key length, key (0), value length.
        let overhead = 1 + 1 + 4 + 4;
        for spare in 0..12 {
            let value = vec![1u8; CHUNK_BYTES as usize - overhead - spare];
            let rec = Record {
                space: "s".into(),
                key: Vec::new(),
                value,
            };
            let bytes = write(std::slice::from_ref(&rec), &key);
            assert_eq!(read_all(&bytes, &key).unwrap(), vec![rec], "spare {spare}");
        }
    }

    #[test]
    fn truncation_tampering_and_the_wrong_key_are_refused() {
        let key = [7u8; 16];
        let bytes = write(&sample(200, 900), &key);
        for cut in [
            0,
            5,
            12,
            100,
            bytes.len() / 2,
            bytes.len() - 40,
            bytes.len() - 1,
        ] {
            assert!(read_sealed(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        assert!(matches!(
            read_sealed(&flipped[..]),
            Err(FormatError::Digest)
        ));
        assert!(matches!(
            read_all(&bytes, &[8u8; 16]),
            Err(FormatError::Chunk(0))
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_sealed(&longer[..]).is_err());
        assert!(matches!(
            read_sealed(&b"PK\x03\x04rest"[..]),
            Err(FormatError::NotBackup)
        ));
    }

    /// A chunk dropped from the middle or the end, with the digest recomputed (as a forger
    /// without the platform key could not sign, but a reader must not rely on that alone).
    #[test]
    fn chunks_cannot_be_dropped_even_with_a_fresh_digest() {
        let key = [7u8; 16];
        let bytes = write(&sample(200, 900), &key);
        let sealed = read_sealed(&bytes[..]).unwrap();
        let header_len = 12 + u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let mut chunks = Vec::new();
        let mut at = header_len;
        for _ in 0..sealed.chunks {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            chunks.push(bytes[at..at + 4 + len].to_vec());
            at += 4 + len;
        }
        let rebuild = |keep: &[usize]| {
            let mut v = bytes[..header_len].to_vec();
            for &i in keep {
                v.extend_from_slice(&chunks[i]);
            }
            v.extend_from_slice(&END.to_be_bytes());
            let d: [u8; 32] = Sm3::digest(&v).into();
            v.extend_from_slice(&d);
            v.extend_from_slice(&32u16.to_be_bytes());
            v.extend_from_slice(&d);
            v
        };
        let n = chunks.len();
        let all: Vec<usize> = (0..n).collect();
        assert!(read_all(&rebuild(&all), &key).is_ok());
        let without_last: Vec<usize> = (0..n - 1).collect();
        assert!(read_all(&rebuild(&without_last), &key).is_err());
        let mut swapped = all.clone();
        swapped.swap(0, 1);
        assert!(read_all(&rebuild(&swapped), &key).is_err());
        let mut dropped = all.clone();
        dropped.remove(1);
        assert!(read_all(&rebuild(&dropped), &key).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Arbitrary bytes after a valid header never panic the reader.
        #[test]
        fn arbitrary_bodies_are_refused_without_panic(tail in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let key = [7u8; 16];
            let mut bytes = write(&[], &key);
            let header_len = 12 + u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
            bytes.truncate(header_len);
            bytes.extend_from_slice(&tail);
            let _ = read_sealed(&bytes[..]);
            if let Ok((_, recs)) = Records::open(&bytes[..], &key) {
                for r in recs { let _ = r; }
            }
        }

        #[test]
        fn any_records_round_trip(recs in proptest::collection::vec(
            ("[a-z_]{1,20}", proptest::collection::vec(any::<u8>(), 0..64), proptest::collection::vec(any::<u8>(), 0..3000)),
            0..80)) {
            let key = [3u8; 16];
            let recs: Vec<Record> = recs.into_iter().map(|(space, key, value)| Record { space, key, value }).collect();
            prop_assert_eq!(read_all(&write(&recs, &key), &key).unwrap(), recs);
        }
    }
}
