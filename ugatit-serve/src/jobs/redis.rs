//! The job store for several machines: Redis Streams with a consumer group.
//!
//! Any number of API processes and workers on any machines share one Redis server:
//!
//! - the queue is a stream; [`JobStore::enqueue`] adds an entry (`XADD`) unless the stream,
//!   which only holds unfinished jobs, has reached the limit;
//! - workers read new entries as one consumer group (`XREADGROUP`); a read entry stays in the
//!   group's pending list until the job is finished, when it is acknowledged (`XACK`) and
//!   removed. That is after the result is stored, so a crash loses no job;
//! - the lease is the visibility timeout: an entry pending for longer than the lease (its worker
//!   died or stalled) is taken over by the next claim (`XAUTOCLAIM`). Renewing a lease claims
//!   the entry again for the same worker, which resets its idle time;
//! - each job's record is a hash that expires with the job's links; sorted sets index the
//!   waiting jobs (in enqueue order, for positions), the running ones (by lease end) and all
//!   of them by expiry (for the purge).
//!
//! Every operation is one Lua script (in `redis/`) or one command, so each is atomic across
//! processes, and leases are measured on the Redis server's clock, never a worker's. All
//! workers of one deployment must use the same lease, since a claim compares pending entries'
//! idle time with its own.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Script, Value};

use super::{Completion, Job, JobError, JobId, JobSpec, JobState, JobStore};

/// Every key starts with this; the braces make Redis Cluster keep them in one slot, as
/// scripts touching several keys need.
const NS: &str = "{ugatit}";
/// The consumer group all workers read the queue as.
const GROUP: &str = "workers";
/// Generous next to the client's default (half a second): a busy server must not turn a
/// stored job into an error answer, and every script here is short.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection attempts per failed request (exponential back-off up to the delay below);
/// a request that still fails is an error its caller retries later (a worker at its next
/// poll, an upload as a 500).
const RECONNECT_TRIES: usize = 3;
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(2);

/// The Lua scripts, loaded once per connection and run by hash.
struct Scripts {
    enqueue: Script,
    claim: Script,
    renew: Script,
    finish: Script,
    delete: Script,
    get: Script,
    position: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            enqueue: Script::new(include_str!("redis/enqueue.lua")),
            claim: Script::new(include_str!("redis/claim.lua")),
            renew: Script::new(include_str!("redis/renew.lua")),
            finish: Script::new(include_str!("redis/finish.lua")),
            delete: Script::new(include_str!("redis/delete.lua")),
            get: Script::new(include_str!("redis/get.lua")),
            position: Script::new(include_str!("redis/position.lua")),
        }
    }
}

/// Jobs in a Redis server, shared by every process connected to it.
pub struct RedisJobs {
    /// The URL without its password, for messages.
    url: String,
    conn: ConnectionManager,
    scripts: Scripts,
}

fn key(name: &str) -> String {
    format!("{NS}:{name}")
}

fn job_key(id: &JobId) -> String {
    format!("{NS}:job:{id}")
}

/// `url` with any password replaced by `***`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl RedisJobs {
    /// Connects to `url` (`redis://[:PASSWORD@]HOST:PORT[/DB]`) and creates the queue and its
    /// consumer group if they do not exist yet. The connection is re-established by itself
    /// after a network error.
    pub async fn connect(url: &str) -> Result<Self, JobError> {
        let shown = redact(url);
        let failed = |e: ::redis::RedisError| JobError::Store(format!("{shown}: {e}"));
        let client = ::redis::Client::open(url).map_err(|e| {
            JobError::Store(format!(
                "{shown}: {e} (use redis://HOST:PORT or redis://:PASSWORD@HOST:PORT/DB)"
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_TRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(failed)?;
        // From id 0, so jobs enqueued before the first worker connected are read too.
        let created: Result<(), _> = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key("queue"))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => return Err(failed(e)),
            _ => {}
        }
        Ok(Self {
            url: shown,
            conn,
            scripts: Scripts::new(),
        })
    }

    fn err(&self, e: ::redis::RedisError) -> JobError {
        JobError::Store(format!("{}: {e}", self.url))
    }

    fn bad_record(&self, id: &JobId, what: &str) -> JobError {
        JobError::Store(format!("{}: job {id}: {what}", self.url))
    }

    fn spec(&self, id: &JobId, json: &str) -> Result<JobSpec, JobError> {
        serde_json::from_str(json).map_err(|e| self.bad_record(id, &format!("bad spec ({e})")))
    }

    async fn finish(&self, id: &JobId, state: &str, error: &str) -> Result<Completion, JobError> {
        let outcome: String = self
            .scripts
            .finish
            .key(key("queue"))
            .key(key("waiting"))
            .key(key("running"))
            .key(job_key(id))
            .arg(GROUP)
            .arg(id.as_str())
            .arg(state)
            .arg(error)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        match outcome.as_str() {
            "first" => Ok(Completion::First),
            "again" => Ok(Completion::Again),
            _ => Ok(Completion::Gone),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait::async_trait]
impl JobStore for RedisJobs {
    async fn enqueue(&self, id: &JobId, spec: &JobSpec, limit: u64) -> Result<(), JobError> {
        let json = serde_json::to_string(spec)
            .map_err(|e| self.bad_record(id, &format!("cannot encode the spec ({e})")))?;
        let added: i64 = self
            .scripts
            .enqueue
            .key(key("queue"))
            .key(key("waiting"))
            .key(key("expiry"))
            .key(key("tickets"))
            .key(job_key(id))
            .arg(id.as_str())
            .arg(json)
            .arg(limit)
            .arg(spec.expires_at)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        if added == 0 {
            return Err(JobError::QueueFull { limit });
        }
        Ok(())
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, JobError> {
        let [spec, state, error, lease_until, now]: [Option<String>; 5] = self
            .scripts
            .get
            .key(job_key(id))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        let (Some(spec), Some(state)) = (spec, state) else {
            return Ok(None);
        };
        let ms = |s: Option<String>| s.and_then(|s| s.parse::<u64>().ok());
        let state = match state.as_str() {
            "queued" => JobState::Queued,
            "running" if ms(lease_until) > ms(now) => JobState::Running,
            "running" => JobState::Queued,
            "done" => JobState::Done,
            "failed" => JobState::Failed(error.unwrap_or_default()),
            other => return Err(self.bad_record(id, &format!("unknown state {other:?}"))),
        };
        Ok(Some(Job {
            id: id.clone(),
            spec: self.spec(id, &spec)?,
            state,
        }))
    }

    async fn position(&self, id: &JobId) -> Result<Option<u64>, JobError> {
        self.scripts
            .position
            .key(key("waiting"))
            .key(key("running"))
            .key(job_key(id))
            .arg(id.as_str())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))
    }

    async fn queue_len(&self) -> Result<u64, JobError> {
        ::redis::cmd("XLEN")
            .arg(key("queue"))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))
    }

    async fn claim(&self, worker: &str, max: usize, lease: Duration) -> Result<Vec<Job>, JobError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let pairs: Vec<String> = self
            .scripts
            .claim
            .key(key("queue"))
            .key(key("waiting"))
            .key(key("running"))
            .arg(GROUP)
            .arg(worker)
            .arg(max)
            .arg(millis(lease))
            .arg(format!("{NS}:job:"))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        pairs
            .chunks_exact(2)
            .map(|pair| {
                let id: JobId = pair[0]
                    .parse()
                    .map_err(|e| JobError::Store(format!("{}: queue entry: {e}", self.url)))?;
                let spec = self.spec(&id, &pair[1])?;
                Ok(Job {
                    id,
                    spec,
                    state: JobState::Running,
                })
            })
            .collect()
    }

    async fn renew(&self, worker: &str, ids: &[JobId], lease: Duration) -> Result<(), JobError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut call = self.scripts.renew.prepare_invoke();
        call.key(key("queue"))
            .key(key("running"))
            .arg(GROUP)
            .arg(worker)
            .arg(millis(lease))
            .arg(format!("{NS}:job:"));
        for id in ids {
            call.arg(id.as_str());
        }
        let _: Value = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn complete(&self, id: &JobId) -> Result<Completion, JobError> {
        self.finish(id, "done", "").await
    }

    async fn fail(&self, id: &JobId, error: &str) -> Result<Completion, JobError> {
        self.finish(id, "failed", error).await
    }

    async fn delete(&self, id: &JobId) -> Result<bool, JobError> {
        let removed: i64 = self
            .scripts
            .delete
            .key(key("queue"))
            .key(key("waiting"))
            .key(key("running"))
            .key(key("expiry"))
            .key(job_key(id))
            .arg(GROUP)
            .arg(id.as_str())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        Ok(removed > 0)
    }

    async fn expired(&self, now: u64, max: usize) -> Result<Vec<JobId>, JobError> {
        let ids: Vec<String> = ::redis::cmd("ZRANGE")
            .arg(key("expiry"))
            .arg("-inf")
            .arg(now)
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(max)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        ids.iter()
            .map(|id| {
                id.parse()
                    .map_err(|e| JobError::Store(format!("{}: expiry index: {e}", self.url)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("redis://:s3cret@db:6379/2"), "redis://***@db:6379/2");
        assert_eq!(redact("redis://db:6379"), "redis://db:6379");
    }
}
