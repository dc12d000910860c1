-- Terms and entities: what posts talk about, so the insights can say what drives a sentiment.
--
-- The worker extracts each post's terms (words, two-word phrases, @mentions) and its entities
-- (the catalogue entities it names, its #hashtags), and stores them with the post. Posts stored before this migration
-- have none, so the insights start from here.
ALTER TABLE social_media_posts
    ADD COLUMN terms    TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN entities TEXT[] NOT NULL DEFAULT '{}';

-- Posts mentioning a term, per minute of created_at and sentiment, kept with the sentiment
-- rollups (pulse_store::posts::insert_analysed): each post counted once, under its latest
-- analysis, so a re-analysis moves the post's terms to its new sentiment. `kind` is 't' for a
-- term and 'e' for a catalogue entity (the same text may be both: "kindle" and "Kindle").
CREATE TABLE term_minutes (
    minute    TIMESTAMPTZ NOT NULL,
    sentiment VARCHAR(20) NOT NULL,
    kind      CHAR(1)     NOT NULL CHECK (kind IN ('t', 'e')),
    term      TEXT        NOT NULL,
    posts     BIGINT      NOT NULL,
    PRIMARY KEY (minute, sentiment, kind, term)
);

-- The same per hour, with up to two recent posts that mention the term (example posts for the
-- drivers; the reader checks they still carry the sentiment).
CREATE TABLE term_hours (
    hour      TIMESTAMPTZ NOT NULL,
    sentiment VARCHAR(20) NOT NULL,
    kind      CHAR(1)     NOT NULL CHECK (kind IN ('t', 'e')),
    term      TEXT        NOT NULL,
    posts     BIGINT      NOT NULL,
    examples  TEXT[]      NOT NULL DEFAULT '{}',
    PRIMARY KEY (hour, sentiment, kind, term)
);

-- Example posts are looked up per term, newest hour first.
CREATE INDEX term_hours_by_term ON term_hours (kind, term, sentiment, hour DESC);
