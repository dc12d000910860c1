-- The seed's three tables and indexes.
-- Timestamps are TIMESTAMPTZ so that every service agrees on instants regardless of its zone.

CREATE TABLE social_media_posts (
    id          BIGSERIAL PRIMARY KEY,
    post_id     VARCHAR(128) NOT NULL UNIQUE,
    source      VARCHAR(50)  NOT NULL,
    content     TEXT         NOT NULL,
    author      VARCHAR(255) NOT NULL,
    created_at  TIMESTAMPTZ  NOT NULL,
    ingested_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    metadata    JSONB
);

CREATE TABLE sentiment_analysis (
    id               BIGSERIAL PRIMARY KEY,
    post_id          VARCHAR(128) NOT NULL REFERENCES social_media_posts (post_id) ON DELETE CASCADE,
    model_name       VARCHAR(100) NOT NULL,
    sentiment_label  VARCHAR(20)  NOT NULL,
    confidence_score REAL         NOT NULL CHECK (confidence_score >= 0 AND confidence_score <= 1),
    emotion          VARCHAR(50),
    emotion_score    REAL CHECK (emotion_score >= 0 AND emotion_score <= 1),
    emotion_model    VARCHAR(100),
    analyzed_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    UNIQUE (post_id, model_name)
);

CREATE TABLE sentiment_alerts (
    id              BIGSERIAL PRIMARY KEY,
    alert_type      VARCHAR(50)      NOT NULL,
    threshold_value DOUBLE PRECISION NOT NULL,
    actual_value    DOUBLE PRECISION NOT NULL,
    window_start    TIMESTAMPTZ      NOT NULL,
    window_end      TIMESTAMPTZ      NOT NULL,
    post_count      INTEGER          NOT NULL,
    triggered_at    TIMESTAMPTZ      NOT NULL DEFAULT now(),
    details         JSONB            NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX idx_posts_created_at ON social_media_posts (created_at DESC);
CREATE INDEX idx_posts_source ON social_media_posts (source);
CREATE INDEX idx_posts_author ON social_media_posts (author);
CREATE INDEX idx_sentiment_post_id ON sentiment_analysis (post_id);
CREATE INDEX idx_sentiment_label ON sentiment_analysis (sentiment_label);
CREATE INDEX idx_sentiment_emotion ON sentiment_analysis (emotion);
CREATE INDEX idx_sentiment_analyzed_at ON sentiment_analysis (analyzed_at DESC);
CREATE INDEX idx_alerts_triggered_at ON sentiment_alerts (triggered_at DESC);
CREATE INDEX idx_alerts_type ON sentiment_alerts (alert_type);
