-- Listing a user's deployments (`owned_by`, which every non-admin list implies) by
-- status, newest first, must not visit every deployment the user owns: with 100 000
-- deployments the count alone did thousands of lookups per request. Each owner row
-- therefore carries a copy of its deployment's status and creation time, and one
-- index answers the count and the page from the owner rows. And reading a deployment
-- (alone or in a page) must not need a second query for its owners: the deployment
-- row carries a copy of its owner list (`owner_ids`, a JSON array in the order owners
-- were added). store/deployments.rs keeps both copies in step, in the transaction
-- that changes the deployment or its owners.
-- (Numbered 0005: 0003 and 0004 are taken by the legacy and messaging branches.)
ALTER TABLE deployment_owners ADD COLUMN deployment_status BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deployment_owners ADD COLUMN deployment_created_at BIGINT NOT NULL DEFAULT 0;
UPDATE deployment_owners SET
    deployment_status = (SELECT d.status FROM deployments d WHERE d.id = deployment_owners.deployment_id),
    deployment_created_at = (SELECT d.created_at FROM deployments d WHERE d.id = deployment_owners.deployment_id);
CREATE INDEX deployment_owners_listing
    ON deployment_owners (user_id, deployment_status, deployment_created_at, deployment_id);
ALTER TABLE deployments ADD COLUMN owner_ids TEXT NOT NULL DEFAULT '[]';
UPDATE deployments SET owner_ids = COALESCE(
    (SELECT json_group_array(o.user_id ORDER BY o.created_at, o.user_id)
     FROM deployment_owners o WHERE o.deployment_id = deployments.id), '[]');
