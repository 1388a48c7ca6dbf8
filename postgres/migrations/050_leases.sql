-- Named leases held through the database (postgres/leases.go): what several
-- nodes over one store run once among them when there is no bus to hold
-- leases in (the "jobs" lease: scheduled deliveries, analyses, retention).
-- term grows with every holder and is never reset (a lease given back
-- keeps its row), so it fences a holder that lost the lease; expires is
-- the database's clock, so nodes' clocks do not matter.
CREATE TABLE leases (
    name    TEXT        PRIMARY KEY,
    holder  TEXT        NOT NULL,
    term    BIGINT      NOT NULL,
    expires TIMESTAMPTZ NOT NULL
);
