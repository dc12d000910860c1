-- The alert monitor scans recent arrivals every interval; without this index each scan would
-- read the whole posts table.
CREATE INDEX IF NOT EXISTS idx_posts_ingested_at ON social_media_posts (ingested_at DESC);
