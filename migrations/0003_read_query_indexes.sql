-- Every read query joins each post to its latest analysis (a LATERAL ... ORDER BY analyzed_at
-- DESC LIMIT 1). With only an index on post_id, or on analyzed_at alone, the planner may walk
-- the whole analysis table once per post; this index makes each lookup one probe.
CREATE INDEX IF NOT EXISTS idx_sentiment_post_latest
    ON sentiment_analysis (post_id, analyzed_at DESC);
DROP INDEX IF EXISTS idx_sentiment_post_id;

-- Newest-first pages in exactly the order the API returns them, so LIMIT stops early instead of
-- sorting every match.
CREATE INDEX IF NOT EXISTS idx_posts_created_at_post_id
    ON social_media_posts (created_at DESC, post_id DESC);
DROP INDEX IF EXISTS idx_posts_created_at;
