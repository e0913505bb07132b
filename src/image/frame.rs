//! The byte layout of an image around its body: magic, kind, format
//! version, the snapshot's meta, body length, checksum, and the bounded
//! zstd body.
//!
//! ```text
//! "TAIMG"  kind: u8  version: u16 LE
//! [meta length: u32 LE  meta: postcard]     snapshots only
//! body length: u64 LE  checksum: u64 LE  body: one zstd frame
//! ```
//!
//! The checksum is xxh3-64 of every byte before it followed by the body,
//! so a flipped bit anywhere past the version is caught before anything
//! is decoded or decompressed (the kind and version are read first, to
//! name the refusal; the meta's length is what lets the checksum be found
//! before the meta is parsed). The body length tells a cut image
//! (truncated) from a corrupt one (checksum) and from one with bytes
//! after it.

use std::io::Read;

use xxhash_rust::xxh3::Xxh3;

use super::{ImageError, ImageMeta};

const MAGIC: &[u8; 5] = b"TAIMG";

/// The layout this build writes and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;

/// zstd level 3, zstd's default. On the 1M-ticket bench data
/// (`IMAGE_SURVEY=1 cargo bench --bench image`) the body is 24.6 bytes per
/// ticket at levels 1 and 3 (0.24 s and 0.42 s); 6 to 12 save 4 to 11 %
/// for 4 to 15 times the time, 19 saves 19 % for 110 s, and long-distance
/// matching saves nothing (what repeats, ids and their prefixes, repeats
/// within the default window). Level 1's saving is small beside the
/// export and postcard (2 s of the encode), and real ids repeat in
/// longer, less regular runs than generated ones, which 3 matches better.
const LEVEL: i32 = 3;

/// Beyond this, a body is refused rather than decompressed: a corrupt or
/// hostile length cannot make the reader allocate without bound.
pub const SNAPSHOT_LIMIT: u64 = 4 << 30;
pub const CHANGES_LIMIT: u64 = 64 << 20;

/// What an image holds; the byte after the magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Snapshot = 1,
    Changes = 2,
}

impl Kind {
    fn name(byte: u8) -> String {
        match byte {
            1 => "snapshot".into(),
            2 => "changes".into(),
            other => format!("unknown kind {other}"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::Changes => "changes",
        }
    }

    fn limit(self) -> u64 {
        match self {
            Kind::Snapshot => SNAPSHOT_LIMIT,
            Kind::Changes => CHANGES_LIMIT,
        }
    }
}

fn truncated(len: usize, part: &'static str) -> ImageError {
    ImageError::Truncated { len, part }
}

/// The meta as it travels: a postcard tuple, so `ImageMeta` itself stays
/// free of serde.
type WireMeta = (u64, String, String, u64, u64);

/// Compresses `plain` and frames it as an image of `kind`.
pub fn seal(kind: Kind, meta: Option<&ImageMeta>, plain: &[u8]) -> Result<Vec<u8>, ImageError> {
    if u64::try_from(plain.len()).map_or(true, |len| len > kind.limit()) {
        return Err(ImageError::TooLarge {
            limit: kind.limit(),
        });
    }
    let body = zstd::bulk::Compressor::new(LEVEL)
        .and_then(|mut c| c.compress(plain))
        .map_err(|e| ImageError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(MAGIC);
    out.push(kind as u8);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    if let Some(m) = meta {
        let wire = (
            m.revision,
            m.source.as_str(),
            m.stream.as_str(),
            m.position,
            m.created_at_ms,
        );
        let bytes = postcard::to_stdvec(&wire).map_err(|e| ImageError::Encode(e.to_string()))?;
        let len = u32::try_from(bytes.len()).map_err(|e| ImageError::Encode(e.to_string()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    let body_len = u64::try_from(body.len()).map_err(|e| ImageError::Encode(e.to_string()))?;
    out.extend_from_slice(&body_len.to_le_bytes());
    let mut hash = Xxh3::new();
    hash.update(&out);
    hash.update(&body);
    out.extend_from_slice(&hash.digest().to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// An image's parts, its header checked.
pub struct Opened<'a> {
    pub meta: Option<ImageMeta>,
    /// Every byte before the checksum, which it covers.
    covered: &'a [u8],
    checksum: u64,
    body: &'a [u8],
    kind: Kind,
}

fn take<'a>(
    bytes: &'a [u8],
    at: &mut usize,
    n: usize,
    part: &'static str,
) -> Result<&'a [u8], ImageError> {
    let end = at.checked_add(n).filter(|end| *end <= bytes.len());
    let got = end
        .and_then(|end| bytes.get(*at..end))
        .ok_or_else(|| truncated(bytes.len(), part))?;
    *at += n;
    Ok(got)
}

fn u64_at(bytes: &[u8], at: &mut usize, part: &'static str) -> Result<u64, ImageError> {
    let raw = take(bytes, at, 8, part)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(raw);
    Ok(u64::from_le_bytes(word))
}

/// Reads the header up to the body length: magic, version (before the
/// kind, as another version may number kinds otherwise), kind, and for a
/// snapshot the meta's bytes, not yet parsed.
fn open_header(bytes: &[u8], kind: Kind) -> Result<(Option<&[u8]>, usize), ImageError> {
    if !bytes.starts_with(MAGIC) {
        // A cut inside the magic is still a cut image.
        return Err(if MAGIC.starts_with(bytes) {
            truncated(bytes.len(), "magic")
        } else {
            ImageError::NotAnImage
        });
    }
    let mut at = MAGIC.len();
    let found = take(bytes, &mut at, 1, "header")?[0];
    let version = take(bytes, &mut at, 2, "header")?;
    let version = u16::from_le_bytes([version[0], version[1]]);
    if version != FORMAT_VERSION {
        return Err(ImageError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if found != kind as u8 {
        return Err(ImageError::WrongKind {
            expected: kind.label(),
            found: Kind::name(found),
        });
    }
    if kind != Kind::Snapshot {
        return Ok((None, at));
    }
    let len = take(bytes, &mut at, 4, "header")?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
    let meta = take(
        bytes,
        &mut at,
        usize::try_from(len).unwrap_or(usize::MAX),
        "meta",
    )?;
    Ok((Some(meta), at))
}

fn parse_meta(bytes: &[u8]) -> Result<ImageMeta, ImageError> {
    let (wire, rest) = postcard::take_from_bytes::<WireMeta>(bytes)
        .map_err(|e| ImageError::Undecodable(format!("meta: {e}")))?;
    if !rest.is_empty() {
        return Err(ImageError::Undecodable(format!(
            "meta: {} bytes after it",
            rest.len()
        )));
    }
    let (revision, source, stream, position, created_at_ms) = wire;
    Ok(ImageMeta {
        revision,
        source,
        stream,
        position,
        created_at_ms,
    })
}

/// The meta alone: no length, checksum or body is looked at.
pub fn peek(bytes: &[u8]) -> Result<ImageMeta, ImageError> {
    match open_header(bytes, Kind::Snapshot)? {
        (Some(meta), _) => parse_meta(meta),
        (None, _) => Err(ImageError::WrongKind {
            expected: "snapshot",
            found: "changes".into(),
        }),
    }
}

/// Checks the whole frame of an image of `kind`; the body is not yet
/// decompressed.
pub fn open(bytes: &[u8], kind: Kind) -> Result<Opened<'_>, ImageError> {
    let (meta_bytes, mut at) = open_header(bytes, kind)?;
    let body_len = u64_at(bytes, &mut at, "header")?;
    let covered = bytes.get(..at).unwrap_or_default();
    let checksum = u64_at(bytes, &mut at, "header")?;
    let body = bytes.get(at..).unwrap_or_default();
    let have = u64::try_from(body.len()).unwrap_or(u64::MAX);
    if have < body_len {
        return Err(truncated(bytes.len(), "body"));
    }
    if have > body_len {
        return Err(ImageError::TrailingBytes(have - body_len));
    }
    let mut opened = Opened {
        meta: None,
        covered,
        checksum,
        body,
        kind,
    };
    opened.verify()?;
    opened.meta = meta_bytes.map(parse_meta).transpose()?;
    Ok(opened)
}

impl Opened<'_> {
    fn verify(&self) -> Result<(), ImageError> {
        let mut hash = Xxh3::new();
        hash.update(self.covered);
        hash.update(self.body);
        let found = hash.digest();
        if found == self.checksum {
            Ok(())
        } else {
            Err(ImageError::ChecksumMismatch {
                expected: self.checksum,
                found,
            })
        }
    }

    /// The decompressed body, refused past the kind's limit: the output
    /// grows as it is produced (never by what the frame claims), and one
    /// byte past the limit stops it.
    pub fn plain(&self) -> Result<Vec<u8>, ImageError> {
        let limit = self.kind.limit();
        // The frame's own size, when it states one, is refused past the
        // limit and sizes the buffer up front; it is only a hint (capped),
        // since the output's bound is `take`'s.
        let claimed = zstd::zstd_safe::get_frame_content_size(self.body)
            .ok()
            .flatten()
            .unwrap_or(0);
        if claimed > limit {
            return Err(ImageError::TooLarge { limit });
        }
        let hint = claimed.min(1 << 30);
        let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        let decoder = zstd::stream::read::Decoder::with_buffer(self.body)
            .map_err(|e| ImageError::Decompress(e.to_string()))?;
        decoder
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| ImageError::Decompress(e.to_string()))?;
        if u64::try_from(out.len()).map_or(true, |len| len > limit) {
            return Err(ImageError::TooLarge { limit });
        }
        Ok(out)
    }
}
