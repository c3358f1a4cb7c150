-- Users, links and their events. Timestamps are UTC without zone, as the API serves them.
CREATE TABLE users (
    id         BIGSERIAL PRIMARY KEY,
    username   TEXT NOT NULL UNIQUE,
    email      TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

CREATE TABLE urls (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    short_code   TEXT NOT NULL UNIQUE,
    original_url TEXT NOT NULL,
    title        TEXT,
    is_active    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at   TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at   TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX urls_user_id ON urls (user_id);

-- Events are an append-only log: they keep the ids of links and users that
-- were deleted since, so there are no foreign keys here.
CREATE TABLE events (
    id         BIGSERIAL PRIMARY KEY,
    url_id     BIGINT,
    user_id    BIGINT,
    event_type TEXT NOT NULL,
    timestamp  TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    details    JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX events_url_id ON events (url_id);
CREATE INDEX events_user_id ON events (user_id);
CREATE INDEX events_event_type ON events (event_type);
