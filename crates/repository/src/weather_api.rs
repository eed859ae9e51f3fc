//! The external weather API: hourly observations from an Open-Meteo-compatible archive.
//!
//! One [`reqwest::Client`] is built at start and shared (its connection pool and TLS set-up
//! are per client, not per call); every call has its own timeout, and the job calling it also
//! holds the call to its kind's deadline.

use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use futures::future::BoxFuture;
use serde::Deserialize;
use stride_domain::{Observation, WeatherCell};

/// The largest answer read from the weather API.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// Why the API gave no observations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeatherApiError {
    #[error("the weather API did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the weather API failed: {0}")]
    Failed(String),
}

/// Hourly observations of a place: the port the `weather.enrich` job calls.
pub trait WeatherApi: Send + Sync + 'static {
    /// Every hour of the UTC days `from..=to` at the cell's centre that has all four values.
    fn hourly(
        &self,
        cell: WeatherCell,
        from: NaiveDate,
        to: NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<Observation>, WeatherApiError>>;
}

/// An Open-Meteo-compatible archive API (`STRIDE_WEATHER_URL`).
#[derive(Debug, Clone)]
pub struct OpenMeteo {
    client: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl OpenMeteo {
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(base_url).map_err(|e| format!("{base_url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{base_url:?} must be an http or https URL"));
        }
        crate::tls::install_ring_provider();
        // No redirects: the configured host is the only one ever called (a redirect could aim
        // the server at an internal address); a 3xx is a failure like any other status.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .user_agent(concat!("stride/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the weather API's HTTP client: {e}"))?;
        Ok(Self { client, base_url: base_url.trim_end_matches('/').to_owned(), timeout })
    }

    /// The request, exactly as the archive API documents it.
    pub fn url(&self, cell: WeatherCell, from: NaiveDate, to: NaiveDate) -> String {
        format!(
            "{}/v1/archive?latitude={}&longitude={}&start_date={}&end_date={}\
             &hourly=temperature_2m,wind_speed_10m,precipitation,weather_code&timezone=GMT&wind_speed_unit=ms",
            self.base_url,
            cell.latitude(),
            cell.longitude(),
            from.format("%Y-%m-%d"),
            to.format("%Y-%m-%d"),
        )
    }

    async fn fetch(&self, url: String) -> Result<Vec<Observation>, WeatherApiError> {
        let failed = |e: reqwest::Error| {
            if e.is_timeout() { WeatherApiError::Timeout(self.timeout) } else { WeatherApiError::Failed(e.to_string()) }
        };
        let mut response = self.client.get(url).timeout(self.timeout).send().await.map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(WeatherApiError::Failed(format!("status {status}")));
        }
        // A month of hourly values is ~30 KiB; more than a MiB is not an answer to our question,
        // and reading it whole would let the API decide how much memory a lookup takes.
        if response.content_length().is_some_and(|length| length > MAX_ANSWER_BYTES) {
            return Err(WeatherApiError::Failed(format!("an answer over {MAX_ANSWER_BYTES} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES as usize {
                return Err(WeatherApiError::Failed(format!("an answer over {MAX_ANSWER_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let answer: Answer =
            serde_json::from_slice(&body).map_err(|e| WeatherApiError::Failed(format!("an unreadable answer: {e}")))?;
        answer.observations()
    }
}

impl WeatherApi for OpenMeteo {
    fn hourly(
        &self,
        cell: WeatherCell,
        from: NaiveDate,
        to: NaiveDate,
    ) -> BoxFuture<'_, Result<Vec<Observation>, WeatherApiError>> {
        Box::pin(self.fetch(self.url(cell, from, to)))
    }
}

/// The part of Open-Meteo's answer we read.
#[derive(Debug, Deserialize)]
struct Answer {
    hourly: Hourly,
}

#[derive(Debug, Deserialize)]
struct Hourly {
    time: Vec<String>,
    temperature_2m: Vec<Option<f64>>,
    wind_speed_10m: Vec<Option<f64>>,
    precipitation: Vec<Option<f64>>,
    weather_code: Vec<Option<f64>>,
}

impl Answer {
    /// Hours missing a value (the archive lags a few days behind today) are left out.
    fn observations(self) -> Result<Vec<Observation>, WeatherApiError> {
        let Hourly { time, temperature_2m, wind_speed_10m, precipitation, weather_code } = self.hourly;
        let n = time.len();
        if [temperature_2m.len(), wind_speed_10m.len(), precipitation.len(), weather_code.len()] != [n; 4] {
            return Err(WeatherApiError::Failed("hourly series of different lengths".into()));
        }
        let mut observations = Vec::with_capacity(n);
        for (i, raw) in time.iter().enumerate() {
            let at = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
                .map_err(|_| WeatherApiError::Failed(format!("hourly.time[{i}] is not a GMT time: {raw:?}")))?;
            let (Some(t), Some(w), Some(p), Some(code)) =
                (temperature_2m[i], wind_speed_10m[i], precipitation[i], weather_code[i])
            else {
                continue;
            };
            if ![t, w, p, code].iter().all(|v| v.is_finite()) || !(0.0..=255.0).contains(&code) {
                return Err(WeatherApiError::Failed(format!("hourly values at {raw} are out of range")));
            }
            observations.push(Observation {
                temperature_c: t,
                wind_speed_ms: w,
                precipitation_mm: p,
                code: code as i32,
                observed_at: at.and_utc(),
            });
        }
        Ok(observations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection HTTP server answering `response` (head and body) to whatever it is
    /// asked; returns its base URL.
    async fn answering(response: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head).await;
            let _ = stream.write_all(&response).await;
            let _ = stream.shutdown().await;
        });
        base
    }

    fn cell() -> WeatherCell {
        stride_domain::LatLng::new(48.8566, 2.35).unwrap().cell()
    }

    #[tokio::test]
    async fn a_redirect_is_a_failure_and_is_not_followed() {
        // Where the redirect points: a listener nobody accepts on, so a followed redirect would
        // leave its connection waiting in the backlog.
        let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        elsewhere.set_nonblocking(true).unwrap();
        let target = elsewhere.local_addr().unwrap();
        let redirect =
            format!("HTTP/1.1 302 Found\r\nlocation: http://{target}/v1/archive\r\ncontent-length: 0\r\n\r\n");
        let base = answering(redirect.into_bytes()).await;
        let api = OpenMeteo::new(&base, Duration::from_secs(2)).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let got = api.hourly(cell(), day, day).await;
        assert!(matches!(&got, Err(WeatherApiError::Failed(message)) if message.contains("302")), "{got:?}");
        let connected = elsewhere.accept();
        assert!(matches!(&connected, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "followed: {connected:?}");
    }

    #[tokio::test]
    async fn an_answer_over_a_mebibyte_is_refused_whether_announced_or_streamed() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let huge = vec![b' '; 2 * 1024 * 1024];
        let announced =
            [format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", huge.len()).into_bytes(), huge.clone()].concat();
        // Unannounced: the body ends when the connection closes.
        let streamed = [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec(), huge].concat();
        for response in [announced, streamed] {
            let base = answering(response).await;
            let api = OpenMeteo::new(&base, Duration::from_secs(5)).unwrap();
            let got = api.hourly(cell(), day, day).await;
            assert!(
                matches!(&got, Err(WeatherApiError::Failed(message)) if message.contains("over 1048576")),
                "{got:?}"
            );
        }
    }

    #[test]
    fn the_request_is_the_documented_archive_call_for_the_cells_centre() {
        let api = OpenMeteo::new("http://127.0.0.1:9/", Duration::from_secs(1)).unwrap();
        let cell = stride_domain::LatLng::new(48.8566, -2.35).unwrap().cell();
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        assert_eq!(
            api.url(cell, day(1), day(2)),
            "http://127.0.0.1:9/v1/archive?latitude=48.9&longitude=-2.4&start_date=2026-03-01&end_date=2026-03-02\
             &hourly=temperature_2m,wind_speed_10m,precipitation,weather_code&timezone=GMT&wind_speed_unit=ms"
        );
    }

    #[test]
    fn an_answer_becomes_complete_hours_and_a_malformed_one_fails() {
        let answer: Answer = serde_json::from_str(
            r#"{"latitude":48.9,"hourly_units":{},"hourly":{
                "time":["2026-03-01T06:00","2026-03-01T07:00","2026-03-01T08:00"],
                "temperature_2m":[3.5,4.25,null],
                "wind_speed_10m":[1.0,2.5,3.0],
                "precipitation":[0.0,0.4,0.0],
                "weather_code":[3,61,2]}}"#,
        )
        .unwrap();
        let observations = answer.observations().unwrap();
        assert_eq!(observations.len(), 2, "the hour with a null is left out");
        assert_eq!(observations[1].code, 61);
        assert_eq!(observations[1].observed_at.to_rfc3339(), "2026-03-01T07:00:00+00:00");
        assert_eq!(observations[1].temperature_c, 4.25);

        let uneven: Answer = serde_json::from_str(
            r#"{"hourly":{"time":["2026-03-01T06:00"],"temperature_2m":[],"wind_speed_10m":[1.0],
                "precipitation":[0.0],"weather_code":[3]}}"#,
        )
        .unwrap();
        assert!(matches!(uneven.observations(), Err(WeatherApiError::Failed(_))));
        let bad_time: Answer = serde_json::from_str(
            r#"{"hourly":{"time":["yesterday"],"temperature_2m":[1.0],"wind_speed_10m":[1.0],
                "precipitation":[0.0],"weather_code":[3]}}"#,
        )
        .unwrap();
        assert!(matches!(bad_time.observations(), Err(WeatherApiError::Failed(_))));
    }
}
