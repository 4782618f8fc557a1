//! The OpenAPI 3.1 document served at `/api/openapi.json`, written by hand next to the
//! routes it describes (`app::router`); a test checks every route is in it.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn document() -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| spec().to_string());
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true,
           "schema": {"type": "string", "format": "uuid"}})
}

fn image_op(summary: &str, body_schema: Value) -> Value {
    json!({
        "post": {
            "summary": summary,
            "parameters": [id_param()],
            "requestBody": {"content": {"application/json": {"schema": body_schema}}},
            "responses": {
                "200": {
                    "description": "The resulting image; Content-Disposition carries its file name",
                    "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}
                },
                "400": error_response("Invalid id or parameters, or the file is not an image"),
                "404": error_response("No such file"),
                "422": error_response("The stored image cannot be decoded or is too large"),
                "503": error_response("Database unavailable"),
            }
        }
    })
}

/// The whole document.
pub fn spec() -> Value {
    let file_ok = |description: &str| {
        json!({"description": description, "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {"success": {"const": true}, "data": {"$ref": "#/components/schemas/FileRecord"}}
        }}}})
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "File Analyzer API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Upload, inspect, transform and download files. Errors use the envelope {success:false, error:{message}}."
        },
        "paths": {
            "/api": {"get": {"summary": "Index of endpoints", "responses": {"200": {"description": "Index"}}}},
            "/api/health": {"get": {"summary": "Liveness (no database)", "responses": {"200": {"description": "The process serves HTTP"}}}},
            "/health": {"get": {"summary": "Liveness, the original container health check path", "responses": {"200": {"description": "The process serves HTTP"}}}},
            "/api/health/ready": {"get": {"summary": "Readiness: database reachable and migrated", "responses": {
                "200": {"description": "Ready"}, "503": {"description": "Not ready"}}}},
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/api/files/upload": {"post": {
                "summary": "Upload one file (multipart part `file`); type judged from content",
                "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}}}}}},
                "responses": {
                    "201": file_ok("Stored"),
                    "400": error_response("No `file` part, empty file, malformed body, or name longer than 255 characters"),
                    "413": error_response("Larger than MAX_FILE_SIZE"),
                    "415": error_response("Content not allowed, not recognised, or contradicting the declared type"),
                    "422": error_response("Corrupt/truncated image, image too large to decode, or malformed PDF"),
                    "503": error_response("Database unavailable"),
                }
            }},
            "/api/files": {"get": {
                "summary": "List files, newest first",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}
                ],
                "responses": {
                    "200": {"description": "A page", "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {
                            "success": {"const": true},
                            "data": {"type": "array", "items": {"$ref": "#/components/schemas/FileRecord"}},
                            "count": {"type": "integer", "description": "Rows in this page"},
                            "total": {"type": "integer", "description": "All files"},
                            "limit": {"type": "integer"}, "offset": {"type": "integer"}
                        }}}}},
                    "400": error_response("limit or offset out of range"),
                    "503": error_response("Database unavailable"),
                }
            }},
            "/api/files/{id}": {
                "get": {"summary": "One file record", "parameters": [id_param()], "responses": {
                    "200": file_ok("The record"), "400": error_response("Not a UUID"),
                    "404": error_response("No such file"), "503": error_response("Database unavailable")}},
                "delete": {"summary": "Delete a file (its contents go when no other file shares them)",
                    "parameters": [id_param()], "responses": {
                    "200": {"description": "Deleted"}, "400": error_response("Not a UUID"),
                    "404": error_response("No such file"), "503": error_response("Database unavailable")}}
            },
            "/api/files/{id}/download": {"get": {
                "summary": "The file's bytes; ETag is the SHA-256; single byte ranges",
                "parameters": [id_param(),
                    {"name": "Range", "in": "header", "schema": {"type": "string"}},
                    {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
                    {"name": "If-Range", "in": "header", "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "Whole file", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
                    "206": {"description": "The requested range"},
                    "304": {"description": "Not modified"},
                    "400": error_response("Not a UUID"), "404": error_response("No such file"),
                    "416": error_response("Range outside the file"), "503": error_response("Database unavailable"),
                }
            }},
            "/api/files/{id}/convert": image_op("Convert to jpeg, png, webp or gif; optional width/height (never enlarged) and quality", json!({
                "type": "object", "required": ["format"], "properties": {
                    "format": {"enum": ["jpeg", "png", "webp", "gif"]},
                    "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1},
                    "quality": {"type": "integer", "minimum": 1, "maximum": 100}}})),
            "/api/files/{id}/compress": image_op("Re-encode smaller in the same format (BMP/TIFF become PNG)", json!({
                "type": "object", "properties": {"quality": {"type": "integer", "minimum": 1, "maximum": 100, "default": 80}}})),
            "/api/files/{id}/resize": image_op("Resize without enlarging", json!({
                "type": "object", "properties": {
                    "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1},
                    "fit": {"enum": ["inside", "cover", "contain", "fill", "outside"], "default": "inside"}}})),
            "/api/files/{id}/crop": image_op("Crop an area inside the image", json!({
                "type": "object", "required": ["x", "y", "width", "height"], "properties": {
                    "x": {"type": "integer", "minimum": 0}, "y": {"type": "integer", "minimum": 0},
                    "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1}}})),
            "/api/files/{id}/extract-text": {"get": {
                "summary": "Text of a PDF or text file", "parameters": [id_param()],
                "responses": {
                    "200": {"description": "{success, data:{text, filename, pages?}}"},
                    "400": error_response("Not a UUID, or not a PDF/text file"),
                    "404": error_response("No such file"), "422": error_response("Malformed PDF"),
                    "503": error_response("Database unavailable"),
                }
            }},
            "/api/files/stats/summary": {"get": {"summary": "Totals (numbers)", "description": "Served from a per-task cache: a change made through another task shows up to 250 ms late, one made through the same task at once.", "responses": {
                "200": {"description": "{success, data:{total_files, total_size, image_count, pdf_count, text_count, other_count, image_size, pdf_size, text_size, other_size, avg_file_size, max_file_size, min_file_size, stored_size}}"},
                "503": error_response("Database unavailable")}}},
            "/api/files/duplicates": {"get": {"summary": "Groups of files with identical contents (by SHA-256)", "responses": {
                "200": {"description": "{success, data:[{original_filename, size, mime_type, duplicate_count, file_ids, sha256}], count}"},
                "503": error_response("Database unavailable")}}},
            "/api/files/batch/delete": {"post": {
                "summary": "Delete several files, all or nothing",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["ids"],
                    "properties": {"ids": {"type": "array", "maxItems": 1000, "items": {"type": "string", "format": "uuid"}}}}}}},
                "responses": {
                    "200": {"description": "{success, message, deletedCount, results:[{id, status:\"deleted\"}]}"},
                    "400": error_response("Missing/empty ids or an id that is not a UUID (error.results says which); nothing deleted"),
                    "404": error_response("Some ids unknown (error.results says which); nothing deleted"),
                    "503": error_response("Database unavailable"),
                }
            }}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "properties": {
                "success": {"const": false},
                "error": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
            }},
            "FileRecord": {"type": "object", "properties": {
                "id": {"type": "string", "format": "uuid"},
                "filename": {"type": "string", "description": "Stored name: <id>.<extension>"},
                "original_filename": {"type": "string", "description": "The client's name, path components removed"},
                "mime_type": {"type": "string", "description": "Judged from the content"},
                "size": {"type": "integer"},
                "file_path": {"type": "string", "description": "files/<id>"},
                "sha256": {"type": "string"},
                "metadata": {"type": "object"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"}
            }}
        }}
    })
}
