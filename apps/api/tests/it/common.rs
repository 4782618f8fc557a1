//! A PostgreSQL + API pair per test, a client, and fixtures made in code.

use std::io::Cursor;

pub use berth_testkit::fixtures::{pdf, png_blank, png_bomb};
use berth_testkit::{Postgres, Server};
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

pub struct Env {
    pub pg: Postgres,
    pub api: Server,
    pub client: reqwest::Client,
}

impl Env {
    /// PostgreSQL plus one API process, migrated and ready.
    pub fn start() -> Env {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[(&str, &str)]) -> Env {
        let pg = Postgres::start();
        let api = spawn_api(&pg, extra);
        api.wait_until_ok("/api/health/ready");
        Env {
            pg,
            api,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.base_url())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    /// Upload `bytes` as part `file` named `name`, declared as `mime` (if any).
    pub async fn upload(
        &self,
        name: &str,
        mime: Option<&str>,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        upload_to(&self.client, &self.api, name, mime, bytes).await
    }

    /// Upload and return the record; panics unless 201.
    pub async fn upload_ok(&self, name: &str, mime: Option<&str>, bytes: Vec<u8>) -> Value {
        let response = self.upload(name, mime, bytes).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body["data"].clone()
    }

    /// `SELECT count(*)` of a table.
    pub fn count(&self, table: &str) -> i64 {
        self.pg
            .psql(&format!("SELECT count(*) FROM {table}"))
            .parse()
            .unwrap()
    }
}

pub fn spawn_api(pg: &Postgres, extra: &[(&str, &str)]) -> Server {
    let mut env: Vec<(String, String)> = pg.env();
    env.push(("FRONTEND_URL".into(), "http://frontend.test".into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Server::spawn("file-analyzer-api", env, "/api/health")
}

pub async fn upload_to(
    client: &reqwest::Client,
    api: &Server,
    name: &str,
    mime: Option<&str>,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let mut part = Part::bytes(bytes).file_name(name.to_owned());
    if let Some(mime) = mime {
        part = part.mime_str(mime).unwrap();
    }
    client
        .post(format!("{}/api/files/upload", api.base_url()))
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

/// JSON body plus status.
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Assert the error envelope and return its message.
pub fn error_message(body: &Value) -> String {
    assert_eq!(body["success"], false, "{body}");
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message in {body}"))
        .to_owned()
}

/// A gradient so that encoders have something to compress.
pub fn picture(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgba8(RgbaImage::from_fn(width, height, |x, y| {
        Rgba([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
            255,
        ])
    }))
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(image.to_rgb8())
            .write_to(&mut out, format)
            .unwrap(),
        _ => image.write_to(&mut out, format).unwrap(),
    }
    out.into_inner()
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    encode(&picture(width, height), ImageFormat::Png)
}

/// Decode a response body to check what it really is.
pub fn decode(bytes: &[u8]) -> (ImageFormat, DynamicImage) {
    let format = image::guess_format(bytes).unwrap();
    (format, image::load_from_memory(bytes).unwrap())
}
