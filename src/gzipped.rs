//! Files the component serves verbatim (the console, `openapi.json`),
//! compiled in gzipped: `build.rs` compresses them into `OUT_DIR`, which
//! keeps ~90 KB out of the component. A client that accepts gzip (every
//! browser) gets the stored bytes with `Content-Encoding: gzip`; any other
//! gets them inflated, byte for byte the file in the repository. Both carry
//! `Vary: Accept-Encoding`, so a cache keeps the two apart.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// A stored file that does not inflate (a build defect, never input).
#[derive(Debug, thiserror::Error)]
#[error("a compiled-in file does not inflate: {0}")]
pub struct GzipError(String);

/// A file gzipped at build time.
#[derive(Debug, Clone, Copy)]
pub struct Gzipped {
    /// The gzip member, as `build.rs` wrote it.
    pub gz: &'static [u8],
}

/// The file at `$path` (relative to the crate root), gzipped by `build.rs`.
macro_rules! gzipped {
    ($path:expr) => {
        $crate::gzipped::Gzipped {
            gz: include_bytes!(concat!(env!("OUT_DIR"), "/", $path, ".gz")),
        }
    };
}
pub(crate) use gzipped;

/// The fixed gzip header `build.rs` writes (RFC 1952: deflate, no flags,
/// no time), and the trailer's length (CRC-32 and size).
const HEADER: [u8; 4] = [0x1f, 0x8b, 8, 0];
const HEADER_LEN: usize = 10;
const TRAILER_LEN: usize = 8;

impl Gzipped {
    /// The file's bytes: the member's deflate stream, inflated.
    ///
    /// By hand over miniz_oxide rather than through flate2's `GzDecoder`,
    /// which would add ~50 KB to the component (its reader stack and a
    /// CRC-32 table) to read headers and check sums of files we wrote at
    /// build time; the tests compare every inflated file with its source.
    pub fn bytes(&self) -> Result<Vec<u8>, GzipError> {
        let deflate = self
            .gz
            .strip_prefix(&HEADER)
            .filter(|_| self.gz.len() >= HEADER_LEN + TRAILER_LEN)
            .map(|_| &self.gz[HEADER_LEN..self.gz.len() - TRAILER_LEN])
            .ok_or(GzipError("not the gzip member build.rs writes".into()))?;
        miniz_oxide::inflate::decompress_to_vec(deflate).map_err(|e| GzipError(e.to_string()))
    }

    /// A 200 with the file as `content_type`: gzipped when the request's
    /// `Accept-Encoding` allows it, else inflated.
    pub fn respond(
        &self,
        request: &HeaderMap,
        content_type: &'static str,
    ) -> Result<Response, AppError> {
        let vary = (header::VARY, HeaderValue::from_static("accept-encoding"));
        let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if accepts_gzip(request) {
            let encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return Ok(([content_type, vary, encoding], self.gz).into_response());
        }
        let bytes = self
            .bytes()
            .map_err(|e| AppError::internal(anyhow::Error::new(e)))?;
        Ok(([content_type, vary], bytes).into_response())
    }
}

/// Whether `Accept-Encoding` names `gzip` (or `x-gzip`, or `*`) with a
/// non-zero quality (RFC 9110 §12.5.3). An explicit `gzip;q=0` wins over `*`.
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    let mut star = false;
    for value in request.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let allowed = parts.all(|p| {
                let p = p.trim();
                let Some(q) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) else {
                    return true;
                };
                q.trim().parse::<f32>().is_ok_and(|q| q > 0.0)
            });
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                return allowed;
            }
            if coding == "*" {
                star = allowed;
            }
        }
    }
    star
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn gzip_is_accepted_when_named_or_starred_with_a_non_zero_quality() {
        for accepted in [
            &["gzip"][..],
            &["gzip, deflate, br"],
            &["br;q=1.0, GZIP;q=0.5"],
            &["x-gzip"],
            &["*"],
            &["deflate", "gzip"],
        ] {
            assert!(accepts_gzip(&headers(accepted)), "{accepted:?}");
        }
    }

    #[test]
    fn gzip_is_refused_when_absent_or_of_quality_zero() {
        for refused in [
            &[][..],
            &["identity"],
            &["br, deflate"],
            &["gzip;q=0"],
            &["gzip; q=0.000, *"],
            &["*;q=0"],
            &["gzip;q=nonsense"],
        ] {
            assert!(!accepts_gzip(&headers(refused)), "{refused:?}");
        }
    }

    #[test]
    fn the_stored_file_inflates_to_the_repository_file() {
        let file = gzipped!("openapi.json");
        let on_disk = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap();
        assert_eq!(file.bytes().unwrap(), on_disk);
        assert!(
            file.gz.len() < on_disk.len() / 3,
            "{} of {}",
            file.gz.len(),
            on_disk.len()
        );
    }
}
