//! Upload, list, get, download, delete, stats, duplicates, batch delete, text extraction.

use serde_json::json;

use crate::common::{Env, error_message, json, pdf, png};

#[tokio::test]
async fn upload_list_get_download_delete_round_trip() {
    let env = Env::start();
    let bytes = png(40, 30);
    let record = env
        .upload_ok("photo.png", Some("image/png"), bytes.clone())
        .await;
    let id = record["id"].as_str().unwrap().to_owned();
    assert_eq!(record["original_filename"], "photo.png");
    assert_eq!(record["mime_type"], "image/png");
    assert_eq!(record["size"], bytes.len());
    assert_eq!(record["file_path"], format!("files/{id}"));
    assert_eq!(record["filename"], format!("{id}.png"));
    let meta = &record["metadata"];
    assert_eq!(
        (
            meta["type"].as_str(),
            meta["width"].as_u64(),
            meta["height"].as_u64()
        ),
        (Some("image"), Some(40), Some(30))
    );
    assert_eq!(
        (meta["format"].as_str(), meta["hasAlpha"].as_bool()),
        (Some("png"), Some(true))
    );
    assert_eq!(meta["channels"], 4);
    assert_eq!(meta["colorType"], "rgba8");
    assert_eq!(meta["colorSpace"], "srgb");
    assert_eq!(meta["fileSize"], bytes.len());

    let (status, list) = json(env.get("/api/files").await).await;
    assert_eq!(status, 200);
    assert_eq!(
        (list["count"].as_u64(), list["total"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(list["data"][0]["id"], id.as_str());

    let (status, got) = json(env.get(&format!("/api/files/{id}")).await).await;
    assert_eq!(status, 200);
    assert_eq!(got["data"], record);

    let download = env.get(&format!("/api/files/{id}/download")).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert_eq!(
        download.headers()["content-disposition"],
        "attachment; filename=\"photo.png\"; filename*=UTF-8''photo.png"
    );
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let (status, deleted) = json(env.delete(&format!("/api/files/{id}")).await).await;
    assert_eq!((status, deleted["success"].as_bool()), (200, Some(true)));
    assert_eq!(env.get(&format!("/api/files/{id}")).await.status(), 404);
    assert_eq!(env.delete(&format!("/api/files/{id}")).await.status(), 404);
    assert_eq!((env.count("files"), env.count("blobs")), (0, 0));
}

#[tokio::test]
async fn identical_contents_are_stored_once_and_reported_as_duplicates() {
    let env = Env::start();
    let bytes = png(8, 8);
    let a = env
        .upload_ok("a.png", Some("image/png"), bytes.clone())
        .await;
    let b = env.upload_ok("b-renamed.png", None, bytes.clone()).await;
    env.upload_ok("other.png", Some("image/png"), png(9, 9))
        .await;
    assert_eq!((env.count("files"), env.count("blobs")), (3, 2));

    let (status, body) = json(env.get("/api/files/duplicates").await).await;
    assert_eq!(status, 200);
    let groups = body["data"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{body}");
    assert_eq!(groups[0]["duplicate_count"], 2);
    assert_eq!(groups[0]["size"], bytes.len());
    let ids: Vec<&str> = groups[0]["file_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(ids.contains(&a["id"].as_str().unwrap()) && ids.contains(&b["id"].as_str().unwrap()));

    // The blob stays while another file references it.
    assert_eq!(
        env.delete(&format!("/api/files/{}", a["id"].as_str().unwrap()))
            .await
            .status(),
        200
    );
    assert_eq!(env.count("blobs"), 2);
    let download = env
        .get(&format!(
            "/api/files/{}/download",
            b["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_eq!(
        env.delete(&format!("/api/files/{}", b["id"].as_str().unwrap()))
            .await
            .status(),
        200
    );
    assert_eq!(env.count("blobs"), 1);
}

#[tokio::test]
async fn listing_pages_with_count_and_total_and_validates_its_parameters() {
    let env = Env::start();
    for i in 0..5 {
        env.upload_ok(
            &format!("f{i}.txt"),
            Some("text/plain"),
            format!("file {i}").into_bytes(),
        )
        .await;
    }
    let (status, body) = json(env.get("/api/files?limit=2&offset=1").await).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["count"].as_u64(), body["total"].as_u64()),
        (Some(2), Some(5))
    );
    // Newest first.
    assert_eq!(body["data"][0]["original_filename"], "f3.txt");
    let (_, body) = json(env.get("/api/files?offset=10").await).await;
    assert_eq!(
        (body["count"].as_u64(), body["total"].as_u64()),
        (Some(0), Some(5))
    );
    let (_, body) = json(env.get("/api/files?limit=1000").await).await;
    assert_eq!(body["count"], 5);
    for query in [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "offset=-1",
        "limit=2.5",
    ] {
        let (status, body) = json(env.get(&format!("/api/files?{query}")).await).await;
        assert_eq!(status, 400, "{query}");
        error_message(&body);
    }
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_400_and_unknown_ids_404() {
    let env = Env::start();
    let unknown = "6f1c2b8e-6d4a-4a53-9f7e-2d2f1b0f3c11";
    for (method, suffix) in [
        ("GET", ""),
        ("DELETE", ""),
        ("GET", "/download"),
        ("GET", "/extract-text"),
        ("POST", "/convert"),
        ("POST", "/compress"),
        ("POST", "/resize"),
        ("POST", "/crop"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let body = json!({"format": "png", "width": 1, "height": 1, "x": 0, "y": 0});
        let bad = env
            .client
            .request(
                method.clone(),
                env.url(&format!("/api/files/not-a-uuid{suffix}")),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, bad) = json(bad).await;
        assert_eq!(status, 400, "{method} {suffix}: {bad}");
        let message = error_message(&bad);
        assert!(
            message.contains("not-a-uuid") && !message.contains("syntax"),
            "{message}"
        );
        let missing = env
            .client
            .request(
                method.clone(),
                env.url(&format!("/api/files/{unknown}{suffix}")),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, missing) = json(missing).await;
        assert_eq!(status, 404, "{method} {suffix}: {missing}");
        error_message(&missing);
    }
}

#[tokio::test]
async fn downloads_support_ranges_etags_and_utf8_names() {
    let env = Env::start();
    let bytes = b"0123456789abcdefghij".to_vec();
    let record = env
        .upload_ok("überblick 東京.txt", Some("text/plain"), bytes.clone())
        .await;
    assert_eq!(record["original_filename"], "überblick 東京.txt");
    let path = format!("/api/files/{}/download", record["id"].as_str().unwrap());

    let full = env.get(&path).await;
    assert_eq!(full.status(), 200);
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    let disposition = full.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.ends_with("filename*=UTF-8''%C3%BCberblick%20%E6%9D%B1%E4%BA%AC.txt"),
        "{disposition}"
    );

    let partial = env
        .client
        .get(env.url(&path))
        .header("Range", "bytes=2-5")
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), 206);
    assert_eq!(partial.headers()["content-range"], "bytes 2-5/20");
    assert_eq!(partial.bytes().await.unwrap().as_ref(), b"2345");

    let tail = env
        .client
        .get(env.url(&path))
        .header("Range", "bytes=-3")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.bytes().await.unwrap().as_ref(), b"hij");

    let outside = env
        .client
        .get(env.url(&path))
        .header("Range", "bytes=50-")
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 416);
    assert_eq!(outside.headers()["content-range"], "bytes */20");

    let cached = env
        .client
        .get(env.url(&path))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert!(cached.bytes().await.unwrap().is_empty());
    let stale = env
        .client
        .get(env.url(&path))
        .header("If-None-Match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn stats_are_numbers() {
    let env = Env::start();
    let (status, empty) = json(env.get("/api/files/stats/summary").await).await;
    assert_eq!(status, 200);
    assert_eq!(empty["data"]["total_files"], 0);
    assert_eq!(empty["data"]["avg_file_size"], 0.0);
    assert_eq!(empty["data"]["other_size"], 0);
    let image = png(4, 4);
    let document = pdf("stats");
    let (image_len, pdf_len, other_len) = (image.len(), document.len(), 7);
    env.upload_ok("a.png", None, image).await;
    env.upload_ok("b.txt", None, b"hello".to_vec()).await;
    env.upload_ok("c.txt", None, b"hello world".to_vec()).await;
    env.upload_ok("d.pdf", None, document).await;
    env.upload_ok("e.bin", None, b"archive".to_vec()).await;
    // Uploads are sniffed into the three families; a row of another type comes from older data.
    env.pg
        .psql("UPDATE files SET mime_type = 'application/zip' WHERE original_filename = 'e.bin'");
    let (_, body) = json(env.get("/api/files/stats/summary").await).await;
    let data = &body["data"];
    assert_eq!(data["total_files"], 5);
    assert_eq!(data["other_count"], 1);
    assert_eq!(data["image_size"], image_len);
    assert_eq!(data["pdf_size"], pdf_len);
    assert_eq!(data["text_size"], 16);
    assert_eq!(data["other_size"], other_len);
    assert_eq!(
        data["total_size"],
        image_len + pdf_len + 16 + other_len,
        "the families add up to the total"
    );
    assert_eq!(
        (
            data["image_count"].as_i64(),
            data["pdf_count"].as_i64(),
            data["text_count"].as_i64()
        ),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(data["min_file_size"], 5);
    assert_stats_match_the_rows(&env).await;
    // Deletes, and a deleted content shared by two files, keep the totals true.
    let again = env.upload_ok("again.txt", None, b"hello".to_vec()).await;
    let id = again["id"].as_str().unwrap();
    assert_eq!(env.delete(&format!("/api/files/{id}")).await.status(), 200);
    let b = env
        .pg
        .psql("SELECT id FROM files WHERE original_filename = 'b.txt'");
    assert_eq!(env.delete(&format!("/api/files/{b}")).await.status(), 200);
    assert_stats_match_the_rows(&env).await;
    assert!(
        data["total_size"].is_i64()
            && data["max_file_size"].is_i64()
            && data["avg_file_size"].is_f64(),
        "{data}"
    );
}

/// The summary (from the totals the triggers keep) equals aggregates over the rows.
pub async fn assert_stats_match_the_rows(env: &Env) {
    let (_, body) = json(env.get("/api/files/stats/summary").await).await;
    let data = &body["data"];
    let direct = env.pg.psql(
        "SELECT count(*) || ',' || COALESCE(sum(size), 0) || ',' || \
                COALESCE(min(size), 0) || ',' || COALESCE(max(size), 0) || ',' || \
                (SELECT COALESCE(sum(size), 0) FROM blobs) FROM files",
    );
    let summary = format!(
        "{},{},{},{},{}",
        data["total_files"],
        data["total_size"],
        data["min_file_size"],
        data["max_file_size"],
        data["stored_size"]
    );
    assert_eq!(summary, direct, "{data}");
}

#[tokio::test]
async fn batch_delete_is_all_or_nothing_with_per_id_results() {
    let env = Env::start();
    let mut ids = Vec::new();
    for i in 0..3 {
        let record = env
            .upload_ok(&format!("{i}.txt"), None, format!("batch {i}").into_bytes())
            .await;
        ids.push(record["id"].as_str().unwrap().to_owned());
    }
    let unknown = "6f1c2b8e-6d4a-4a53-9f7e-2d2f1b0f3c11";

    let (status, body) = json(
        env.post_json("/api/files/batch/delete", json!({"ids": [ids[0], unknown]}))
            .await,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    error_message(&body);
    let results = body["error"]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["id"] == unknown && r["status"] == "not_found"),
        "{body}"
    );
    assert_eq!(env.count("files"), 3, "nothing deleted");

    let (status, body) = json(
        env.post_json("/api/files/batch/delete", json!({"ids": [ids[0], "nope"]}))
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "nope" && r["status"] == "invalid_id")
    );
    assert_eq!(env.count("files"), 3, "nothing deleted");

    for bad in [json!({}), json!({"ids": []}), json!({"ids": "x"})] {
        let (status, body) = json(env.post_json("/api/files/batch/delete", bad).await).await;
        assert_eq!(status, 400);
        error_message(&body);
    }

    let (status, body) = json(
        env.post_json("/api/files/batch/delete", json!({"ids": [ids[0], ids[1]]}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deletedCount"], 2);
    assert_eq!(body["message"], "Deleted 2 file(s)");
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "deleted")
    );
    assert_eq!((env.count("files"), env.count("blobs")), (1, 1));
}

#[tokio::test]
async fn text_is_extracted_from_pdfs_and_text_files() {
    let env = Env::start();
    let record = env
        .upload_ok("doc.pdf", Some("application/pdf"), pdf("Hello Berth"))
        .await;
    assert_eq!(record["metadata"]["type"], "pdf");
    assert_eq!(record["metadata"]["pages"], 1);
    let (status, body) = json(
        env.get(&format!(
            "/api/files/{}/extract-text",
            record["id"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["data"]["text"]
            .as_str()
            .unwrap()
            .contains("Hello Berth"),
        "{body}"
    );
    assert_eq!(body["data"]["filename"], "doc.pdf");

    let text = env
        .upload_ok("notes.txt", None, "plain notes".as_bytes().to_vec())
        .await;
    assert_eq!(text["metadata"]["type"], "generic");
    let (_, body) = json(
        env.get(&format!(
            "/api/files/{}/extract-text",
            text["id"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    assert_eq!(body["data"]["text"], "plain notes");

    let image = env.upload_ok("p.png", None, png(3, 3)).await;
    let (status, body) = json(
        env.get(&format!(
            "/api/files/{}/extract-text",
            image["id"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    assert_eq!(status, 400);
    error_message(&body);
}
