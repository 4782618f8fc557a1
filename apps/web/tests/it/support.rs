//! Starting the web frontend in-process and talking to it like a browser without JavaScript.

use file_analyzer_web::Config;
use reqwest::header;

/// Serves the frontend on 127.0.0.1:0 against `api_url`; returns its base URL. `/` waits
/// up to 10 s for the API, so that a busy test machine never shows the banner by accident.
pub async fn start_web(api_url: &str) -> String {
    let mut config = Config::with_api_url(api_url);
    config.home_api_timeout = std::time::Duration::from_secs(10);
    start_web_with(config).await
}

/// Serves the frontend on 127.0.0.1:0 with `config`; returns its base URL.
pub async fn start_web_with(config: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(file_analyzer_web::serve(
        listener,
        config,
        std::future::pending(),
    ));
    base
}

/// A base URL where nothing listens.
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    base
}

/// A client that does not follow redirects, so tests see the 303 and its cookie.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` part of a response's `Set-Cookie` for `name`.
pub fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")))
}

/// Follows a 303 by hand, carrying the flash cookie like a browser; returns the page's HTML.
pub async fn follow(base: &str, response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 303, "expected a redirect");
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let flash = cookie(&response, "flash").expect("the redirect carries a flash cookie");
    let page = client()
        .get(format!("{base}{location}"))
        .header(header::COOKIE, flash)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        cookie(&page, "flash").is_some_and(|c| c == "flash="),
        "the page that shows a flash message deletes it"
    );
    (location, page.text().await.unwrap())
}

/// Text of the page with tags removed and whitespace collapsed, for "the page says" checks.
pub fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
