//! A real headless Chromium against the frontend and the real API on a real PostgreSQL:
//! upload through the page, list, resize, extract text, statistics, duplicates, batch delete.
//! Saves a screenshot of every page (target/screenshots, or $BERTH_SCREENSHOTS).

use std::time::Duration;

use base64::Engine as _;
use berth_testkit::{Postgres, Server};
use fantoccini::Locator;

use crate::chrome::{self, Browser};
use crate::support::{dead_url, start_web};
use crate::{fake_api, origin};

const PDF_TEXT: &str = "Berth reads this PDF";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_in_a_real_browser() {
    if !chrome::available() {
        // CI installs both: there, a missing browser is a broken setup, never a pass.
        assert!(
            !chrome::required(),
            "CI=true but /usr/bin/chromium or /usr/bin/chromedriver is not installed"
        );
        println!(
            "SKIPPED every_page_works_in_a_real_browser: /usr/bin/chromium or \
             /usr/bin/chromedriver is not installed (CI=true makes this a failure)"
        );
        return;
    }
    // A real PostgreSQL and the real API binary; the frontend runs in this process.
    let (postgres, api) = tokio::task::spawn_blocking(|| {
        let postgres = Postgres::start();
        let api = Server::spawn("file-analyzer-api", postgres.env(), "/api/health");
        (postgres, api)
    })
    .await
    .unwrap();
    tour(&api.base_url()).await;
    drop(api);
    drop(postgres);
}

async fn tour(api_base: &str) {
    let web = start_web(api_base).await;
    let site = origin::start(api_base, &web).await;
    let files = tempfile::tempdir().unwrap();
    let png_path = files.path().join("sunset.png");
    let pdf_path = files.path().join("report.pdf");
    std::fs::write(&png_path, fake_api::png(320, 200)).unwrap();
    std::fs::write(&pdf_path, berth_testkit::fixtures::pdf(PDF_TEXT)).unwrap();

    let browser = Browser::start().await;

    // An empty library.
    browser.goto(&format!("{site}/")).await;
    assert!(browser.text("main").await.contains("No files yet"));
    assert_eq!(
        browser.tab().await,
        "Skip to content",
        "the first Tab offers the skip link"
    );
    browser.screenshot("01-files-empty", 1280).await;

    // Upload both files through the page: JavaScript sends each with its own progress bar.
    browser.goto(&format!("{site}/upload")).await;
    browser.screenshot("02-upload", 1280).await;
    let input = browser
        .client
        .find(Locator::Css("#file-input"))
        .await
        .unwrap();
    // A text file dressed up as a PNG: the API looks at the content and refuses it, and the
    // page says so next to that file.
    let fake_path = files.path().join("not-a-picture.png");
    std::fs::write(&fake_path, b"just some text, not an image").unwrap();
    input
        .send_keys(&format!(
            "{}\n{}\n{}",
            png_path.display(),
            pdf_path.display(),
            fake_path.display()
        ))
        .await
        .unwrap();
    browser.wait_for_count(".queue li.done", 2).await;
    browser.wait_for_count(".queue li.failed", 1).await;
    let failed = browser.text(".queue li.failed").await;
    assert!(failed.contains("not-a-picture.png"), "{failed}");
    assert!(
        failed.lines().count() >= 2,
        "the failure has a message: {failed}"
    );
    browser.screenshot("03-upload-done", 1280).await;
    browser.screenshot("03-upload-done-phone", 390).await;

    // Without JavaScript the form posts to the frontend, which streams the file to the API and
    // redirects back with the outcome of each file.
    let notes_path = files.path().join("notes.txt");
    std::fs::write(&notes_path, b"plain notes\n").unwrap();
    browser.javascript(false).await;
    browser.goto(&format!("{site}/upload")).await;
    assert_eq!(browser.count("html.js").await, 0, "the script did not run");
    browser
        .screenshot("02-upload-without-javascript", 1280)
        .await;
    browser
        .client
        .find(Locator::Css("#file-input"))
        .await
        .unwrap()
        .send_keys(&notes_path.display().to_string())
        .await
        .unwrap();
    browser.click("#upload-form button[type=submit]").await;
    browser.wait_for_count(".flash-success", 1).await;
    let flash = browser.text(".flash").await;
    assert!(flash.contains("Uploaded 1 file."), "{flash}");
    assert!(flash.contains("notes.txt"), "{flash}");
    browser
        .screenshot("03-upload-without-javascript-done", 1280)
        .await;
    browser.javascript(true).await;

    // Listed, with the image's dimensions.
    browser.goto(&format!("{site}/")).await;
    let list = browser.text("table.files").await;
    assert!(list.contains("sunset.png"), "{list}");
    assert!(list.contains("320 × 200 px"), "{list}");
    assert!(list.contains("report.pdf"), "{list}");
    assert!(list.contains("notes.txt"), "{list}");
    browser.screenshot("04-files", 1280).await;
    browser.screenshot("04-files-phone", 390).await;

    // The image's page and its tools.
    browser
        .client
        .find(Locator::LinkText("sunset.png"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for_count("#resize-form", 1).await;
    let details = browser.text(".meta").await;
    assert!(details.contains("320"), "{details}");
    browser.screenshot("05-image-detail", 1280).await;
    browser.screenshot("05-image-detail-phone", 390).await;

    // Resize through the page's own form; the browser fetches the result and hands the bytes
    // back for decoding.
    browser
        .client
        .find(Locator::Css("#resize-width"))
        .await
        .unwrap()
        .send_keys("80")
        .await
        .unwrap();
    let encoded = browser
        .client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const form = document.getElementById('resize-form');
               fetch(form.action, { method: 'POST', body: new URLSearchParams(new FormData(form)) })
                 .then(r => r.arrayBuffer().then(b => [r.status, r.headers.get('content-disposition'), b]))
                 .then(([status, disposition, buffer]) => {
                   let binary = '';
                   new Uint8Array(buffer).forEach(b => binary += String.fromCharCode(b));
                   done([status, disposition, btoa(binary)]);
                 })
                 .catch(e => done([0, String(e), '']));"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(encoded[0], 200, "{encoded:?}");
    assert!(
        encoded[1]
            .as_str()
            .unwrap_or_default()
            .contains("attachment"),
        "{encoded:?}"
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded[2].as_str().unwrap())
        .unwrap();
    let resized = image::load_from_memory(&bytes).unwrap();
    assert_eq!((resized.width(), resized.height()), (80, 50));

    // The PDF's text.
    browser.goto(&format!("{site}/")).await;
    browser
        .client
        .find(Locator::LinkText("report.pdf"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for_count(".meta", 1).await;
    browser.screenshot("06-pdf-detail", 1280).await;
    browser
        .client
        .find(Locator::LinkText("Extract text"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for_count("#extracted-text", 1).await;
    let text = browser.text("#extracted-text").await;
    assert!(text.contains(PDF_TEXT), "{text}");
    assert_eq!(browser.count("[data-copy-target]:not([hidden])").await, 1);
    browser.screenshot("07-pdf-text", 1280).await;

    // Statistics: a server-drawn chart.
    browser.goto(&format!("{site}/stats")).await;
    assert_eq!(browser.count("svg.chart").await, 2);
    assert_eq!(browser.count("svg.chart rect.bar-fill").await, 8);
    let by_type = browser.text("table.by-type").await;
    for row in ["Images 1", "PDFs 1", "Text files 1", "Other 0"] {
        assert!(by_type.contains(row), "{row} in {by_type}");
    }
    browser.screenshot("08-stats", 1280).await;
    browser.screenshot("08-stats-phone", 390).await;

    // The dark theme follows the system's preference.
    browser.prefer_dark(true).await;
    let background = browser
        .client
        .execute(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(background, "rgb(11, 16, 32)");
    browser.screenshot("08-stats-dark", 1280).await;
    browser.goto(&format!("{site}/")).await;
    browser.screenshot("04-files-dark", 1280).await;
    browser.prefer_dark(false).await;

    // The same picture again makes a duplicate.
    browser.goto(&format!("{site}/upload")).await;
    browser
        .client
        .find(Locator::Css("#file-input"))
        .await
        .unwrap()
        .send_keys(&png_path.display().to_string())
        .await
        .unwrap();
    browser.wait_for_count(".queue li.done", 1).await;
    browser.goto(&format!("{site}/duplicates")).await;
    assert_eq!(browser.count(".dup-group").await, 1);
    assert_eq!(browser.count(".dup-group input:checked").await, 1);
    browser.screenshot("09-duplicates", 1280).await;
    browser.screenshot("09-duplicates-phone", 390).await;

    // Delete the extra copy: confirmation first.
    browser.click(".summary button[type=submit]").await;
    browser.wait_for_count(".confirm", 1).await;
    assert!(browser.text("h1").await.contains("Delete 1 file?"));
    browser.screenshot("10-confirm-delete", 1280).await;
    browser.screenshot("10-confirm-delete-phone", 390).await;
    browser.click(".confirm button[type=submit]").await;
    browser.wait_for_count(".flash-success", 1).await;
    assert!(browser.text(".flash").await.contains("Deleted 1 file."));
    assert!(browser.text("main").await.contains("No duplicates"));
    browser.screenshot("11-duplicates-cleaned", 1280).await;

    // Batch delete everything from the list.
    browser.goto(&format!("{site}/")).await;
    assert_eq!(browser.count("input[name=ids]").await, 3);
    browser.click("[data-check-all]").await;
    assert_eq!(browser.count("input[name=ids]:checked").await, 3);
    browser.screenshot("12-files-selected", 1280).await;
    browser.click(".toolbar button[type=submit]").await;
    browser.wait_for_count(".confirm", 1).await;
    assert!(browser.text("h1").await.contains("Delete 3 files?"));
    browser.click(".confirm button[type=submit]").await;
    browser.wait_for_count(".flash-success", 1).await;
    assert!(browser.text("main").await.contains("No files yet"));

    // The API down: a banner on the list, a plain 503 page elsewhere.
    let dead = dead_url();
    let lonely_web = start_web(&dead).await;
    let lonely_site = origin::start(&dead, &lonely_web).await;
    browser.goto(&format!("{lonely_site}/")).await;
    assert!(
        browser
            .text(".banner")
            .await
            .contains("File service unavailable")
    );
    browser.screenshot("13-api-down-files", 1280).await;
    browser.goto(&format!("{lonely_site}/stats")).await;
    assert!(browser.text("main").await.contains("503"));
    browser.screenshot("14-api-down-stats", 1280).await;
    browser.screenshot("14-api-down-stats-phone", 390).await;

    let _ = tokio::time::timeout(Duration::from_secs(10), browser.client.clone().close()).await;
}
