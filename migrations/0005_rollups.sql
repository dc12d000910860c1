-- Rollups: counts of analysed posts per time bucket, kept in the transaction that stores the
-- analyses (pulse_store::posts::insert_analysed), so charts, distributions and alert windows sum
-- a few rows per bucket instead of reading every post.
--
-- Each post is counted once, under its latest analysis (newest analyzed_at, then highest id: the
-- order every read uses). When a later analysis of a stored post arrives, the write moves the
-- post from its old labels to the new ones; a redelivered batch inserts no analysis and so
-- changes no count. `emotion` is '' for an analysis without one (a key column cannot be NULL).

-- By the post's own time (created_at), the axis of the API's charts and filters.
CREATE TABLE sentiment_minutes (
    minute         TIMESTAMPTZ      NOT NULL,
    source         VARCHAR(50)      NOT NULL,
    sentiment      VARCHAR(20)      NOT NULL,
    emotion        VARCHAR(50)      NOT NULL,
    posts          BIGINT           NOT NULL,
    confidence_sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (minute, source, sentiment, emotion)
);

-- The same, per hour: a 30-day chart sums 720 hours, not 43,200 minutes.
CREATE TABLE sentiment_hours (
    hour           TIMESTAMPTZ      NOT NULL,
    source         VARCHAR(50)      NOT NULL,
    sentiment      VARCHAR(20)      NOT NULL,
    emotion        VARCHAR(50)      NOT NULL,
    posts          BIGINT           NOT NULL,
    confidence_sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (hour, source, sentiment, emotion)
);

-- And per day: a year's distribution sums 365 days.
CREATE TABLE sentiment_days (
    day            TIMESTAMPTZ      NOT NULL,
    source         VARCHAR(50)      NOT NULL,
    sentiment      VARCHAR(20)      NOT NULL,
    emotion        VARCHAR(50)      NOT NULL,
    posts          BIGINT           NOT NULL,
    confidence_sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (day, source, sentiment, emotion)
);

-- By arrival (ingested_at), the axis of the alert windows.
CREATE TABLE arrival_minutes (
    minute    TIMESTAMPTZ NOT NULL,
    source    VARCHAR(50) NOT NULL,
    sentiment VARCHAR(20) NOT NULL,
    posts     BIGINT      NOT NULL,
    PRIMARY KEY (minute, source, sentiment)
);

-- Rows stored before this migration, counted the way the write path counts them.
CREATE TEMPORARY TABLE latest_analysis ON COMMIT DROP AS
SELECT p.source, p.created_at, p.ingested_at, a.sentiment_label, coalesce(a.emotion, '') AS emotion,
       a.confidence_score::float8 AS confidence
FROM social_media_posts p
JOIN LATERAL (
    SELECT s.sentiment_label, s.emotion, s.confidence_score
    FROM sentiment_analysis s
    WHERE s.post_id = p.post_id
    ORDER BY s.analyzed_at DESC, s.id DESC
    LIMIT 1
) a ON TRUE;

INSERT INTO sentiment_minutes (minute, source, sentiment, emotion, posts, confidence_sum)
SELECT date_trunc('minute', created_at, 'UTC'), source, sentiment_label, emotion, count(*), sum(confidence)
FROM latest_analysis GROUP BY 1, 2, 3, 4;

INSERT INTO sentiment_hours (hour, source, sentiment, emotion, posts, confidence_sum)
SELECT date_trunc('hour', created_at, 'UTC'), source, sentiment_label, emotion, count(*), sum(confidence)
FROM latest_analysis GROUP BY 1, 2, 3, 4;

INSERT INTO sentiment_days (day, source, sentiment, emotion, posts, confidence_sum)
SELECT date_trunc('day', created_at, 'UTC'), source, sentiment_label, emotion, count(*), sum(confidence)
FROM latest_analysis GROUP BY 1, 2, 3, 4;

INSERT INTO arrival_minutes (minute, source, sentiment, posts)
SELECT date_trunc('minute', ingested_at, 'UTC'), source, sentiment_label, count(*)
FROM latest_analysis GROUP BY 1, 2, 3;
