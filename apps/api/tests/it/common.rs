//! A PostgreSQL + API pair per test, a client, and fixtures made in code.

use std::io::Cursor;

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

/// A PNG whose header claims `side`×`side` pixels (valid CRC), with a tiny IDAT: a
/// decompression bomb in a few hundred bytes.
pub fn png_bomb(side: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    // zlib stream of a few zero bytes (stored block); a real bomb is the same shape.
    chunk(
        &mut out,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x04, 0x00, 0xfb, 0xff, 0, 0, 0, 0, 0, 0x04, 0x00, 0x01,
        ],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A one-page PDF showing `text`, with a correct cross-reference table.
pub fn pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 24 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", index + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
