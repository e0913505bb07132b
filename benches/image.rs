//! Snapshot images (src/image): encode and decode (decode includes
//! `Snapshot::build`) of the generated 100k-ticket dataset under
//! criterion, and the encoded size per ticket at 100k and 1M tickets
//! (`Spec::scaled`, as `benches/core.rs`), with one timed encode and
//! decode at 1M. `IMAGE_SURVEY=1` also prints the body's size and
//! compression time at other zstd levels, with and without long-distance
//! matching, at 1M tickets: the figures the level in `src/image/frame.rs`
//! was chosen by.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use ticket_authz::generate::{Spec, generate};
use ticket_authz::image::{self, ImageMeta};
use ticket_authz::snapshot::Snapshot;

fn meta(revision: u64) -> ImageMeta {
    ImageMeta {
        revision,
        source: "postgres://bench:5432/desk".into(),
        stream: "AUTHZ".into(),
        position: revision,
        created_at_ms: 1_767_225_600_000,
    }
}

fn snapshot(tickets: usize) -> Snapshot {
    Snapshot::build(&generate(&Spec::scaled(tickets))).unwrap()
}

/// Prints the image's size per ticket, and one encode and decode timed.
fn report(label: &str, snap: &Snapshot) -> Vec<u8> {
    let started = Instant::now();
    let bytes = image::encode_snapshot(&meta(1), snap).unwrap();
    let encode = started.elapsed();
    let started = Instant::now();
    let (_, back) = image::decode_snapshot(&bytes).unwrap();
    let decode = started.elapsed();
    assert_eq!(back.stats(), snap.stats());
    let tickets = snap.stats().tickets;
    eprintln!(
        "image {label}: {} bytes, {:.2} bytes per ticket ({tickets} tickets); \
         one encode {encode:.2?}, one decode {decode:.2?}",
        bytes.len(),
        bytes.len() as f64 / tickets as f64,
    );
    bytes
}

/// The body at other zstd settings: size per ticket and compression time.
fn survey(snap: &Snapshot) {
    let plain = postcard::to_stdvec(&snap.to_dataset()).unwrap();
    let tickets = snap.stats().tickets as f64;
    eprintln!(
        "survey: postcard body {} bytes, {:.2} per ticket uncompressed",
        plain.len(),
        plain.len() as f64 / tickets
    );
    for level in [1, 3, 6, 9, 12, 19] {
        for long in [false, true] {
            let mut c = zstd::bulk::Compressor::new(level).unwrap();
            if long {
                c.long_distance_matching(true).unwrap();
                c.window_log(27).unwrap();
            }
            let started = Instant::now();
            let body = c.compress(&plain).unwrap();
            let took = started.elapsed();
            let started = Instant::now();
            let mut d = zstd::bulk::Decompressor::new().unwrap();
            d.window_log_max(27).unwrap();
            let back = d.decompress(&body, plain.len()).unwrap();
            let unpack = started.elapsed();
            assert_eq!(back.len(), plain.len());
            eprintln!(
                "survey: level {level:2} long {long:5}: {:.2} bytes per ticket, \
                 compress {took:.2?}, decompress {unpack:.2?}",
                body.len() as f64 / tickets
            );
        }
    }
}

fn benches(c: &mut Criterion) {
    let small = snapshot(100_000);
    let bytes = report("100k", &small);
    {
        let big = snapshot(1_000_000);
        report("1M", &big);
        if std::env::var_os("IMAGE_SURVEY").is_some() {
            survey(&big);
        }
    }

    let mut group = c.benchmark_group("image");
    group.sample_size(10);
    group.bench_function("encode_100k", |b| {
        b.iter(|| black_box(image::encode_snapshot(&meta(1), &small).unwrap()))
    });
    group.bench_function("decode_100k", |b| {
        b.iter(|| black_box(image::decode_snapshot(&bytes).unwrap()))
    });
    group.finish();
}

criterion_group!(image_benches, benches);
criterion_main!(image_benches);
