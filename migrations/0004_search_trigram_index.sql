-- `search` is a substring match (`content ILIKE '%text%'`), which no B-tree index can serve: it
-- read every post of the range. A trigram index answers it for any search of three or more
-- characters. pg_trgm ships with PostgreSQL and is a trusted extension (PostgreSQL 13+), so the
-- database owner may create it; managed services (RDS, Cloud SQL, Azure) offer it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS idx_posts_content_trgm
    ON social_media_posts USING gin (content gin_trgm_ops);
