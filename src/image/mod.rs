//! Versioned, compact binary images of a snapshot (shipped through an
//! object store) and of a batch of changes (shipped as stream messages).
//!
//! A snapshot image holds the snapshot's dataset (`Snapshot::to_dataset`)
//! and what it says about itself ([`ImageMeta`], readable without the
//! body); decoding builds the snapshot again, so every check the build
//! makes holds for what an image brings in. A changes image holds the
//! [`Change`]s of a batch, in order. Bodies are postcard (serde, varints,
//! no field names) compressed by zstd; `frame.rs` holds the byte layout
//! around them. Nothing here trusts its input: arbitrary bytes give an
//! [`ImageError`], never a panic or an unbounded allocation.

mod frame;

pub use frame::{CHANGES_LIMIT, FORMAT_VERSION, SNAPSHOT_LIMIT};

use frame::Kind;

use crate::model::Dataset;
use crate::snapshot::{Change, Snapshot, SnapshotError};

/// What an image says about itself, readable without decoding the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMeta {
    /// The data revision the image holds.
    pub revision: u64,
    /// The identity of the source of truth the data came from (a database), e.g. "postgres://host:5432/db".
    pub source: String,
    /// The JetStream stream the image belongs to, "" when none.
    pub stream: String,
    /// The stream sequence of the last message the image includes; 0 when none.
    pub position: u64,
    /// When the image was made, Unix milliseconds.
    pub created_at_ms: u64,
}

/// Why bytes are not the image asked for, or an image cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("not a ticket-authz image (bad magic)")]
    NotAnImage,
    #[error("wrong image kind: {found}, expected {expected}")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error("image format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("truncated image: its {len} bytes end inside its {part}")]
    Truncated { len: usize, part: &'static str },
    #[error("{0} bytes after the image's body")]
    TrailingBytes(u64),
    #[error(
        "checksum mismatch (stored {expected:#018x}, computed {found:#018x}): the image is corrupt"
    )]
    ChecksumMismatch { expected: u64, found: u64 },
    #[error("image body beyond the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("image body cannot be decompressed: {0}")]
    Decompress(String),
    #[error("image body cannot be decoded: {0}")]
    Undecodable(String),
    #[error("image data out of order: {what} `{id}` does not follow the one before it")]
    Unordered { what: &'static str, id: String },
    #[error("image data is invalid: {0}")]
    Invalid(#[from] SnapshotError),
    #[error("cannot encode the image: {0}")]
    Encode(String),
}

/// The wall clock in Unix milliseconds, for [`ImageMeta::created_at_ms`].
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The image of a snapshot: its dataset, and `meta` in the header.
pub fn encode_snapshot(meta: &ImageMeta, snapshot: &Snapshot) -> Result<Vec<u8>, ImageError> {
    let plain = postcard::to_stdvec(&snapshot.to_dataset())
        .map_err(|e| ImageError::Encode(e.to_string()))?;
    frame::seal(Kind::Snapshot, Some(meta), &plain)
}

/// Checks magic, format version and the checksum, decodes, validates by `Snapshot::build`, sets the revision (`set_revision`) to meta.revision and keeps `now`.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(ImageMeta, Snapshot), ImageError> {
    let opened = frame::open(bytes, Kind::Snapshot)?;
    let Some(meta) = opened.meta.clone() else {
        return Err(ImageError::Undecodable(
            "a snapshot image without meta".into(),
        ));
    };
    let data: Dataset = decode_body(&opened.plain()?)?;
    check_order(&data)?;
    let mut snapshot = Snapshot::build(&data)?;
    snapshot.set_revision(meta.revision);
    Ok((meta, snapshot))
}

/// The header alone (magic, version, meta), without decompressing the body.
pub fn peek_meta(bytes: &[u8]) -> Result<ImageMeta, ImageError> {
    frame::peek(bytes)
}

/// The image of a batch of changes, in order.
pub fn encode_changes(changes: &[Change]) -> Result<Vec<u8>, ImageError> {
    let plain = postcard::to_stdvec(changes).map_err(|e| ImageError::Encode(e.to_string()))?;
    frame::seal(Kind::Changes, None, &plain)
}

/// The batch of a changes image, after the same checks as a snapshot's.
pub fn decode_changes(bytes: &[u8]) -> Result<Vec<Change>, ImageError> {
    let opened = frame::open(bytes, Kind::Changes)?;
    decode_body(&opened.plain()?)
}

/// A whole body as one value: bytes left over are as wrong as bytes
/// missing.
fn decode_body<T: serde::de::DeserializeOwned>(plain: &[u8]) -> Result<T, ImageError> {
    let (value, rest) =
        postcard::take_from_bytes(plain).map_err(|e| ImageError::Undecodable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ImageError::Undecodable(format!(
            "{} bytes after the value",
            rest.len()
        )));
    }
    Ok(value)
}

/// Every list of entities is in strictly increasing id order, as the
/// export writes it. The build takes ids to be unique (the dataset
/// validator's guarantee, which an image skips), so this is what keeps a
/// repeated id out of a table; it costs one comparison per row.
fn check_order(data: &Dataset) -> Result<(), ImageError> {
    fn ordered<T>(what: &'static str, rows: &[T], id: fn(&T) -> &str) -> Result<(), ImageError> {
        for pair in rows.windows(2) {
            if let [a, b] = pair
                && id(a) >= id(b)
            {
                return Err(ImageError::Unordered {
                    what,
                    id: id(b).to_owned(),
                });
            }
        }
        Ok(())
    }
    let s = &data.sections;
    ordered("organisation", &data.organisations, |o| &o.id)?;
    ordered("company", &data.companies, |c| &c.id)?;
    ordered("group", &data.groups, |g| &g.id)?;
    ordered("profile", &data.profiles, |p| &p.id)?;
    ordered("user", &data.users, |u| &u.id)?;
    for pair in data.partnerships.windows(2) {
        if let [a, b] = pair
            && (&a.partner, &a.client) >= (&b.partner, &b.client)
        {
            return Err(ImageError::Unordered {
                what: "partnership",
                id: format!("{} → {}", b.partner, b.client),
            });
        }
    }
    ordered("ticket", &data.tickets, |t| &t.id)?;
    ordered("project", &s.projects, |p| &p.id)?;
    ordered("task", &s.tasks, |t| &t.id)?;
    ordered("wiki page", &s.wiki_pages, |w| &w.id)?;
    ordered("inventory item", &s.inventory_items, |i| &i.id)?;
    ordered("invoice", &s.invoices, |i| &i.id)?;
    ordered("lead", &s.leads, |l| &l.id)?;
    ordered("agenda event", &s.agenda_events, |e| &e.id)?;
    ordered("download category", &s.download_categories, |c| &c.id)?;
    ordered("download", &s.downloads, |d| &d.id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    use super::*;
    use crate::flags::Flag;
    use crate::generate::{Spec, add_sections, generate};
    use crate::model::{
        Company, Group, MemberRole, OrgAccess, Status, Ticket, UserAccess, UserKind,
    };
    use crate::snapshot::{
        OrgFields, Role, SectionEntity, SectionLink, SectionRow, TicketFields, UserFields,
    };
    use crate::time::Timestamp;

    fn meta() -> ImageMeta {
        ImageMeta {
            revision: 4_711,
            source: "postgres://db.internal:5432/desk".into(),
            stream: "AUTHZ_CHANGES".into(),
            position: 98_765,
            created_at_ms: 1_767_225_600_123,
        }
    }

    fn dataset() -> Dataset {
        let spec = Spec::scaled(2_000);
        let mut data = generate(&spec);
        add_sections(&mut data, 1_000, spec.seed);
        data
    }

    fn snapshot_image() -> (Snapshot, Vec<u8>) {
        let snap = Snapshot::build(&dataset()).unwrap();
        let bytes = encode_snapshot(&meta(), &snap).unwrap();
        (snap, bytes)
    }

    /// Where the body starts: after the header, the meta, the length and
    /// the checksum.
    fn body_start(bytes: &[u8]) -> usize {
        let meta = postcard::to_stdvec(&(
            meta().revision,
            meta().source,
            meta().stream,
            meta().position,
            meta().created_at_ms,
        ))
        .unwrap();
        let start = 8 + 4 + meta.len() + 16;
        assert!(start < bytes.len());
        start
    }

    /// Frames `body` (already compressed) as `frame::seal` does, with a
    /// correct checksum: what a writer with a bug, or a hostile one, could
    /// publish.
    fn framed(kind: Kind, body: &[u8]) -> Vec<u8> {
        let mut out = b"TAIMG".to_vec();
        out.push(kind as u8);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        if kind == Kind::Snapshot {
            let m = meta();
            let wire = (m.revision, m.source, m.stream, m.position, m.created_at_ms);
            let meta = postcard::to_stdvec(&wire).unwrap();
            out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
            out.extend_from_slice(&meta);
        }
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        let mut hash = xxhash_rust::xxh3::Xxh3::new();
        hash.update(&out);
        hash.update(body);
        out.extend_from_slice(&hash.digest().to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    fn framed_dataset(data: &Dataset) -> Vec<u8> {
        let plain = postcard::to_stdvec(data).unwrap();
        framed(Kind::Snapshot, &zstd::bulk::compress(&plain, 3).unwrap())
    }

    #[test]
    fn a_snapshot_comes_back_with_its_meta_revision_and_clock() {
        let (snap, bytes) = snapshot_image();
        let (got_meta, got) = decode_snapshot(&bytes).unwrap();
        assert_eq!(got_meta, meta());
        assert_eq!(got.revision(), meta().revision);
        assert_eq!(got.fixed_now(), snap.fixed_now());
        assert!(got.fixed_now().is_some());
        assert_eq!(got.stats(), snap.stats());
        assert!(got.to_dataset() == snap.to_dataset());
        assert!(!got.to_dataset().sections.tasks.is_empty());
        // The same data gives the same bytes.
        assert_eq!(encode_snapshot(&meta(), &got).unwrap(), bytes);
    }

    #[test]
    fn a_changed_snapshot_comes_back_as_changed() {
        let data = dataset();
        let mut snap = Snapshot::build(&data).unwrap();
        let gone = data.tickets[3].id.clone();
        snap.apply_all(&[Change::DeleteTicket { id: gone.clone() }], 9)
            .unwrap();
        let bytes = encode_snapshot(&meta(), &snap).unwrap();
        let (_, got) = decode_snapshot(&bytes).unwrap();
        let exported = got.to_dataset();
        assert!(exported == snap.to_dataset());
        assert!(exported.tickets.iter().all(|t| t.id != gone));
    }

    #[test]
    fn peek_reads_the_meta_alone() {
        let (_, bytes) = snapshot_image();
        assert_eq!(peek_meta(&bytes).unwrap(), meta());
        // The body is not looked at: a corrupt one still peeks.
        let mut corrupt = bytes.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0x40;
        assert_eq!(peek_meta(&corrupt).unwrap(), meta());
        assert!(matches!(
            peek_meta(&bytes[..body_start(&bytes) - 17]),
            Err(ImageError::Truncated { part: "meta", .. })
        ));
        let changes = encode_changes(&[]).unwrap();
        assert!(matches!(
            peek_meta(&changes),
            Err(ImageError::WrongKind {
                expected: "snapshot",
                ..
            })
        ));
    }

    /// Which variant a change is; exhaustive, so a new variant must be
    /// added to the round trip below.
    fn variant(change: &Change) -> usize {
        match change {
            Change::UpsertTicket(_) => 0,
            Change::DeleteTicket { .. } => 1,
            Change::TicketPerson { .. } => 2,
            Change::UpsertUser(_) => 3,
            Change::DeleteUser { .. } => 4,
            Change::Membership { .. } => 5,
            Change::Grant { .. } => 6,
            Change::AccessManager { .. } => 7,
            Change::Domain { .. } => 8,
            Change::Partnership { .. } => 9,
            Change::ProfileFlag { .. } => 10,
            Change::TicketPeople { .. } => 11,
            Change::Grants { .. } => 12,
            Change::ProfileFlags { .. } => 13,
            Change::UpsertOrg(_) => 14,
            Change::UpsertGroup(_) => 15,
            Change::UpsertProfile { .. } => 16,
            Change::UpsertCompany(_) => 17,
            Change::UpsertSection(_) => 18,
            Change::DeleteSection { .. } => 19,
            Change::SectionLink { .. } => 20,
        }
    }

    fn every_change() -> Vec<Change> {
        let at = Timestamp::from_nanos(1_767_225_600_123_456_789);
        let ticket = Ticket {
            id: "T1".into(),
            created_at: at,
            requester: "ann".into(),
            organisation: Some("acme".into()),
            group: None,
            assignee: Some("bob".into()),
            ccs: Vec::new(),
            participants: Vec::new(),
            status: Status::OnHold,
        };
        let mut changes = vec![
            Change::UpsertTicket(TicketFields::from(&ticket)),
            Change::DeleteTicket { id: "T2".into() },
            Change::TicketPerson {
                ticket: "T1".into(),
                user: "cat".into(),
                role: Role::Participant,
                present: true,
            },
            Change::UpsertUser(UserFields {
                id: "ann".into(),
                email: Some("ann@acme.example".into()),
                name: None,
                created_at: Timestamp::from_nanos(-5),
                kind: UserKind::Superadmin,
                suspended: true,
                ticket_access: UserAccess::Organisation,
                default_organisation: Some("acme".into()),
                company: None,
                company_scoped: true,
            }),
            Change::DeleteUser { id: "dan".into() },
            Change::Membership {
                user: "ann".into(),
                organisation: "acme".into(),
                present: false,
            },
            Change::Grant {
                user: "bob".into(),
                profile: "lead".into(),
                group: None,
                present: true,
            },
            Change::AccessManager {
                organisation: "acme".into(),
                user: "ann".into(),
                present: true,
            },
            Change::Domain {
                organisation: "acme".into(),
                domain: "acme.example".into(),
                added_at: at,
                present: true,
            },
            Change::Partnership {
                partner: "pro".into(),
                client: "acme".into(),
                since: at,
                present: false,
            },
            Change::ProfileFlag {
                profile: "lead".into(),
                flag: Flag::CM,
                present: true,
            },
            Change::TicketPeople {
                ticket: "T1".into(),
                role: Role::Cc,
                users: vec!["bob".into(), "cat".into()],
            },
            Change::Grants {
                user: "bob".into(),
                grants: vec![("lead".into(), None), ("reader".into(), Some("g1".into()))],
            },
            Change::ProfileFlags {
                profile: "lead".into(),
                flags: vec![Flag::IR, Flag::UM],
            },
            Change::UpsertOrg(OrgFields {
                id: "acme".into(),
                name: "ACME".into(),
                access: OrgAccess::CommentAll,
            }),
            Change::UpsertGroup(Group {
                id: "g1".into(),
                name: "First line".into(),
                parent: Some("g0".into()),
                propagate: true,
                open_ticket_limit: 5,
                enforce_open_limit: true,
                total_ticket_limit: 50,
            }),
            Change::UpsertProfile {
                id: "lead".into(),
                name: "Lead".into(),
            },
            Change::UpsertCompany(Company {
                id: "co".into(),
                name: "Company".into(),
                parent: None,
                owner: Some("ann".into()),
            }),
            Change::DeleteSection {
                entity: SectionEntity::DownloadCategory,
                id: "cat-1".into(),
            },
        ];
        changes.extend(
            [
                SectionRow::Project {
                    id: "p".into(),
                    name: "P".into(),
                    owner: None,
                },
                SectionRow::Task {
                    id: "t".into(),
                    name: "T".into(),
                    project: "p".into(),
                    parent: Some("t0".into()),
                },
                SectionRow::WikiPage {
                    id: "w".into(),
                    name: "W".into(),
                },
                SectionRow::InventoryItem {
                    id: "i".into(),
                    name: "I".into(),
                    owner: Some("ann".into()),
                    public: true,
                },
                SectionRow::Invoice {
                    id: "v".into(),
                    company: "co".into(),
                },
                SectionRow::Lead {
                    id: "l".into(),
                    name: "L".into(),
                    company: None,
                    owner: Some("bob".into()),
                },
                SectionRow::AgendaEvent {
                    id: "e".into(),
                    name: "E".into(),
                    owner: None,
                    public: false,
                },
                SectionRow::DownloadCategory {
                    id: "c".into(),
                    name: "C".into(),
                },
                SectionRow::Download {
                    id: "d".into(),
                    name: "D".into(),
                    category: "c".into(),
                },
            ]
            .map(Change::UpsertSection),
        );
        changes.extend(
            [
                SectionLink::ProjectMember {
                    project: "p".into(),
                    user: "ann".into(),
                    role: MemberRole::Manager,
                },
                SectionLink::TaskMember {
                    task: "t".into(),
                    user: "bob".into(),
                    role: MemberRole::Member,
                },
                SectionLink::WikiGroup {
                    page: "w".into(),
                    group: "g1".into(),
                    write: true,
                },
                SectionLink::ItemCompany {
                    item: "i".into(),
                    company: "co".into(),
                },
                SectionLink::ItemUser {
                    item: "i".into(),
                    user: "cat".into(),
                },
                SectionLink::EventGroup {
                    event: "e".into(),
                    group: "g1".into(),
                },
                SectionLink::CategoryGroup {
                    category: "c".into(),
                    group: "g1".into(),
                },
            ]
            .into_iter()
            .enumerate()
            .map(|(i, link)| Change::SectionLink {
                link,
                present: i % 2 == 0,
            }),
        );
        changes
    }

    #[test]
    fn a_batch_of_every_change_comes_back_in_order() {
        let changes = every_change();
        let mut seen: Vec<usize> = changes.iter().map(variant).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..21).collect::<Vec<_>>());
        let bytes = encode_changes(&changes).unwrap();
        assert_eq!(decode_changes(&bytes).unwrap(), changes);
        assert_eq!(decode_changes(&encode_changes(&[]).unwrap()).unwrap(), []);
    }

    #[test]
    fn cut_images_are_truncated() {
        let (_, bytes) = snapshot_image();
        let start = body_start(&bytes);
        for cut in [
            0,
            1,
            4,
            5,
            6,
            7,
            8,
            12,
            start - 9,
            start - 1,
            start,
            start + 1,
        ] {
            let got = decode_snapshot(&bytes[..cut]);
            assert!(
                matches!(got, Err(ImageError::Truncated { .. })),
                "cut at {cut}: {got:?}"
            );
        }
        for cut in [bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(
                decode_snapshot(&bytes[..cut]),
                Err(ImageError::Truncated { part: "body", .. })
            ));
        }
        let changes = encode_changes(&every_change()).unwrap();
        for cut in [3, 7, 10, 20, changes.len() - 1] {
            assert!(matches!(
                decode_changes(&changes[..cut]),
                Err(ImageError::Truncated { .. })
            ));
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode_snapshot(&longer).err(),
            Some(ImageError::TrailingBytes(1))
        );
    }

    #[test]
    fn a_flipped_byte_is_a_checksum_mismatch() {
        let (_, bytes) = snapshot_image();
        let start = body_start(&bytes);
        // In the body, in the meta, in the stored checksum itself.
        for at in [
            start,
            start + (bytes.len() - start) / 2,
            bytes.len() - 1,
            14,
            start - 3,
        ] {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 0x08;
            let got = decode_snapshot(&corrupt);
            assert!(
                matches!(got, Err(ImageError::ChecksumMismatch { .. })),
                "flip at {at}: {got:?}"
            );
        }
        let mut changes = encode_changes(&every_change()).unwrap();
        let last = changes.len() - 1;
        changes[last] ^= 1;
        assert!(matches!(
            decode_changes(&changes),
            Err(ImageError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn other_versions_kinds_and_garbage_are_refused_by_name() {
        let (_, bytes) = snapshot_image();
        let mut newer = bytes.clone();
        newer[6..8].copy_from_slice(&2u16.to_le_bytes());
        let err = decode_snapshot(&newer).err().unwrap();
        assert_eq!(
            err,
            ImageError::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        );
        assert!(err.to_string().contains("version 2"));
        assert!(err.to_string().contains("version 1"));
        assert_eq!(peek_meta(&newer).err(), Some(err));

        let changes = encode_changes(&every_change()).unwrap();
        assert_eq!(
            decode_snapshot(&changes).err(),
            Some(ImageError::WrongKind {
                expected: "snapshot",
                found: "changes".into()
            })
        );
        assert_eq!(
            decode_changes(&bytes).err(),
            Some(ImageError::WrongKind {
                expected: "changes",
                found: "snapshot".into()
            })
        );
        let mut odd = changes.clone();
        odd[5] = 9;
        assert!(matches!(
            decode_changes(&odd),
            Err(ImageError::WrongKind { found, .. }) if found == "unknown kind 9"
        ));

        for garbage in [&b"hello, world"[..], b"TAIMX\x01\x01\x00", &[0xff; 64]] {
            assert_eq!(decode_snapshot(garbage).err(), Some(ImageError::NotAnImage));
            assert_eq!(decode_changes(garbage).err(), Some(ImageError::NotAnImage));
            assert_eq!(peek_meta(garbage).err(), Some(ImageError::NotAnImage));
        }
    }

    /// A body that decompresses past the limit is refused whether or not
    /// its frame states its size, and the reader stops at the limit.
    #[test]
    fn bodies_past_the_limit_are_refused() {
        let zeros = vec![0u8; usize::try_from(CHANGES_LIMIT).unwrap() + 1];
        let stated = zstd::bulk::compress(&zeros, 1).unwrap();
        let unstated = zstd::stream::encode_all(&zeros[..], 1).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&unstated).unwrap(),
            None
        );
        for body in [stated, unstated] {
            assert_eq!(
                decode_changes(&framed(Kind::Changes, &body)).err(),
                Some(ImageError::TooLarge {
                    limit: CHANGES_LIMIT
                })
            );
        }
        assert!(matches!(
            decode_changes(&framed(Kind::Changes, b"not zstd")),
            Err(ImageError::Decompress(_))
        ));
    }

    #[test]
    fn bodies_that_are_not_their_data_are_refused() {
        // Changes where a dataset is expected, and a value with bytes after it.
        let plain = postcard::to_stdvec(&every_change()).unwrap();
        let body = zstd::bulk::compress(&plain, 3).unwrap();
        assert!(matches!(
            decode_snapshot(&framed(Kind::Snapshot, &body)),
            Err(ImageError::Undecodable(_))
        ));
        let mut longer = postcard::to_stdvec(&Vec::<Change>::new()).unwrap();
        longer.push(0);
        let body = zstd::bulk::compress(&longer, 3).unwrap();
        assert!(matches!(
            decode_changes(&framed(Kind::Changes, &body)),
            Err(ImageError::Undecodable(_))
        ));
        // A flag bit no name stands for.
        let mut flags = postcard::to_stdvec(&vec![Change::ProfileFlags {
            profile: "p".into(),
            flags: vec![Flag::IR],
        }])
        .unwrap();
        let last = flags.len() - 1;
        flags[last] = 60;
        let body = zstd::bulk::compress(&flags, 3).unwrap();
        assert!(matches!(
            decode_changes(&framed(Kind::Changes, &body)),
            Err(ImageError::Undecodable(_))
        ));
    }

    #[test]
    fn data_the_build_refuses_is_invalid() {
        let mut data = Snapshot::build(&dataset()).unwrap().to_dataset();
        data.tickets[0].requester = "nobody-known".into();
        assert!(matches!(
            decode_snapshot(&framed_dataset(&data)),
            Err(ImageError::Invalid(SnapshotError::Dangling { .. }))
        ));
        let mut data = Snapshot::build(&dataset()).unwrap().to_dataset();
        let twin = data.users[4].clone();
        data.users.insert(5, twin.clone());
        assert_eq!(
            decode_snapshot(&framed_dataset(&data)).err(),
            Some(ImageError::Unordered {
                what: "user",
                id: twin.id
            })
        );
    }

    fn small_image() -> Vec<u8> {
        let data = generate(&Spec {
            users: 20,
            organisations: 3,
            companies: 2,
            groups: 3,
            profiles: 2,
            tickets: 30,
            seed: 1,
        });
        encode_snapshot(&meta(), &Snapshot::build(&data).unwrap()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_snapshot(&bytes);
            let _ = decode_changes(&bytes);
            let _ = peek_meta(&bytes);
            let mut prefixed = b"TAIMG\x01\x01\x00".to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = decode_snapshot(&prefixed);
            let _ = peek_meta(&prefixed);
            prefixed[5] = 2;
            let _ = decode_changes(&prefixed);
        }

        /// Arbitrary bodies behind a correct frame and checksum reach the
        /// decompressor, postcard and the build.
        #[test]
        fn arbitrary_bodies_never_panic(plain in proptest::collection::vec(any::<u8>(), 0..512)) {
            let body = zstd::bulk::compress(&plain, 1).unwrap();
            let _ = decode_snapshot(&framed(Kind::Snapshot, &body));
            let _ = decode_changes(&framed(Kind::Changes, &body));
            let _ = decode_snapshot(&framed(Kind::Snapshot, &plain));
        }

        #[test]
        fn edited_images_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in any::<usize>(),
        ) {
            let mut bytes = small_image();
            for (at, byte) in edits {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            let _ = decode_snapshot(&bytes);
            let _ = peek_meta(&bytes);
            let _ = decode_snapshot(&bytes[..cut % bytes.len()]);
        }
    }
}
