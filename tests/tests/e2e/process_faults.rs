//! Fault tests with real processes: workers SIGKILLed mid-batch, Redis killed and restarted on
//! its append-only file, PostgreSQL stopped and started, PostgreSQL black-holed. The services
//! run as their built binaries (`cargo build --workspace --bins` first), each test against its
//! own database, key prefix and, where it restarts one, its own Redis or PostgreSQL server, so
//! nothing here disturbs the servers other tests share.
//!
//! What the tests count is what could actually go wrong, not what a unique constraint already
//! forbids: rollup counts against a recount of the posts, the sentiment total against the
//! posts, events per post on the event feed, the workers' processed counters against the posts,
//! and texts analysed by inference against posts stored (a re-analysis is the legitimate
//! at-least-once cost of a batch in flight when its worker died; it is reported and bounded).
//!
//! Each test prints a `FAULT` line with its figures (`-- --nocapture`); `docs/operations.md`
//! ("Fault tests") tabulates them.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use futures::StreamExt;
use pulse_e2e::{
    FaultProxy, feed, migrated_database,
    processes::{Deployment, PostgresServer, RedisServer, Scratch, Service},
};
use pulse_proto::v1::{PublishRequest, ingest_service_client::IngestServiceClient};
use pulse_store::{posts::Census, query::PostQuery, rollups::Drift};
use pulse_stream::{EventFeed, RedisKeys, events::Event};
use pulse_testkit::{delete_redis_keys, redis_url, unique_name};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;
use tonic::transport::Channel;

use crate::workload::{ids, posts, publish_all};

/// Entries read and analysed together by each worker in these tests.
const BATCH_SIZE: usize = 20;
/// `WORKER_CONCURRENCY`'s default: batches in flight per worker.
const CONCURRENCY: usize = 2;

async fn ingest_client(ingester: &Service) -> anyhow::Result<IngestServiceClient<Channel>> {
    Ok(IngestServiceClient::connect(ingester.url()?).await?)
}

/// Where one test's data lives, read directly (never through a proxy).
struct Store {
    database_url: String,
    redis_url: String,
    keys: RedisKeys,
}

/// Everything counted at the end of a test.
#[derive(Debug)]
struct Figures {
    census: Census,
    stored: HashSet<String>,
    drift: Drift,
    /// Posts the sentiment rollups count in all (the distribution's total).
    counted: u64,
    pending: u64,
    dead_letters: u64,
}

impl Figures {
    fn duplicates(&self) -> u64 {
        (self.census.posts - self.census.distinct_post_ids)
            + (self.census.analyses - self.census.distinct_analyses)
    }

    fn lost(&self, expected: &HashSet<String>) -> usize {
        expected.difference(&self.stored).count()
    }

    /// Every expected post stored once, analysed once and counted once; nothing else stored,
    /// nothing pending, nothing dead-lettered.
    fn assert_exact(&self, expected: &HashSet<String>) {
        let n = expected.len() as u64;
        assert_eq!(self.lost(expected), 0, "lost posts: {self:?}");
        assert_eq!(self.duplicates(), 0, "{self:?}");
        assert_eq!(self.census.posts, n, "{self:?}");
        assert_eq!(self.census.analyses, n, "{self:?}");
        assert_eq!(self.drift, Drift::default(), "rollups drifted: {self:?}");
        assert_eq!(self.counted, n, "the rollups count {} posts", self.counted);
        assert_eq!(self.pending, 0, "{self:?}");
        assert_eq!(self.dead_letters, 0, "{self:?}");
    }
}

impl Store {
    fn new(database_url: &str, redis_url: &str, prefix: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            redis_url: redis_url.to_owned(),
            keys: RedisKeys::new(prefix),
        }
    }

    async fn db(&self) -> anyhow::Result<pulse_store::Pool> {
        Ok(pulse_store::connect_pool(&self.database_url, 1)?)
    }

    async fn census(&self) -> anyhow::Result<Census> {
        let pool = self.db().await?;
        let client = pool.get().await?;
        Ok(pulse_store::posts::census(&client).await?)
    }

    async fn backlog(&self) -> anyhow::Result<pulse_stream::Backlog> {
        let conn = pulse_stream::connect(&self.redis_url).await?;
        Ok(pulse_stream::Producer::new(conn, &self.keys, 1)
            .backlog()
            .await?)
    }

    async fn figures(&self) -> anyhow::Result<Figures> {
        let pool = self.db().await?;
        let client = pool.get().await?;
        let census = pulse_store::posts::census(&client).await?;
        let stored = pulse_store::posts::all_ids(&client)
            .await?
            .into_iter()
            .collect();
        let drift = pulse_store::rollups::drift(&client).await?;
        let counted = pulse_store::stats::distribution(&client, &PostQuery::default())
            .await?
            .total;
        let backlog = self.backlog().await?;
        let conn = pulse_stream::connect(&self.redis_url).await?;
        let dead_letters = pulse_stream::DeadLetters::new(conn, self.keys.clone())
            .count()
            .await?;
        Ok(Figures {
            census,
            stored,
            drift,
            counted,
            pending: backlog.pending + backlog.lag.unwrap_or(backlog.length),
            dead_letters,
        })
    }

    /// Waits until at least `count` posts are stored.
    async fn wait_stored(&self, count: u64, timeout: Duration) -> anyhow::Result<()> {
        wait_until(timeout, &format!("{count} posts stored"), || async {
            Ok(self.census().await?.posts >= count)
        })
        .await
    }

    /// Waits until `expected` are all stored and analysed and the group has nothing pending
    /// or undelivered.
    async fn wait_drained(
        &self,
        expected: &HashSet<String>,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let n = expected.len() as u64;
        wait_until(
            timeout,
            &format!("{n} posts stored and nothing pending"),
            || async {
                let census = self.census().await?;
                if census.posts < n || census.analyses < n {
                    return Ok(false);
                }
                let backlog = self.backlog().await?;
                Ok(backlog.pending == 0 && backlog.lag == Some(0))
            },
        )
        .await
    }

    /// `new_post` events per post id on the event feed, read from its start.
    async fn events_per_post(&self) -> anyhow::Result<HashMap<String, u32>> {
        let conn = pulse_stream::connect(&self.redis_url).await?;
        let feed = EventFeed::new(
            conn,
            &self.keys,
            pulse_stream::events::DEFAULT_EVENTS_MAX_LEN,
        );
        let mut reader = feed
            .reader(&self.redis_url, Duration::from_millis(10))
            .await?;
        let mut counts = HashMap::new();
        let mut after = "0-0".to_owned();
        loop {
            let page = reader.read_after(&after, 1_000).await?;
            let Some(last) = page.last() else { break };
            after.clone_from(&last.id);
            for entry in page {
                if let Ok(Event::NewPost { post, .. }) = entry.event {
                    *counts.entry(post.post_id).or_insert(0) += 1;
                }
            }
        }
        Ok(counts)
    }

    /// Entry ids pending for `consumer`, with their posts' ids.
    async fn pending_posts(&self, consumer: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut conn = pulse_stream::connect(&self.redis_url).await?;
        let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(self.keys.posts())
            .arg(pulse_stream::keys::WORKER_GROUP)
            .arg("-")
            .arg("+")
            .arg(100_000)
            .arg(consumer)
            .query_async(&mut conn)
            .await?;
        let mut pending = Vec::with_capacity(rows.len());
        for (id, ..) in rows {
            let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg(self.keys.posts())
                .arg(&id)
                .arg(&id)
                .query_async(&mut conn)
                .await?;
            let post_id = entries
                .into_iter()
                .flat_map(|(_, fields)| fields)
                .find_map(|(k, v)| (k == "post_id").then_some(v))
                .unwrap_or_default();
            pending.push((id, post_id));
        }
        Ok(pending)
    }
}

/// Polls `condition` every 100 ms until it holds; fails naming `what` after `timeout`.
async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await? {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a [`Publisher`] saw.
#[derive(Debug, Default)]
struct Published {
    /// Post ids of every call that returned OK, with when it returned.
    acknowledged: Vec<(Instant, Vec<String>)>,
    attempted: HashSet<String>,
    /// Failed calls by status code.
    refused: HashMap<String, u64>,
}

impl Published {
    fn acknowledged_ids(&self) -> HashSet<String> {
        self.acknowledged
            .iter()
            .flat_map(|(_, ids)| ids.iter().cloned())
            .collect()
    }

    fn refused_calls(&self) -> u64 {
        self.refused.values().sum()
    }

    /// The first acknowledgement after `moment`.
    fn first_ack_after(&self, moment: Instant) -> Option<Instant> {
        self.acknowledged
            .iter()
            .map(|(at, _)| *at)
            .find(|at| *at > moment)
    }
}

/// Calls `Publish` with 10 posts every 50 ms until stopped, through any outage, and remembers
/// what was acknowledged: the promise under test is that no acknowledged post is lost.
struct Publisher {
    stop: tokio::sync::watch::Sender<bool>,
    seen: Arc<Mutex<Published>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Publisher {
    fn start(mut client: IngestServiceClient<Channel>, prefix: &'static str) -> Self {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let seen = Arc::new(Mutex::new(Published::default()));
        let task = {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut next = 0usize;
                while !*stop_rx.borrow() {
                    let batch = posts(prefix, next..next + 10);
                    next += 10;
                    let ids: Vec<String> = batch.iter().map(|p| p.post_id.clone()).collect();
                    seen.lock()
                        .expect("publisher state")
                        .attempted
                        .extend(ids.iter().cloned());
                    let call = tokio::time::timeout(
                        Duration::from_secs(15),
                        client.publish(PublishRequest { posts: batch }),
                    )
                    .await
                    .map_err(|_| anyhow::anyhow!("Publish hung for 15 s"))?;
                    let at = Instant::now();
                    let outcome = call.map(|r| r.into_inner().accepted_count);
                    {
                        let mut state = seen.lock().expect("publisher state");
                        match outcome {
                            Ok(10) => state.acknowledged.push((at, ids)),
                            Ok(accepted) => anyhow::bail!("{accepted} of 10 accepted"),
                            Err(status) => {
                                *state
                                    .refused
                                    .entry(format!("{:?}", status.code()))
                                    .or_default() += 1;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(())
            })
        };
        Self { stop, seen, task }
    }

    async fn finish(self) -> anyhow::Result<Published> {
        let _ = self.stop.send(true);
        self.task.await??;
        let seen = std::mem::take(&mut *self.seen.lock().expect("publisher state"));
        Ok(seen)
    }
}

/// Publishes one post until a call returns OK; returns its id.
async fn publish_one_until_ok(
    client: &mut IngestServiceClient<Channel>,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut post = posts("probe", 0..1).remove(0);
    post.post_id = id.to_owned();
    let deadline = Instant::now() + timeout;
    loop {
        let call = tokio::time::timeout(
            Duration::from_secs(5),
            client.publish(PublishRequest {
                posts: vec![post.clone()],
            }),
        )
        .await;
        if let Ok(Ok(_)) = call {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "Publish did not succeed within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the gateway's live feed and waits for its `connected` hello.
async fn live_feed(gateway: &Service) -> anyhow::Result<Ws> {
    let addr = gateway.addr.context("the gateway serves HTTP")?;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/sentiment")).await?;
    let hello = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .context("no hello on the WebSocket")?
        .context("the WebSocket closed")??;
    let hello: Value = serde_json::from_str(hello.to_text()?)?;
    anyhow::ensure!(hello["type"] == "connected", "{hello}");
    Ok(ws)
}

/// Runs `test` against a fresh database on the shared server and a fresh prefix on the shared
/// Redis, then removes both whatever the outcome.
async fn with_shared_servers<F, Fut>(tag: &str, test: F) -> anyhow::Result<()>
where
    F: FnOnce(Deployment) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let database = migrated_database(tag).await?;
    let prefix = unique_name(tag);
    let deployment = Deployment::new(
        Scratch::new(tag)?,
        database.url.clone(),
        redis_url(),
        prefix.clone(),
    );
    let result = test(deployment).await;
    delete_redis_keys(&prefix).await?;
    database.drop_now().await?;
    result
}

/// One SIGKILL: what the killed worker had done and had in flight.
#[derive(Debug)]
struct Kill {
    consumer: String,
    /// Its counters, scraped just before the kill: posts it stored, entries it acknowledged
    /// because a dead worker had stored their posts, entries it took over.
    processed: f64,
    already_stored: f64,
    claimed: f64,
    /// Entries delivered to it and not acknowledged when it died: (entry id, post id).
    orphaned: Vec<(String, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkilled_worker_processes_lose_nothing_and_do_nothing_twice() -> anyhow::Result<()> {
    with_shared_servers("prockill", |deployment| async move {
        let started = Instant::now();
        let n = 5_000;
        let kills = 3;
        let store = Store::new(
            &deployment.database_url,
            &deployment.redis_url,
            &deployment.prefix,
        );
        let seed: u64 = rand::rng().random();
        let mut rng = StdRng::seed_from_u64(seed);
        let inference = deployment.inference().await?;
        let ingester = deployment.ingester().await?;
        let env = [("BATCH_SIZE", BATCH_SIZE.to_string())];
        let mut workers = Vec::new();
        for k in 0..2 {
            let name = format!("worker-{k}");
            workers.push((
                name.clone(),
                deployment.worker(&name, &inference.url()?, &env).await?,
            ));
        }
        let mut ingest = ingest_client(&ingester).await?;
        publish_all(&mut ingest, posts("kill", 0..n)).await?;

        // Three kills at random points of the flow, each of a random one of the two workers,
        // each followed after a random pause by a replacement under a new name (as a new pod
        // would be), which takes over the orphans after CLAIM_IDLE.
        let mut marks: Vec<u64> = (0..kills).map(|_| rng.random_range(300..4_200)).collect();
        marks.sort_unstable();
        let mut killed = Vec::new();
        for (k, mark) in marks.iter().enumerate() {
            store.wait_stored(*mark, Duration::from_secs(90)).await?;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..250))).await;
            let victim = rng.random_range(0..workers.len());
            let (consumer, mut worker) = workers.remove(victim);
            let scrape = worker.metrics().await?;
            worker.process.kill()?;
            killed.push(Kill {
                processed: scrape.sum("pulse_worker_posts_processed_total", &[]),
                already_stored: scrape.sum("pulse_worker_entries_already_stored_total", &[]),
                claimed: scrape.sum("pulse_worker_entries_claimed_total", &[]),
                orphaned: store.pending_posts(&consumer).await?,
                consumer,
            });
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_000))).await;
            let name = format!("worker-{}", k + 2);
            workers.push((
                name.clone(),
                deployment.worker(&name, &inference.url()?, &env).await?,
            ));
        }
        let last_kill = Instant::now();

        let expected = ids("kill", 0..n);
        store
            .wait_drained(&expected, Duration::from_secs(120))
            .await?;
        let drained_after = last_kill.elapsed();
        let figures = store.figures().await?;
        let events = store.events_per_post().await?;
        let mut survivors_processed = 0.0;
        let mut survivors_skipped = 0.0;
        let mut survivors_claimed = 0.0;
        for (_, worker) in &workers {
            let scrape = worker.metrics().await?;
            survivors_processed += scrape.sum("pulse_worker_posts_processed_total", &[]);
            survivors_skipped += scrape.sum("pulse_worker_entries_already_stored_total", &[]);
            survivors_claimed += scrape.sum("pulse_worker_entries_claimed_total", &[]);
        }
        let inference_scrape = inference.metrics().await?;
        // Texts answered (a request cancelled by its worker's death is not), and texts the
        // model ran, answered or not.
        let analysed =
            inference_scrape.sum("pulse_inference_texts_total", &[("task", "sentiment")]) as u64;
        let model_texts = inference_scrape.sum("pulse_inference_batch_texts_sum", &[]) as u64;

        let killed_processed: f64 = killed.iter().map(|k| k.processed).sum();
        let processed = (survivors_processed + killed_processed) as u64;
        let already_stored =
            (survivors_skipped + killed.iter().map(|k| k.already_stored).sum::<f64>()) as u64;
        let claimed = (survivors_claimed + killed.iter().map(|k| k.claimed).sum::<f64>()) as u64;
        let orphaned: HashSet<String> = killed
            .iter()
            .flat_map(|k| k.orphaned.iter().map(|(_, post)| post.clone()))
            .collect();
        let in_flight_bound = (kills * CONCURRENCY * BATCH_SIZE) as u64;
        let reanalysed = analysed.saturating_sub(n as u64);
        let events_missing: Vec<&String> = expected
            .iter()
            .filter(|id| !events.contains_key(*id))
            .collect();
        let events_repeated: Vec<&String> = events
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(id, _)| id)
            .collect();
        eprintln!(
            "FAULT worker-sigkill x{kills} (seed {seed}): posts {} lost {} duplicates {} rollup drift {:?} counted {} dead-lettered {}; kills at {marks:?} stored, orphaning {:?} entries ({} claimed back); processed counters {processed} (killed {killed_processed} by their last scrape + survivors {survivors_processed}), {already_stored} entries found stored already; texts answered by inference {analysed}, re-analysed {reanalysed} (the model ran {model_texts}); events: {} posts without one, {} with more than one; drained {:.1} s after the last kill; test {:.1} s",
            figures.census.posts,
            figures.lost(&expected),
            figures.duplicates(),
            figures.drift,
            figures.counted,
            figures.dead_letters,
            killed.iter().map(|k| k.orphaned.len()).collect::<Vec<_>>(),
            claimed,
            events_missing.len(),
            events_repeated.len(),
            drained_after.as_secs_f64(),
            started.elapsed().as_secs_f64(),
        );

        figures.assert_exact(&expected);
        for kill in &killed {
            assert_eq!(
                store.pending_posts(&kill.consumer).await?.len(),
                0,
                "{} still owns entries",
                kill.consumer
            );
        }
        // Every post was analysed at least once; more only for entries a dead worker held.
        assert!(analysed >= n as u64, "{analysed} texts analysed for {n} posts");
        assert!(
            reanalysed <= orphaned.len() as u64 && reanalysed <= in_flight_bound,
            "{reanalysed} re-analysed, {} orphaned, bound {in_flight_bound}",
            orphaned.len()
        );
        // An entry is counted once, by the worker that acknowledged it: as processed when that
        // worker stored its post, as already stored when a dead worker had committed it. A
        // killed worker may have finished a batch after its last scrape, which nobody can
        // count any more: at most its batches in flight.
        let counted = processed + already_stored;
        assert!(
            counted <= n as u64,
            "{counted} entries counted for {n} posts"
        );
        assert!(
            counted + in_flight_bound >= n as u64,
            "{counted} entries counted for {n} posts"
        );
        assert!(
            already_stored <= orphaned.len() as u64,
            "{already_stored} found stored, {} orphaned",
            orphaned.len()
        );
        // An event goes out after the commit and the acknowledgement, and never for a post
        // found stored already: no post is announced twice. A worker killed after its commit
        // and before its announcement leaves posts unannounced (the live view's catch-up reads
        // them from the database), at most its batches in flight.
        assert!(
            events_repeated.is_empty(),
            "{} posts announced more than once",
            events_repeated.len()
        );
        assert!(
            events_missing.len() as u64 <= in_flight_bound,
            "{} posts never announced",
            events_missing.len()
        );
        assert_eq!(
            events.keys().filter(|id| !expected.contains(*id)).count(),
            0
        );
        anyhow::Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_and_restarted_on_its_aof_loses_no_acknowledged_post() -> anyhow::Result<()> {
    let started = Instant::now();
    let tag = "procredis";
    let database = migrated_database(tag).await?;
    let scratch = Scratch::new(tag)?;
    let mut redis = RedisServer::start(&scratch).await?;
    let prefix = unique_name(tag);
    let deployment = Deployment::new(scratch, database.url.clone(), redis.url(), prefix);
    let result = async {
        let store = Store::new(&database.url, &redis.url(), &deployment.prefix);
        let inference = deployment.inference().await?;
        let ingester = deployment.ingester().await?;
        let analytics = deployment.analytics().await?;
        let gateway = deployment.gateway(&analytics, &inference, &ingester).await?;
        let worker = deployment
            .worker(
                "worker-0",
                &inference.url()?,
                &[("BATCH_SIZE", BATCH_SIZE.to_string())],
            )
            .await?;
        let mut ws = live_feed(&gateway).await?;
        let mut ingest = ingest_client(&ingester).await?;
        publish_one_until_ok(&mut ingest, "before-restart", Duration::from_secs(10)).await?;
        anyhow::ensure!(
            feed::wait_for_post(&mut ws, "before-restart", Duration::from_secs(30)).await?,
            "the live feed did not work before the fault"
        );

        let publisher = Publisher::start(ingest.clone(), "pub");
        store.wait_stored(300, Duration::from_secs(60)).await?;
        redis.kill()?;
        let killed_at = Instant::now();
        tokio::time::sleep(Duration::from_secs(3)).await;
        redis.restart().await?;
        let restarted_at = Instant::now();

        // The services reconnect by themselves: a post published now is analysed, stored and
        // pushed down the WebSocket opened before the fault.
        publish_one_until_ok(&mut ingest, "after-restart", Duration::from_secs(30)).await?;
        let published_again = restarted_at.elapsed();
        let announced =
            feed::wait_for_post(&mut ws, "after-restart", Duration::from_secs(60)).await?;
        let announced_after = restarted_at.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let published = publisher.finish().await?;

        let acknowledged = published.acknowledged_ids();
        let mut expected = acknowledged.clone();
        expected.extend(["before-restart".to_owned(), "after-restart".to_owned()]);
        let drained = store.wait_drained(&expected, Duration::from_secs(90)).await;
        let figures = store.figures().await?;
        // A call whose answer was lost in the crash may have been stored all the same.
        let unacknowledged_stored = figures
            .stored
            .iter()
            .filter(|id| !expected.contains(*id))
            .count();
        let resumed_after = published
            .first_ack_after(restarted_at)
            .map(|at| at - restarted_at);
        eprintln!(
            "FAULT redis-sigkill-restart ({}): posts {} lost {} duplicates {} rollup drift {:?} counted {} dead-lettered {}; Publish: {} posts acknowledged, {} calls refused {:?} while down {:.1} s, {unacknowledged_stored} stored without an answer; publishing resumed {:.1} s after the restart (the test's probe after {:.1} s), WebSocket event {:.1} s after; test {:.1} s",
            redis.durability().join(" "),
            figures.census.posts,
            figures.lost(&acknowledged),
            figures.duplicates(),
            figures.drift,
            figures.counted,
            figures.dead_letters,
            acknowledged.len(),
            published.refused_calls(),
            published.refused,
            (restarted_at - killed_at).as_secs_f64(),
            resumed_after.unwrap_or_default().as_secs_f64(),
            published_again.as_secs_f64(),
            announced_after.as_secs_f64(),
            started.elapsed().as_secs_f64(),
        );
        drained.with_context(|| format!("worker log:\n{}", worker.process.log_tail(20)))?;
        assert!(
            redis.log().contains("DB loaded from append only file"),
            "the restarted Redis did not load its AOF"
        );
        assert_eq!(figures.lost(&expected), 0, "acknowledged posts lost");
        assert!(
            figures
                .stored
                .iter()
                .all(|id| expected.contains(id) || published.attempted.contains(id)),
            "a stored post nobody published"
        );
        assert_eq!(figures.duplicates(), 0);
        assert_eq!(figures.census.analyses, figures.census.posts);
        assert_eq!(figures.drift, Drift::default());
        assert_eq!(figures.counted, figures.census.posts);
        assert_eq!((figures.pending, figures.dead_letters), (0, 0));
        assert!(published.refused_calls() > 0, "Publish never saw the outage");
        assert!(resumed_after.is_some(), "the publisher never succeeded again");
        assert!(announced, "no WebSocket event after the restart");
        anyhow::Ok(())
    }
    .await;
    // Redis first: the deployment's scratch folder holds its AOF.
    drop(redis);
    drop(deployment);
    database.drop_now().await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_fast_restart_loses_nothing_and_dead_letters_nothing() -> anyhow::Result<()> {
    let started = Instant::now();
    let tag = "procpg";
    let scratch = Scratch::new(tag)?;
    let mut postgres = PostgresServer::start(&scratch).await?;
    let database_url = postgres.url("pulse");
    pulse_store::provision::ensure_database(&database_url).await?;
    {
        let pool = pulse_store::connect_pool(&database_url, 1)?;
        let mut client = pool.get().await?;
        pulse_store::migrate::run(&mut client).await?;
    }
    let prefix = unique_name(tag);
    let deployment = Deployment::new(scratch, database_url.clone(), redis_url(), prefix.clone());
    let result = async {
        let store = Store::new(&database_url, &redis_url(), &prefix);
        let inference = deployment.inference().await?;
        let ingester = deployment.ingester().await?;
        let env = [("BATCH_SIZE", BATCH_SIZE.to_string())];
        let workers = [
            deployment.worker("worker-0", &inference.url()?, &env).await?,
            deployment.worker("worker-1", &inference.url()?, &env).await?,
        ];
        let publisher = Publisher::start(ingest_client(&ingester).await?, "pg");
        store.wait_stored(300, Duration::from_secs(60)).await?;

        postgres.stop_fast().await?;
        let stopped_at = Instant::now();
        tokio::time::sleep(Duration::from_secs(3)).await;
        postgres.start_again().await?;
        let started_at = Instant::now();
        let stored_at_start = store.census().await?.posts;
        wait_until(Duration::from_secs(60), "processing to resume", || async {
            Ok(store.census().await?.posts > stored_at_start)
        })
        .await?;
        let resumed_after = started_at.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let published = publisher.finish().await?;

        let acknowledged = published.acknowledged_ids();
        let drained = store
            .wait_drained(&acknowledged, Duration::from_secs(90))
            .await;
        let figures = store.figures().await?;
        let mut failed = HashMap::new();
        for worker in &workers {
            let scrape = worker.metrics().await?;
            for cause in ["database", "timeout", "redis", "inference"] {
                *failed.entry(cause).or_insert(0.0) +=
                    scrape.sum("pulse_worker_batches_failed_total", &[("cause", cause)]);
            }
        }
        eprintln!(
            "FAULT postgres-fast-restart: posts {} lost {} duplicates {} rollup drift {:?} counted {} dead-lettered {}; {} posts acknowledged by Publish ({} calls refused), down {:.1} s, failed batches {failed:?}; processing resumed {:.1} s after the start; test {:.1} s",
            figures.census.posts,
            figures.lost(&acknowledged),
            figures.duplicates(),
            figures.drift,
            figures.counted,
            figures.dead_letters,
            acknowledged.len(),
            published.refused_calls(),
            (started_at - stopped_at).as_secs_f64(),
            resumed_after.as_secs_f64(),
            started.elapsed().as_secs_f64(),
        );
        drained.with_context(|| {
            format!(
                "worker log:\n{}\nPostgreSQL log:\n{}",
                workers[0].process.log_tail(20),
                postgres.log()
            )
        })?;
        // Redis stayed up, so every call was acknowledged.
        assert_eq!(published.refused_calls(), 0, "{:?}", published.refused);
        figures.assert_exact(&acknowledged);
        assert!(
            failed.values().sum::<f64>() >= 1.0,
            "no batch noticed the restart"
        );
        anyhow::Ok(())
    }
    .await;
    // PostgreSQL first: the deployment's scratch folder holds its data.
    drop(postgres);
    drop(deployment);
    delete_redis_keys(&prefix).await?;
    result
}

/// The dependency a black-hole test takes away from the worker.
#[derive(Debug, Clone, Copy)]
enum Hole {
    Postgres,
    Inference,
}

/// Black-holes the worker's `hole` dependency for 30 s mid-flow: its timeouts must fire (failed
/// batches, probes that give up, not ready, the admin endpoint still answering), nothing may be
/// stored meanwhile, and once the hole closes processing resumes within 20 s and everything is
/// stored exactly once.
async fn black_hole_for_thirty_seconds(tag: &'static str, hole: Hole) -> anyhow::Result<()> {
    with_shared_servers(tag, |deployment| async move {
        let started = Instant::now();
        let length = Duration::from_secs(30);
        let store = Store::new(
            &deployment.database_url,
            &deployment.redis_url,
            &deployment.prefix,
        );
        let inference = deployment.inference().await?;
        let ingester = deployment.ingester().await?;
        let mut env = vec![("BATCH_SIZE", BATCH_SIZE.to_string())];
        let (proxy, inference_url) = match hole {
            Hole::Postgres => {
                let proxy =
                    FaultProxy::start(pulse_e2e::host_port(&deployment.database_url, 5432))
                        .await?;
                env.push((
                    "DATABASE_URL",
                    pulse_e2e::with_address(&deployment.database_url, proxy.addr()),
                ));
                (proxy, inference.url()?)
            }
            Hole::Inference => {
                let addr = inference.addr.context("inference serves gRPC")?;
                let proxy = FaultProxy::start(addr.to_string()).await?;
                let url = format!("http://{}", proxy.addr());
                (proxy, url)
            }
        };
        let worker = deployment.worker("worker-0", &inference_url, &env).await?;
        let mut ingest = ingest_client(&ingester).await?;
        publish_all(&mut ingest, posts(tag, 0..1_000)).await?;
        store.wait_stored(200, Duration::from_secs(60)).await?;

        let failed_before = worker
            .metrics()
            .await?
            .sum("pulse_worker_batches_failed_total", &[]);
        proxy.black_hole();
        let holed_at = Instant::now();
        publish_all(&mut ingest, posts(tag, 1_000..1_500)).await?;
        // Whatever was committing as the hole opened has landed by now.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let frozen = store.census().await?.posts;
        let mut not_ready_after = None;
        let mut answered_throughout = true;
        while holed_at.elapsed() < length {
            if not_ready_after.is_none() && !worker.is_ready().await {
                not_ready_after = Some(holed_at.elapsed());
            }
            answered_throughout &= worker.is_alive().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let during = worker.metrics().await?;
        let still = store.census().await?.posts;
        proxy.restore();
        let restored_at = Instant::now();
        wait_until(Duration::from_secs(60), "processing to resume", || async {
            Ok(store.census().await?.posts > still)
        })
        .await?;
        let resumed_after = restored_at.elapsed();

        let expected = ids(tag, 0..1_500);
        let drained = store.wait_drained(&expected, Duration::from_secs(90)).await;
        let figures = store.figures().await?;
        let failed_by_cause: Vec<(&str, f64)> = ["timeout", "database", "inference"]
            .into_iter()
            .map(|cause| {
                (
                    cause,
                    during.sum("pulse_worker_batches_failed_total", &[("cause", cause)]),
                )
            })
            .filter(|(_, n)| *n > 0.0)
            .collect();
        let failed_during = during.sum("pulse_worker_batches_failed_total", &[]) - failed_before;
        let log = worker.process.log();
        let waited = log.matches("still waiting for dependencies").count();
        eprintln!(
            "FAULT {hole:?}-black-hole-30s: posts {} lost {} duplicates {} rollup drift {:?} counted {} dead-lettered {}; {frozen} stored when the hole opened, {still} when it closed; {} new connections held unanswered; failed batches during the hole {failed_during} {failed_by_cause:?}, {waited} probe rounds logged; not ready after {:.1} s, admin answered throughout: {answered_throughout}; processing resumed {:.1} s after the restore; test {:.1} s",
            figures.census.posts,
            figures.lost(&expected),
            figures.duplicates(),
            figures.drift,
            figures.counted,
            figures.dead_letters,
            proxy.held(),
            not_ready_after.unwrap_or_default().as_secs_f64(),
            resumed_after.as_secs_f64(),
            started.elapsed().as_secs_f64(),
        );
        drained.with_context(|| format!("worker log:\n{}", worker.process.log_tail(20)))?;
        assert_eq!(still, frozen, "posts were stored through the black hole");
        assert!(
            failed_during >= 1.0,
            "no batch failed: the worker's timeouts did not fire"
        );
        assert!(waited >= 1, "the worker never probed its dependencies");
        assert!(not_ready_after.is_some(), "the worker stayed ready");
        assert!(answered_throughout, "the worker's admin endpoint hung");
        assert!(worker.is_ready().await, "not ready again after the drain");
        assert!(
            resumed_after < Duration::from_secs(20),
            "processing resumed only {resumed_after:?} after the restore"
        );
        figures.assert_exact(&expected);
        anyhow::Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_black_holed_for_thirty_seconds_times_out_and_recovers() -> anyhow::Result<()> {
    black_hole_for_thirty_seconds("pghole", Hole::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inference_black_holed_for_thirty_seconds_times_out_and_recovers() -> anyhow::Result<()> {
    black_hole_for_thirty_seconds("infhole", Hole::Inference).await
}
