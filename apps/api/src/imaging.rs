//! Image metadata and transformations with the `image` crate. Blocking: call from
//! `spawn_blocking`.
//!
//! Decompression bombs: the header's dimensions are read first and checked against
//! [`MAX_PIXELS`] / [`MAX_SIDE`] before any pixel buffer exists, then the decoded size
//! (pixels × bytes per pixel: a 16-bit RGBA image takes 8 bytes a pixel) against
//! [`MAX_DECODED_BYTES`]; the decoder runs under `image::Limits` as a last guard.

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::imageops::FilterType;
use image::{
    AnimationDecoder, ColorType, DynamicImage, ExtendedColorType, Frame, ImageDecoder,
    ImageEncoder, ImageFormat, ImageReader, Limits,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::sniff::FileType;

/// Largest image accepted, in pixels (40 MP: a 7,300 × 5,500 photo; ~160 MB as RGBA).
pub const MAX_PIXELS: u64 = 40_000_000;
/// Largest side accepted, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Ceiling on one decoded image, and on what a decoder may allocate.
pub const MAX_DECODED_BYTES: u64 = 256 * 1024 * 1024;

/// Why an image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageFailure {
    #[error(
        "the image declares {width}×{height} pixels, more than this server decodes \
         ({MAX_PIXELS} pixels, {MAX_SIDE} per side)"
    )]
    TooLarge { width: u32, height: u32 },
    #[error(
        "the image declares {width}×{height} pixels at {bytes_per_pixel} bytes each, which \
         decodes to {} MiB, more than this server decodes ({} MiB)",
        decoded_bytes.div_ceil(1024 * 1024),
        MAX_DECODED_BYTES / (1024 * 1024)
    )]
    TooManyBytes {
        width: u32,
        height: u32,
        bytes_per_pixel: u16,
        decoded_bytes: u64,
    },
    #[error("the image data is corrupt or truncated")]
    Corrupt(#[source] image::ImageError),
    #[error("invalid parameters: {0}")]
    Invalid(String),
    #[error("encoding the {format} result failed")]
    Encode {
        format: &'static str,
        #[source]
        source: image::ImageError,
    },
}

/// A decoded image with what its header said.
pub struct Decoded {
    /// The pixels; smaller than `original` when decoded reduced ([`decode_for_size`]).
    pub image: DynamicImage,
    pub color: ColorType,
    /// The size the file declares.
    pub original: (u32, u32),
}

/// Decode `bytes` (of sniffed type `file_type`) after checking the declared dimensions.
pub fn decode(bytes: &[u8], file_type: FileType) -> Result<Decoded, ImageFailure> {
    let format = image_format(file_type)
        .ok_or_else(|| ImageFailure::Invalid(format!("{} is not an image", file_type.mime())))?;
    // Header only: no pixel buffer is allocated here, so no limits are needed yet and the
    // refusal can say what the file declared.
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(ImageFailure::Corrupt)?;
    check_dimensions(width, height)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    let decoder = reader.into_decoder().map_err(ImageFailure::Corrupt)?;
    let color = decoder.color_type();
    check_decoded_size(width, height, color)?;
    let image = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => ImageFailure::TooLarge { width, height },
        other => ImageFailure::Corrupt(other),
    })?;
    Ok(Decoded {
        image,
        color,
        original: (width, height),
    })
}

/// Decode for an output whose size `output` computes from the original size: a JPEG is decoded already
/// reduced by 1/2, 1/4 or 1/8 when the output is that much smaller (DCT scaling, as libvips
/// does: most of the work of a large JPEG is skipped); anything else decodes whole. The
/// checks on dimensions and decoded size are those of [`decode`], on the full size.
pub fn decode_for_size(
    bytes: &[u8],
    file_type: FileType,
    output: impl Fn((u32, u32)) -> Option<(u32, u32)>,
) -> Result<Decoded, ImageFailure> {
    if file_type == FileType::Jpeg
        && let Some(decoded) = decode_jpeg_reduced(bytes, output)?
    {
        return Ok(decoded);
    }
    decode(bytes, file_type)
}

/// `None` when no reduction applies (or the pixel format is one only [`decode`] handles).
fn decode_jpeg_reduced(
    bytes: &[u8],
    output: impl Fn((u32, u32)) -> Option<(u32, u32)>,
) -> Result<Option<Decoded>, ImageFailure> {
    let corrupt = |error: jpeg_decoder::Error| {
        ImageFailure::Corrupt(image::ImageError::Decoding(
            image::error::DecodingError::new(ImageFormat::Jpeg.into(), error),
        ))
    };
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().map_err(corrupt)?;
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_dimensions(width, height)?;
    let color = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => ColorType::L8,
        jpeg_decoder::PixelFormat::RGB24 => ColorType::Rgb8,
        _ => return Ok(None),
    };
    check_decoded_size(width, height, color)?;
    let Some((min_width, min_height)) = output((width, height)) else {
        return Ok(None);
    };
    let Some(factor) = [8, 4, 2]
        .into_iter()
        .find(|f| width.div_ceil(*f) >= min_width && height.div_ceil(*f) >= min_height)
    else {
        return Ok(None);
    };
    // Sides are at most MAX_SIDE (16384), so they fit in u16.
    let (w, h) = decoder
        .scale(
            width.div_ceil(factor) as u16,
            height.div_ceil(factor) as u16,
        )
        .map_err(corrupt)?;
    decoder.set_max_decoding_buffer_size(MAX_DECODED_BYTES as usize);
    let pixels = decoder.decode().map_err(corrupt)?;
    let (w, h) = (u32::from(w), u32::from(h));
    let image = match color {
        ColorType::L8 => image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        _ => image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
    };
    Ok(image.map(|image| Decoded {
        image,
        color,
        original: (width, height),
    }))
}

/// Refuse dimensions beyond [`MAX_SIDE`] or [`MAX_PIXELS`], before any pixel is decoded.
fn check_dimensions(width: u32, height: u32) -> Result<(), ImageFailure> {
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageFailure::TooLarge { width, height });
    }
    Ok(())
}

/// Refuse an image whose pixel buffer would exceed [`MAX_DECODED_BYTES`], counting the
/// decoder's own sample size (before any pixel is decoded).
fn check_decoded_size(width: u32, height: u32, color: ColorType) -> Result<(), ImageFailure> {
    let bytes_per_pixel = u16::from(color.bytes_per_pixel());
    let decoded_bytes = u64::from(width) * u64::from(height) * u64::from(bytes_per_pixel);
    if decoded_bytes > MAX_DECODED_BYTES {
        return Err(ImageFailure::TooManyBytes {
            width,
            height,
            bytes_per_pixel,
            decoded_bytes,
        });
    }
    Ok(())
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

fn image_format(file_type: FileType) -> Option<ImageFormat> {
    Some(match file_type {
        FileType::Jpeg => ImageFormat::Jpeg,
        FileType::Png => ImageFormat::Png,
        FileType::Gif => ImageFormat::Gif,
        FileType::Webp => ImageFormat::WebP,
        FileType::Bmp => ImageFormat::Bmp,
        FileType::Tiff => ImageFormat::Tiff,
        FileType::Pdf | FileType::Text => return None,
    })
}

/// The original's image metadata (sharp's field names), from a decoded image.
pub fn metadata(bytes: &[u8], file_type: FileType, decoded: &Decoded) -> Value {
    let color = decoded.color;
    let channels = color.channel_count();
    let gray = matches!(
        color,
        ColorType::L8 | ColorType::La8 | ColorType::L16 | ColorType::La16
    );
    let mut value = json!({
        "type": "image",
        "width": decoded.original.0,
        "height": decoded.original.1,
        "format": format_name(file_type),
        "hasAlpha": color.has_alpha(),
        "colorSpace": if gray { "b-w" } else { "srgb" },
        "channels": channels,
        "colorType": color_type_name(color),
        "bitsPerSample": color.bits_per_pixel() / u16::from(channels),
        "fileSize": bytes.len(),
    });
    if let Some(density) = density(bytes, file_type) {
        value["density"] = json!(density);
    }
    value
}

/// The decoder's pixel layout, e.g. `rgba8`, `l16`.
fn color_type_name(color: ColorType) -> &'static str {
    match color {
        ColorType::L8 => "l8",
        ColorType::La8 => "la8",
        ColorType::Rgb8 => "rgb8",
        ColorType::Rgba8 => "rgba8",
        ColorType::L16 => "l16",
        ColorType::La16 => "la16",
        ColorType::Rgb16 => "rgb16",
        ColorType::Rgba16 => "rgba16",
        ColorType::Rgb32F => "rgb32f",
        ColorType::Rgba32F => "rgba32f",
        _ => "other",
    }
}

/// sharp's format names.
fn format_name(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Jpeg => "jpeg",
        FileType::Png => "png",
        FileType::Gif => "gif",
        FileType::Webp => "webp",
        FileType::Bmp => "bmp",
        FileType::Tiff => "tiff",
        FileType::Pdf => "pdf",
        FileType::Text => "text",
    }
}

/// Pixels per inch from a PNG `pHYs` chunk or a JPEG JFIF header, when present.
fn density(bytes: &[u8], file_type: FileType) -> Option<f64> {
    match file_type {
        FileType::Png => png_density(bytes),
        FileType::Jpeg => jfif_density(bytes),
        _ => None,
    }
}

fn png_density(bytes: &[u8]) -> Option<f64> {
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let length = u32::from_be_bytes(bytes[at..at + 4].try_into().ok()?) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = bytes.get(at + 8..at + 8 + length)?;
        match kind {
            b"pHYs" if length == 9 => {
                let x = u32::from_be_bytes(data[0..4].try_into().ok()?);
                // Unit 1 is metres; anything else carries no absolute density.
                return (data[8] == 1 && x > 0).then(|| (f64::from(x) * 0.0254).round());
            }
            b"IDAT" | b"IEND" => return None,
            _ => at += 12 + length,
        }
    }
    None
}

fn jfif_density(bytes: &[u8]) -> Option<f64> {
    // FF D8 FF E0 <len:2> "JFIF\0" <ver:2> <units:1> <x:2> <y:2>
    let app0 = bytes.get(2..20)?;
    if app0[0..2] != [0xFF, 0xE0] || &app0[4..9] != b"JFIF\0" {
        return None;
    }
    let units = app0[11];
    let x = f64::from(u16::from_be_bytes([app0[12], app0[13]]));
    match units {
        1 if x > 0.0 => Some(x),
        2 if x > 0.0 => Some((x * 2.54).round()),
        _ => None,
    }
}

/// An encoded result.
pub struct Output {
    pub bytes: Vec<u8>,
    pub file_type: FileType,
}

/// Encode `image` as `file_type`; `quality` (1–100) applies to JPEG.
pub fn encode(
    image: &DynamicImage,
    file_type: FileType,
    quality: u8,
    best_compression: bool,
) -> Result<Output, ImageFailure> {
    let mut bytes = Vec::new();
    let name = format_name(file_type);
    let wrap = |source| ImageFailure::Encode {
        format: name,
        source,
    };
    match file_type {
        FileType::Jpeg => {
            // JPEG has no alpha: flatten to RGB (or keep grey).
            let encoder = JpegEncoder::new_with_quality(&mut bytes, quality.clamp(1, 100));
            if image.color().channel_count() <= 2 {
                let gray = image.to_luma8();
                encoder
                    .write_image(&gray, gray.width(), gray.height(), ExtendedColorType::L8)
                    .map_err(wrap)?;
            } else {
                let rgb = image.to_rgb8();
                encoder
                    .write_image(&rgb, rgb.width(), rgb.height(), ExtendedColorType::Rgb8)
                    .map_err(wrap)?;
            }
        }
        FileType::Png => {
            let compression = if best_compression {
                CompressionType::Best
            } else {
                CompressionType::Default
            };
            let encoder =
                PngEncoder::new_with_quality(&mut bytes, compression, PngFilter::Adaptive);
            image.write_with_encoder(encoder).map_err(wrap)?;
        }
        FileType::Webp => {
            // The image crate writes lossless WebP only.
            let encoder = WebPEncoder::new_lossless(&mut bytes);
            if image.color().has_alpha() {
                image.to_rgba8().write_with_encoder(encoder).map_err(wrap)?;
            } else {
                image.to_rgb8().write_with_encoder(encoder).map_err(wrap)?;
            }
        }
        FileType::Gif => {
            let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
            encoder
                .encode_frame(Frame::new(image.to_rgba8()))
                .map_err(wrap)?;
        }
        FileType::Bmp | FileType::Tiff => {
            let format = image_format(file_type).unwrap_or(ImageFormat::Png);
            let mut cursor = Cursor::new(&mut bytes);
            image.write_to(&mut cursor, format).map_err(wrap)?;
        }
        FileType::Pdf | FileType::Text => {
            return Err(ImageFailure::Invalid(format!(
                "cannot encode an image as {}",
                file_type.mime()
            )));
        }
    }
    Ok(Output { bytes, file_type })
}

/// Most pixels summed over an animation's frames that `/compress` re-encodes (CPU bound).
const MAX_ANIMATION_PIXELS: u64 = 4 * MAX_PIXELS;

/// Re-encode a GIF frame by frame, keeping the animation (one frame at a time in memory).
pub fn recompress_gif(bytes: &[u8]) -> Result<Output, ImageFailure> {
    let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(ImageFailure::Corrupt)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    check_decoded_size(width, height, ColorType::Rgba8)?;
    let frame_pixels = u64::from(width) * u64::from(height);
    decoder
        .set_limits(limits())
        .map_err(ImageFailure::Corrupt)?;
    let wrap = |source| ImageFailure::Encode {
        format: "gif",
        source,
    };
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        encoder.set_repeat(Repeat::Infinite).map_err(wrap)?;
        let mut total: u64 = 0;
        for frame in decoder.into_frames() {
            let frame = frame.map_err(ImageFailure::Corrupt)?;
            total += frame_pixels;
            if total > MAX_ANIMATION_PIXELS {
                return Err(ImageFailure::TooLarge { width, height });
            }
            encoder.encode_frame(frame).map_err(wrap)?;
        }
    }
    Ok(Output {
        bytes: out,
        file_type: FileType::Gif,
    })
}

/// How `/resize` fits the image into the requested box (sharp's names).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scale to cover the box, then crop the overflow (centred).
    Cover,
    /// Scale to fit inside the box, then pad to the box (transparent/black).
    Contain,
    /// Stretch to the box, ignoring the aspect ratio.
    Fill,
    /// Scale to fit inside the box, keeping the aspect ratio.
    #[default]
    Inside,
    /// Scale so the box fits inside the image, keeping the aspect ratio.
    Outside,
}

/// The size an image of `original` size is resampled to for `/resize` and `/convert`
/// (before `cover` crops or `contain` pads); `None` when nothing is asked. Never enlarges.
pub fn resampled_size(
    original: (u32, u32),
    width: Option<u32>,
    height: Option<u32>,
    fit: Fit,
) -> Option<(u32, u32)> {
    let (w0, h0) = original;
    let (bw, bh) = requested_box(original, width, height)?;
    let sx = f64::from(bw) / f64::from(w0);
    let sy = f64::from(bh) / f64::from(h0);
    let s = match fit {
        Fit::Fill => return Some((bw.min(w0), bh.min(h0))),
        Fit::Inside | Fit::Contain => sx.min(sy).min(1.0),
        Fit::Outside | Fit::Cover => sx.max(sy).min(1.0),
    };
    Some((scaled(w0, s), scaled(h0, s)))
}

/// The box asked for, a missing side following the aspect ratio.
fn requested_box(
    (w0, h0): (u32, u32),
    width: Option<u32>,
    height: Option<u32>,
) -> Option<(u32, u32)> {
    let (bw, bh) = match (width, height) {
        (Some(w), Some(h)) => (w, h),
        (Some(w), None) => (w, scale(h0, w, w0)),
        (None, Some(h)) => (scale(w0, h, h0), h),
        (None, None) => return None,
    };
    Some((bw.max(1), bh.max(1)))
}

/// Resize for `/resize` and `/convert`: never enlarges (an upscale request keeps the
/// original size in that direction). `image` may have been decoded reduced
/// ([`decode_for_size`]); sizes are computed from the `original` size.
pub fn resize(
    image: &DynamicImage,
    original: (u32, u32),
    width: Option<u32>,
    height: Option<u32>,
    fit: Fit,
) -> DynamicImage {
    let Some((tw, th)) = resampled_size(original, width, height, fit) else {
        return image.clone();
    };
    let Some((bw, bh)) = requested_box(original, width, height) else {
        return image.clone();
    };
    let resampled = resample(image, tw, th);
    match fit {
        Fit::Fill | Fit::Inside | Fit::Outside => resampled,
        Fit::Cover => {
            let (cw, ch) = (bw.min(tw), bh.min(th));
            resampled.crop_imm((tw - cw) / 2, (th - ch) / 2, cw, ch)
        }
        Fit::Contain => {
            // The canvas is the box, but never larger than the original.
            let (cw, ch) = (bw.min(original.0).max(tw), bh.min(original.1).max(th));
            let mut canvas = DynamicImage::new_rgba8(cw, ch);
            let x = i64::from((cw - tw) / 2);
            let y = i64::from((ch - th) / 2);
            image::imageops::overlay(&mut canvas, &resampled.to_rgba8(), x, y);
            canvas
        }
    }
}

/// Lanczos3 resampling to exactly `width`×`height`, with SIMD (`fast_image_resize`); the
/// `image` crate's own resampler for the pixel types that crate lacks.
fn resample(image: &DynamicImage, width: u32, height: u32) -> DynamicImage {
    if (image.width(), image.height()) == (width, height) {
        return image.clone();
    }
    let mut out = DynamicImage::new(width, height, image.color());
    let options = fast_image_resize::ResizeOptions::new().resize_alg(
        fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Lanczos3),
    );
    match fast_image_resize::Resizer::new().resize(image, &mut out, &options) {
        Ok(()) => out,
        Err(_) => image.resize_exact(width, height, FilterType::Lanczos3),
    }
}

fn scale(other: u32, target: u32, this: u32) -> u32 {
    ((f64::from(other) * f64::from(target) / f64::from(this)).round() as u32).max(1)
}

fn scaled(side: u32, factor: f64) -> u32 {
    ((f64::from(side) * factor).round() as u32).max(1)
}

/// Check crop parameters against the image: every value a whole number, inside the image.
pub fn check_crop(
    image_width: u32,
    image_height: u32,
    x: u32,
    y: u32,
    width: u32,
    height: u32,
) -> Result<(), String> {
    if width == 0 || height == 0 {
        return Err("width and height must be at least 1".into());
    }
    if u64::from(x) + u64::from(width) > u64::from(image_width)
        || u64::from(y) + u64::from(height) > u64::from(image_height)
    {
        return Err(format!(
            "the area {width}×{height} at ({x}, {y}) does not fit in the {image_width}×{image_height} image"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgb8(width, height);
        encode(&image, FileType::Png, 80, false).unwrap().bytes
    }

    #[test]
    fn refuses_a_bomb_before_decoding() {
        // A valid PNG header claiming 20000×20000, followed by nothing useful.
        let bytes = berth_testkit::fixtures::png_bomb(20_000);
        match decode(&bytes, FileType::Png) {
            Err(ImageFailure::TooLarge { .. }) => {}
            Err(other) => panic!("expected TooLarge, got {other}"),
            Ok(_) => panic!("expected TooLarge, got an image"),
        }
    }

    #[test]
    fn truncated_images_are_corrupt() {
        let bytes = png(64, 64);
        let truncated = &bytes[..bytes.len() / 2];
        assert!(matches!(
            decode(truncated, FileType::Png),
            Err(ImageFailure::Corrupt(_))
        ));
    }

    #[test]
    fn resize_never_enlarges() {
        let image = DynamicImage::new_rgb8(100, 50);
        for fit in [
            Fit::Inside,
            Fit::Outside,
            Fit::Cover,
            Fit::Contain,
            Fit::Fill,
        ] {
            let out = resize(
                &image,
                (image.width(), image.height()),
                Some(400),
                Some(400),
                fit,
            );
            assert!(out.width() <= 100 && out.height() <= 50, "{fit:?}");
        }
        let out = resize(
            &image,
            (image.width(), image.height()),
            Some(50),
            None,
            Fit::Inside,
        );
        assert_eq!((out.width(), out.height()), (50, 25));
        let out = resize(
            &image,
            (image.width(), image.height()),
            Some(20),
            Some(20),
            Fit::Cover,
        );
        assert_eq!((out.width(), out.height()), (20, 20));
        let out = resize(
            &image,
            (image.width(), image.height()),
            Some(20),
            Some(20),
            Fit::Inside,
        );
        assert_eq!((out.width(), out.height()), (20, 10));
        let out = resize(
            &image,
            (image.width(), image.height()),
            Some(20),
            Some(20),
            Fit::Outside,
        );
        assert_eq!((out.width(), out.height()), (40, 20));
        let out = resize(
            &image,
            (image.width(), image.height()),
            Some(20),
            Some(20),
            Fit::Contain,
        );
        assert_eq!((out.width(), out.height()), (20, 20));
        let out = resize(
            &image,
            (image.width(), image.height()),
            Some(20),
            Some(20),
            Fit::Fill,
        );
        assert_eq!((out.width(), out.height()), (20, 20));
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x / 8 % 256) as u8, (y / 8 % 256) as u8, 128])
        }));
        encode(&image, FileType::Jpeg, 80, false).unwrap().bytes
    }

    #[test]
    fn a_large_jpeg_is_decoded_already_reduced_for_a_small_output() {
        let bytes = jpeg(1600, 1200);
        let want = |original| resampled_size(original, Some(200), Some(150), Fit::Inside);
        let decoded = decode_for_size(&bytes, FileType::Jpeg, want).unwrap();
        assert_eq!(decoded.original, (1600, 1200));
        assert_eq!(
            (decoded.image.width(), decoded.image.height()),
            (200, 150),
            "1/8 of the pixels a side"
        );
        let out = resize(
            &decoded.image,
            decoded.original,
            Some(200),
            Some(150),
            Fit::Inside,
        );
        assert_eq!((out.width(), out.height()), (200, 150));
        // Close to resampling the whole image (the gradient's colour at the centre).
        let whole = resize(
            &decode(&bytes, FileType::Jpeg).unwrap().image,
            (1600, 1200),
            Some(200),
            Some(150),
            Fit::Inside,
        );
        let (a, b) = (out.to_rgb8(), whole.to_rgb8());
        for channel in 0..3 {
            let (x, y) = (a[(100, 75)][channel], b[(100, 75)][channel]);
            assert!(x.abs_diff(y) <= 8, "channel {channel}: {x} against {y}");
        }
        // An output as large as the image decodes it whole.
        let decoded = decode_for_size(&bytes, FileType::Jpeg, Some).unwrap();
        assert_eq!(decoded.image.width(), 1600);
    }

    #[test]
    fn reduced_decoding_keeps_the_size_checks() {
        // A JPEG header claiming 20000×20000 is refused before any decoding.
        let mut bytes = jpeg(16, 16);
        let sof = bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline JPEG has SOF0");
        bytes[sof + 5..sof + 7].copy_from_slice(&20_000u16.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&20_000u16.to_be_bytes());
        let result = decode_for_size(&bytes, FileType::Jpeg, |_| Some((10, 10)));
        assert!(matches!(result, Err(ImageFailure::TooLarge { .. })));
    }

    #[test]
    fn crop_bounds() {
        assert!(check_crop(10, 10, 0, 0, 10, 10).is_ok());
        assert!(check_crop(10, 10, 5, 5, 6, 1).is_err());
        assert!(check_crop(10, 10, 0, 0, 0, 1).is_err());
    }

    #[test]
    fn density_from_png_phys() {
        let mut bytes = png(2, 2);
        // Insert a pHYs chunk (72 dpi = 2835 px/m) right after IHDR.
        let mut chunk = Vec::new();
        chunk.extend_from_slice(&9u32.to_be_bytes());
        chunk.extend_from_slice(b"pHYs");
        chunk.extend_from_slice(&2835u32.to_be_bytes());
        chunk.extend_from_slice(&2835u32.to_be_bytes());
        chunk.push(1);
        chunk.extend_from_slice(&[0, 0, 0, 0]); // CRC is not checked by this reader
        bytes.splice(33..33, chunk);
        assert_eq!(png_density(&bytes), Some(72.0));
    }
}
