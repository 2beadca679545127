//! QR codes of short URLs, drawn by the `qrcode` crate.
//!
//! [`QrImage::render`] encodes a text (a link's `short_url`) at error
//! correction level M with the standard 4-module quiet zone, and draws it as
//! SVG (`qrcode`'s own renderer) or as a 1-bit PNG (the `qrcode` matrix
//! written by the `png` crate), [`MODULE_PX`] pixels per module.

use qrcode::{Color, EcLevel, QrCode};

use crate::error::AppError;

/// Pixels per module, both formats.
pub const MODULE_PX: u32 = 8;
/// Modules of white border on each side (the standard quiet zone).
pub const QUIET_ZONE: u32 = 4;

/// An image format the QR route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `image/svg+xml` (the default).
    Svg,
    /// `image/png`.
    Png,
}

impl Format {
    /// `svg` or `png`; absent means SVG.
    pub fn parse(raw: Option<&str>) -> Result<Self, AppError> {
        match raw {
            None | Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            Some(_) => Err(AppError::validation(
                "invalid_format",
                "`format` must be `svg` or `png`.",
            )),
        }
    }
}

/// A rendered QR code.
#[derive(Debug, Clone)]
pub struct QrImage {
    /// Its media type.
    pub content_type: &'static str,
    /// The image bytes.
    pub bytes: Vec<u8>,
}

/// The module matrix of `text` (row-major, `true` = dark) and its width.
pub fn matrix(text: &str) -> Result<(Vec<bool>, usize), AppError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("QR encoding failed: {e}")))?;
    let width = code.width();
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect();
    Ok((dark, width))
}

/// Side of the rendered image in pixels for a code `modules` wide.
pub fn image_side(modules: usize) -> u32 {
    (u32::try_from(modules).unwrap_or(u32::MAX) + 2 * QUIET_ZONE) * MODULE_PX
}

impl QrImage {
    /// Encodes `text` and draws it in `format`.
    pub fn render(text: &str, format: Format) -> Result<Self, AppError> {
        match format {
            Format::Svg => {
                let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("QR encoding failed: {e}")))?;
                let svg = code
                    .render::<qrcode::render::svg::Color<'_>>()
                    .quiet_zone(true)
                    .module_dimensions(MODULE_PX, MODULE_PX)
                    .build();
                Ok(Self {
                    content_type: "image/svg+xml",
                    bytes: svg.into_bytes(),
                })
            }
            Format::Png => {
                let (dark, width) = matrix(text)?;
                Ok(Self {
                    content_type: "image/png",
                    bytes: png_bytes(&dark, width)?,
                })
            }
        }
    }
}

/// A grey-scale, 1 bit per pixel PNG of the matrix with its quiet zone.
fn png_bytes(dark: &[bool], modules: usize) -> Result<Vec<u8>, AppError> {
    let side = image_side(modules);
    let quiet = (QUIET_ZONE * MODULE_PX) as usize;
    let px = MODULE_PX as usize;
    let row_bytes = (side as usize).div_ceil(8);
    let mut pixels = vec![0u8; row_bytes * side as usize];
    for y in 0..side as usize {
        for x in 0..side as usize {
            let module = |v: usize| {
                (v >= quiet)
                    .then(|| (v - quiet) / px)
                    .filter(|&m| m < modules)
            };
            let is_dark = match (module(x), module(y)) {
                (Some(mx), Some(my)) => dark[my * modules + mx],
                _ => false,
            };
            // 1-bit grey: 1 is white.
            if !is_dark {
                pixels[y * row_bytes + x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let failed = |e: png::EncodingError| AppError::Internal(anyhow::anyhow!("PNG encoding: {e}"));
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(&pixels).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_unknown_ones_are_refused() {
        assert_eq!(Format::parse(None).unwrap(), Format::Svg);
        assert_eq!(Format::parse(Some("svg")).unwrap(), Format::Svg);
        assert_eq!(Format::parse(Some("png")).unwrap(), Format::Png);
        let err = Format::parse(Some("gif")).unwrap_err();
        assert_eq!(err.status_and_code().1, "invalid_format");
    }

    #[test]
    fn the_svg_is_as_wide_as_the_modules_and_quiet_zone() {
        let (_, modules) = matrix("https://sho.rt/abc").unwrap();
        let svg = QrImage::render("https://sho.rt/abc", Format::Svg).unwrap();
        let text = String::from_utf8(svg.bytes).unwrap();
        let side = image_side(modules);
        assert!(text.contains(&format!(r#"width="{side}" height="{side}""#)));
    }

    #[test]
    fn the_png_has_the_png_signature_and_the_same_side() {
        let (_, modules) = matrix("https://sho.rt/abc").unwrap();
        let png = QrImage::render("https://sho.rt/abc", Format::Png).unwrap();
        assert_eq!(&png.bytes[..8], b"\x89PNG\r\n\x1a\n");
        let side = image_side(modules);
        // IHDR: width and height, big-endian, after the 8-byte signature and
        // the chunk's length and type.
        assert_eq!(&png.bytes[16..20], &side.to_be_bytes());
        assert_eq!(&png.bytes[20..24], &side.to_be_bytes());
    }
}
