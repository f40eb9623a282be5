//! A real browser for the dashboard's tests: headless Chromium driven through ChromeDriver's W3C WebDriver
//! endpoint, with a small synchronous client over the harness's own `reqwest`.
//!
//! Why not a WebDriver crate: the handful of commands the tests use (navigate, find, click, type, read text,
//! cookies, screenshots) are one JSON request each, and a blocking client fits the rest of this harness, which
//! drives processes from plain test threads.
//!
//! The browser talks real TLS to the real `dockhand-server` process. It does not know the server's private CA,
//! so the session is opened with `acceptInsecureCerts` (the WebDriver capability for exactly that); the TLS
//! handshake, the `Secure` cookie and everything above them are the real thing.
//!
//! Chromium and ChromeDriver come from Debian (`apt-get install chromium chromium-driver`; `.ci/run` installs
//! them). Where they are missing, [`Browser::start`] fails with that command in the message: no silent skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// The key WebDriver uses for an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session; ends the session and ChromeDriver on drop.
pub struct Browser {
    driver: Child,
    http: reqwest::blocking::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    /// Where downloads land.
    pub downloads: PathBuf,
    _profile: tempfile::TempDir,
}

/// An element on the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

fn find_program(env: &str, default: &str) -> Result<PathBuf> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if path.exists() {
        Ok(path)
    } else {
        bail!(
            "{} not found (set {env} to use another): the browser tests need Debian's Chromium and ChromeDriver; \
             install them with `sudo apt-get install -y chromium chromium-driver` (.ci/run does this)",
            path.display()
        )
    }
}

impl Browser {
    /// Starts ChromeDriver on a free port and opens a headless Chromium session with downloads going to
    /// `downloads`.
    pub fn start(downloads: &Path) -> Result<Browser> {
        let chromium = find_program("DOCKHAND_CHROMIUM", "/usr/bin/chromium")?;
        let chromedriver = find_program("DOCKHAND_CHROMEDRIVER", "/usr/bin/chromedriver")?;
        let port = crate::free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawn {}", chromedriver.display()))?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            http,
            session: String::new(),
            downloads: downloads.to_path_buf(),
            _profile: tempfile::tempdir()?,
        };
        // Ready when /status says so.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = browser
                .http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .and_then(|v| v["value"]["ready"].as_bool())
                .unwrap_or(false);
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready on port {port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::create_dir_all(downloads)?;
        let profile = browser._profile.path().display().to_string();
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "acceptInsecureCerts": true,
                    "goog:chromeOptions": {
                        "binary": chromium,
                        // The flags this machine needs: no sandbox as root, and no background connections
                        // (the closed network refuses them, which slows every start).
                        "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            "--disable-quic", "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                            format!("--user-data-dir={profile}"),
                        ],
                        "prefs": {
                            "download.default_directory": downloads.display().to_string(),
                            "download.prompt_for_download": false,
                        },
                    },
                }
            }
        });
        let resp: Value = browser
            .http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .context("POST /session to chromedriver")?
            .json()?;
        let id = resp["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("chromedriver refused the session: {resp}"))?;
        browser.session = format!("{base}/session/{id}");
        // Downloads in headless mode need an explicit allow (Chrome DevTools Protocol, via ChromeDriver).
        browser.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": "Browser.setDownloadBehavior",
                   "params": {"behavior": "allow", "downloadPath": downloads.display().to_string()}}),
        )?;
        Ok(browser)
    }

    /// One WebDriver command; the `value` of the answer, or the WebDriver error as an error.
    fn cmd(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}{path}", self.session);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body),
        };
        let resp = req.send().with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .with_context(|| format!("{method} {path}: body"))?;
        if !status.is_success() {
            bail!(
                "{method} {path}: {status}: {} {}",
                v["value"]["error"],
                v["value"]["message"]
            );
        }
        Ok(v["value"].clone())
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", json!({ "url": url })).map(drop)
    }

    /// Resizes the window (CSS pixels), e.g. to a tablet's viewport.
    pub fn set_window(&self, width: u32, height: u32) -> Result<()> {
        self.cmd(
            "POST",
            "/window/rect",
            json!({ "width": width, "height": height }),
        )
        .map(drop)
    }

    /// The current URL.
    pub fn url(&self) -> Result<String> {
        self.cmd("GET", "/url", Value::Null)?
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("url is not a string"))
    }

    /// The first element matching the CSS selector, if any.
    pub fn try_find(&self, css: &str) -> Result<Option<Element>> {
        let all = self.find_all(css)?;
        Ok(all.into_iter().next())
    }

    /// The first element matching the CSS selector.
    pub fn find(&self, css: &str) -> Result<Element> {
        self.try_find(css)?.ok_or_else(|| {
            anyhow!(
                "no element matches {css:?} on {}",
                self.url().unwrap_or_default()
            )
        })
    }

    /// Every element matching the CSS selector.
    pub fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let v = self.cmd(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        )?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|s| Element(s.to_string())))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits up to `timeout` for an element matching `css`.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.try_find(css)? {
                return Ok(e);
            }
            if Instant::now() > deadline {
                bail!(
                    "no element matches {css:?} after {timeout:?} on {}",
                    self.url()?
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `timeout` until the text of the element matching `css` satisfies `pred`; returns the text.
    pub fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Some(e) = self.try_find(css)? {
                // The element may be replaced between find and read (a live update): try again.
                if let Ok(text) = self.text(&e) {
                    if pred(&text) {
                        return Ok(text);
                    }
                    last = text;
                }
            }
            if Instant::now() > deadline {
                bail!("{css:?} still reads {last:?} after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks `e` (WebDriver scrolls it into view first).
    pub fn click(&self, e: &Element) -> Result<()> {
        self.cmd("POST", &format!("/element/{}/click", e.0), json!({}))
            .map(drop)
    }

    /// Clears the input `e` and types `text` into it.
    pub fn fill(&self, e: &Element, text: &str) -> Result<()> {
        self.cmd("POST", &format!("/element/{}/clear", e.0), json!({}))?;
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            json!({ "text": text }),
        )
        .map(drop)
    }

    /// The rendered text of `e`.
    pub fn text(&self, e: &Element) -> Result<String> {
        Ok(self
            .cmd("GET", &format!("/element/{}/text", e.0), Value::Null)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// An attribute of `e` (or `None`).
    pub fn attr(&self, e: &Element, name: &str) -> Result<Option<String>> {
        Ok(self
            .cmd(
                "GET",
                &format!("/element/{}/attribute/{name}", e.0),
                Value::Null,
            )?
            .as_str()
            .map(str::to_string))
    }

    /// Chooses the `<option>` with this value in the `<select>` matching `css`.
    pub fn select(&self, css: &str, value: &str) -> Result<()> {
        let option = self.find(&format!("{css} option[value=\"{value}\"]"))?;
        self.click(&option)
    }

    /// Runs `script` in the page (`arguments` available as `arguments[0..]`) and returns its result.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
    }

    /// Accepts a `confirm()` dialog if one is open (returns whether there was one).
    pub fn accept_alert(&self) -> Result<bool> {
        Ok(self.cmd("POST", "/alert/accept", json!({})).is_ok())
    }

    /// The page's cookies as WebDriver reports them (name, value, httpOnly, secure, sameSite, ...).
    pub fn cookies(&self) -> Result<Vec<Value>> {
        Ok(self
            .cmd("GET", "/cookie", Value::Null)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The page's HTML source.
    pub fn source(&self) -> Result<String> {
        Ok(self
            .cmd("GET", "/source", Value::Null)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let b64 = self.cmd("GET", "/screenshot", Value::Null)?;
        let png = decode_base64(b64.as_str().unwrap_or_default())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("write {}", path.display()))
    }

    /// Waits up to `timeout` for a finished download whose name ends with `suffix` (Chromium writes
    /// `*.crdownload` until done); returns its path.
    pub fn wait_download(&self, suffix: &str, timeout: Duration) -> Result<PathBuf> {
        let deadline = Instant::now() + timeout;
        loop {
            for entry in std::fs::read_dir(&self.downloads)? {
                let path = entry?.path();
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if name.ends_with(suffix) && !name.ends_with(".crdownload") {
                    return Ok(path);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "no download ending in {suffix:?} in {} after {timeout:?}",
                    self.downloads.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.http.delete(&self.session).send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (RFC 4648, with padding), as WebDriver returns screenshots.
fn decode_base64(text: &str) -> Result<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = value(c).ok_or_else(|| anyhow!("invalid base64 byte {c:#x}"))?;
            acc |= v << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_table() {
        let cases: &[(&str, &[u8])] = &[
            ("", b""),
            ("Zg==", b"f"),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg==", b"foob"),
            ("Zm9vYmE=", b"fooba"),
            ("Zm9vYmFy", b"foobar"),
            ("iVBORw0KGgo=", b"\x89PNG\r\n\x1a\n"),
        ];
        for (text, want) in cases {
            assert_eq!(decode_base64(text).unwrap(), *want, "{text}");
        }
        assert!(decode_base64("Zm9v!").is_err());
    }
}
