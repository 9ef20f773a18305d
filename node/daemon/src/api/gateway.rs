//! A read-only IPFS HTTP gateway: `GET /ipfs/<cid>[/][<path>]` serves files and lists directories (a directory
//! with an `index.html` serves that page), fetching from the mesh what this node lacks within the gateway's
//! own timeout ([`ApiState::gateway_timeout`], `node start --gateway-timeout`), else 504.
//!
//! Content from the mesh is untrusted: served path-style on the API's own origin, a page could call the API as
//! same-origin. So path-style answers carry `Content-Security-Policy: sandbox …` without `allow-same-origin`,
//! which gives the page an opaque origin (its requests say `Origin: null`, which the API's guard refuses), and
//! `http://<cid>.ipfs.localhost:PORT/<path>` serves the same content on an origin of its own (as kubo's subdomain
//! gateway does; [`super::guard`] rewrites such requests to `/ipfs/<cid>/<path>` and marks them).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use jobmesh_store::unixfs;
use jobmesh_store::{parse_cid, StoreError};

use super::guard::SubdomainGateway;
use super::{ApiError, ApiResult, ApiState};

/// The sandbox of path-style answers: scripts may run, but in an opaque origin with no access to the API's.
const PATH_STYLE_CSP: &str = "sandbox allow-scripts allow-forms allow-popups allow-downloads";

/// Whether a request came through the subdomain gateway (its own origin) rather than path-style.
type Subdomain = Option<Extension<SubdomainGateway>>;

/// The gateway's routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/ipfs/{cid}", get(root))
        .route("/ipfs/{cid}/", get(root))
        .route("/ipfs/{cid}/{*path}", get(at_path))
}

async fn root(
    State(st): State<ApiState>,
    sub: Subdomain,
    Path(cid): Path<String>,
) -> ApiResult<Response> {
    let mut answer = serve(&st, &cid, "", sub.is_some()).await?;
    sandbox_unless(sub.is_some(), &mut answer);
    Ok(answer)
}

async fn at_path(
    State(st): State<ApiState>,
    sub: Subdomain,
    Path((cid, path)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut answer = serve(&st, &cid, &path, sub.is_some()).await?;
    sandbox_unless(sub.is_some(), &mut answer);
    Ok(answer)
}

/// Adds the path-style sandbox to an answer (not on the subdomain gateway, which is an origin of its own).
fn sandbox_unless(subdomain: bool, answer: &mut Response) {
    let headers = answer.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    if !subdomain {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(PATH_STYLE_CSP),
        );
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NoSuchEntry { .. } | StoreError::NotFound(_) => {
            ApiError(StatusCode::NOT_FOUND, e.to_string())
        }
        StoreError::InvalidCid { .. } => ApiError::bad(e),
        e => ApiError::internal(e),
    }
}

async fn serve(st: &ApiState, cid: &str, path: &str, subdomain: bool) -> ApiResult<Response> {
    let root = parse_cid(cid).map_err(ApiError::bad)?;
    st.node
        .fetch_dag(root, st.gateway_timeout)
        .await
        .map_err(|e| match e {
            jobmesh_p2p::Error::Timeout { .. } => {
                ApiError(StatusCode::GATEWAY_TIMEOUT, e.to_string())
            }
            e => ApiError::internal(e),
        })?;
    let store = st.node.store().clone();
    let (target, listing) = {
        let store = store.clone();
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            let target = unixfs::resolve_path(&store, &root, &path).map_err(store_error)?;
            let listing = unixfs::list_dir(&store, &target).map_err(store_error)?;
            Ok::<_, ApiError>((target, listing))
        })
        .await
        .map_err(ApiError::internal)??
    };
    let (target, name) = match listing {
        Some(entries) => match entries.iter().find(|e| e.name == "index.html") {
            Some(index) => (index.cid, "index.html".to_string()),
            None => return Ok(directory_page(cid, path, &entries, subdomain)),
        },
        None => (
            target,
            path.rsplit('/').next().unwrap_or_default().to_string(),
        ),
    };
    // Streamed like `cat`: a large file never sits in memory whole.
    let body = super::file_body(&store, target).await?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type(&name)),
            (header::ETAG, format!("\"{target}\"")),
            (
                header::CACHE_CONTROL,
                "public, max-age=29030400, immutable".to_string(),
            ),
        ],
        body,
    )
        .into_response())
}

/// The media type for a file name's extension (what gateways commonly send).
fn content_type(name: &str) -> String {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        Some("css") => "text/css",
        Some("js" | "mjs") => "text/javascript",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("wasm") => "application/wasm",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
    .to_string()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn directory_page(
    cid: &str,
    path: &str,
    entries: &[unixfs::DirEntry],
    subdomain: bool,
) -> Response {
    let prefix = if subdomain {
        String::new()
    } else {
        format!("/ipfs/{cid}")
    };
    let base = format!("{prefix}/{}", path.trim_matches('/'));
    let base = base.trim_end_matches('/').to_string();
    let mut rows = String::new();
    for e in entries {
        let href = format!("{base}/{}", urlencode(&e.name));
        rows.push_str(&format!(
            "<li><a href=\"{}\">{}</a> <small>{}</small></li>\n",
            escape(&href),
            escape(&e.name),
            e.cid
        ));
    }
    let title = escape(&format!("/ipfs/{cid}/{path}"));
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>{title}</title>\
         <h1>{title}</h1><ul>\n{rows}</ul>"
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// Percent-encodes a path segment.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
