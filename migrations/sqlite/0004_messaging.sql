-- Messaging (docs/messages.md): which topic a consumed message came from, pruning of
-- the consumed-message ids, the lease that makes one outbox relay publish at a time
-- (several `serve`/`worker` processes may run), and the index the relay uses to keep
-- one deployment's messages in order.
ALTER TABLE consumed_messages ADD COLUMN topic TEXT NOT NULL DEFAULT '';
CREATE INDEX consumed_messages_at ON consumed_messages (consumed_at);

CREATE TABLE relay_leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
INSERT INTO relay_leases (name, holder, lease_until) VALUES ('outbox', '', 0);

CREATE INDEX outbox_key ON outbox (message_key, seq);
