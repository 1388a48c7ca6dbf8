-- Rewrite requests (postgres/rewrites.go): operations that rewrite profiles
-- outside the log's application (an erasure, a re-scoring) asked of a node
-- that does not apply events, queued for the one that does; its answer is
-- written back for the asking node.
CREATE TABLE rewrite_requests (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT   NOT NULL,
    node       TEXT   NOT NULL,
    body       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    done_at    BIGINT,
    result     BYTEA
);
CREATE INDEX rewrite_requests_pending ON rewrite_requests (id) WHERE done_at IS NULL;
