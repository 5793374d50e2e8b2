-- The whole v1 data model. Timestamps are microseconds since the epoch (BIGINT),
-- booleans are 0/1, JSON documents are text: the same shapes on every backend.
CREATE TABLE users (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    sub VARCHAR(255) NOT NULL,
    issuer VARCHAR(255) NOT NULL,
    name VARCHAR(255) NOT NULL,
    username VARCHAR(255) NOT NULL,
    email VARCHAR(255) NOT NULL,
    picture LONGTEXT COLLATE utf8mb4_unicode_ci,
    public_ssh_key LONGTEXT COLLATE utf8mb4_unicode_ci,
    refresh_token LONGTEXT COLLATE utf8mb4_unicode_ci,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT users_sub_issuer UNIQUE (sub, issuer)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE templates (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    name VARCHAR(255) NOT NULL,
    version VARCHAR(255),
    target_provider_type VARCHAR(255),
    tosca_definition_version VARCHAR(255) NOT NULL,
    content LONGTEXT COLLATE utf8mb4_unicode_ci NOT NULL,
    checksum VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    created_by VARCHAR(36) NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by VARCHAR(36) NOT NULL,
    CONSTRAINT templates_checksum UNIQUE (checksum),
    FOREIGN KEY (created_by) REFERENCES users (id),
    FOREIGN KEY (updated_by) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX templates_created_at ON templates (created_at);

CREATE TABLE deployments (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    template_id VARCHAR(36) NOT NULL,
    template_inputs LONGTEXT COLLATE utf8mb4_unicode_ci NOT NULL,
    template_outputs LONGTEXT COLLATE utf8mb4_unicode_ci NOT NULL,
    user_group VARCHAR(255) NOT NULL,
    per_provider_max_retries BIGINT NOT NULL,
    max_providers BIGINT,
    tot_timeout_mins BIGINT NOT NULL,
    per_provider_timeout_mins BIGINT NOT NULL,
    keep_last_attempt BIGINT NOT NULL,
    target_provider VARCHAR(255),
    target_region VARCHAR(255),
    target_iaas_project VARCHAR(255),
    im_infra_id VARCHAR(255),
    status BIGINT NOT NULL,
    status_reason LONGTEXT COLLATE utf8mb4_unicode_ci,
    task BIGINT NOT NULL,
    im_logs LONGTEXT COLLATE utf8mb4_unicode_ci,
    callback LONGTEXT COLLATE utf8mb4_unicode_ci,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by VARCHAR(36) NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by VARCHAR(36) NOT NULL,
    FOREIGN KEY (template_id) REFERENCES templates (id),
    FOREIGN KEY (created_by) REFERENCES users (id),
    FOREIGN KEY (updated_by) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX deployments_created_at ON deployments (created_at);
CREATE INDEX deployments_status_created_at ON deployments (status, created_at);
CREATE INDEX deployments_created_by ON deployments (created_by);
CREATE INDEX deployments_template ON deployments (template_id);

CREATE TABLE deployment_owners (
    deployment_id VARCHAR(36) NOT NULL,
    user_id VARCHAR(36) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, user_id),
    FOREIGN KEY (deployment_id) REFERENCES deployments (id) ON DELETE CASCADE,
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX deployment_owners_user ON deployment_owners (user_id, deployment_id);

CREATE TABLE resources (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    deployment_id VARCHAR(36) NOT NULL,
    tosca_node_name VARCHAR(255) NOT NULL,
    tosca_node_type VARCHAR(255) NOT NULL,
    instance_index BIGINT NOT NULL,
    im_vm_idx VARCHAR(255),
    status BIGINT NOT NULL,
    status_reason LONGTEXT COLLATE utf8mb4_unicode_ci,
    metadata LONGTEXT COLLATE utf8mb4_unicode_ci,
    created_at BIGINT NOT NULL,
    created_by VARCHAR(36) NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by VARCHAR(36) NOT NULL,
    FOREIGN KEY (deployment_id) REFERENCES deployments (id) ON DELETE CASCADE,
    FOREIGN KEY (created_by) REFERENCES users (id),
    FOREIGN KEY (updated_by) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX resources_deployment ON resources (deployment_id, created_at);

CREATE TABLE resource_requirements (
    resource_id VARCHAR(36) NOT NULL,
    required_by VARCHAR(255) NOT NULL,
    PRIMARY KEY (resource_id, required_by),
    FOREIGN KEY (resource_id) REFERENCES resources (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- No foreign key: orchestrator log lines are kept after the deployment is deleted.
CREATE TABLE deployment_logs (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    deployment_id VARCHAR(36) NOT NULL,
    created_at BIGINT NOT NULL,
    source VARCHAR(255) NOT NULL,
    message LONGTEXT COLLATE utf8mb4_unicode_ci NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX deployment_logs_deployment ON deployment_logs (deployment_id, created_at);

CREATE TABLE deployment_attempts (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    deployment_id VARCHAR(36) NOT NULL,
    number BIGINT NOT NULL,
    provider VARCHAR(255) NOT NULL,
    region VARCHAR(255),
    iaas_project VARCHAR(255),
    started_at BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    ended_at BIGINT,
    outcome VARCHAR(255) NOT NULL,
    im_infra_id VARCHAR(255),
    error LONGTEXT COLLATE utf8mb4_unicode_ci,
    destroyed BIGINT NOT NULL,
    FOREIGN KEY (deployment_id) REFERENCES deployments (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX deployment_attempts_deployment ON deployment_attempts (deployment_id, number);

CREATE TABLE jobs (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    deployment_id VARCHAR(36) NOT NULL,
    kind VARCHAR(255) NOT NULL,
    payload LONGTEXT COLLATE utf8mb4_unicode_ci NOT NULL,
    state VARCHAR(255) NOT NULL,
    progress LONGTEXT COLLATE utf8mb4_unicode_ci NOT NULL,
    run_after BIGINT NOT NULL,
    lease_owner VARCHAR(36),
    lease_until BIGINT,
    attempts BIGINT NOT NULL,
    last_error LONGTEXT COLLATE utf8mb4_unicode_ci,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (deployment_id) REFERENCES deployments (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX jobs_ready ON jobs (state, run_after);
CREATE INDEX jobs_deployment ON jobs (deployment_id, state);

CREATE TABLE outbox (
    seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    id VARCHAR(36) NOT NULL,
    topic VARCHAR(255) NOT NULL,
    message_key VARCHAR(255) NOT NULL,
    payload LONGTEXT COLLATE utf8mb4_unicode_ci NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error LONGTEXT COLLATE utf8mb4_unicode_ci,
    CONSTRAINT outbox_id UNIQUE (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX outbox_pending ON outbox (published_at, seq);

CREATE TABLE consumed_messages (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    consumed_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
