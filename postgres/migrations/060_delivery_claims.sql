-- Claims of scheduled delivery slots (postgres/deliveries.go,
-- delivery.Claims): several nodes over one store send each (delivery,
-- slot) at most once. A claim names the jobs term it was made in (fence
-- and term, the fence's latest term begun being kept in applier_terms):
-- a claim still 'claimed' by an earlier term can never move to 'sending',
-- so a later owner may take it over; one in 'sending' is never taken over.
CREATE TABLE delivery_claims (
    delivery_id TEXT   NOT NULL,
    slot        BIGINT NOT NULL,
    holder      TEXT   NOT NULL,
    fence       TEXT   NOT NULL,
    term        BIGINT NOT NULL,
    status      TEXT   NOT NULL,
    at          BIGINT NOT NULL, -- microseconds, the claiming node's clock
    PRIMARY KEY (delivery_id, slot)
);
