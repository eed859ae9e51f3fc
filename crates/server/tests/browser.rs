//! The web app in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (WebDriver) by fantoccini. The flows a person follows: sign up and log an activity (the
//! dashboard shows it and its week's bar), become friends and see each other's friends-only
//! activity in the feed, upload two photos (both thumbnails shown), a forbidden page (the HTML
//! 404), and a form without its CSRF token (403). Screenshots of the main pages at desktop and
//! phone width are written to `<target dir>/screenshots/` on every run.
//!
//! chromedriver and chromium must be installed (`.ci/run` installs them); the test fails, not
//! skips, without them.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestApp;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::json;
use stride_repository::Backend;

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let binary = std::env::var("STRIDE_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}); install it: apt-get install chromium chromium-driver")
            });
        let driver = Self { child, url: format!("http://127.0.0.1:{port}") };
        let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/status", driver.url)).await.is_err() {
            assert!(tokio::time::Instant::now() < give_up, "chromedriver never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    async fn browser(&self) -> Client {
        let chrome = std::env::var("STRIDE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chrome,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1280,900", "--lang=en-GB"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector).capabilities(capabilities).connect(&self.url).await.expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    // target/<profile>/deps/<this test> → target/screenshots
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The main pages as a person sees them, at desktop and at phone width.
async fn screenshot(browser: &Client, base: &str, path: &str, name: &str) {
    for (width, height, suffix) in [(1280, 900, "desktop"), (390, 844, "phone")] {
        browser.set_window_size(width, height).await.unwrap();
        browser.goto(&format!("{base}{path}")).await.unwrap();
        let png = browser.screenshot().await.unwrap();
        std::fs::write(screenshots_dir().join(format!("{name}-{suffix}.png")), png).unwrap();
    }
    browser.set_window_size(1280, 900).await.unwrap();
}

struct Person<'a> {
    browser: &'a Client,
    base: &'a str,
}

impl Person<'_> {
    async fn go(&self, path: &str) {
        self.browser.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn fill(&self, field: &str, value: &str) {
        let input = self.browser.find(Locator::Id(field)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    async fn choose(&self, field: &str, value: &str) {
        let select = self.browser.find(Locator::Id(field)).await.unwrap();
        select.select_by_value(value).await.unwrap();
    }

    /// Submits a form and waits for the next page: a new document has no marker.
    async fn submit(&self, form: &str) {
        self.browser.execute("window.strideMarker = true;", vec![]).await.unwrap();
        self.browser.find(Locator::Css(&format!("{form} button[type=submit]"))).await.unwrap().click().await.unwrap();
        let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let fresh = self
                .browser
                .execute("return window.strideMarker === undefined && document.readyState === 'complete';", vec![])
                .await;
            if fresh.is_ok_and(|v| v == json!(true)) {
                return;
            }
            assert!(tokio::time::Instant::now() < give_up, "submitting {form} never led to a page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn heading(&self) -> String {
        self.browser.find(Locator::Css("h1")).await.unwrap().text().await.unwrap()
    }

    async fn path(&self) -> String {
        self.browser.current_url().await.unwrap().path().to_owned()
    }

    async fn text(&self, css: &str) -> String {
        self.browser.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
    }

    async fn sign_up(&self, username: &str) {
        self.go("/signup").await;
        self.fill("username", username).await;
        self.fill("password", "correct horse battery").await;
        self.submit("form[action='/signup']").await;
        assert_eq!(self.path().await, "/", "signed up and on the dashboard");
    }

    async fn log_in(&self, username: &str) {
        self.go("/login").await;
        self.fill("username", username).await;
        self.fill("password", "correct horse battery").await;
        self.submit("form[action='/login']").await;
        assert_eq!(self.path().await, "/", "logged in");
    }

    async fn log_out(&self) {
        self.submit("form[action='/logout']").await;
        assert_eq!(self.path().await, "/login");
    }

    /// Logs an activity starting now (the form's default) and returns its id.
    async fn log_activity(&self, title: &str, km: &str, visibility: &str) -> String {
        self.go("/activities/new").await;
        self.fill("title", title).await;
        self.fill("duration", "30").await;
        self.fill("distance_km", km).await;
        self.choose("visibility", visibility).await;
        self.submit("form[action='/activities']").await;
        let path = self.path().await;
        assert_eq!(self.heading().await, title, "on the new activity's page ({path})");
        path.trim_start_matches("/activities/").to_owned()
    }
}

fn test_image(dir: &std::path::Path, name: &str, colour: [u8; 3]) -> PathBuf {
    let image = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([colour[0] ^ (x as u8), colour[1] ^ (y as u8), colour[2]])
    });
    let path = dir.join(name);
    image.save(&path).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_uses_stride_in_a_browser() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    journey(&app, &browser).await;
    let _ = browser.close().await;
    app.shutdown().await.unwrap();
}

async fn journey(app: &TestApp, browser: &Client) {
    let base = app.base.as_str();
    let person = Person { browser, base };

    // Signed out, / is the sign-in page.
    person.go("/").await;
    assert_eq!(person.path().await, "/login");
    screenshot(browser, base, "/login", "login").await;

    // Sign up, log an activity: the dashboard counts it and this week's bar shows its distance.
    person.sign_up("ada").await;
    let ada_run = person.log_activity("Morning loop", "7.5", "friends").await;
    person.go("/").await;
    assert_eq!(person.text("#total-activities").await, "1");
    assert_eq!(person.text("#total-distance").await, "7.50 km");
    let months = browser.find_all(Locator::Css("figure.chart.by-period rect.bar")).await.unwrap();
    assert_eq!(months.len(), 12, "twelve months");
    let bars = browser.find_all(Locator::Css("figure.chart.weekly rect.bar")).await.unwrap();
    assert_eq!(bars.len(), 12, "twelve weeks");
    let this_week = bars.last().unwrap();
    assert_eq!(this_week.attr("data-distance").await.unwrap().as_deref(), Some("7500"));
    let height: f64 = this_week.attr("height").await.unwrap().unwrap().parse().unwrap();
    assert!(height > 100.0, "the week with the only activity is the tallest bar ({height})");
    screenshot(browser, base, "/", "dashboard").await;

    // Two photos on the activity: both thumbnails are shown.
    let files = tempfile::tempdir().unwrap();
    let first = test_image(files.path(), "first.jpg", [200, 40, 40]);
    let second = test_image(files.path(), "second.png", [40, 40, 200]);
    person.go(&format!("/activities/{ada_run}")).await;
    let input = browser.find(Locator::Id("photo")).await.unwrap();
    input.send_keys(&format!("{}\n{}", first.display(), second.display())).await.unwrap();
    person.submit("form.upload").await;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let thumbs = browser.find_all(Locator::Css("img.thumb")).await.unwrap();
        if thumbs.len() == 2 {
            let loaded = browser
                .execute(
                    "return [...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0);",
                    vec![],
                )
                .await
                .unwrap();
            if loaded == json!(true) {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < give_up, "the two thumbnails never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    screenshot(browser, base, &format!("/activities/{ada_run}"), "activity").await;

    // A refused upload's message is shown as text in the form's status, whatever the file is
    // called: a name that is markup stays a name.
    let hostile = files.path().join("<img src=x id=injected onerror=alert(1)>.txt");
    std::fs::write(&hostile, b"not an image").unwrap();
    let input = browser.find(Locator::Id("photo")).await.unwrap();
    input.send_keys(&hostile.display().to_string()).await.unwrap();
    // Clicked, not `submit`ted: a refusal leaves the page where it is.
    browser.find(Locator::Css("form.upload button[type=submit]")).await.unwrap().click().await.unwrap();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = person.text(".upload-status").await;
        if status.contains("img src=x") {
            break status;
        }
        assert!(tokio::time::Instant::now() < give_up, "no refusal shown: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.contains("<img src=x id=injected"), "the name as text: {status}");
    assert!(browser.find_all(Locator::Id("injected")).await.unwrap().is_empty(), "no element was made of it");
    assert_eq!(person.path().await, format!("/activities/{ada_run}"), "the page stays");
    let ada_private = person.log_activity("Secret tempo", "5", "private").await;
    person.log_out().await;

    // Grace signs up, logs a friends-only ride and asks Ada to be friends.
    person.sign_up("grace").await;
    person.log_activity("Hill repeats", "12", "friends").await;
    person.go("/friends?username=ada").await;
    person.submit("#search-result form[action='/friends/requests']").await;
    assert_eq!(person.path().await, "/friends");
    assert!(person.text("#outgoing").await.contains("@ada"));
    // Ada's private activity is the HTML 404 for Grace, as for anyone but Ada.
    person.go(&format!("/activities/{ada_private}")).await;
    assert_eq!(person.heading().await, "Not found");
    let session = browser.get_named_cookie("stride_session").await.unwrap();
    let forbidden = common::http_client()
        .get(format!("{base}/activities/{ada_private}"))
        .header("cookie", format!("stride_session={}", session.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::NOT_FOUND);
    assert!(forbidden.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    person.go("/").await;
    person.log_out().await;

    // Ada accepts; each now sees the other's friends-only activity in the feed.
    person.log_in("ada").await;
    person.go("/friends").await;
    person.submit("#incoming li form[action$='/accept']").await;
    assert!(person.text("#friends").await.contains("@grace"));
    screenshot(browser, base, "/friends", "friends").await;
    person.go("/feed").await;
    let feed = person.text("main").await;
    assert!(feed.contains("Hill repeats") && feed.contains("Morning loop"), "Ada's feed: {feed}");
    screenshot(browser, base, "/feed", "feed").await;
    person.log_out().await;
    person.log_in("grace").await;
    person.go("/feed").await;
    let feed = person.text("main").await;
    assert!(feed.contains("Morning loop") && !feed.contains("Secret tempo"), "Grace's feed: {feed}");
    assert_eq!(browser.find_all(Locator::Css("article.activity .thumbs img")).await.unwrap().len(), 2, "Ada's photos");

    // A form whose CSRF token was removed is refused with 403 and changes nothing.
    person.go("/activities/new").await;
    browser
        .execute("document.querySelector(\"form[action='/activities'] input[name=csrf]\").remove();", vec![])
        .await
        .unwrap();
    person.fill("title", "Forged").await;
    person.fill("duration", "10").await;
    person.fill("distance_km", "1").await;
    person.submit("form[action='/activities']").await;
    assert_eq!(person.heading().await, "Form expired");
    person.go("/activities").await;
    assert!(!person.text("main").await.contains("Forged"));
}

/// Without a browser: what the pages promise at the HTTP level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_refuse_forged_forms_keep_the_api_bearer_only_and_send_security_headers() {
    // A small body limit, so that the oversized form below fits in the socket's buffers: a
    // client still writing when the 413 arrives would see the connection closed instead.
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.json_body_limit = 4096).await;
    let client = common::http_client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // A login post with no token at all: 403, as a page.
    let forged = client
        .post(app.url("/login"))
        .form(&[("username", "ada"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers()["content-type"].to_str().unwrap().starts_with("text/html"));

    // A real page hands out the CSRF cookie; with it, sign-up works and sets the session cookie.
    let page = client.get(app.url("/signup")).send().await.unwrap();
    let headers = page.headers().clone();
    for (name, expected) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(headers[name], expected);
    }
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let set_cookie = headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let nonce_cookie = set_cookie.split(';').next().unwrap().to_owned();
    let nonce = nonce_cookie.trim_start_matches("stride_csrf=").to_owned();
    let body = page.text().await.unwrap();
    let token = common::form_token(&body);
    assert_ne!(token, nonce, "the form's token is not the cookie's value: it is made with the server's key");
    let signup = |cookie: String, token: String| {
        let request = client.post(app.url("/signup")).header("cookie", cookie);
        let fields = [
            ("csrf", token),
            ("username", "ada".into()),
            ("password", "correct horse battery".into()),
            ("timezone", "UTC".into()),
        ];
        request.form(&fields).send()
    };
    // A made-up pair (what a sibling subdomain could plant: a cookie and a field that match) is
    // refused; so is another nonce's token, and the real token with a cookie it was not made for.
    let made_up = "x".repeat(43);
    let refusals = [
        (format!("stride_csrf={made_up}"), made_up.clone()),
        (nonce_cookie.clone(), nonce.clone()),
        (format!("stride_csrf={}", "y".repeat(43)), token.clone()),
        (nonce_cookie.clone(), "x".repeat(43)),
    ];
    for (cookie, field) in refusals {
        let refused = signup(cookie.clone(), field.clone()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "cookie {cookie}, field {field}");
    }
    let signed_up = signup(nonce_cookie.clone(), token.clone()).await.unwrap();
    assert_eq!(signed_up.status(), StatusCode::SEE_OTHER);
    let set_cookies: Vec<String> =
        signed_up.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session_cookie = set_cookies.iter().find(|c| c.starts_with("stride_session=")).expect("a session cookie");
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    let session = session_cookie.split(';').next().unwrap().to_owned();
    let rotated = set_cookies.iter().find(|c| c.starts_with("stride_csrf=")).expect("a new nonce at sign-in");
    assert!(!rotated.starts_with(&nonce_cookie), "the nonce is replaced at sign-in");
    // Signed in, the forms carry a token bound to the session: the pre-session one no longer
    // passes, and a page of the session hands out the one that does.
    let new_activity = client.get(app.url("/activities/new")).header("cookie", &session).send().await.unwrap();
    let csrf = common::form_token(&new_activity.text().await.unwrap());
    assert_ne!(csrf, token);
    let stale = client
        .post(app.url("/activities"))
        .header("cookie", format!("{session}; {nonce_cookie}"))
        .form(&[("csrf", token.as_str()), ("sport", "run"), ("started_at", "2026-03-01T07:00"), ("timezone", "UTC")])
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::FORBIDDEN, "a pre-session token does not act for a session");
    let csrf_cookie = rotated.split(';').next().unwrap().to_owned();
    let csrf_cookie = csrf_cookie.trim_start_matches("stride_csrf=").to_owned();

    // A form body past the API's limit is refused as the API refuses one: 413, as a page.
    let huge = "x".repeat(5_000);
    let too_big = client
        .post(app.url("/activities"))
        .header("cookie", format!("{session}; stride_csrf={csrf_cookie}"))
        .form(&[("csrf", csrf.as_str()), ("sport", "run"), ("title", huge.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(too_big.headers()["content-type"].to_str().unwrap().starts_with("text/html"));

    // A page upload of a file that is not an image answers a page naming the file, and
    // stores nothing.
    let created = client
        .post(app.url("/activities"))
        .header("cookie", format!("{session}; stride_csrf={csrf_cookie}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("sport", "run"),
            ("started_at", "2026-03-01T07:00"),
            ("timezone", "UTC"),
            ("duration", "30"),
            ("distance_km", "5"),
            ("visibility", "friends"),
            ("start_latlng", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let detail = created.headers()["location"].to_str().unwrap().to_owned();
    let part = reqwest::multipart::Part::bytes(b"just some text".to_vec()).file_name("notes.txt");
    let refused = client
        .post(app.url(&format!("{detail}/photos?csrf={csrf}")))
        .header("cookie", format!("{session}; stride_csrf={csrf_cookie}"))
        .multipart(reqwest::multipart::Form::new().part("photo", part))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(refused.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(refused.text().await.unwrap().contains("notes.txt"), "the page names the rejected file");
    let page = client.get(app.url(&detail)).header("cookie", &session).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("No photos yet."), "nothing was stored");

    // Every form route checks the token before it reads anything else: a signed-in post with
    // the cookie but without the token is 403, even one whose other fields are nonsense. The
    // routes come from the router itself, so a new form cannot be left out.
    let some_id = "01890000-0000-7000-8000-000000000000";
    let activity_id = detail.trim_start_matches("/activities/");
    let form_paths = stride_http::form_paths::<stride_repository::SqliteStore>();
    assert!(form_paths.contains(&"/activities/{id}/photos"), "{form_paths:?}");
    for template in form_paths {
        let path = template
            .replace("/activities/{id}", &format!("/activities/{activity_id}"))
            .replace("{id}", some_id)
            .replace("{user_id}", some_id)
            .replace("{action}", "accept");
        assert!(!path.contains('{'), "a parameter this test does not fill: {template}");
        let request = client.post(app.url(&path)).header("cookie", format!("{session}; stride_csrf={csrf_cookie}"));
        let forged = if template.ends_with("/photos") {
            let part = reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("a.jpg");
            request.multipart(reqwest::multipart::Form::new().part("photo", part))
        } else {
            request.form(&[("duration", "soon"), ("user_id", "nobody"), ("username", "x")])
        };
        let forged = forged.send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{template}");
    }

    // The cookie opens pages, never the API.
    let dashboard = client.get(app.url("/")).header("cookie", &session).send().await.unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK);
    let api = client.get(app.url("/api/v1/me")).header("cookie", &session).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);

    // Anything else outside the API is the HTML 404.
    let missing = client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    app.shutdown().await.unwrap();
}
