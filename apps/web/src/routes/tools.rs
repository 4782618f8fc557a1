//! Image tools (convert, compress, resize, crop: the result comes back as a download) and
//! text extraction.

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::file_id;
use crate::AppState;
use crate::error::{PageError, chain};
use crate::flash::Flash;
use crate::views::{Layout, Section, html};

/// The largest width or height a form may ask for (the API never enlarges anyway).
const MAX_DIMENSION: u64 = 20_000;

/// A form's fields, by name (the last value wins).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// An optional whole number in `min..=max`, named `label` in the error.
    fn number(&self, name: &str, label: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(text) => match text.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(format!(
                    "{label} must be a whole number from {min} to {max}."
                )),
            },
        }
    }

    fn required(&self, name: &str, label: &str, min: u64, max: u64) -> Result<u64, String> {
        self.number(name, label, min, max)?
            .ok_or_else(|| format!("{label} is required."))
    }

    fn choice(&self, name: &str, label: &str, choices: &[&str]) -> Result<Option<String>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(value) if choices.contains(&value) => Ok(Some(value.to_owned())),
            Some(_) => Err(format!("{label} must be one of {}.", choices.join(", "))),
        }
    }
}

/// The API's JSON parameters for `operation`, from the form; `Err` is a message for users.
fn parameters(operation: &str, fields: &Fields) -> Result<Value, String> {
    let mut params = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            params.insert(key.to_owned(), value);
        }
    };
    match operation {
        "convert" => {
            let format = fields
                .choice("format", "Format", &["jpeg", "png", "webp"])?
                .ok_or("Choose a format to convert to.")?;
            put("format", Some(json!(format)));
            put(
                "quality",
                fields
                    .number("quality", "Quality", 1, 100)?
                    .map(Value::from),
            );
            put(
                "width",
                fields
                    .number("width", "Width", 1, MAX_DIMENSION)?
                    .map(Value::from),
            );
            put(
                "height",
                fields
                    .number("height", "Height", 1, MAX_DIMENSION)?
                    .map(Value::from),
            );
        }
        "compress" => {
            put(
                "quality",
                fields
                    .number("quality", "Quality", 1, 100)?
                    .map(Value::from),
            );
        }
        "resize" => {
            let width = fields.number("width", "Width", 1, MAX_DIMENSION)?;
            let height = fields.number("height", "Height", 1, MAX_DIMENSION)?;
            if width.is_none() && height.is_none() {
                return Err("Give a width, a height, or both.".into());
            }
            put("width", width.map(Value::from));
            put("height", height.map(Value::from));
            let fits = ["inside", "cover", "contain", "fill", "outside"];
            put("fit", fields.choice("fit", "Fit", &fits)?.map(Value::from));
        }
        "crop" => {
            put(
                "x",
                Some(fields.required("x", "Left (x)", 0, MAX_DIMENSION)?.into()),
            );
            put(
                "y",
                Some(fields.required("y", "Top (y)", 0, MAX_DIMENSION)?.into()),
            );
            let width = fields.required("width", "Width", 1, MAX_DIMENSION)?;
            let height = fields.required("height", "Height", 1, MAX_DIMENSION)?;
            put("width", Some(width.into()));
            put("height", Some(height.into()));
        }
        _ => return Err("There is no such image tool.".into()),
    }
    Ok(Value::Object(params))
}

/// `POST /files/{id}/tools/{operation}`: asks the API for the new image and streams it to
/// the browser as a download. Problems go back to the file's page as a message.
pub async fn image_operation(
    State(app): State<AppState>,
    Path((id, operation)): Path<(String, String)>,
    form: Bytes,
) -> Result<Response, PageError> {
    let id = file_id(&id)?;
    let back = format!("/files/{id}#tools");
    let params = match parameters(&operation, &Fields::parse(&form)) {
        Ok(params) => params,
        Err(message) => return Ok(Flash::error(message).redirect(&back)),
    };
    let response = match app.api.image_operation(id, &operation, &params).await {
        Ok(response) => response,
        Err(error) => {
            tracing::info!(error = %chain(&error), operation, "an image tool failed");
            return Ok(Flash::error(error.user_message()).redirect(&back));
        }
    };
    let mut headers = HeaderMap::new();
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_DISPOSITION,
    ] {
        if let Some(value) = response.headers().get(&name) {
            headers.insert(name, value.clone());
        }
    }
    headers
        .entry(header::CONTENT_DISPOSITION)
        .or_insert(HeaderValue::from_static("attachment"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((headers, Body::from_stream(response.bytes_stream())).into_response())
}

#[derive(Template)]
#[template(path = "text.html")]
struct TextPage {
    layout: Layout,
    file_href: String,
    file_name: String,
    text: String,
    words: usize,
}

/// `GET /files/{id}/text`: the text of a PDF, ready to copy.
pub async fn text(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = file_id(&id)?;
    let (file, extracted) = tokio::join!(app.api.file(id), app.api.extract_text(id));
    let file = file?;
    let text = extracted?.text;
    let view = TextPage {
        layout: Layout::new(
            format!("Text of {}", file.original_filename),
            Section::Files,
            &headers,
        ),
        file_href: format!("/files/{id}"),
        file_name: file.original_filename,
        words: text.split_whitespace().count(),
        text,
    };
    Ok(html(StatusCode::OK, &view))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(operation: &str, form: &str) -> Result<Value, String> {
        parameters(operation, &Fields::parse(form.as_bytes()))
    }

    #[test]
    fn empty_fields_are_left_out() {
        assert_eq!(
            params("resize", "width=100&height=&fit=cover").unwrap(),
            json!({"width": 100, "fit": "cover"})
        );
        assert_eq!(params("compress", "quality=").unwrap(), json!({}));
        assert_eq!(
            params("convert", "format=webp&quality=70").unwrap(),
            json!({"format": "webp", "quality": 70})
        );
    }

    #[test]
    fn crop_accepts_zero_offsets_and_requires_all_four() {
        assert_eq!(
            params("crop", "x=0&y=0&width=10&height=5").unwrap(),
            json!({"x": 0, "y": 0, "width": 10, "height": 5})
        );
        assert!(
            params("crop", "x=0&y=0&width=10")
                .unwrap_err()
                .contains("Height")
        );
    }

    #[test]
    fn bad_values_explain_themselves() {
        assert!(params("resize", "").unwrap_err().contains("width"));
        assert!(params("resize", "width=-3").unwrap_err().contains("Width"));
        assert!(
            params("resize", "width=3&fit=stretch")
                .unwrap_err()
                .contains("Fit")
        );
        assert!(
            params("convert", "format=bmp")
                .unwrap_err()
                .contains("Format")
        );
        assert!(
            params("compress", "quality=101")
                .unwrap_err()
                .contains("Quality")
        );
        assert!(params("explode", "").is_err());
    }
}
