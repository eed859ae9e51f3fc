//! `stride jobs list|show|retry|cancel|stats`: the operator's view of the durable job queue,
//! from the same configuration as the server.

use std::time::Duration;

use stride_domain::{Job, JobId, JobState};
use stride_repository::Store;
use stride_services::jobs::JobService;
use stride_services::{Deadline, ServiceError, SystemClock, WEATHER_KIND, forget_failure, settle_abandoned};

use crate::Config;
use crate::app::{OnStore, with_store};

/// What the operator asked.
#[derive(Debug, Clone)]
pub enum JobsRequest {
    List { state: Option<String>, kind: Option<String>, limit: u32 },
    Show { id: String },
    Retry { id: String },
    Cancel { id: String },
    Stats,
}

/// Runs the request and returns what to print.
pub async fn run(config: Config, request: JobsRequest) -> anyhow::Result<String> {
    with_store(&config, request).await
}

impl OnStore for JobsRequest {
    type Output = String;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<String> {
        run_on(store, self).await
    }
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

fn parse_id(raw: &str) -> anyhow::Result<JobId> {
    raw.parse().map_err(|_| anyhow::anyhow!("{raw:?} is not a job id"))
}

fn not_found(id: &str, error: ServiceError) -> anyhow::Error {
    match error {
        ServiceError::NotFound => anyhow::anyhow!("no job {id} in a state that allows this"),
        other => anyhow::anyhow!("{other}"),
    }
}

async fn run_on<S: Store>(store: S, request: JobsRequest) -> anyhow::Result<String> {
    let jobs = JobService::new(store.clone(), std::sync::Arc::new(SystemClock));
    let output = match request {
        JobsRequest::List { state, kind, limit } => {
            let state =
                state.map(|s| s.parse::<JobState>().map_err(|e| anyhow::anyhow!("--state: {e}"))).transpose()?;
            let listed =
                jobs.list(deadline(), state, kind.as_deref(), limit).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            list_table(&listed)
        }
        JobsRequest::Show { id } => {
            let job = jobs.job(deadline(), parse_id(&id)?).await.map_err(|e| not_found(&id, e))?;
            show(&job)
        }
        JobsRequest::Retry { id } => {
            let job_id = parse_id(&id)?;
            let job = jobs.job(deadline(), job_id).await.map_err(|e| not_found(&id, e))?;
            // An operator retries because the API is back: the retry must ask it, not meet the
            // failure remembered for the place and hour. Forgotten first, since a runner may
            // take the job the moment it is available.
            if job.kind == WEATHER_KIND {
                forget_failure(&store, &job, deadline()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            jobs.retry(deadline(), job_id).await.map_err(|e| not_found(&id, e))?;
            format!("job {id} is available again, with fresh attempts\n")
        }
        JobsRequest::Cancel { id } => {
            let job_id = parse_id(&id)?;
            jobs.cancel(deadline(), job_id).await.map_err(|e| not_found(&id, e))?;
            let job = jobs.job(deadline(), job_id).await.map_err(|e| not_found(&id, e))?;
            // A cancelled lookup will never answer: its activity must not stay `pending`.
            let settled = job.kind == WEATHER_KIND
                && settle_abandoned(&store, &job, deadline()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if settled {
                format!("job {id} cancelled; its activity's weather is now unavailable\n")
            } else {
                format!("job {id} cancelled\n")
            }
        }
        JobsRequest::Stats => {
            let counts = jobs.counts(deadline()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            stats_table(&counts)
        }
    };
    store.close().await;
    Ok(output)
}

fn list_table(jobs: &[Job]) -> String {
    let mut out = format!(
        "{:<36}  {:<20}  {:<10}  {:>7}  {:<20}  {}\n",
        "id", "kind", "state", "attempt", "run_at", "last_error"
    );
    for job in jobs {
        out.push_str(&format!(
            "{:<36}  {:<20}  {:<10}  {:>3}/{:<3}  {:<20}  {}\n",
            job.id,
            job.kind,
            job.state,
            job.attempt,
            job.max_attempts,
            job.run_at.format("%Y-%m-%d %H:%M:%S"),
            job.last_error.as_deref().unwrap_or("")
        ));
    }
    out
}

fn show(job: &Job) -> String {
    let optional = |at: Option<chrono::DateTime<chrono::Utc>>| at.map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
    format!(
        "id:           {}\nkind:         {}\nstate:        {}\nattempt:      {} of {}\nrun_at:       {}\nlease_until:  {}\nunique_key:   {}\ncreated_at:   {}\nfinished_at:  {}\nlast_error:   {}\npayload:      {}\n",
        job.id,
        job.kind,
        job.state,
        job.attempt,
        job.max_attempts,
        job.run_at.to_rfc3339(),
        optional(job.lease_until),
        job.unique_key.as_deref().unwrap_or("-"),
        job.created_at.to_rfc3339(),
        optional(job.finished_at),
        job.last_error.as_deref().unwrap_or("-"),
        job.payload
    )
}

/// Kinds by state: one row per kind, one column per state, as stored.
fn stats_table(counts: &[(String, JobState, u64)]) -> String {
    let mut kinds: Vec<&str> = counts.iter().map(|(kind, _, _)| kind.as_str()).collect();
    kinds.dedup();
    let mut out = format!("{:<24}", "kind");
    for state in JobState::ALL {
        out.push_str(&format!(" {:>10}", state.as_str()));
    }
    out.push('\n');
    for kind in kinds {
        out.push_str(&format!("{kind:<24}"));
        for state in JobState::ALL {
            let count = counts.iter().find(|(k, s, _)| k == kind && *s == state).map_or(0, |(_, _, n)| *n);
            out.push_str(&format!(" {count:>10}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_show_every_state_per_kind_as_stored() {
        let table = stats_table(&[
            ("maintenance.purge".into(), JobState::Completed, 3),
            ("weather.enrich".into(), JobState::Available, 2),
            ("weather.enrich".into(), JobState::Discarded, 1),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].contains("available") && lines[0].contains("cancelled"));
        assert!(lines[1].starts_with("maintenance.purge"));
        assert!(lines[2].starts_with("weather.enrich"));
        let weather: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(weather[1..], ["2", "0", "0", "0", "1", "0"]);
    }
}
