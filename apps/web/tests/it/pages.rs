//! Every page against the fake API, as a browser without JavaScript sees it.

use reqwest::header;
use reqwest::multipart::{Form, Part};

use crate::fake_api::{FakeApi, png};
use crate::support::{client, dead_url, follow, start_web, start_web_with, text};

#[tokio::test]
async fn file_list_shows_thumbnails_dimensions_and_pages() {
    let api = FakeApi::start().await;
    for i in 0..23 {
        api.add(&format!("photo-{i:02}.png"), "image/png", png(30 + i, 20));
    }
    api.add("report.pdf", "application/pdf", b"%PDF-1.4 fake".to_vec());
    let web = start_web(&api.base).await;

    let page = client().get(format!("{web}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("name=\"ids\"").count(), 20, "20 rows a page");
    // Newest first: the PDF, then the last photos.
    let words = text(&html);
    assert!(words.contains("report.pdf"), "{words}");
    assert!(words.contains("photo-22.png 52 × 20 px"), "{words}");
    assert!(!words.contains("photo-02.png"));
    assert!(html.contains("/thumbnail\""), "images have thumbnails");
    assert!(
        html.contains("href=\"/?page=2\""),
        "a link to the next page"
    );

    let page2 = get_html(format!("{web}/?page=2")).await;
    assert_eq!(page2.matches("name=\"ids\"").count(), 4);
    assert!(text(&page2).contains("photo-00.png"));
    assert!(page2.contains("href=\"/\" rel=\"prev\""));
}

#[tokio::test]
async fn thumbnails_are_small_cached_images() {
    let api = FakeApi::start().await;
    let id = api.add("big.png", "image/png", png(400, 300));
    let web = start_web(&api.base).await;
    let response = client()
        .get(format!("{web}/files/{id}/thumbnail"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let thumb = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
    assert!(thumb.width() <= 96 && thumb.height() <= 96);
    assert!(
        api.requests()
            .contains(&format!("POST /api/files/{id}/resize"))
    );
}

#[tokio::test]
async fn home_and_health_answer_200_while_the_api_is_down() {
    let web = start_web(&dead_url()).await;
    let home = client().get(format!("{web}/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let words = text(&home.text().await.unwrap());
    assert!(words.contains("File service unavailable"), "{words}");
    assert!(!words.to_lowercase().contains("reqwest"), "{words}");
    assert!(
        !words.contains("127.0.0.1"),
        "no internals in pages: {words}"
    );

    let health = client().get(format!("{web}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let upload = client().get(format!("{web}/upload")).send().await.unwrap();
    assert_eq!(upload.status(), 200);
    let words = text(&upload.text().await.unwrap());
    assert!(words.contains("File service unavailable"), "{words}");

    for path in [
        "/stats",
        "/duplicates",
        "/files/9b2f4a1e-2c1d-4a57-9c55-0e1f2a3b4c5d",
    ] {
        let response = client().get(format!("{web}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
        let words = text(&response.text().await.unwrap());
        assert!(
            words.contains("File service unavailable"),
            "{path}: {words}"
        );
        assert!(!words.contains("127.0.0.1"), "{path}: {words}");
    }
}

#[tokio::test]
async fn home_shows_the_unavailable_banner_when_the_api_stalls_past_the_page_deadline() {
    let api = FakeApi::start().await;
    api.add("kept.png", "image/png", png(8, 8));
    let stalled = api.hold_list();
    let mut config = file_analyzer_web::Config::with_api_url(&api.base);
    config.home_api_timeout = std::time::Duration::from_millis(50);
    let web = start_web_with(config).await;

    // The list call never answers while held: the page gives up at its own deadline.
    let home = client().get(format!("{web}/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let words = text(&home.text().await.unwrap());
    assert!(words.contains("File service unavailable"), "{words}");
    assert!(!words.contains("kept.png"), "{words}");
    assert!(api.requests().contains(&"GET /api/files".to_owned()));

    stalled.send(true).unwrap();
    let words = text(&get_html(format!("{web}/")).await);
    assert!(!words.contains("File service unavailable"), "{words}");
    assert!(words.contains("kept.png"), "{words}");
}

#[tokio::test]
async fn upload_without_javascript_streams_each_file_and_reports_each_outcome() {
    let api = FakeApi::start().await;
    let web = start_web(&api.base).await;
    let picture = png(64, 48);
    let form = Form::new()
        .part("file", file_part(picture.clone(), "été.png", "image/png"))
        .part(
            "file",
            file_part(b"PK\x03\x04zip".to_vec(), "archive.zip", "application/zip"),
        );
    let response = post_upload(&web, form).await;
    let (location, html) = follow(&web, response).await;
    assert_eq!(location, "/upload");
    let words = text(&html);
    assert!(words.contains("Uploaded 1 of 2 files"), "{words}");
    assert!(words.contains("été.png"), "{words}");
    assert!(
        words.contains("archive.zip failed: File type application/zip is not allowed"),
        "the error sits next to its file: {words}"
    );
    let ids = api.ids();
    assert_eq!(ids.len(), 1);
    assert_eq!(api.bytes(ids[0]).unwrap(), picture, "bytes arrive intact");
    assert!(html.contains(&format!("href=\"/files/{}\"", ids[0])));
}

#[tokio::test]
async fn upload_page_states_the_rules_and_an_empty_post_asks_for_a_file() {
    let api = FakeApi::start().await;
    let web = start_web(&api.base).await;
    let html = get_html(format!("{web}/upload")).await;
    let words = text(&html);
    assert!(words.contains("Up to 10 MiB per file"), "{words}");
    assert!(
        words.contains("JPEG, PNG, GIF, WebP, PDF and Text"),
        "{words}"
    );
    assert!(html.contains("enctype=\"multipart/form-data\""));
    assert!(
        html.contains("<label for=\"file-input\""),
        "the input has a label"
    );
    assert!(!words.contains("File service unavailable"), "the API is up");

    let form = Form::new().part("file", Part::bytes(Vec::new()).file_name(""));
    let response = post_upload(&web, form).await;
    let (_, html) = follow(&web, response).await;
    assert!(text(&html).contains("Choose at least one file"));
    assert!(api.ids().is_empty());
}

#[tokio::test]
async fn batch_delete_confirms_before_deleting() {
    let api = FakeApi::start().await;
    let a = api.add("a.txt", "text/plain", b"alpha".to_vec());
    let b = api.add("b.txt", "text/plain", b"bravo".to_vec());
    let keep = api.add("keep.txt", "text/plain", b"charlie".to_vec());
    let web = start_web(&api.base).await;

    let confirm = client()
        .get(format!(
            "{web}/files/delete?back=%2F&ids={a}&ids={b}&ids=not-an-id"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 200);
    let html = confirm.text().await.unwrap();
    let words = text(&html);
    assert!(words.contains("Delete 2 files?"), "{words}");
    assert!(words.contains("a.txt") && words.contains("b.txt"));
    assert!(!words.contains("keep.txt"));
    assert_eq!(api.ids().len(), 3, "nothing is deleted before confirming");
    assert!(html.contains("method=\"post\" action=\"/files/delete\""));

    let response = client()
        .post(format!("{web}/files/delete"))
        .form(&[
            ("ids", a.to_string()),
            ("ids", b.to_string()),
            ("back", "/".into()),
        ])
        .send()
        .await
        .unwrap();
    let (location, html) = follow(&web, response).await;
    assert_eq!(location, "/");
    assert!(text(&html).contains("Deleted 2 files."));
    assert_eq!(api.ids(), vec![keep]);

    let nothing = client()
        .get(format!("{web}/files/delete?back=%2F"))
        .send()
        .await
        .unwrap();
    let (_, html) = follow(&web, nothing).await;
    assert!(text(&html).contains("Select at least one file"));

    // A tab inside the path would let a browser read "/<TAB>/evil" as "//evil": no open redirect.
    let sneaky = client()
        .get(format!("{web}/files/delete?back=%2F%09%2Fevil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(sneaky.status(), 303);
    assert_eq!(sneaky.headers()[header::LOCATION], "/");
}

#[tokio::test]
async fn form_posts_from_other_sites_are_refused() {
    let api = FakeApi::start().await;
    let id = api.add("a.txt", "text/plain", b"alpha".to_vec());
    let web = start_web(&api.base).await;
    let response = client()
        .post(format!("{web}/files/delete"))
        .header(header::ORIGIN, "http://evil.example")
        .form(&[("ids", id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(api.ids(), vec![id]);

    let same_origin = web.clone();
    let response = client()
        .post(format!("{web}/files/delete"))
        .header(header::ORIGIN, same_origin)
        .form(&[("ids", id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(api.ids().is_empty());
}

#[tokio::test]
async fn image_tools_download_the_result_and_explain_bad_input() {
    let api = FakeApi::start().await;
    let id = api.add("wide.png", "image/png", png(200, 100));
    let web = start_web(&api.base).await;

    let detail = get_html(format!("{web}/files/{id}")).await;
    let words = text(&detail);
    assert!(words.contains("200 × 100 px"), "{words}");
    for tool in ["resize", "convert", "compress", "crop"] {
        assert!(
            detail.contains(&format!("action=\"/files/{id}/tools/{tool}\"")),
            "{tool}"
        );
    }

    let response = client()
        .post(format!("{web}/files/{id}/tools/resize"))
        .form(&[("width", "50"), ("height", ""), ("fit", "inside")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let disposition = response.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains("resized_wide.png"), "{disposition}");
    let result = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(result.width(), 50);

    let response = client()
        .post(format!("{web}/files/{id}/tools/crop"))
        .form(&[("x", "0"), ("y", "0"), ("width", "-5"), ("height", "10")])
        .send()
        .await
        .unwrap();
    let (location, html) = follow(&web, response).await;
    assert_eq!(location, format!("/files/{id}#tools"));
    assert!(text(&html).contains("Width must be a whole number"));
}

#[tokio::test]
async fn text_statistics_and_duplicates_pages() {
    let api = FakeApi::start().await;
    let pdf = api.add("paper.pdf", "application/pdf", b"%PDF-1.4 same".to_vec());
    let copy = api.add(
        "paper-copy.pdf",
        "application/pdf",
        b"%PDF-1.4 same".to_vec(),
    );
    api.add("photo.png", "image/png", png(10, 10));
    let web = start_web(&api.base).await;

    let html = get_html(format!("{web}/files/{pdf}/text")).await;
    assert!(html.contains("Hello from the fake PDF\nSecond line"));
    assert!(html.contains("data-copy-target=\"extracted-text\""));

    let stats = client().get(format!("{web}/stats")).send().await.unwrap();
    assert_eq!(stats.status(), 200);
    let html = stats.text().await.unwrap();
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 2);
    assert!(html.contains("PDFs: 2"), "the chart describes its values");
    assert!(text(&html).contains("Files 3"), "{}", text(&html));
    let words = text(&html).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("PDFs 2 26 B"),
        "bytes by type from the summary: {words}"
    );
    assert!(!words.contains("does not report storage"), "{words}");

    let html = get_html(format!("{web}/duplicates")).await;
    // The oldest copy is kept; the newer one is selected for deletion.
    assert!(html.contains(&format!("value=\"{copy}\" id=\"copy-{copy}\" checked")));
    assert!(html.contains(&format!("value=\"{pdf}\" id=\"copy-{pdf}\">")));
    assert!(text(&html).contains("1 extra copy"));
}

#[tokio::test]
async fn missing_things_are_friendly_404s() {
    let api = FakeApi::start().await;
    let web = start_web(&api.base).await;
    for path in [
        "/nope",
        "/files/not-a-uuid",
        "/files/9b2f4a1e-2c1d-4a57-9c55-0e1f2a3b4c5d",
        "/static/nothing.css",
    ] {
        let response = client().get(format!("{web}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let html = get_html(format!("{web}/files/not-a-uuid")).await;
    assert!(text(&html).contains("Not found"));
}

#[tokio::test]
async fn assets_are_embedded_and_cache_busted() {
    let api = FakeApi::start().await;
    let web = start_web(&api.base).await;
    let html = get_html(format!("{web}/")).await;
    let start = html.find("/static/app.").unwrap();
    let end = start + html[start..].find(".css").unwrap() + 4;
    let css_url = &html[start..end];
    let css = client()
        .get(format!("{web}{css_url}"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(
        css.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(
        css.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    // An old build's URL still gets today's file, but not for keeps.
    let stale = client()
        .get(format!("{web}/static/app.000000000000.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.headers()[header::CACHE_CONTROL], "no-cache");
}

#[tokio::test]
async fn an_oversized_file_fails_alone_and_the_next_one_still_arrives() {
    let api = FakeApi::start().await;
    let web = start_web(&api.base).await;
    let too_big = vec![b'a'; crate::fake_api::MAX_FILE_SIZE + 1];
    let form = Form::new()
        .part("file", file_part(too_big, "huge.txt", "text/plain"))
        .part(
            "file",
            file_part(b"small".to_vec(), "small.txt", "text/plain"),
        );
    let response = post_upload(&web, form).await;
    let (_, html) = follow(&web, response).await;
    let words = text(&html);
    assert!(
        words.contains("huge.txt failed: File too large (max 10 MiB)"),
        "{words}"
    );
    assert!(words.contains("small.txt uploaded"), "{words}");
    let ids = api.ids();
    assert_eq!(ids.len(), 1);
    assert_eq!(api.bytes(ids[0]).unwrap(), b"small");
}

#[tokio::test]
async fn one_form_post_sends_at_most_twenty_files() {
    let api = FakeApi::start().await;
    let web = start_web(&api.base).await;
    let mut form = Form::new();
    for i in 0..22 {
        form = form.part(
            "file",
            file_part(
                format!("file {i}").into_bytes(),
                format!("f{i}.txt"),
                "text/plain",
            ),
        );
    }
    let response = post_upload(&web, form).await;
    let (_, html) = follow(&web, response).await;
    assert_eq!(api.ids().len(), 20);
    let words = text(&html);
    assert!(words.contains("Uploaded 20 of 22 files"), "{words}");
    assert!(
        words.contains("f21.txt failed: Not sent: at most 20 files at a time."),
        "{words}"
    );
}

/// A page's HTML.
async fn get_html(url: String) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A form part `file` with `bytes` named `name`, declared as `mime`.
fn file_part(bytes: impl Into<Vec<u8>>, name: impl Into<String>, mime: &str) -> Part {
    Part::bytes(bytes.into())
        .file_name(name.into())
        .mime_str(mime)
        .unwrap()
}

/// `POST /upload` with `form`.
async fn post_upload(web: &str, form: Form) -> reqwest::Response {
    client()
        .post(format!("{web}/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}
