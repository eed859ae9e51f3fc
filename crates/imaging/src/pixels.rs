//! Decoding within a known memory cost: what a file's pixels will occupy at their peak,
//! computed from its header before any of them is allocated, and a PNG decoder that never holds
//! more than that.
//!
//! The cost is what the caller reserves from its decode budget (`services`), so the process's
//! peak is bounded by the budget whatever the number of cores or requests. It counts the
//! decoded buffer, the one full-size conversion the format may need, and the display-sized
//! buffers after it; the compressed input is the caller's own.
//!
//! A PNG is decoded by the `png` crate with its 8-bit normalisation (`EXPAND | STRIP_16`): a
//! 16-bit image is converted row by row as it is inflated, so a 7000 × 7000 16-bit RGBA file
//! takes 196 MB of RGBA8, never the 392 MB of its 16-bit pixels plus a converted copy.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{ColorType, DynamicImage, ImageDecoder};
use stride_domain::ImageFormat;

use crate::{DISPLAY_LONG_SIDE, PhotoError, PhotoLimits, decoder, fit, sniff, within};

/// What the resize to the display size holds besides the source: its first pass's output (the
/// display width by the source height, or the other way round) and the display image with the
/// encoder's buffers (three display-sized RGBA buffers at most).
fn resize_cost(width: u32, height: u32) -> u64 {
    let (display_width, display_height) = fit(width, height, DISPLAY_LONG_SIDE);
    let (w, h, dw, dh) = (u64::from(width), u64::from(height), u64::from(display_width), u64::from(display_height));
    (dw * h).max(w * dh) * 4 + dw * dh * 4 * 3
}

/// The most memory decoding and processing `bytes` will hold at once, from the header alone.
pub fn decode_cost(bytes: &[u8], limits: PhotoLimits) -> Result<u64, PhotoError> {
    let format = sniff(bytes).ok_or(PhotoError::Unsupported)?;
    let (width, height, color) = match format {
        ImageFormat::Png => {
            let reader = png_reader(bytes, u64::MAX)?;
            let (width, height) = reader.info().size();
            let color = match reader.output_color_type().0 {
                png::ColorType::Rgb => ColorType::Rgb8,
                png::ColorType::Rgba => ColorType::Rgba8,
                png::ColorType::GrayscaleAlpha => ColorType::La8,
                png::ColorType::Grayscale | png::ColorType::Indexed => ColorType::L8,
            };
            (width, height, color)
        }
        ImageFormat::Jpeg | ImageFormat::Webp => {
            let decoder = decoder(bytes, format)?;
            let (width, height) = decoder.dimensions();
            (width, height, decoder.color_type())
        }
    };
    within(width, height, limits)?;
    let pixels = u64::from(width) * u64::from(height);
    // RGB and RGBA (8-bit) are resized from their own buffer; anything else is converted to
    // RGB or RGBA once, at full size, first.
    let converted = if resized_in_place(color) { 0 } else { pixels * 4 };
    Ok(pixels * u64::from(color.bytes_per_pixel()) + converted + resize_cost(width, height))
}

fn png_reader(bytes: &[u8], max_alloc: u64) -> Result<png::Reader<Cursor<&[u8]>>, PhotoError> {
    let limits = png::Limits { bytes: usize::try_from(max_alloc).unwrap_or(usize::MAX) };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.read_info().map_err(|e| PhotoError::Corrupt(e.to_string()))
}

/// A PNG's first frame as 8-bit pixels, and its EXIF orientation. `max_alloc` stops a file
/// whose data asks for more than its header's size needs.
pub(crate) fn decode_png(bytes: &[u8], max_alloc: u64) -> Result<(DynamicImage, Orientation), PhotoError> {
    let mut reader = png_reader(bytes, max_alloc)?;
    let orientation = reader
        .info()
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let size = reader.output_buffer_size().ok_or_else(|| PhotoError::Corrupt("too large to hold".into()))?;
    if size as u64 > max_alloc {
        return Err(PhotoError::Corrupt("the image asks for more memory than its size needs".into()));
    }
    let mut pixels = vec![0; size];
    let frame = reader.next_frame(&mut pixels).map_err(|e| PhotoError::Corrupt(e.to_string()))?;
    pixels.truncate(frame.buffer_size());
    let (width, height) = (frame.width, frame.height);
    let mismatch = || PhotoError::Corrupt("decoded pixels do not match the size".into());
    let image = match frame.color_type {
        png::ColorType::Rgba => {
            DynamicImage::ImageRgba8(image::RgbaImage::from_raw(width, height, pixels).ok_or_else(mismatch)?)
        }
        png::ColorType::Rgb => {
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(width, height, pixels).ok_or_else(mismatch)?)
        }
        png::ColorType::GrayscaleAlpha => {
            DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_raw(width, height, pixels).ok_or_else(mismatch)?)
        }
        png::ColorType::Grayscale => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(width, height, pixels).ok_or_else(mismatch)?)
        }
        png::ColorType::Indexed => return Err(PhotoError::Corrupt("a palette left unexpanded".into())),
    };
    Ok((image, orientation))
}

/// Whether a decoded colour type is resized from its own buffer (no full-size conversion).
pub(crate) fn resized_in_place(color: ColorType) -> bool {
    matches!(color, ColorType::Rgb8 | ColorType::Rgba8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, color: png::ColorType, depth: png::BitDepth) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        let mut writer = encoder.write_header().unwrap();
        let samples = color.samples() * if depth == png::BitDepth::Sixteen { 2 } else { 1 };
        let data: Vec<u8> = (0..width as usize * height as usize * samples).map(|i| (i % 251) as u8).collect();
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn a_sixteen_bit_png_costs_its_eight_bit_pixels_and_decodes_to_them() {
        let rgba16 = png(300, 200, png::ColorType::Rgba, png::BitDepth::Sixteen);
        let cost = decode_cost(&rgba16, PhotoLimits::default()).unwrap();
        assert_eq!(cost, 300 * 200 * 4 + 300 * 200 * 4 * 4, "RGBA8, not 16-bit and not a copy");
        let (image, orientation) = decode_png(&rgba16, cost).unwrap();
        assert_eq!((image.color(), image.width(), image.height()), (ColorType::Rgba8, 300, 200));
        assert_eq!(orientation, Orientation::NoTransforms);
        // Each 16-bit sample became its high byte.
        let first = image.as_rgba8().unwrap().get_pixel(0, 0).0;
        assert_eq!(first, [0, 2, 4, 6]);
    }

    #[test]
    fn grey_images_cost_their_conversion_too_and_a_lying_file_is_stopped_at_its_cost() {
        let grey = png(100, 100, png::ColorType::Grayscale, png::BitDepth::Eight);
        assert_eq!(decode_cost(&grey, PhotoLimits::default()).unwrap(), 100 * 100 * (1 + 4) + 100 * 100 * 4 * 4);
        let rgb = png(100, 100, png::ColorType::Rgb, png::BitDepth::Eight);
        let (image, _) = decode_png(&rgb, 100 * 100 * 3).unwrap();
        assert_eq!(image.color(), ColorType::Rgb8);
        assert!(matches!(decode_png(&rgb, 100 * 100 * 3 - 1), Err(PhotoError::Corrupt(_))));
    }

    #[test]
    fn the_resize_costs_its_first_pass_at_the_source_height_and_the_display_buffers() {
        let (dw, dh) = (2048u64, 2048u64);
        assert_eq!(resize_cost(7000, 7000), dw * 7000 * 4 + dw * dh * 12);
        assert_eq!(resize_cost(8000, 2000), 8000 * 512 * 4 + dw * 512 * 12, "the larger of the two passes");
    }

    #[test]
    fn only_eight_bit_rgb_and_rgba_are_resized_in_place() {
        assert!(resized_in_place(ColorType::Rgb8) && resized_in_place(ColorType::Rgba8));
        assert!(!resized_in_place(ColorType::L8) && !resized_in_place(ColorType::Rgba16));
    }
}
