//! A browser's walk through the demo OpenID Connect provider
//! (deploy/web-tools/oidc-provider.mjs, its development sign-in pages): its
//! redirects followed, its forms filled in (any username, any password,
//! consent given), until it sends the browser back to the web service.
//! Shared by the web service's sign-in tests and the demo's own test.

use std::collections::HashMap;

use http_body_util::BodyExt;
use hyper::header;

/// An HTTP answer as a test reads it.
#[derive(Debug)]
pub struct Answer {
    pub status: hyper::StatusCode,
    pub location: String,
    pub body: String,
}

/// A response as the browser keeps it: its cookies into `cookies`.
pub async fn answer<B>(
    response: hyper::Response<B>,
    cookies: &mut HashMap<String, String>,
) -> Answer
where
    B: hyper::body::Body,
    B::Error: std::fmt::Debug,
{
    for set in response.headers().get_all(header::SET_COOKIE) {
        let Some(pair) = set.to_str().ok().and_then(|s| s.split(';').next()) else {
            continue;
        };
        if let Some((k, v)) = pair.split_once('=') {
            cookies.insert(k.trim().into(), v.into());
        }
    }
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a whole response body")
        .to_bytes();
    Answer {
        status,
        location,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

/// A browser over real HTTP/1: its cookies, kept by name (a browser keeps
/// a host's cookies whatever the port, and so does this).
#[derive(Debug, Default)]
pub struct Browser {
    pub cookies: HashMap<String, String>,
}

impl Browser {
    /// `method` `url`, with a form body when `form` is given.
    pub async fn send(&mut self, method: &str, url: &str, form: Option<&str>) -> Answer {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<hyper::body::Bytes>>();
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header(header::COOKIE, cookies.join("; "));
        if form.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let body =
            http_body_util::Full::new(hyper::body::Bytes::from(form.unwrap_or("").to_string()));
        let request = request.body(body).unwrap_or_else(|e| panic!("{url}: {e}"));
        let response = client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        answer(response, &mut self.cookies).await
    }

    /// Follows the provider's redirects from `url`, signing in as `login`
    /// and consenting on its pages, until it sends the browser to a URL
    /// starting with `back_to`: that URL.
    pub async fn sign_in_at_provider(
        &mut self,
        issuer: &str,
        url: &str,
        login: &str,
        back_to: &str,
    ) -> String {
        let mut next = (String::from("GET"), url.to_string(), None::<String>);
        for _ in 0..20 {
            let (method, url, form) = &next;
            let answer = self.send(method, url, form.as_deref()).await;
            if answer.status.is_redirection() {
                let to = if answer.location.starts_with('/') {
                    format!("{issuer}{}", answer.location)
                } else {
                    answer.location.clone()
                };
                if to.starts_with(back_to) {
                    return to;
                }
                next = ("GET".into(), to, None);
                continue;
            }
            assert_eq!(
                answer.status,
                hyper::StatusCode::OK,
                "{url}: {}",
                answer.body
            );
            let action = answer
                .body
                .split("action=\"")
                .nth(1)
                .and_then(|a| a.split('"').next())
                .unwrap_or_else(|| panic!("no form at {url}: {}", answer.body))
                .to_string();
            // Its hidden fields (which step this is), and the sign-in's.
            let mut fields: Vec<String> = answer
                .body
                .split("<input type=\"hidden\" name=\"")
                .skip(1)
                .filter_map(|rest| {
                    let (name, rest) = rest.split_once('"')?;
                    let value = rest.split("value=\"").nth(1)?.split('"').next()?;
                    Some(format!("{name}={value}"))
                })
                .collect();
            if answer.body.contains("name=\"login\"") {
                fields.push(format!("login={login}&password=anything"));
            }
            let form = fields.join("&");
            let action = if action.starts_with('/') {
                format!("{issuer}{action}")
            } else {
                action
            };
            next = ("POST".into(), action, Some(form));
        }
        panic!("the provider never sent the browser back");
    }
}
