//! The CPU work of one photo: sniff, check, decode, orient, resize, encode.
//!
//! Layer: pure computation beside `domain` (no I/O, no async runtime); `services` calls it on
//! its bounded CPU pool. A crate of its own so its heavy code generation (the image codecs and
//! resizers it instantiates) builds beside the repository instead of after it.
//!
//! Synchronous on purpose: callers run it on the shared, bounded CPU pool, never on an async
//! worker. The rules, in order:
//! - The format is sniffed from the bytes (JPEG, PNG, WebP); the name and the declared content
//!   type are not trusted.
//! - The dimensions are read from the header before any pixel is decoded: more than
//!   [`PhotoLimits::max_pixels`] or a side over [`PhotoLimits::max_side`] is refused, and the
//!   decoder's own allocation limit stops a file whose header lies (a decompression bomb).
//! - EXIF orientation is applied to the pixels; the outputs are re-encoded from pixels alone, so
//!   no metadata block (EXIF with GPS, XMP, ICC comments) survives into them.
//! - Display: long side min(2048, original's); thumbnail: long side min(320, display's), made
//!   from the display image. Aspect kept, short side rounded to the nearest pixel, never
//!   upscaled. Lanczos3 by `fast_image_resize` (FACTS.md: ~30 ms against ~430 ms for `image`'s).
//! - Opaque images become JPEG, quality 82, 4:2:0 (`jpeg-encoder`: 4:2:0 and ~2.5× faster than
//!   `image`'s encoder, which writes 4:4:4); images with transparency stay PNG.

#![forbid(unsafe_code)]

mod pixels;

pub use pixels::decode_cost;

use std::io::Cursor;

use bytes::Bytes;
use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, MulDiv, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};
use stride_domain::ImageFormat;

/// Bumped whenever the outputs would change (size, quality, encoder): `stride photos reprocess`
/// re-makes every photo made by another version.
pub const PROCESSING_VERSION: u32 = 1;
pub const DISPLAY_LONG_SIDE: u32 = 2048;
pub const THUMB_LONG_SIDE: u32 = 320;
const JPEG_QUALITY: u8 = 82;

/// What a single upload may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoLimits {
    pub max_pixels: u64,
    pub max_side: u32,
}

impl Default for PhotoLimits {
    fn default() -> Self {
        Self { max_pixels: 50_000_000, max_side: 12_000 }
    }
}

/// The format the bytes start with, if one we accept.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::Webp)
    } else {
        None
    }
}

fn decoder_format(format: ImageFormat) -> image::ImageFormat {
    match format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Webp => image::ImageFormat::WebP,
    }
}

/// Why a file cannot become a photo; each maps to a status naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    /// Not JPEG, PNG or WebP (415).
    #[error("not a JPEG, PNG or WebP image")]
    Unsupported,
    /// Past the pixel or side limit (422).
    #[error("{width}×{height} is too large (at most {max_pixels} pixels and {max_side} px a side)")]
    TooLarge { width: u32, height: u32, max_pixels: u64, max_side: u32 },
    /// Truncated, corrupt, or lying about its size (422).
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),
}

/// One encoded output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Bytes,
    pub width: u32,
    pub height: u32,
    pub format: ImageFormat,
}

/// The outputs of one photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The original's format, as sniffed.
    pub format: ImageFormat,
    /// The original's size once its EXIF orientation is applied.
    pub width: u32,
    pub height: u32,
    pub display: Encoded,
    pub thumb: Encoded,
}

/// The size that fits `(width, height)` within `long_side`, aspect kept, never larger.
pub fn fit(width: u32, height: u32, long_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= long_side {
        return (width, height);
    }
    let scale = f64::from(long_side) / f64::from(long);
    let scaled = |side: u32| if side == long { long_side } else { ((f64::from(side) * scale).round() as u32).max(1) };
    (scaled(width), scaled(height))
}

/// Reads the dimensions from the header and refuses what is past `limits`, decoding nothing.
pub fn check_dimensions(bytes: &[u8], limits: PhotoLimits) -> Result<(ImageFormat, u32, u32), PhotoError> {
    let format = sniff(bytes).ok_or(PhotoError::Unsupported)?;
    let decoder = decoder(bytes, format)?;
    let (width, height) = decoder.dimensions();
    within(width, height, limits)?;
    Ok((format, width, height))
}

fn within(width: u32, height: u32, limits: PhotoLimits) -> Result<(), PhotoError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels || width.max(height) > limits.max_side {
        return Err(PhotoError::TooLarge { width, height, max_pixels: limits.max_pixels, max_side: limits.max_side });
    }
    if width == 0 || height == 0 {
        return Err(PhotoError::Corrupt("an image without pixels".into()));
    }
    Ok(())
}

fn decoder(bytes: &[u8], format: ImageFormat) -> Result<impl ImageDecoder + '_, PhotoError> {
    ImageReader::with_format(Cursor::new(bytes), decoder_format(format))
        .into_decoder()
        .map_err(|e| PhotoError::Corrupt(e.to_string()))
}

/// Whether a JPEG holds its end-of-image marker after its first scan. The decoder fills a
/// truncated scan with grey instead of failing, so a half-uploaded photo would be stored as a
/// half-grey one. Entropy-coded data never contains `FF D9` (a data `FF` is stuffed as `FF 00`),
/// and an embedded EXIF thumbnail's EOI lies before the first scan, so this cannot be fooled by
/// either.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return false;
        }
        let marker = bytes[at + 1];
        if marker == 0xFF {
            at += 1;
            continue;
        }
        if marker == 0xDA {
            return bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]);
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        at += 2 + length;
    }
    false
}

/// Checks, decodes and orients one file and makes its display version.
pub fn display(bytes: &[u8], limits: PhotoLimits) -> Result<Displayed, PhotoError> {
    let format = sniff(bytes).ok_or(PhotoError::Unsupported)?;
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(PhotoError::Corrupt("the JPEG is truncated (no end-of-image marker)".into()));
    }
    let (pixels, orientation) = decode(bytes, format, limits)?;
    // The orientation is applied to the display-sized pixels, after the resize: rotating a
    // 12 MP buffer costs more than the resize itself, rotating the 3 MP result a quarter of it.
    let swaps = matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    );
    let (width, height) = if swaps { (pixels.height(), pixels.width()) } else { (pixels.width(), pixels.height()) };
    let (display_width, display_height) = fit(width, height, DISPLAY_LONG_SIDE);
    let unrotated = if swaps { (display_height, display_width) } else { (display_width, display_height) };

    let transparent = pixels.color().has_alpha() && has_transparent_pixel(&pixels);
    let mut display_pixels = resize_image(pixels, unrotated, transparent)?;
    display_pixels.apply_orientation(orientation);
    let display = encode(&display_pixels, transparent)?;
    Ok(Displayed { format, width, height, transparent, display, display_pixels })
}

/// The pixels (8-bit for PNG, see `pixels`) and the orientation, the header's size checked first.
fn decode(bytes: &[u8], format: ImageFormat, limits: PhotoLimits) -> Result<(DynamicImage, Orientation), PhotoError> {
    let mut decoder = decoder(bytes, format)?;
    let (width, height) = decoder.dimensions();
    within(width, height, limits)?;
    // The header said the size is fine; these limits make the decoder itself stop if the data
    // asks for more than that size needs (4 bytes a pixel, twice, for the decoder's buffers).
    let max_alloc = u64::from(width) * u64::from(height) * 8 + (1 << 20);
    if format == ImageFormat::Png {
        return pixels::decode_png(bytes, max_alloc);
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    decoder_limits.max_alloc = Some(max_alloc);
    decoder.set_limits(decoder_limits).map_err(|e| PhotoError::Corrupt(e.to_string()))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let pixels = DynamicImage::from_decoder(decoder).map_err(|e| PhotoError::Corrupt(e.to_string()))?;
    Ok((pixels, orientation))
}

/// The first half of [`process`]: decoded, oriented, and the display version made. Its pixels
/// are kept for the thumbnail, which re-processing runs as a stage of its own.
pub struct Displayed {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    transparent: bool,
    pub display: Encoded,
    display_pixels: DynamicImage,
}

/// Turns one uploaded file into its display and thumbnail versions.
pub fn process(bytes: &[u8], limits: PhotoLimits) -> Result<Processed, PhotoError> {
    thumbnail(display(bytes, limits)?)
}

/// The second half of [`process`]: the thumbnail, made from the display version's pixels.
pub fn thumbnail(displayed: Displayed) -> Result<Processed, PhotoError> {
    let Displayed { format, width, height, transparent, display, display_pixels } = displayed;
    let size = fit(display_pixels.width(), display_pixels.height(), THUMB_LONG_SIDE);
    let thumb = encode(&resize_image(display_pixels, size, transparent)?, transparent)?;
    Ok(Processed { format, width, height, display, thumb })
}

/// An alpha channel that is 255 everywhere is no transparency: such images become JPEG.
fn has_transparent_pixel(image: &DynamicImage) -> bool {
    // Read in place for the 8-bit layouts the decoders give (no full-size copy); other layouts
    // are converted once.
    match image {
        DynamicImage::ImageRgba8(rgba) => rgba.pixels().any(|pixel| pixel.0[3] < 255),
        DynamicImage::ImageLumaA8(grey) => grey.pixels().any(|pixel| pixel.0[1] < 255),
        other => other.to_rgba8().pixels().any(|pixel| pixel.0[3] < 255),
    }
}

/// `source` resized to `(width, height)`, as RGBA if transparent, else RGB. Takes the image by
/// value: a decoded RGB image is resized from its own buffer, not from a 36 MB copy.
fn resize_image(
    source: DynamicImage,
    (width, height): (u32, u32),
    transparent: bool,
) -> Result<DynamicImage, PhotoError> {
    let (from_width, from_height) = (source.width(), source.height());
    // Opaque RGBA is resized as it is and only the display-sized result made RGB: dropping the
    // alpha first would copy the full-size buffer.
    if !transparent && matches!(source, DynamicImage::ImageRgba8(_)) {
        let pixels =
            resize(source.into_rgba8().into_raw(), (from_width, from_height), (width, height), PixelType::U8x4)?;
        let resized = image::RgbaImage::from_raw(width, height, pixels).ok_or_else(buffer_mismatch)?;
        return Ok(DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(resized).into_rgb8()));
    }
    Ok(if transparent {
        let pixels =
            resize(source.into_rgba8().into_raw(), (from_width, from_height), (width, height), PixelType::U8x4)?;
        DynamicImage::ImageRgba8(image::RgbaImage::from_raw(width, height, pixels).ok_or_else(buffer_mismatch)?)
    } else {
        let pixels =
            resize(source.into_rgb8().into_raw(), (from_width, from_height), (width, height), PixelType::U8x3)?;
        DynamicImage::ImageRgb8(image::RgbImage::from_raw(width, height, pixels).ok_or_else(buffer_mismatch)?)
    })
}

/// JPEG, or PNG when there is transparency.
fn encode(image: &DynamicImage, transparent: bool) -> Result<Encoded, PhotoError> {
    let (bytes, format) =
        if transparent { (encode_png(image)?, ImageFormat::Png) } else { (encode_jpeg(image)?, ImageFormat::Jpeg) };
    Ok(Encoded { bytes: Bytes::from(bytes), width: image.width(), height: image.height(), format })
}

fn buffer_mismatch() -> PhotoError {
    PhotoError::Corrupt("resized buffer does not match its size".into())
}

/// Lanczos3 from `pixels` (which it may change: it is consumed). With an alpha channel the
/// colours are premultiplied in place, resized, and divided back in the small result: the
/// resizer's own premultiplication would copy the whole source first (a 7000 × 7000 RGBA
/// photo: 196 MB more). For an opaque image both steps change nothing and cost a pass each.
fn resize(
    pixels: Vec<u8>,
    (width, height): (u32, u32),
    (to_width, to_height): (u32, u32),
    pixel_type: PixelType,
) -> Result<Vec<u8>, PhotoError> {
    if (width, height) == (to_width, to_height) {
        return Ok(pixels);
    }
    let failed = |e: &dyn std::fmt::Display| PhotoError::Corrupt(e.to_string());
    let mut source = Image::from_vec_u8(width, height, pixels, pixel_type).map_err(|e| failed(&e))?;
    let alpha = pixel_type == PixelType::U8x4;
    let mul_div = MulDiv::default();
    if alpha {
        mul_div.multiply_alpha_inplace(&mut source).map_err(|e| failed(&e))?;
    }
    let mut target = Image::new(to_width, to_height, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)).use_alpha(false);
    Resizer::new().resize(&source, &mut target, &options).map_err(|e| failed(&e))?;
    drop(source);
    if alpha {
        mul_div.divide_alpha_inplace(&mut target).map_err(|e| failed(&e))?;
    }
    Ok(target.into_vec())
}

fn encode_jpeg(image: &DynamicImage) -> Result<Vec<u8>, PhotoError> {
    let converted;
    let rgb = match image.as_rgb8() {
        Some(rgb) => rgb,
        None => {
            converted = image.to_rgb8();
            &converted
        }
    };
    let (width, height) = (u16::try_from(rgb.width()), u16::try_from(rgb.height()));
    let (Ok(width), Ok(height)) = (width, height) else {
        return Err(PhotoError::Corrupt("too wide for JPEG".into()));
    };
    let ycbcr = ycbcr_with_averaged_chroma(rgb.as_raw(), rgb.width() as usize, rgb.height() as usize);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder
        .encode(&ycbcr, width, height, jpeg_encoder::ColorType::Ycbcr)
        .map_err(|e| PhotoError::Corrupt(e.to_string()))?;
    Ok(out)
}

/// JFIF YCbCr whose chroma holds, in every aligned 2×2 block, the block's mean.
///
/// jpeg-encoder subsamples 4:2:0 by keeping each block's top-left chroma sample (decimation),
/// which aliases fine colour detail: 1.7 dB of PSNR below libvips on the photo bench. Averaging
/// first makes its decimation a box filter, as libjpeg's downsampler is.
fn ycbcr_with_averaged_chroma(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    // libjpeg's fixed-point JFIF conversion (jccolor.c), 16 fractional bits. Chroma is linear
    // in RGB, so the block's mean chroma is the chroma of its mean colour: one conversion a
    // block instead of four, then one average.
    const HALF: i32 = 1 << 15;
    let luma =
        |p: &[u8]| ((19_595 * i32::from(p[0]) + 38_470 * i32::from(p[1]) + 7_471 * i32::from(p[2]) + HALF) >> 16) as u8;
    let mut out = vec![0_u8; rgb.len()];
    for y in (0..height).step_by(2) {
        let rows = if y + 1 < height { 2 } else { 1 };
        for x in (0..width).step_by(2) {
            let cols = if x + 1 < width { 2 } else { 1 };
            let (mut r, mut g, mut b) = (0_i32, 0_i32, 0_i32);
            for dy in 0..rows {
                for dx in 0..cols {
                    let at = ((y + dy) * width + x + dx) * 3;
                    let pixel = &rgb[at..at + 3];
                    r += i32::from(pixel[0]);
                    g += i32::from(pixel[1]);
                    b += i32::from(pixel[2]);
                    out[at] = luma(pixel);
                }
            }
            // Sums of `n` pixels: scale the coefficients' rounding and offset by `n`.
            let n = (rows * cols) as i32;
            let cb = ((-11_059 * r - 21_709 * g + 32_768 * b) / n + (128 << 16) + HALF - 1) >> 16;
            let cr = ((32_768 * r - 27_439 * g - 5_329 * b) / n + (128 << 16) + HALF - 1) >> 16;
            let (cb, cr) = (cb.clamp(0, 255) as u8, cr.clamp(0, 255) as u8);
            for dy in 0..rows {
                for dx in 0..cols {
                    let at = ((y + dy) * width + x + dx) * 3;
                    out[at + 1] = cb;
                    out[at + 2] = cr;
                }
            }
        }
    }
    out
}

fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, PhotoError> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).map_err(|e| PhotoError::Corrupt(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG of `width`×`height` whose left half is red and right half blue, optionally with
    /// an EXIF block (orientation `orientation`, plus a GPS tag) spliced in after SOI.
    fn jpeg(width: u32, height: u32, orientation: Option<u16>) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, _| {
            if x < width / 2 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) }
        });
        let mut plain = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image).write_to(&mut plain, image::ImageFormat::Jpeg).unwrap();
        let plain = plain.into_inner();
        match orientation {
            None => plain,
            Some(orientation) => {
                let mut with_exif = plain[..2].to_vec();
                with_exif.extend(exif_segment(orientation));
                with_exif.extend(&plain[2..]);
                with_exif
            }
        }
    }

    /// An APP1 EXIF segment: IFD0 with Orientation and a GPS IFD pointer; the GPS IFD holds a
    /// GPSLatitudeRef ("N"), enough for a reader to find location data.
    fn exif_segment(orientation: u16) -> Vec<u8> {
        let mut tiff = Vec::new();
        tiff.extend(b"MM\x00\x2a\x00\x00\x00\x08"); // big-endian TIFF header, IFD0 at 8
        tiff.extend(2u16.to_be_bytes()); // two entries
        tiff.extend([0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]); // Orientation, SHORT, 1
        tiff.extend(orientation.to_be_bytes());
        tiff.extend([0, 0]);
        tiff.extend([0x88, 0x25, 0x00, 0x04, 0, 0, 0, 1]); // GPS IFD pointer, LONG, 1
        tiff.extend(38u32.to_be_bytes()); // GPS IFD at 8 + 2 + 24 + 4
        tiff.extend(0u32.to_be_bytes()); // no next IFD
        tiff.extend(1u16.to_be_bytes()); // GPS IFD: one entry
        tiff.extend([0x00, 0x01, 0x00, 0x02, 0, 0, 0, 2, b'N', 0, 0, 0]); // GPSLatitudeRef "N"
        tiff.extend(0u32.to_be_bytes());
        let mut segment = vec![0xFF, 0xE1];
        segment.extend(((tiff.len() + 8) as u16).to_be_bytes());
        segment.extend(b"Exif\x00\x00");
        segment.extend(tiff);
        segment
    }

    fn has_metadata(bytes: &[u8]) -> bool {
        bytes.windows(6).any(|w| w == b"Exif\x00\x00") || bytes.windows(4).any(|w| w == b"http")
    }

    #[test]
    fn sizes_fit_the_long_side_round_the_short_one_and_never_grow() {
        assert_eq!(fit(4000, 3000, 2048), (2048, 1536));
        assert_eq!(fit(3000, 4000, 2048), (1536, 2048));
        assert_eq!(fit(2048, 1536, 320), (320, 240));
        assert_eq!(fit(1000, 333, 320), (320, 107), "106.56 rounds to 107");
        assert_eq!(fit(800, 600, 2048), (800, 600), "never upscaled");
        assert_eq!(fit(20_000, 1, 320), (320, 1), "a side never rounds to zero");
    }

    #[test]
    fn the_format_comes_from_the_bytes() {
        assert_eq!(sniff(&jpeg(4, 4, None)), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
        assert_eq!(sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 "), Some(ImageFormat::Webp));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(process(b"%PDF-1.7", PhotoLimits::default()), Err(PhotoError::Unsupported));
    }

    #[test]
    fn orientation_is_applied_and_no_metadata_survives() {
        let original = jpeg(400, 300, Some(6));
        assert!(has_metadata(&original), "the test input carries EXIF");
        let processed = process(&original, PhotoLimits::default()).unwrap();
        assert_eq!((processed.width, processed.height), (300, 400), "orientation 6 turns it a quarter");
        assert_eq!((processed.display.width, processed.display.height), (300, 400));
        assert_eq!((processed.thumb.width, processed.thumb.height), (240, 320));
        for output in [&processed.display, &processed.thumb] {
            assert_eq!(output.format, ImageFormat::Jpeg);
            assert!(!has_metadata(&output.bytes), "no EXIF or XMP in the outputs");
            let decoded = image::load_from_memory(&output.bytes).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (output.width, output.height));
        }
        // Rotated clockwise: the red left half is now the top.
        let display = image::load_from_memory(&processed.display.bytes).unwrap().to_rgb8();
        let (top, bottom) = (display.get_pixel(150, 20).0, display.get_pixel(150, 380).0);
        assert!(top[0] > 200 && top[2] < 60, "red on top, got {top:?}");
        assert!(bottom[2] > 200 && bottom[0] < 60, "blue at the bottom, got {bottom:?}");
    }

    #[test]
    fn a_large_photo_gets_a_2048_display_and_a_320_thumbnail() {
        let processed = process(&jpeg(3000, 2000, None), PhotoLimits::default()).unwrap();
        assert_eq!((processed.display.width, processed.display.height), (2048, 1365));
        assert_eq!((processed.thumb.width, processed.thumb.height), (320, 213));
    }

    #[test]
    fn transparency_stays_png_and_opaque_alpha_becomes_jpeg() {
        let mut png = Cursor::new(Vec::new());
        let translucent =
            image::RgbaImage::from_fn(64, 32, |x, _| image::Rgba([0, 128, 255, if x < 32 { 0 } else { 255 }]));
        DynamicImage::ImageRgba8(translucent).write_to(&mut png, image::ImageFormat::Png).unwrap();
        let processed = process(png.get_ref(), PhotoLimits::default()).unwrap();
        assert_eq!(processed.display.format, ImageFormat::Png);

        let mut png = Cursor::new(Vec::new());
        let opaque = image::RgbaImage::from_pixel(64, 32, image::Rgba([0, 128, 255, 255]));
        DynamicImage::ImageRgba8(opaque).write_to(&mut png, image::ImageFormat::Png).unwrap();
        assert_eq!(process(png.get_ref(), PhotoLimits::default()).unwrap().display.format, ImageFormat::Jpeg);
    }

    #[test]
    fn oversized_headers_are_refused_before_decoding() {
        let limits = PhotoLimits { max_pixels: 10_000, max_side: 200 };
        let wide = jpeg(300, 10, None);
        assert!(matches!(check_dimensions(&wide, limits), Err(PhotoError::TooLarge { width: 300, height: 10, .. })));
        assert!(matches!(process(&jpeg(150, 150, None), limits), Err(PhotoError::TooLarge { .. })), "22,500 pixels");
        // A PNG header claiming 100,000 × 100,000 with almost no data: refused from the header.
        let mut bomb = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        bomb.extend(100_000u32.to_be_bytes());
        bomb.extend(100_000u32.to_be_bytes());
        bomb.extend([8, 2, 0, 0, 0]);
        let crc = crc32(&bomb[12..]);
        bomb.extend(crc.to_be_bytes());
        // An empty IDAT chunk, so the header reads as complete.
        bomb.extend(0u32.to_be_bytes());
        bomb.extend(b"IDAT");
        bomb.extend(crc32(b"IDAT").to_be_bytes());
        let refused = process(&bomb, PhotoLimits::default());
        assert!(matches!(refused, Err(PhotoError::TooLarge { .. })), "{refused:?}");
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors_not_panics() {
        let whole = jpeg(64, 48, Some(3));
        for cut in [3, 20, whole.len() / 2, whole.len() - 2] {
            let result = std::panic::catch_unwind(|| process(&whole[..cut], PhotoLimits::default()));
            assert!(matches!(result, Ok(Err(PhotoError::Corrupt(_))) | Ok(Ok(_))), "cut at {cut}: {result:?}");
        }
        let mut flipped = whole.clone();
        for i in (200..flipped.len()).step_by(7) {
            flipped[i] ^= 0x5A;
        }
        assert!(std::panic::catch_unwind(|| process(&flipped, PhotoLimits::default())).is_ok());
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFF_u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
