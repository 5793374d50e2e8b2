-- The whole v1 data model. Timestamps are microseconds since the epoch (BIGINT),
-- booleans are 0/1, JSON documents are text: the same shapes on every backend.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    sub TEXT NOT NULL,
    issuer TEXT NOT NULL,
    name TEXT NOT NULL,
    username TEXT NOT NULL,
    email TEXT NOT NULL,
    picture TEXT,
    public_ssh_key TEXT,
    refresh_token TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT users_sub_issuer UNIQUE (sub, issuer)
);

CREATE TABLE templates (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    version TEXT,
    target_provider_type TEXT,
    tosca_definition_version TEXT NOT NULL,
    content TEXT NOT NULL,
    checksum TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL REFERENCES users (id),
    CONSTRAINT templates_checksum UNIQUE (checksum)
);
CREATE INDEX templates_created_at ON templates (created_at);

CREATE TABLE deployments (
    id TEXT PRIMARY KEY NOT NULL,
    template_id TEXT NOT NULL REFERENCES templates (id),
    template_inputs TEXT NOT NULL,
    template_outputs TEXT NOT NULL,
    user_group TEXT NOT NULL,
    per_provider_max_retries BIGINT NOT NULL,
    max_providers BIGINT,
    tot_timeout_mins BIGINT NOT NULL,
    per_provider_timeout_mins BIGINT NOT NULL,
    keep_last_attempt BIGINT NOT NULL,
    target_provider TEXT,
    target_region TEXT,
    target_iaas_project TEXT,
    im_infra_id TEXT,
    status BIGINT NOT NULL,
    status_reason TEXT,
    task BIGINT NOT NULL,
    im_logs TEXT,
    callback TEXT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL REFERENCES users (id)
);
CREATE INDEX deployments_created_at ON deployments (created_at);
CREATE INDEX deployments_status_created_at ON deployments (status, created_at);
CREATE INDEX deployments_created_by ON deployments (created_by);
CREATE INDEX deployments_template ON deployments (template_id);

CREATE TABLE deployment_owners (
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, user_id)
);
CREATE INDEX deployment_owners_user ON deployment_owners (user_id, deployment_id);

CREATE TABLE resources (
    id TEXT PRIMARY KEY NOT NULL,
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    tosca_node_name TEXT NOT NULL,
    tosca_node_type TEXT NOT NULL,
    instance_index BIGINT NOT NULL,
    im_vm_idx TEXT,
    status BIGINT NOT NULL,
    status_reason TEXT,
    metadata TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL REFERENCES users (id)
);
CREATE INDEX resources_deployment ON resources (deployment_id, created_at);

CREATE TABLE resource_requirements (
    resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    required_by TEXT NOT NULL,
    PRIMARY KEY (resource_id, required_by)
);

-- No foreign key: orchestrator log lines are kept after the deployment is deleted.
CREATE TABLE deployment_logs (
    id TEXT PRIMARY KEY NOT NULL,
    deployment_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    source TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX deployment_logs_deployment ON deployment_logs (deployment_id, created_at);

CREATE TABLE deployment_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    provider TEXT NOT NULL,
    region TEXT,
    iaas_project TEXT,
    started_at BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    ended_at BIGINT,
    outcome TEXT NOT NULL,
    im_infra_id TEXT,
    error TEXT,
    destroyed BIGINT NOT NULL
);
CREATE INDEX deployment_attempts_deployment ON deployment_attempts (deployment_id, number);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    progress TEXT NOT NULL,
    run_after BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    attempts BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, run_after);
CREATE INDEX jobs_deployment ON jobs (deployment_id, state);

CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL,
    topic TEXT NOT NULL,
    message_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    CONSTRAINT outbox_id UNIQUE (id)
);
CREATE INDEX outbox_pending ON outbox (published_at, seq);

CREATE TABLE consumed_messages (
    id TEXT PRIMARY KEY NOT NULL,
    consumed_at BIGINT NOT NULL
);
