//! Convert, compress, resize and crop: output bytes, formats and names agree.

use image::ImageFormat;
use serde_json::json;

use crate::common::{Env, decode, encode, error_message, pdf, picture, png};

async fn image_op(
    env: &Env,
    id: &str,
    op: &str,
    body: serde_json::Value,
) -> (u16, String, Vec<u8>) {
    let response = env.post_json(&format!("/api/files/{id}/{op}"), body).await;
    let status = response.status().as_u16();
    let disposition = response
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        disposition,
        response.bytes().await.unwrap().to_vec(),
    )
}

fn id(record: &serde_json::Value) -> String {
    record["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn convert_writes_the_requested_format_under_a_matching_name() {
    let env = Env::start();
    let record = env.upload_ok("photo.png", None, png(60, 40)).await;
    for (format, expected) in [
        ("webp", ImageFormat::WebP),
        ("jpeg", ImageFormat::Jpeg),
        ("png", ImageFormat::Png),
    ] {
        let (status, disposition, bytes) =
            image_op(&env, &id(&record), "convert", json!({"format": format})).await;
        assert_eq!(status, 200, "{format}: {}", String::from_utf8_lossy(&bytes));
        assert!(
            disposition.contains(&format!("filename=\"photo.{format}\"")),
            "{disposition}"
        );
        let (found, image) = decode(&bytes);
        assert_eq!(found, expected);
        assert_eq!((image.width(), image.height()), (60, 40));
    }
    let (status, _, bytes) = image_op(
        &env,
        &id(&record),
        "convert",
        json!({"format": "webp", "width": 30}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, image) = decode(&bytes);
    assert_eq!((image.width(), image.height()), (30, 20));

    let bare = env.upload_ok("README", Some("image/png"), png(5, 5)).await;
    let (status, disposition, _) =
        image_op(&env, &id(&bare), "convert", json!({"format": "jpeg"})).await;
    assert_eq!(status, 200);
    assert!(
        disposition.contains("filename=\"README.jpeg\""),
        "{disposition}"
    );

    let (status, _, body) =
        image_op(&env, &id(&record), "convert", json!({"format": "tiff"})).await;
    assert_eq!(status, 400);
    error_message(&serde_json::from_slice(&body).unwrap());
    assert_eq!(env.count("files"), 2, "operations never store results");
}

#[tokio::test]
async fn compress_keeps_the_format_and_name() {
    let env = Env::start();
    let gif = env
        .upload_ok("anim.gif", None, encode(&picture(32, 32), ImageFormat::Gif))
        .await;
    let (status, disposition, bytes) = image_op(&env, &id(&gif), "compress", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(decode(&bytes).0, ImageFormat::Gif);
    assert!(
        disposition.contains("filename=\"compressed_anim.gif\""),
        "{disposition}"
    );

    // An animation stays an animation.
    let animated = env.upload_ok("three.gif", None, animated_gif(3)).await;
    let (status, _, bytes) = image_op(&env, &id(&animated), "compress", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(gif_frames(&bytes), 3);

    let original = encode(&picture(200, 200), ImageFormat::Jpeg);
    let jpeg = env.upload_ok("p.jpg", None, original.clone()).await;
    let (status, _, bytes) = image_op(&env, &id(&jpeg), "compress", json!({"quality": 20})).await;
    assert_eq!(status, 200);
    assert_eq!(decode(&bytes).0, ImageFormat::Jpeg);
    assert!(bytes.len() < original.len());

    let (status, _, body) = image_op(&env, &id(&jpeg), "compress", json!({"quality": 0})).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn resize_fits_without_enlarging() {
    let env = Env::start();
    let record = env.upload_ok("wide.png", None, png(100, 50)).await;
    let cases = [
        (json!({"width": 50}), (50, 25)),
        (json!({"width": 20, "height": 20}), (20, 10)),
        (json!({"width": 20, "height": 20, "fit": "cover"}), (20, 20)),
        (json!({"width": 20, "height": 20, "fit": "fill"}), (20, 20)),
        (
            json!({"width": 20, "height": 20, "fit": "contain"}),
            (20, 20),
        ),
        (
            json!({"width": 20, "height": 20, "fit": "outside"}),
            (40, 20),
        ),
        (json!({"width": 400, "height": 400}), (100, 50)),
        (json!({"width": 400, "fit": "fill"}), (100, 50)),
    ];
    for (body, (w, h)) in cases {
        let (status, disposition, bytes) =
            image_op(&env, &id(&record), "resize", body.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert!(disposition.contains("filename=\"resized_wide.png\""));
        let (format, image) = decode(&bytes);
        assert_eq!(format, ImageFormat::Png);
        assert_eq!((image.width(), image.height()), (w, h), "{body}");
    }
    for bad in [
        json!({}),
        json!({"width": 0}),
        json!({"width": 10, "fit": "stretch"}),
        json!({"height": "abc"}),
    ] {
        let (status, _, _) = image_op(&env, &id(&record), "resize", bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
    }
}

#[tokio::test]
async fn crop_accepts_the_origin_and_refuses_areas_outside() {
    let env = Env::start();
    let record = env.upload_ok("c.png", None, png(30, 20)).await;
    let (status, disposition, bytes) = image_op(
        &env,
        &id(&record),
        "crop",
        json!({"x": 0, "y": 0, "width": 10, "height": 5}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(disposition.contains("filename=\"cropped_c.png\""));
    let (_, image) = decode(&bytes);
    assert_eq!((image.width(), image.height()), (10, 5));
    // String numbers from HTML forms work too.
    let (status, _, _) = image_op(
        &env,
        &id(&record),
        "crop",
        json!({"x": "20", "y": "10", "width": "10", "height": "10"}),
    )
    .await;
    assert_eq!(status, 200);
    for bad in [
        json!({"x": 25, "y": 0, "width": 10, "height": 5}),
        json!({"x": -1, "y": 0, "width": 10, "height": 5}),
        json!({"x": 0, "y": 0, "width": 0, "height": 5}),
        json!({"x": 0, "y": 0, "width": 10}),
    ] {
        let (status, _, body) = image_op(&env, &id(&record), "crop", bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
        error_message(&serde_json::from_slice(&body).unwrap());
    }
}

#[tokio::test]
async fn image_operations_on_a_pdf_are_400() {
    let env = Env::start();
    let record = env.upload_ok("d.pdf", None, pdf("x")).await;
    for op in ["convert", "compress", "resize", "crop"] {
        let body = json!({"format": "png", "width": 1, "height": 1, "x": 0, "y": 0});
        let (status, _, body) = image_op(&env, &id(&record), op, body).await;
        assert_eq!(status, 400, "{op}");
        assert!(error_message(&serde_json::from_slice(&body).unwrap()).contains("not an image"));
    }
}

fn animated_gif(frames: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        for i in 0..frames {
            let frame = image::RgbaImage::from_fn(16, 16, |x, y| {
                image::Rgba([(x * 16) as u8, (y * 16) as u8, (i * 80) as u8, 255])
            });
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    out
}

fn gif_frames(bytes: &[u8]) -> usize {
    use image::AnimationDecoder;
    image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes))
        .unwrap()
        .into_frames()
        .count()
}
