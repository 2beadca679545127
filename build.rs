//! Gzips the files the component serves verbatim (the console under
//! `console/`, and `openapi.json`) into `OUT_DIR`, so that the component
//! carries them compressed (~125 KB of text as ~35 KB): `src/gzipped.rs`
//! serves them as they are to clients that accept gzip and inflates them for
//! the others.
//!
//! It also passes the target triple on as `SHORTENER_BUILD_TARGET`, so that
//! `tests/classifier_corpus.rs` asks `cargo metadata` about this platform's
//! packages only: those are all a build has downloaded.

use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);
    gzip_tree(root, Path::new("console"), out);
    gzip(root, Path::new("openapi.json"), out);
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    println!("cargo:rustc-env=SHORTENER_BUILD_TARGET={target}");
}

/// Gzips every file under `root/dir` to `out/dir/<path>.gz`.
fn gzip_tree(root: &Path, dir: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", root.join(dir).display());
    let mut entries: Vec<_> = fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let relative = dir.join(path.file_name().expect("an entry has a name"));
        if path.is_dir() {
            gzip_tree(root, &relative, out);
        } else {
            gzip(root, &relative, out);
        }
    }
}

/// Gzips `root/file` to `out/<file>.gz` (best compression, no name or time
/// in the header: the same input always gives the same bytes).
fn gzip(root: &Path, file: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", root.join(file).display());
    let bytes =
        fs::read(root.join(file)).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&bytes).expect("writing to memory");
    let gz = encoder.finish().expect("writing to memory");
    let target = out.join(file).with_added_extension("gz");
    fs::create_dir_all(target.parent().expect("under OUT_DIR"))
        .expect("creating OUT_DIR's folders");
    fs::write(&target, gz).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}
