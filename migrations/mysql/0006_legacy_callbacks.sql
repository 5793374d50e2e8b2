-- Legacy API callbacks (docs/legacy.md): a deployment created through the legacy API
-- with a `callback` URL is POSTed its legacy JSON when it reaches a final status. One
-- row per deployment records the version last announced (or being announced), so
-- each final state is delivered once, retried with backoff (`finished_at` is set on
-- delivery or when the retries are used up, `last_error` says which), and a crashed or second
-- notifier does not send it twice at the same time (`next_at` is also its claim).
-- (Numbered 0006: 0003 is left unused.)
CREATE TABLE legacy_callbacks (
    deployment_id VARCHAR(36) PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL,
    status BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    finished_at BIGINT,
    last_error LONGTEXT COLLATE utf8mb4_unicode_ci,
    FOREIGN KEY (deployment_id) REFERENCES deployments (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX legacy_callbacks_due ON legacy_callbacks (finished_at, next_at);
-- (No index on deployments.callback: MySQL has no partial indexes, and a TEXT
-- column takes one only on a prefix; the notifier's scan reads the table.)
