//! Image operations (convert, compress, resize, crop) and text extraction. The result is
//! returned, not stored: its name and Content-Type always match its bytes.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use image::DynamicImage;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::cpu::{image_error, pdf_error, run_blocking};
use crate::error::AppError;
use crate::extract::{JsonBody, file_id, whole_number};
use crate::imaging::{self, Fit, ImageFailure, MAX_SIDE, Output};
use crate::names;
use crate::pdf;
use crate::routes::files::find;
use crate::sniff::{Family, FileType};
use crate::store::{self, FileRow};

/// JPEG quality unless the request says otherwise: the original's (sharp's) default; 90
/// made files 2.2 times larger for no visible gain.
const JPEG_QUALITY: u8 = 80;

/// A stored file with its contents and type.
struct Loaded {
    row: FileRow,
    content: Vec<u8>,
    file_type: FileType,
}

async fn load(state: &AppState, raw_id: &str) -> Result<Loaded, AppError> {
    let id = file_id(raw_id)?;
    let row = find(state, id).await?;
    let file_type = FileType::from_mime(&row.mime_type).ok_or_else(|| {
        AppError::bad_request(format!(
            "file {id} has an unsupported type {}",
            row.mime_type
        ))
    })?;
    let content = store::read_blob(state.db.pool()?, &row.sha256, None)
        .await
        .map_err(|e| AppError::db("reading file contents", e))?
        .ok_or_else(|| AppError::not_found(format!("file {id} not found")))?;
    Ok(Loaded {
        row,
        content,
        file_type,
    })
}

async fn load_image(state: &AppState, raw_id: &str) -> Result<Loaded, AppError> {
    let loaded = load(state, raw_id).await?;
    if loaded.file_type.family() != Family::Image {
        return Err(AppError::bad_request(format!(
            "file {} is {}, not an image",
            loaded.row.id, loaded.row.mime_type
        )));
    }
    Ok(loaded)
}

fn image_response(output: Output, name: String) -> Response {
    let mut response = Body::from(output.bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(output.file_type.mime()),
    );
    if let Ok(value) = HeaderValue::from_str(&names::content_disposition(&name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn output_name(prefix: &str, original: &str, input: FileType, output: FileType) -> String {
    if input == output {
        format!("{prefix}{original}")
    } else {
        format!(
            "{prefix}{}",
            names::with_extension(original, output.extension())
        )
    }
}

fn quality(body: &Value, default: u8) -> Result<u8, AppError> {
    Ok(whole_number(body.get("quality"), "quality", 1, 100)?.map_or(default, |q| q as u8))
}

fn side(body: &Value, field: &str) -> Result<Option<u32>, AppError> {
    Ok(whole_number(body.get(field), field, 1, u64::from(MAX_SIDE))?.map(|n| n as u32))
}

/// `{format: jpeg|png|webp, width?, height?, quality?}` -> `<stem>.<format>`.
pub async fn convert(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, AppError> {
    let format = body
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let target = match format.as_str() {
        "jpeg" | "jpg" => FileType::Jpeg,
        "png" => FileType::Png,
        "webp" => FileType::Webp,
        "gif" => FileType::Gif,
        _ => {
            return Err(AppError::bad_request(
                "`format` must be one of jpeg, png, webp, gif",
            ));
        }
    };
    let (width, height) = (side(&body, "width")?, side(&body, "height")?);
    let quality = quality(&body, JPEG_QUALITY)?;
    let loaded = load_image(&state, &id).await?;
    let input = loaded.file_type;
    let name = names::with_extension(&loaded.row.original_filename, &format);
    let output = run_blocking(&state, move || {
        let fit = Fit::Inside;
        let decoded = imaging::decode_for_size(&loaded.content, input, |original| {
            imaging::resampled_size(original, width, height, fit)
        })?;
        let image = imaging::resize(&decoded.image, decoded.original, width, height, fit);
        imaging::encode(&image, target, quality, false)
    })
    .await?
    .map_err(image_error)?;
    Ok(image_response(output, name))
}

/// `{quality?=80}`: re-encode in the same format (JPEG at that quality, PNG and WebP
/// losslessly with the best compression, GIF frame by frame keeping the animation); formats we cannot write compactly (BMP, TIFF)
/// become PNG and are renamed. Never returns something larger than the original.
pub async fn compress(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, AppError> {
    let quality = quality(&body, JPEG_QUALITY)?;
    let loaded = load_image(&state, &id).await?;
    let input = loaded.file_type;
    let target = match input {
        FileType::Bmp | FileType::Tiff => FileType::Png,
        other => other,
    };
    let name = output_name("compressed_", &loaded.row.original_filename, input, target);
    let output = run_blocking(&state, move || {
        let output = if input == FileType::Gif {
            imaging::recompress_gif(&loaded.content)?
        } else {
            let decoded = imaging::decode(&loaded.content, input)?;
            imaging::encode(&decoded.image, target, quality, true)?
        };
        Ok::<_, ImageFailure>(
            if target == input && output.bytes.len() >= loaded.content.len() {
                Output {
                    bytes: loaded.content,
                    file_type: input,
                }
            } else {
                output
            },
        )
    })
    .await?
    .map_err(image_error)?;
    Ok(image_response(output, name))
}

#[derive(Deserialize)]
struct FitField {
    fit: Option<Fit>,
}

/// `{width?, height?, fit?}`: never enlarges; same format as the original.
pub async fn resize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, AppError> {
    let (width, height) = (side(&body, "width")?, side(&body, "height")?);
    if width.is_none() && height.is_none() {
        return Err(AppError::bad_request("give `width`, `height` or both"));
    }
    let fit = serde_json::from_value::<FitField>(body.clone())
        .map_err(|_| {
            AppError::bad_request("`fit` must be one of inside, cover, contain, fill, outside")
        })?
        .fit
        .unwrap_or_default();
    edit_keeping_format(&state, &id, "resized_", move |content, input| {
        let decoded = imaging::decode_for_size(content, input, |original| {
            imaging::resampled_size(original, width, height, fit)
        })?;
        Ok(imaging::resize(
            &decoded.image,
            decoded.original,
            width,
            height,
            fit,
        ))
    })
    .await
}

/// `{x, y, width, height}`: all whole numbers, x/y may be 0, the area inside the image.
pub async fn crop(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, AppError> {
    let mut values = [0u32; 4];
    for (slot, field) in values.iter_mut().zip(["x", "y", "width", "height"]) {
        let min = if field.len() == 1 { 0 } else { 1 };
        *slot =
            whole_number(body.get(field), field, min, u64::from(MAX_SIDE))?.ok_or_else(|| {
                AppError::bad_request(format!("`{field}` is required (x, y, width, height)"))
            })? as u32;
    }
    let [x, y, width, height] = values;
    edit_keeping_format(&state, &id, "cropped_", move |content, input| {
        let image = imaging::decode(content, input)?.image;
        imaging::check_crop(image.width(), image.height(), x, y, width, height)
            .map_err(ImageFailure::Invalid)?;
        Ok(image.crop_imm(x, y, width, height))
    })
    .await
}

/// Make an image from the stored one with `edit` (given its bytes and type, so that it
/// decodes only what it needs), and return it in the original's format as
/// `<prefix><original name>` (the resize and crop shape).
async fn edit_keeping_format(
    state: &AppState,
    raw_id: &str,
    prefix: &str,
    edit: impl FnOnce(&[u8], FileType) -> Result<DynamicImage, ImageFailure> + Send + 'static,
) -> Result<Response, AppError> {
    let loaded = load_image(state, raw_id).await?;
    let input = loaded.file_type;
    let name = output_name(prefix, &loaded.row.original_filename, input, input);
    let output = run_blocking(state, move || {
        let image = edit(&loaded.content, input)?;
        imaging::encode(&image, input, JPEG_QUALITY, false)
    })
    .await?
    .map_err(image_error)?;
    Ok(image_response(output, name))
}

/// `GET .../extract-text`: a PDF's text, or a text file's contents.
pub async fn extract_text(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let loaded = load(&state, &id).await?;
    let filename = loaded.row.original_filename.clone();
    let (text, pages) = match loaded.file_type.family() {
        Family::Pdf => {
            let (text, pages) = run_blocking(&state, move || pdf::extract_text(&loaded.content))
                .await?
                .map_err(pdf_error)?;
            (text, Some(pages))
        }
        Family::Text => (String::from_utf8_lossy(&loaded.content).into_owned(), None),
        Family::Image => {
            return Err(AppError::client(
                StatusCode::BAD_REQUEST,
                format!(
                    "file {} is {}; text can be extracted from PDF and text files only",
                    loaded.row.id, loaded.row.mime_type
                ),
            ));
        }
    };
    let mut data = json!({ "text": text, "filename": filename });
    if let Some(pages) = pages {
        data["pages"] = json!(pages);
    }
    Ok(Json(json!({ "success": true, "data": data })).into_response())
}
