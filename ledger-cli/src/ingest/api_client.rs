//! A forge API client that behaves: `Link` pagination (GitLab's `X-Next-Page` where there
//! is no `Link`), waits out primary rate limits (`X-RateLimit-Remaining` /
//! `X-RateLimit-Reset`; GitLab's `RateLimit-Remaining` / `RateLimit-Reset`) and secondary ones
//! (403/429 with `Retry-After`) with the reason on the progress bar, retries 5xx answers and connection
//! errors with backoff, asks again with `If-None-Match` for what it has cached, and turns
//! 401/404 into an error that says what to check. HTTP itself is reqwest's.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _, Result};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, ETAG, IF_NONE_MATCH, LINK, RETRY_AFTER, USER_AGENT};
use reqwest::StatusCode;

/// Attempts per request for server errors and connection failures.
const ATTEMPTS: u32 = 5;
/// Rate-limit answers one request may get before the run gives up.
const LIMITED: u32 = 20;
/// Most a single wait for a rate limit may last before the run gives up with an error.
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// Which forge an [`ApiClient`] talks to: the headers it sends and what its errors say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forge {
    /// GitHub's REST API.
    GitHub,
    /// GitLab's REST API v4.
    GitLab,
}

impl Forge {
    fn token_hint(self) -> &'static str {
        match self {
            Forge::GitHub => "give one with --token-file or GITHUB_TOKEN (read access to pull requests, checks and deployments)",
            Forge::GitLab => "give one with --token-file or GITLAB_TOKEN (a personal, project or group access token with the read_api scope)",
        }
    }
    fn name_hint(self) -> &'static str {
        match self {
            Forge::GitHub => "check the repository name (OWNER/NAME) and --api-url, and that the token can read the repository (a private repository answers 404 to a token without access)",
            Forge::GitLab => "check the project path (GROUP/NAME, subgroups included) and --api-url, and that the token can read the project (a private project answers 404 to a token without access)",
        }
    }
}

/// One response: where it came from and its exact body.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The resource path (no host, no query).
    pub resource: String,
    /// The body, as received (or, on `304 Not Modified`, as cached).
    pub body: Vec<u8>,
    /// The next page, from the `Link` header.
    pub next: Option<String>,
}

/// What a run did besides fetching: counted for its report.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests sent (retries included).
    pub requests: AtomicU64,
    /// Answers `304 Not Modified`.
    pub not_modified: AtomicU64,
    /// Retries after a server error or a failed connection.
    pub retries: AtomicU64,
    /// Waits for a rate limit, and their total in milliseconds.
    pub waits: AtomicU64,
    /// Total waiting, in milliseconds.
    pub waited_ms: AtomicU64,
}

/// The client. Cheap to share across tasks.
pub struct ApiClient {
    http: reqwest::Client,
    forge: Forge,
    base: String,
    /// `Authorization` header value.
    auth: Option<String>,
    /// Where responses are kept with their ETags.
    cache: Option<PathBuf>,
    /// Until when every request waits (a rate limit was exhausted), in ms since the epoch.
    paused_until: Mutex<u64>,
    /// Shown while waiting.
    bar: indicatif::ProgressBar,
    /// Base of the exponential backoff.
    backoff: Duration,
    /// What happened.
    pub counters: Counters,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl ApiClient {
    /// A client for `forge`'s API at `base` (`https://api.github.com`,
    /// `https://gitlab.com/api/v4`), with `auth` as the `Authorization` header value, caching
    /// in `cache`.
    ///
    /// # Errors
    /// The HTTP client cannot be built (no TLS roots), or `cache` cannot be created.
    pub fn new(
        forge: Forge,
        base: &str,
        auth: Option<String>,
        cache: Option<PathBuf>,
        bar: indicatif::ProgressBar,
    ) -> Result<ApiClient> {
        if let Some(dir) = &cache {
            std::fs::create_dir_all(dir).with_context(|| format!("creating the API cache {}", dir.display()))?;
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        let backoff = std::env::var("LEDGER_API_BACKOFF_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_millis(500), Duration::from_millis);
        Ok(ApiClient {
            http,
            forge,
            base: base.trim_end_matches('/').to_string(),
            auth,
            cache,
            paused_until: Mutex::new(0),
            bar,
            backoff,
            counters: Counters::default(),
        })
    }

    /// The URL of `path_and_query` (`/repos/o/r/pulls?state=closed`) on this API.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    /// Every page of `url`, following `Link: <…>; rel="next"`.
    ///
    /// # Errors
    /// As [`ApiClient::get`].
    pub async fn get_all(&self, url: &str) -> Result<Vec<Fetched>> {
        let mut pages = vec![];
        let mut next = Some(url.to_string());
        while let Some(u) = next {
            let page = self.get(&u).await?;
            next = page.next.clone();
            pages.push(page);
        }
        Ok(pages)
    }

    /// One response for `url`, after whatever waits and retries it takes.
    ///
    /// # Errors
    /// 401 and 404 (with what to check), another 4xx, a 5xx or a failed connection
    /// [`ATTEMPTS`] times, a rate-limit wait longer than an hour.
    pub async fn get(&self, url: &str) -> Result<Fetched> {
        let resource = resource_of(url);
        let cached = self.cached(url);
        let (mut attempt, mut limited) = (0u32, 0u32);
        loop {
            self.wait_for_pause().await?;
            let mut req =
                self.http.get(url).header(USER_AGENT, concat!("provenance-ledger/", env!("CARGO_PKG_VERSION")));
            req = match self.forge {
                Forge::GitHub => {
                    req.header(ACCEPT, "application/vnd.github+json").header("X-GitHub-Api-Version", "2022-11-28")
                }
                Forge::GitLab => req.header(ACCEPT, "application/json"),
            };
            if let Some(a) = &self.auth {
                req = req.header(AUTHORIZATION, a);
            }
            if let Some((etag, _, _)) = &cached {
                req = req.header(IF_NONE_MATCH, etag);
            }
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    attempt += 1;
                    if attempt >= ATTEMPTS {
                        return Err(anyhow!("{url}: {e} ({attempt} attempts)"));
                    }
                    self.retry_pause(attempt, &format!("{e}")).await;
                    continue;
                }
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            self.note_rate_limit(&headers);
            match status {
                StatusCode::NOT_MODIFIED => {
                    let Some((_, body, next)) = cached else {
                        bail!("{url}: 304 Not Modified for a request that had no cached copy");
                    };
                    self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
                    // A 304 need not repeat the `Link` header: the cached one still holds.
                    return Ok(Fetched { resource, body, next: next_page(url, &headers).or(next) });
                }
                s if s.is_success() => {
                    let body = resp.bytes().await.with_context(|| format!("{url}: reading the body"))?.to_vec();
                    let next = next_page(url, &headers);
                    if let Some(etag) = headers.get(ETAG).and_then(|v| v.to_str().ok()) {
                        self.store(url, etag, &body, next.as_deref());
                    }
                    return Ok(Fetched { resource, body, next });
                }
                StatusCode::UNAUTHORIZED => bail!(
                    "{url}: 401 Unauthorized: the token is missing, expired or revoked; {}",
                    self.forge.token_hint()
                ),
                StatusCode::NOT_FOUND => bail!("{url}: 404 Not Found: {}", self.forge.name_hint()),
                StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => {
                    let reset_known =
                        rate_limit(&headers, "remaining") == Some(0) && rate_limit(&headers, "reset").is_some();
                    let retry_after = header_u64(&headers, RETRY_AFTER.as_str());
                    if retry_after.is_some() || reset_known {
                        limited += 1;
                        if limited > LIMITED {
                            bail!("{url}: {status}: still rate limited after {LIMITED} waits; run again later");
                        }
                    }
                    if let Some(secs) = retry_after {
                        self.pause(
                            now_ms() + secs * 1000,
                            &format!("secondary rate limit: waiting {secs} s (Retry-After)"),
                        )?;
                        continue;
                    }
                    if reset_known {
                        continue; // `note_rate_limit` set the pause until the reset
                    }
                    let text = resp.text().await.unwrap_or_default();
                    bail!("{url}: {status}: {}", text.chars().take(300).collect::<String>());
                }
                s if s.is_server_error() => {
                    attempt += 1;
                    if attempt >= ATTEMPTS {
                        bail!("{url}: {status} ({attempt} attempts)");
                    }
                    self.retry_pause(attempt, status.as_str()).await;
                }
                _ => {
                    let text = resp.text().await.unwrap_or_default();
                    bail!("{url}: {status}: {}", text.chars().take(300).collect::<String>());
                }
            }
        }
    }

    /// After an answer whose `X-RateLimit-Remaining` is 0: every request waits until
    /// `X-RateLimit-Reset` (seconds since the epoch).
    fn note_rate_limit(&self, headers: &HeaderMap) {
        if rate_limit(headers, "remaining") != Some(0) {
            return;
        }
        let Some(reset) = rate_limit(headers, "reset") else { return };
        let until = reset.saturating_mul(1000).max(now_ms()) + 1000;
        let when = jiff::Timestamp::from_millisecond(until as i64).map(|t| t.to_string()).unwrap_or_default();
        // A reset too far away is reported by `pause`'s error on the next request.
        let _ = self.pause(until, &format!("rate limit exhausted: waiting until {when}"));
    }

    fn pause(&self, until_ms: u64, why: &str) -> Result<()> {
        if until_ms.saturating_sub(now_ms()) > LONGEST_WAIT.as_millis() as u64 {
            bail!("{why}: more than an hour; run again later");
        }
        let mut p = self.paused_until.lock().map_err(|_| anyhow!("rate-limit state poisoned"))?;
        if until_ms > *p {
            *p = until_ms;
            self.bar.set_message(why.to_string());
        }
        Ok(())
    }

    async fn wait_for_pause(&self) -> Result<()> {
        let until = *self.paused_until.lock().map_err(|_| anyhow!("rate-limit state poisoned"))?;
        let now = now_ms();
        if until > now {
            let ms = until - now;
            if ms > LONGEST_WAIT.as_millis() as u64 {
                bail!("a rate-limit wait of {} s: more than an hour; run again later", ms / 1000);
            }
            self.counters.waits.fetch_add(1, Ordering::Relaxed);
            self.counters.waited_ms.fetch_add(ms, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.bar.set_message(String::new());
        }
        Ok(())
    }

    async fn retry_pause(&self, attempt: u32, why: &str) {
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        let wait = self.backoff * 2u32.pow(attempt - 1);
        self.bar.set_message(format!("{why}: retrying in {} ms", wait.as_millis()));
        tokio::time::sleep(wait).await;
        self.bar.set_message(String::new());
    }

    /// The cached ETag, body and next page of `url`.
    fn cached(&self, url: &str) -> Option<(String, Vec<u8>, Option<String>)> {
        let dir = self.cache.as_ref()?;
        let key = cache_key(url);
        let etag = std::fs::read_to_string(dir.join(format!("{key}.etag"))).ok()?;
        let body = std::fs::read(dir.join(format!("{key}.body"))).ok()?;
        let next = std::fs::read_to_string(dir.join(format!("{key}.next"))).ok().filter(|n| !n.is_empty());
        Some((etag, body, next))
    }

    /// Keeps `body` with its next page and its `etag` (the ETag last, so that it is never
    /// kept without what it stands for). A cache that cannot be written costs only a full
    /// answer next time.
    fn store(&self, url: &str, etag: &str, body: &[u8], next: Option<&str>) {
        let Some(dir) = &self.cache else { return };
        let key = cache_key(url);
        // An ETag left from an older body must not vouch for this one while it is written.
        let _ = std::fs::remove_file(dir.join(format!("{key}.etag")));
        if std::fs::write(dir.join(format!("{key}.body")), body).is_ok()
            && std::fs::write(dir.join(format!("{key}.next")), next.unwrap_or_default()).is_ok()
        {
            let _ = std::fs::write(dir.join(format!("{key}.etag")), etag);
        }
    }
}

fn cache_key(url: &str) -> String {
    hex::encode(ledger_core::record::document_digest(url).value())
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A rate-limit header: GitHub's `X-RateLimit-<what>`, else GitLab's `RateLimit-<what>`.
fn rate_limit(headers: &HeaderMap, what: &str) -> Option<u64> {
    header_u64(headers, &format!("x-ratelimit-{what}")).or_else(|| header_u64(headers, &format!("ratelimit-{what}")))
}

/// The next page after `url`: the `Link` header's, else (GitLab) `url` with `page` set to
/// `X-Next-Page`.
fn next_page(url: &str, headers: &HeaderMap) -> Option<String> {
    if let Some(next) = next_link(headers) {
        return Some(next);
    }
    let page = headers.get("x-next-page")?.to_str().ok()?.trim();
    if page.is_empty() || !page.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut u = reqwest::Url::parse(url).ok()?;
    let pairs: Vec<(String, String)> =
        u.query_pairs().filter(|(k, _)| k != "page").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    u.query_pairs_mut().clear().extend_pairs(pairs).append_pair("page", page);
    Some(u.to_string())
}

/// The path of `url`, without scheme, host or query.
fn resource_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split('?').next().unwrap_or(path).to_string()
}

/// The `rel="next"` target of a `Link` header (RFC 8288).
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            "<https://api.github.com/x?page=1>; rel=\"prev\", <https://api.github.com/x?page=3>; rel=\"next\", <https://api.github.com/x?page=9>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://api.github.com/x?page=3"));
        h.insert(LINK, "<https://a/x?page=1>; rel=\"first\"".parse().unwrap());
        assert_eq!(next_link(&h), None);
        assert_eq!(resource_of("https://api.github.com/repos/o/r/pulls?page=2"), "/repos/o/r/pulls");
        let mut g = HeaderMap::new();
        g.insert("x-next-page", "3".parse().unwrap());
        assert_eq!(
            next_page("https://gl.example/api/v4/projects/1/merge_requests?state=merged&page=2", &g).as_deref(),
            Some("https://gl.example/api/v4/projects/1/merge_requests?state=merged&page=3")
        );
        g.insert("x-next-page", "".parse().unwrap());
        assert_eq!(next_page("https://gl.example/api/v4/x?page=9", &g), None);
        g.insert("ratelimit-remaining", "0".parse().unwrap());
        assert_eq!(rate_limit(&g, "remaining"), Some(0));
        assert_eq!(resource_of("http://127.0.0.1:9/repos/o/r"), "/repos/o/r");
    }
}
