-- Friends, friend requests and blocks. A friendship is stored as two rows, one per side, so
-- "my friends" and "is X my friend" are both one index range on the leading column.

-- Bumped, for both people, by every change of friendship, request or block: caches of a
-- user's friend list are keyed by it, so a change shows on the very next request.
ALTER TABLE users ADD COLUMN social_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE friendships (
    user_id   UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    friend_id UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    since_us  BIGINT NOT NULL,
    PRIMARY KEY (user_id, friend_id),
    CHECK (user_id <> friend_id)
);
-- "My friends, newest friendship first" as an index range scan.
CREATE INDEX friendships_user_since ON friendships (user_id, since_us DESC, friend_id DESC);

CREATE TABLE friend_requests (
    id            UUID   PRIMARY KEY,
    from_user     UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    to_user       UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at_us BIGINT NOT NULL,
    CONSTRAINT friend_requests_pair_key UNIQUE (from_user, to_user),
    CHECK (from_user <> to_user)
);
CREATE INDEX friend_requests_incoming ON friend_requests (to_user, created_at_us DESC, id DESC);
CREATE INDEX friend_requests_outgoing ON friend_requests (from_user, created_at_us DESC, id DESC);

CREATE TABLE blocks (
    blocker  UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked  UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    since_us BIGINT NOT NULL,
    PRIMARY KEY (blocker, blocked),
    CHECK (blocker <> blocked)
);
CREATE INDEX blocks_blocked ON blocks (blocked, blocker);
CREATE INDEX blocks_blocker_since ON blocks (blocker, since_us DESC, blocked DESC);

-- Every friend request sent, kept for a day: the daily limit counts these, so cancelling a
-- request does not give its slot back.
CREATE TABLE friend_request_sends (
    user_id    UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sent_at_us BIGINT NOT NULL
);
CREATE INDEX friend_request_sends_user ON friend_request_sends (user_id, sent_at_us);
