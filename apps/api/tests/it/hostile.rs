//! Hostile uploads: each gets the right 4xx with a clear message and leaves nothing behind.

use image::ImageFormat;

use crate::common::{Env, encode, error_message, json, pdf, picture, png, png_blank, png_bomb};

/// Upload, expect `status`, return the message; nothing may be stored.
async fn refused(env: &Env, name: &str, mime: Option<&str>, bytes: Vec<u8>, status: u16) -> String {
    let (got, body) = json(env.upload(name, mime, bytes).await).await;
    assert_eq!(got, status, "{name}: {body}");
    let message = error_message(&body);
    assert!(
        !message.contains("/tmp") && !message.contains("sqlx"),
        "{message}"
    );
    assert_eq!(
        (env.count("files"), env.count("blobs")),
        (0, 0),
        "{name} left something behind"
    );
    message
}

#[tokio::test]
async fn spoofed_and_unknown_types_are_415_saying_what_was_found() {
    let env = Env::start();
    let message = refused(&env, "cat.png", Some("image/png"), pdf("not a cat"), 415).await;
    assert!(
        message.contains("image/png") && message.contains("application/pdf"),
        "{message}"
    );
    let message = refused(
        &env,
        "tool.exe",
        None,
        b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".to_vec(),
        415,
    )
    .await;
    assert!(message.contains("not a recognised"), "{message}");
    // BMP is recognised but not in the default ALLOWED_FILE_TYPES.
    let bmp = encode(&picture(4, 4), ImageFormat::Bmp);
    let message = refused(&env, "pic.bmp", Some("image/bmp"), bmp, 415).await;
    assert!(message.contains("image/bmp"), "{message}");
}

#[tokio::test]
async fn allowed_types_follow_the_configuration() {
    let env = Env::start_with(&[("ALLOWED_FILE_TYPES", "application/pdf")]);
    let message = refused(&env, "a.png", Some("image/png"), png(2, 2), 415).await;
    assert!(
        message.contains("image/png") && message.contains("application/pdf"),
        "{message}"
    );
    env.upload_ok("doc.pdf", None, pdf("ok")).await;
}

#[tokio::test]
async fn truncated_images_bombs_and_malformed_pdfs_are_422() {
    let env = Env::start();
    let whole = png(64, 64);
    refused(
        &env,
        "half.png",
        Some("image/png"),
        whole[..whole.len() / 2].to_vec(),
        422,
    )
    .await;
    let jpeg = encode(&picture(64, 64), ImageFormat::Jpeg);
    refused(
        &env,
        "half.jpg",
        Some("image/jpeg"),
        jpeg[..jpeg.len() / 3].to_vec(),
        422,
    )
    .await;
    let bomb = png_bomb(20_000);
    assert!(bomb.len() < 200);
    let message = refused(&env, "bomb.png", Some("image/png"), bomb, 422).await;
    assert!(message.contains("20000×20000"), "{message}");
    let message = refused(
        &env,
        "bad.pdf",
        Some("application/pdf"),
        b"%PDF-1.7\n1 0 obj << /Type /Catalog".to_vec(),
        422,
    )
    .await;
    assert!(message.contains("PDF"), "{message}");
    // The process is still fine.
    assert_eq!(env.get("/api/health").await.status(), 200);
    env.upload_ok("fine.png", None, png(2, 2)).await;
}

#[tokio::test]
async fn an_image_within_the_pixel_limit_but_over_the_decoded_byte_budget_is_422() {
    let env = Env::start();
    // 16384×2441 = 40.0 MP, under the pixel limit; at 16 bits × RGBA it decodes to 320 MB,
    // over the 256 MB budget (it was accepted when the budget counted pixels only).
    let big = png_blank(16_384, 2_441, 16, 6);
    let message = refused(&env, "deep.png", Some("image/png"), big, 422).await;
    assert!(
        message.contains("16384×2441")
            && message.contains("8 bytes")
            && message.contains("256 MiB"),
        "{message}"
    );
    // A small 16-bit image is fine.
    let record = env
        .upload_ok("small16.png", None, png_blank(64, 32, 16, 6))
        .await;
    assert_eq!(record["metadata"]["bitsPerSample"], 16, "{record}");
}

#[tokio::test]
async fn names_are_limited_and_stripped_of_paths() {
    let env = Env::start();
    let long = format!("{}.png", "n".repeat(300));
    let message = refused(&env, &long, Some("image/png"), png(2, 2), 400).await;
    assert!(message.contains("255"), "{message}");

    for (raw, kept) in [
        ("../../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\win.ini.txt", "win.ini.txt"),
        ("/absolute/path/é.txt", "é.txt"),
    ] {
        let record = env
            .upload_ok(raw, Some("text/plain"), b"traversal".to_vec())
            .await;
        assert_eq!(record["original_filename"], kept);
        assert!(!record["file_path"].as_str().unwrap().contains(".."));
    }
}

#[tokio::test]
async fn oversize_bodies_are_413_and_nothing_is_kept() {
    let env = Env::start_with(&[("MAX_FILE_SIZE", "1000")]);
    let message = refused(&env, "big.txt", Some("text/plain"), vec![b'a'; 1001], 413).await;
    assert!(message.contains("1000"), "{message}");
    // Far over the limit: the server stops reading and answers at once, so the client may
    // see its connection closed while still sending instead of the 413.
    let part = reqwest::multipart::Part::bytes(vec![b'a'; 3 * 1024 * 1024]).file_name("huge.txt");
    let sent = env
        .client
        .post(env.url("/api/files/upload"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await;
    if let Ok(response) = sent {
        assert_eq!(response.status(), 413);
    }
    assert_eq!((env.count("files"), env.count("blobs")), (0, 0));
    env.upload_ok("fits.txt", None, vec![b'a'; 1000]).await;
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let env = Env::start();
    let (status, body) = json(
        env.client
            .post(env.url("/api/files/upload"))
            .body("plain")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    error_message(&body);
    let form = reqwest::multipart::Form::new().text("other", "x");
    let (status, body) = json(
        env.client
            .post(env.url("/api/files/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_message(&body).contains("file"));
    refused(&env, "empty.txt", Some("text/plain"), Vec::new(), 400).await;
}
