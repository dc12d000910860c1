//! `pulse-worker dlq list|replay`: the operator's view of the dead-letter stream.
//!
//! `list` shows why each entry was given up on; `replay` puts entries back on the posts stream
//! with their original fields (one atomic move per entry, see [`pulse_stream::dead_letters`]),
//! once whatever made them fail has been fixed.

use std::io::Write;

use pulse_stream::{DeadLetter, DeadLetters, RedisKeys};

use crate::{Config, config::DlqCommand};

/// Longest field value printed by `list`, in characters.
const MAX_SHOWN_CHARS: usize = 120;

/// Runs `command`, writing what it did to `out`. Replaying ids that are not dead letters is an
/// error (after the others were replayed), so scripts notice typos.
pub async fn run(
    config: &Config,
    command: &DlqCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let conn = pulse_stream::connect(config.redis.url.expose()).await?;
    let keys = RedisKeys::new(&config.redis.prefix);
    let dlq = DeadLetters::new(conn, keys.clone());
    match command {
        DlqCommand::List { limit } => {
            let total = dlq.count().await?;
            let letters = dlq.list(None, *limit).await?;
            writeln!(
                out,
                "{total} dead letters in {}{}",
                keys.dead_letters(),
                if letters.len() < usize::try_from(total).unwrap_or(usize::MAX) {
                    format!(", the oldest {} shown", letters.len())
                } else {
                    String::new()
                }
            )?;
            for letter in &letters {
                write_letter(out, letter)?;
            }
        }
        DlqCommand::Replay { all, ids } => {
            let mut missing = Vec::new();
            let replayed = if *all {
                dlq.replay_all().await?
            } else {
                let mut replayed = Vec::new();
                for id in ids {
                    match dlq.replay(id).await? {
                        Some(new_id) => replayed.push((id.clone(), new_id)),
                        None => missing.push(id.clone()),
                    }
                }
                replayed
            };
            for (id, new_id) in &replayed {
                writeln!(out, "replayed {id} as {new_id} on {}", keys.posts())?;
            }
            writeln!(out, "{} dead letters replayed", replayed.len())?;
            anyhow::ensure!(
                missing.is_empty(),
                "no dead letter with id {}",
                missing.join(", ")
            );
        }
    }
    Ok(())
}

fn write_letter(out: &mut impl Write, letter: &DeadLetter) -> std::io::Result<()> {
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_owned());
    writeln!(
        out,
        "\n{}  original {}  deliveries {}  consumer {}",
        letter.id,
        or_unknown(&letter.original_id),
        letter
            .deliveries
            .map_or_else(|| "?".to_owned(), |n| n.to_string()),
        or_unknown(&letter.consumer),
    )?;
    writeln!(out, "  reason: {}", or_unknown(&letter.reason))?;
    for (name, value) in &letter.fields {
        let text = String::from_utf8_lossy(value);
        let shown: String = text.chars().take(MAX_SHOWN_CHARS).collect();
        let more = if text.chars().count() > MAX_SHOWN_CHARS {
            "…"
        } else {
            ""
        };
        writeln!(out, "  {name}: {shown:?}{more}")?;
    }
    Ok(())
}
