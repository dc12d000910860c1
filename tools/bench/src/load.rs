//! `pulse-bench load`: fills a database with synthetic analysed posts (see
//! [`pulse_store::synthetic`]) so that the read paths can be measured at millions of rows.
//! Creates and migrates the database when needed; prints the load rate as it goes.

use std::time::Instant;

/// Options of `pulse-bench load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    #[command(flatten)]
    pub database: pulse_settings::DatabaseSettings,
    /// Posts to add.
    #[arg(long, default_value_t = 1_000_000)]
    pub posts: u64,
    /// Days the posts are spread over, ending now.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Posts per transaction.
    #[arg(long, default_value_t = 200_000)]
    pub chunk: u64,
}

/// Loads the posts and reports the time taken.
pub async fn run(options: LoadOptions) -> anyhow::Result<()> {
    let url = options.database.url.expose();
    pulse_store::provision::ensure_database(url).await?;
    let pool = pulse_store::connect_pool(url, 1)?;
    let mut client = pool.get().await?;
    pulse_store::migrate::run(&mut client).await?;
    let tag = format!("synthetic-{}", chrono::Utc::now().timestamp_millis());
    let spec = pulse_store::synthetic::LoadSpec {
        posts: options.posts,
        days: options.days,
        end: chrono::Utc::now(),
        chunk: options.chunk,
    };
    let started = Instant::now();
    let loaded = pulse_store::synthetic::load(&mut client, spec, &tag, |done| {
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "loaded {done} of {} posts in {seconds:.0} s ({:.0} posts/s)",
            options.posts,
            done as f64 / seconds.max(1e-9)
        );
    })
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    let (posts, analyses) = pulse_store::posts::counts(&client).await?;
    println!(
        "loaded {loaded} posts over {} days in {seconds:.1} s ({:.0} posts/s, ANALYZE included); \
         the database holds {posts} posts and {analyses} analyses",
        options.days,
        loaded as f64 / seconds.max(1e-9)
    );
    Ok(())
}
