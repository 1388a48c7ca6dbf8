-- Names raised to secret whose stored values a background pass is sealing
-- (internal/storeseal, raise.go), and how far it got: a restart resumes.
CREATE TABLE reseal_jobs (
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    phase     TEXT NOT NULL,
    after_key TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
