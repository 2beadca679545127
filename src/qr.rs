//! QR codes of short URLs, drawn by the `qrcode` crate.
//!
//! [`svg`] encodes a text (a link's `short_url`) at error correction level M
//! with the standard 4-module quiet zone and draws it with `qrcode`'s own SVG
//! renderer, [`MODULE_PX`] units per module. There is no PNG on the server:
//! encoding one would add the `png` crate and a deflate implementation
//! (about 90 KB of component, measured); the console rasterises the SVG in
//! the browser instead.

use qrcode::types::QrError;
use qrcode::{Color, EcLevel, QrCode};

/// SVG units (pixels at 100 %) per module.
pub const MODULE_PX: u32 = 8;
/// Modules of white border on each side (the standard quiet zone).
pub const QUIET_ZONE: u32 = 4;
/// The media type of [`svg`]'s output.
pub const SVG_TYPE: &str = "image/svg+xml";

fn encode(text: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
}

/// The module matrix of `text` (row-major, `true` = dark) and its width in
/// modules, as [`svg`] draws it.
pub fn matrix(text: &str) -> Result<(Vec<bool>, usize), QrError> {
    let code = encode(text)?;
    let width = code.width();
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == Color::Dark)
        .collect();
    Ok((dark, width))
}

/// Side of the drawn image for a code `modules` wide, quiet zone included.
pub fn image_side(modules: usize) -> u32 {
    (u32::try_from(modules).unwrap_or(u32::MAX) + 2 * QUIET_ZONE) * MODULE_PX
}

/// The QR code of `text` as an SVG document.
/// Fails only for a text too long for any QR code (about 2,300 bytes).
pub fn svg(text: &str) -> Result<String, QrError> {
    Ok(encode(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(MODULE_PX, MODULE_PX)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_is_as_wide_as_the_modules_and_quiet_zone() {
        let (_, modules) = matrix("https://sho.rt/abc").unwrap();
        let text = svg("https://sho.rt/abc").unwrap();
        let side = image_side(modules);
        assert!(text.contains(&format!(r#"width="{side}" height="{side}""#)));
    }

    #[test]
    fn a_longer_text_needs_a_larger_code() {
        let (_, short) = matrix("https://sho.rt/abc").unwrap();
        let (_, long) = matrix(&format!("https://sho.rt/{}", "x".repeat(64))).unwrap();
        assert!(long > short, "{long} > {short}");
    }
}
